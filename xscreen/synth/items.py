"""Benign bag contents and the bag itself, built from ``synth.draw`` primitives in real units.

Sizes are in cm, areal densities in g/cm^2 (thickness x bulk density along the beam). Values are
typical of real objects so the physics gives realistic attenuation: a paperback ~2 g/cm^2 of
cellulose, a 7 cm water bottle ~7 g/cm^2 at its axis, a coin ~2 g/cm^2 of copper alloy.
"""
from __future__ import annotations

import numpy as np

from xscreen.synth.draw import Canvas, Pose, blob, curve, ellipse, line, noise, polygon, rect


def clothes(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    # Folded garments: loose fabric (~0.3 g/cm^3) a few cm thick, folds as a smooth texture.
    r = rng.uniform(7, 16)
    polygon(cv, p.px(blob(rng, r)), "cellulose", rng.uniform(0.4, 1.6), "round", noise(rng, 0.4, 1.4, 7))
    if rng.random() < 0.4:  # buttons or a metal zip on the garment
        for _ in range(rng.integers(3, 7)):
            ellipse(cv, p, rng.uniform(-r / 2, r / 2), rng.uniform(-r / 2, r / 2), 0.6, 0.6, "pe", 0.3)
    if rng.random() < 0.25:
        line(cv, p, [(-r / 2, 0), (r / 2, rng.uniform(-2, 2))], 0.5, "cu", 0.35, "flat")


def shoes(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    for dx in (-5.5, 5.5):
        sole = np.array([(-13, -3.5), (-8, -4.5), (4, -4.5), (13, -3), (14, 0), (13, 3), (4, 4.5),
                         (-8, 4.5), (-13, 3.5), (-14, 0)], float) * [1, 0.9]
        sole = sole[:, ::-1] + [dx, 0]
        polygon(cv, p.px(sole), "pe", rng.uniform(2.0, 3.5), "round")
        polygon(cv, p.px(sole * 0.9), "cellulose", rng.uniform(1.0, 2.0), "round", noise(rng, 0.6, 1.2, 4))
        if rng.random() < 0.5:  # steel shank in the sole
            rect(cv, p, dx, 2, 1.2, 9, "fe", 1.2)
        for k in range(5):  # eyelets
            ellipse(cv, p, dx + rng.choice([-1.5, 1.5]), -8 + 2 * k, 0.3, 0.3, "al", 0.3)


def book(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    w, h = rng.uniform(13, 21), rng.uniform(19, 28)
    rect(cv, p, 0, 0, w, h, "cellulose", rng.uniform(1.2, 3.5), "flat", noise(rng, 0.92, 1.08, 3))
    if rng.random() < 0.3:  # spiral binding
        for k in np.arange(-h / 2 + 1, h / 2 - 0.5, 0.8):
            ellipse(cv, p, -w / 2, k, 0.5, 0.25, "fe", 0.3, "flat")


def laptop(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    w, h = rng.uniform(30, 36), rng.uniform(20, 24)
    rect(cv, p, 0, 0, w, h, rng.choice(["al", "pe"]), 0.6)
    rect(cv, p, 0, 0, w - 1, h - 1, "glass", 0.4)  # screen and board substrate
    rect(cv, p, -w / 5, -h / 6, w / 2.2, h / 3, "cu", 0.15)  # motherboard copper planes
    rect(cv, p, -w / 5, -h / 6, w / 2.2, h / 3, "glass", 0.35)
    for k in range(4):  # chips and shields
        rect(cv, p, -w / 3 + k * 2.8, -h / 6, 2.0, 2.0, "fe", 0.4)
    ellipse(cv, p, w / 4, -h / 5, 3, 3, "cu", 0.6, "flat")  # fan / heat pipe
    line(cv, p, [(w / 4, -h / 5), (-w / 8, -h / 6)], 0.8, "cu", 0.8, "flat")
    cells = rng.integers(3, 7)
    for k in range(cells):  # 18650 cells: steel can, Cu/Al foils, graphite and electrolyte
        x = -w / 2 + 3 + k * (w - 6) / cells + 1
        for mat, g in (("fe", 0.9), ("cu", 0.35), ("al", 0.25), ("cellulose", 2.0)):
            rect(cv, p, x, h / 3, 1.8, 6.5, mat, g, "round")
    for x in (-w / 2 + 1, w / 2 - 1):
        for y in (-h / 2 + 1, h / 2 - 1):
            ellipse(cv, p, x, y, 0.3, 0.3, "fe", 0.8, "flat")  # screws
    line(cv, p, [(-w / 2 + 2, -h / 2 + 0.8), (w / 2 - 2, -h / 2 + 0.8)], 1.0, "fe", 0.8, "flat")  # hinge


def cable(cv: Canvas, p: Pose, rng: np.random.Generator, length: float | None = None) -> None:
    path = curve(rng, (0, 0), length or rng.uniform(30, 90), n=16, wiggle=0.7)
    line(cv, p, path, 0.45, "pvc", 0.5)
    line(cv, p, path, 0.15, "cu", 0.25)


def charger(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    rect(cv, p, 0, 0, 6, 4.5, "pe", 2.2, "round")
    rect(cv, p, 0, 0, 2.4, 2.0, "fe", 4.0)  # transformer core
    rect(cv, p, 0, 0, 3.0, 2.6, "cu", 0.8)  # windings
    rect(cv, p, 3.5, 0.8, 1.2, 0.3, "cu", 0.6)  # plug pins
    rect(cv, p, 3.5, -0.8, 1.2, 0.3, "cu", 0.6)
    cable(cv, Pose(*p.px([(-3, 0)])[0], p.angle + np.pi, p.pitch_cm), rng)


def bottle(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    d, length = rng.uniform(5.5, 8.5), rng.uniform(16, 26)
    glass = rng.random() < 0.3
    line(cv, p, [(0, -length / 2 + d / 2), (0, length / 2 - d / 2 - 3)], d, "water", d * rng.uniform(0.6, 1.0))
    line(cv, p, [(0, length / 2 - d / 2 - 3), (0, length / 2)], d / 3, "water", d / 3)
    wall = ("glass", 2.0) if glass else ("pe", 0.25)
    line(cv, p, [(0, -length / 2 + d / 2), (0, length / 2 - d / 2 - 3)], d, wall[0], wall[1], "tube")
    rect(cv, p, 0, length / 2, d / 2.5, 1.5, "pe", 1.0)  # cap


def toiletries(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    for k in range(rng.integers(2, 5)):
        q = Pose(*p.px([(k * 4.5 - 6, rng.uniform(-3, 3))])[0], p.angle + rng.normal(0, 0.3), p.pitch_cm)
        kind = rng.integers(0, 3)
        if kind == 0:  # aerosol can: aluminium tube, propellant and liquid
            line(cv, q, [(0, -7), (0, 7)], 4.5, "al", 0.35, "tube")
            line(cv, q, [(0, -7), (0, 6)], 4.3, "water", 1.5)
        elif kind == 1:  # plastic bottle of gel
            line(cv, q, [(0, -6), (0, 6)], 3.8, "water", 3.0)
            line(cv, q, [(0, -6), (0, 6)], 3.8, "pe", 0.2, "tube")
        else:  # toothbrush / razor
            line(cv, q, [(0, -9), (0, 9)], 1.2, "pe", 1.0)
            rect(cv, q, 0, -8, 1.6, 2.5, "fe", 0.15)


def coins(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    for _ in range(rng.integers(3, 9)):
        r = rng.uniform(0.9, 1.3)
        ellipse(cv, p, rng.normal(0, 2.0), rng.normal(0, 2.0), r, r, rng.choice(["cu", "cu", "fe"]),
                rng.uniform(1.3, 2.0), "flat")


def keys(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    ring = np.stack([1.4 * np.cos(np.linspace(0, 2 * np.pi, 24)), 1.4 * np.sin(np.linspace(0, 2 * np.pi, 24))], 1)
    line(cv, p, ring, 0.2, "fe", 0.6, closed=True)
    for k in range(rng.integers(2, 5)):
        a = rng.uniform(-1.2, 1.2) + k * 0.5
        q = Pose(*p.px([(1.4 * np.cos(a), 1.4 * np.sin(a))])[0], p.angle - a, p.pitch_cm)
        ellipse(cv, q, 1.8, 0, 1.3, 1.1, rng.choice(["cu", "fe"]), 1.6, "flat")  # head
        blade = [(2.8, -0.45), (8.0, -0.45), (8.6, 0.0), (8.0, 0.45), (2.8, 0.45)]
        polygon(cv, q.px(blade), "cu", 1.6)
        for x in np.arange(4.0, 7.8, 0.8):  # bitting notches cut back some metal
            rect(cv, q, x, 0.35, 0.35, 0.3, "cu", -0.8)


def umbrella(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    length = rng.uniform(24, 55)
    polygon(cv, p.px(blob(rng, 1.0, 10, 0.2) * [length / 2.2, 3.5]), "pe", 0.35, "round", noise(rng, 0.5, 1.5, 8))
    line(cv, p, [(-length / 2, 0), (length / 2, 0)], 0.9, "fe", 0.6, "tube")
    for k in range(rng.integers(6, 9)):
        off = (k - 3.5) * 0.5
        line(cv, p, [(-length / 2 + 3, off * 0.3), (length / 2 - 2, off)], 0.2, "fe", 0.25)
    rect(cv, p, -length / 2 - 3, 0, 6, 2.8, "pe", 2.2, "round")  # handle


def belt(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    path = curve(rng, (0, 0), rng.uniform(40, 80), n=14, wiggle=0.45)
    line(cv, p, path, 3.5, "cellulose", 0.45, "flat")
    q = Pose(*p.px(path[:1])[0], p.angle, p.pitch_cm)
    frame = [(-2.5, -2.2), (2.5, -2.2), (2.5, 2.2), (-2.5, 2.2)]
    line(cv, q, frame, 0.5, "fe", 2.0, "flat", closed=True)
    line(cv, q, [(0, -2.2), (0, 2.2)], 0.3, "fe", 1.5, "flat")


def food(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    kind = rng.integers(0, 3)
    if kind == 0:  # apples / oranges
        for k in range(rng.integers(1, 4)):
            r = rng.uniform(3, 4.2)
            ellipse(cv, p, k * 7.5, rng.normal(0, 1), r, r, "water", 2 * r * 0.85)
    elif kind == 1:  # sandwich box
        rect(cv, p, 0, 0, 14, 12, "pe", 0.4)
        polygon(cv, p.px(blob(rng, 5.5, 10, 0.15)), "cellulose", 1.6, "round", noise(rng, 0.6, 1.3, 5))
        polygon(cv, p.px(blob(rng, 4.5, 10, 0.2)), "water", 1.0, "round")
    else:  # chocolate bar in foil
        rect(cv, p, 0, 0, 16, 7.5, "cellulose", 1.1, "flat", noise(rng, 0.85, 1.1, 4))
        rect(cv, p, 0, 0, 16.5, 8, "al", 0.04)


BENIGN = {
    "clothes": (clothes, 5.0), "shoes": (shoes, 0.8), "book": (book, 1.2), "laptop": (laptop, 0.6),
    "charger": (charger, 0.8), "cable": (cable, 1.0), "bottle": (bottle, 1.0), "toiletries": (toiletries, 1.0),
    "coins": (coins, 0.6), "keys": (keys, 0.6), "umbrella": (umbrella, 0.5), "belt": (belt, 0.6),
    "food": (food, 0.8),
}
