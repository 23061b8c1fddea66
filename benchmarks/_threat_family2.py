"""A second, independently written threat family (issue 29 Part 2, test (a)): other shapes,
materials and construction than ``synth.threats`` (which the TIP library's FTIs come from), so a
known-threat head trained on the library has never seen them. Written for this benchmark only.

handgun: a revolver (round cylinder with six chambers, long round barrel, wooden grip);
knife: a double-edged dagger in aluminium or a ceramic-like glass blade, no bolster;
gun_part: a bare barrel tube with a bolt carrier; ied: a capped steel pipe of explosive with wires
to a 9 V battery; other: a four-point throwing star.
"""
from __future__ import annotations

import numpy as np

from xscreen.synth.draw import Canvas, Pose, ellipse, line, polygon, rect
from xscreen.tip.fti import FTI
from xscreen.tip.generate import CANVAS_CM, fti_from_areal


def revolver(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    line(cv, p, [(0.0, -2.0), (12.0, -2.0)], 1.6, "fe", rng.uniform(2.5, 4.0), "tube")  # barrel
    ellipse(cv, p, -1.5, -0.5, 2.2, 2.0, "fe", 2.5, "round")  # cylinder
    for k in range(6):
        a = k * np.pi / 3
        ellipse(cv, p, -1.5 + 1.2 * np.cos(a), -0.5 + 1.2 * np.sin(a), 0.45, 0.45, "pb", 1.2, "flat")
    polygon(cv, p.px([(-4.0, -1.0), (-2.5, 0.5), (-4.5, 7.0), (-7.5, 6.5)]), "cellulose", 3.5, "round")  # grip
    line(cv, p, [(-4.0, -2.8), (0.0, -2.8)], 0.9, "fe", 2.0)  # frame top strap


def dagger(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    blade_mat = str(rng.choice(["al", "glass"]))
    polygon(cv, p.px([(0.0, -1.3), (15.0, 0.0), (0.0, 1.3)]), blade_mat, rng.uniform(1.2, 2.2), "flat")
    rect(cv, p, -0.3, 0.0, 0.6, 5.0, "al", 1.5)  # cross guard
    rect(cv, p, -5.0, 0.0, 9.0, 1.8, "pe", 2.5, "round")  # handle


def barrel(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    line(cv, p, [(-8.0, 0.0), (8.0, 0.0)], rng.uniform(1.2, 1.8), "fe", 4.0, "tube")
    rect(cv, p, -9.5, 0.0, 4.0, 2.4, "fe", 3.0, "round")  # bolt carrier
    line(cv, p, [(-11.0, 0.0), (-13.0, 1.5)], 0.5, "fe", 1.5)  # bolt handle


def pipe_bomb(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    length = rng.uniform(12.0, 20.0)
    rect(cv, p, 0.0, 0.0, length, 4.0, "explosive", rng.uniform(3.0, 5.0), "round")  # the fill
    line(cv, p, [(-length / 2, -2.0), (length / 2, -2.0)], 0.4, "fe", 1.5)  # pipe walls
    line(cv, p, [(-length / 2, 2.0), (length / 2, 2.0)], 0.4, "fe", 1.5)
    for x in (-length / 2, length / 2):
        rect(cv, p, x, 0.0, 1.2, 4.8, "fe", 3.0)  # end caps
    line(cv, p, [(length / 2, 0.0), (length / 2 + 4.0, 3.0), (length / 2 + 6.0, 3.0)], 0.15, "cu", 0.6)
    rect(cv, p, length / 2 + 7.5, 3.0, 2.6, 4.6, "fe", 1.2)  # 9 V battery
    rect(cv, p, length / 2 + 7.5, 3.0, 1.8, 3.8, "sn", 0.4)


def star(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    r, s = rng.uniform(4.5, 6.0), 1.0
    pts = [(r, 0), (s, s), (0, r), (-s, s), (-r, 0), (-s, -s), (0, -r), (s, -s)]
    polygon(cv, p.px(pts), "fe", rng.uniform(0.6, 1.2), "flat")
    ellipse(cv, p, 0, 0, 0.6, 0.6, "fe", -0.6, "flat")  # the centre hole (less steel)


FAMILY2 = {"handgun": revolver, "knife": dagger, "gun_part": barrel, "ied": pipe_bomb, "other": star}


def family2_fti(category: str, rng: np.random.Generator, pitch_mm: float = 1.0) -> FTI:
    pitch_cm = pitch_mm / 10.0
    n = int(round(CANVAS_CM / pitch_cm))
    cv = Canvas(n, n, pitch_cm)
    pose = Pose(n / 2, n / 2, rng.uniform(0, 2 * np.pi), pitch_cm, rng.uniform(0.85, 1.15), bool(rng.random() < 0.5))
    cv.tag = 1
    FAMILY2[category](cv, pose, rng)
    cv.areal = np.maximum(cv.areal, 0.0)
    return fti_from_areal(cv.areal, category=category, name=f"{category}-family2", pitch_mm=pitch_mm,
                          mask=cv.mask > 0)
