"""FTIs generated from the product's own physics (source ``synth``).

Each FTI is one threat drawn by ``synth.threats`` (handgun, knife, gun part, IED) or by the two
objects below (category ``other``: knuckle-duster, hand grenade) alone on an empty canvas at a
random pose (in-plane angle, mirror), physical scale 0.85-1.15 and the materials those builders draw
at random (polymer or steel frame, steel thickness, handle material, explosive mass...). It keeps its
areal densities (M, h, w), so projection can render it exactly, and its noise-free, unblurred
transmission; blur and noise are the projection's (the scanner's), not the FTI's.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from xscreen.physics import transmission
from xscreen.synth.draw import Canvas, Pose, ellipse, line, polygon, rect
from xscreen.synth.threats import THREATS
from xscreen.tip.fti import CATEGORIES, FTI, TipError
from xscreen.tip.library import Library, open_or_create

DEFAULT_PITCH_MM = 1.0
CANVAS_CM = 50.0
MARGIN_PX = 4  # kept around the object so the projection's blur has room


def knuckles(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    """Knuckle-duster, ~10 x 5 cm of steel or brass."""
    mat = str(rng.choice(["fe", "cu"]))
    g = rng.uniform(0.8, 1.4) * (7.9 if mat == "fe" else 8.9)
    for k in range(4):
        t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        ring = np.stack([-3.6 + 2.4 * k + 1.05 * np.cos(t), -1.0 + 1.05 * np.sin(t)], 1)
        line(cv, p, ring, 0.45, mat, g, "round", closed=True)
    polygon(cv, p.px([(-5.0, 0.2), (5.0, 0.2), (4.0, 3.2), (-4.0, 3.2)]), mat, g * 0.9, "round")


def grenade(cv: Canvas, p: Pose, rng: np.random.Generator) -> None:
    """Hand grenade: cast-iron body (a hollow shell) with an explosive filler, fuze, lever and ring."""
    r = rng.uniform(2.6, 3.2)
    ellipse(cv, p, 0, 0, r, r * 1.25, "fe", rng.uniform(4.0, 6.0), "tube")
    ellipse(cv, p, 0, 0, r * 0.8, r, "explosive", 2 * r * 0.8 * 1.65, "round")
    rect(cv, p, 0, -r * 1.25 - 1.0, 1.6, 2.2, "fe", 2.5, "round")  # fuze
    line(cv, p, [(0.8, -r * 1.25 - 1.5), (1.6, 0.0), (1.2, r)], 0.8, "fe", 0.3, "flat")  # lever
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    line(cv, p, np.stack([-1.8 + 0.9 * np.cos(t), -r * 1.25 - 1.8 + 0.9 * np.sin(t)], 1), 0.15, "fe", 0.3,
         closed=True)


OTHER = (knuckles, grenade)


def fti_from_areal(areal: np.ndarray, *, category: str, name: str, pitch_mm: float,
                   mask: np.ndarray | None = None) -> FTI:
    """An FTI from areal densities (M, h, w) g/cm^2 (cropped to the object plus a margin). ``mask``
    (h, w) bool defaults to the pixels holding more than 0.02 g/cm^2 in all."""
    areal = np.maximum(np.asarray(areal, np.float32), 0.0)
    mask = areal.sum(0) > 0.02 if mask is None else np.asarray(mask, bool)
    if not mask.any():
        raise TipError(name, "the object is empty (no areal density above 0.02 g/cm^2)")
    ys, xs = np.nonzero((areal > 0).any(0) | mask)
    y0, x0 = max(ys.min() - MARGIN_PX, 0), max(xs.min() - MARGIN_PX, 0)
    y1, x1 = ys.max() + MARGIN_PX + 1, xs.max() + MARGIN_PX + 1
    areal = np.ascontiguousarray(areal[:, y0:y1, x0:x1])
    t = np.clip(transmission(areal), 1e-6, 1.0).astype(np.float32)
    t[:, ~(areal > 0).any(0)] = 1.0  # exactly nothing where there is nothing (float sums of weights)
    return FTI(name=name, category=category, kind="dual", transmission=t,
               mask=np.ascontiguousarray(mask[y0:y1, x0:x1]), pitch_mm=float(pitch_mm), source="synth",
               areal=areal)


def synth_fti(category: str, rng: np.random.Generator, *, pitch_mm: float = DEFAULT_PITCH_MM,
              name: str | None = None) -> FTI:
    """One generated FTI of ``category`` (see module docstring)."""
    if category not in CATEGORIES:
        raise TipError(category, f"unknown category (one of {', '.join(CATEGORIES)})")
    pitch_cm = pitch_mm / 10.0
    n = int(round(CANVAS_CM / pitch_cm))
    cv = Canvas(n, n, pitch_cm)
    pose = Pose(n / 2, n / 2, rng.uniform(0, 2 * np.pi), pitch_cm, rng.uniform(0.85, 1.15), bool(rng.random() < 0.5))
    draw = OTHER[int(rng.integers(len(OTHER)))] if category == "other" else THREATS[category]
    cv.tag = 1
    draw(cv, pose, rng)
    label = name or f"{category} ({draw.__name__})"
    return fti_from_areal(cv.areal, category=category, name=label, pitch_mm=pitch_mm, mask=cv.mask > 0)


def fti_seed(seed: int, category: str, index: int) -> np.random.Generator:
    """Independent streams per (library seed, category, index): the same FTI whatever else is built."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), CATEGORIES.index(category), int(index)]))


def build_library(path: str | Path, *, per_category: int = 10, seed: int = 0,
                  categories: Sequence[str] = CATEGORIES, pitch_mm: float = DEFAULT_PITCH_MM) -> Library:
    """Generate ``per_category`` FTIs of every category into the library at ``path`` (created or added
    to); the same seed gives the same FTIs (ids). Returns the library."""
    lib = None
    for lib in iter_build(path, per_category=per_category, seed=seed, categories=categories, pitch_mm=pitch_mm):
        pass
    return lib if lib is not None else open_or_create(path)


def iter_build(path: str | Path, *, per_category: int = 10, seed: int = 0, categories: Sequence[str] = CATEGORIES,
               pitch_mm: float = DEFAULT_PITCH_MM) -> Iterator[Library]:
    """``build_library`` as a generator yielding the library after each FTI (progress, cancel)."""
    if per_category < 1:
        raise TipError(path, f"--per-category must be at least 1 (got {per_category})")
    bad = [c for c in categories if c not in CATEGORIES]
    if bad:
        raise TipError(path, f"unknown categories {', '.join(bad)}")
    lib = open_or_create(path)
    for cat in categories:
        for k in range(per_category):
            lib.add(synth_fti(cat, fti_seed(seed, cat, k), pitch_mm=pitch_mm, name=f"{cat}-s{seed}-{k:03d}"))
            yield lib
