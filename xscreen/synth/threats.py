"""Threat objects for synthetic bags: handguns, knives, gun parts, IED-like assemblies.

Silhouettes and areal densities follow real objects (a pistol slide is ~2.5 cm of partly hollow
steel, a kitchen-knife blade 2-3 mm of steel, a plastic-explosive block 1.6-1.7 g/cm^3). They are
drawn while ``Canvas.tag`` holds the threat number, so the ground-truth mask is exactly the pixels
the threat's own material covers - whatever benign clutter lies on top of it (occlusion).
"""
from __future__ import annotations

import numpy as np

from xscreen.synth.draw import Canvas, Pose, curve, ellipse, line, polygon, rect

THREAT_TYPES = ("handgun", "knife", "gun_part", "ied")


def handgun(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    # Side view of a semi-automatic pistol, ~19 x 13 cm, muzzle at +x.
    steel = rng.uniform(3.5, 6.0)
    polygon(cv, p.px([(-9.5, -6.2), (9.5, -6.2), (9.5, -3.2), (-9.5, -3.2)]), "fe", steel, "round")  # slide
    line(cv, p, [(-6, -4.7), (9.5, -4.7)], 1.3, "fe", 3.0, "tube")  # barrel inside the slide
    frame = [(-9.0, -3.2), (8.5, -3.2), (8.5, -1.6), (-1.5, -1.6), (-3.0, 0.0), (-3.5, 0.0),
             (-5.0, 6.8), (-10.0, 6.8), (-9.5, 0.0)]
    polygon(cv, p.px(frame), rng.choice(["pe", "fe"]), 3.0, "round")  # polymer or steel frame
    polygon(cv, p.px([(-8.3, -2.5), (-4.6, -2.5), (-6.0, 6.3), (-9.4, 6.3)]), "fe", 2.2)  # magazine
    for k in range(4):  # cartridges: brass cases with lead cores
        rect(cv, p, -6.8 - 0.35 * k, -1.8 + 1.6 * k, 3.0, 0.9, "cu", 1.2, "round")
        rect(cv, p, -5.6 - 0.35 * k, -1.8 + 1.6 * k, 1.0, 0.8, "pb", 1.5, "round")
    tg = np.array([(-1.5, -1.6), (2.5, -1.6), (2.5, 0.8), (0.0, 1.6), (-2.0, 0.2)])
    line(cv, p, tg, 0.5, "fe", 1.0, "flat", closed=True)  # trigger guard
    line(cv, p, [(-0.5, -1.6), (0.2, 0.3)], 0.45, "fe", 1.2, "flat")  # trigger
    line(cv, p, [(-7.5, -4.7), (-3.0, -4.7)], 0.5, "fe", 2.0)  # recoil spring / firing pin


def knife(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    blade_len, width = rng.uniform(10, 22), rng.uniform(2.2, 4.2)
    spine, tip = -width / 2, blade_len
    edge = [(x, width / 2 - width * (x / blade_len) ** 3) for x in np.linspace(0, blade_len, 10)]
    blade = [(0, spine), (tip * 0.85, spine), (tip, spine + width * 0.3)] + edge[::-1]
    polygon(cv, p.px(blade), "fe", rng.uniform(1.6, 2.6), "flat")
    rect(cv, p, -0.5, 0, 1.2, width + 1.2, "fe", 2.5)  # bolster
    hmat = rng.choice(["cellulose", "pe"])
    rect(cv, p, -6.5, 0, 11, width * 0.9, hmat, 2.2, "round")  # handle
    if rng.random() < 0.6:  # full tang and rivets
        rect(cv, p, -6.5, 0, 11, width * 0.5, "fe", 1.6)
        for x in (-9.5, -6.5, -3.5):
            ellipse(cv, p, x, 0, 0.35, 0.35, "cu", 1.5, "flat")


def gun_part(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    kind = rng.integers(0, 3)
    if kind == 0:  # barrel: thick-walled steel tube with a chamber block
        line(cv, p, [(-5.5, 0), (5.5, 0)], 1.4, "fe", 4.5, "tube")
        rect(cv, p, -5.5, 0, 2.5, 2.0, "fe", 5.0, "round")
    elif kind == 1:  # loaded magazine
        polygon(cv, p.px([(-1.6, -6), (1.6, -6), (2.4, 6), (-0.8, 6)]), "fe", 2.2)
        for k in range(6):
            rect(cv, p, 0.2 + 0.13 * k, -5 + 1.8 * k, 3.0, 0.9, "cu", 1.3, "round")
            rect(cv, p, 1.4 + 0.13 * k, -5 + 1.8 * k, 1.0, 0.8, "pb", 1.6, "round")
    else:  # slide alone
        polygon(cv, p.px([(-9.5, -1.5), (9.5, -1.5), (9.5, 1.5), (-9.5, 1.5)]), "fe", 4.5, "round")
        rect(cv, p, 7.0, 0, 4.0, 0.9, "fe", -2.0)  # ejection port


def ied(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    w, h = rng.uniform(9, 16), rng.uniform(6, 10)
    thick = rng.uniform(3.0, 6.0) * 1.65  # explosive block, 3-6 cm at 1.65 g/cm^3
    rect(cv, p, 0, 0, w, h, "explosive", thick, "round")
    rect(cv, p, 0, 0, w + 0.4, h + 0.4, "pe", 0.25)  # wrapping tape
    bx, by = w / 2 + 3.5, rng.uniform(-h / 3, h / 3)
    rect(cv, p, bx, by, 2.6, 4.8, "fe", 1.2, "round")  # 9 V battery: steel case, cells
    rect(cv, p, bx, by, 2.4, 4.4, "cellulose", 1.5)
    rect(cv, p, bx, by - 2.6, 1.6, 0.5, "cu", 0.8)  # snap connector
    dx, dy = rng.uniform(-w / 4, w / 4), rng.uniform(-h / 4, h / 4)
    line(cv, p, [(dx - 2.5, dy), (dx + 2.5, dy)], 0.7, "al", 0.5, "tube")  # detonator tube
    line(cv, p, [(dx - 2.2, dy), (dx + 1.0, dy)], 0.45, "explosive", 0.8)
    for k in range(2):  # wires from battery to detonator, with a loose loop
        start = (bx - 0.6 + 1.2 * k, by - 2.8)
        path = np.vstack([[start], curve(rng, start, 12, n=6, wiggle=0.8)[1:], [(dx + 2.5, dy + 0.2 * k)]])
        line(cv, p, path, 0.2, "cu", 0.2)
        line(cv, p, path, 0.35, "pvc", 0.3)
    if rng.random() < 0.5:  # timer board
        rect(cv, p, -w / 2 - 3, 0, 4, 3, "glass", 0.4)
        rect(cv, p, -w / 2 - 3, 0, 1.2, 1.2, "fe", 0.4)


THREATS = {"handgun": handgun, "knife": knife, "gun_part": gun_part, "ied": ied}
