"""Direct simulation, the yardstick of the projection: the same object in the same bag, imaged once.

A ``Scene`` is a bag's areal-density stack (M, H, W) drawn from ``synth``'s benign items. ``image``
turns any stack into a dual-energy scan the way ``synth`` does (polychromatic Beer-Lambert, detector
blur, photon plus electronic noise at I0); ``with_object`` adds an FTI's areal densities placed
exactly as ``project`` places its transmission (``warp.warp_layers``), so projecting the FTI into
``image(scene)`` and imaging ``with_object(scene)`` directly differ only by what projection
approximates (beam hardening, noise statistics, blur order).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from xscreen.physics import MAT_INDEX, transmission
from xscreen.scan import Scan
from xscreen.synth import BLUR_SIGMA, ELECTRONIC_NOISE, I0
from xscreen.synth.draw import Canvas, Pose, polygon
from xscreen.synth.items import BENIGN
from xscreen.tip.fti import FTI, TipError
from xscreen.tip.warp import Placement, warp_layers

ORGANIC_ITEMS = ("clothes", "book", "food", "shoes")


@dataclass
class Scene:
    """``areal`` (M, H, W) float32 g/cm^2, ``pitch_mm``; ``inner`` (x0, y0, x1, y1) px: the bag's inside."""

    areal: np.ndarray
    pitch_mm: float
    inner: tuple[int, int, int, int]


def clutter_scene(seed: int, width: int = 400, height: int = 300, *, pitch_mm: float = 1.0,
                  items: int = 10, organic_only: bool = False) -> Scene:
    """A bag: fabric shell and ``items`` benign items (organic ones only if asked) inside it."""
    rng = np.random.default_rng(seed)
    cv = Canvas(height, width, pitch_mm / 10.0)
    x0, y0, x1, y1 = int(0.06 * width), int(0.08 * height), int(0.94 * width), int(0.92 * height)
    polygon(cv, np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], float), "pe", 0.4)
    names = list(ORGANIC_ITEMS if organic_only else BENIGN)
    for _ in range(items):
        name = names[int(rng.integers(len(names)))]
        pose = Pose(rng.uniform(x0 + 20, x1 - 20), rng.uniform(y0 + 20, y1 - 20), rng.uniform(0, 2 * np.pi),
                    cv.pitch_cm, rng.uniform(0.8, 1.1), bool(rng.random() < 0.5))
        BENIGN[name][0](cv, pose, rng)
    keep = np.zeros((height, width), bool)
    keep[y0:y1, x0:x1] = True
    cv.areal[:, ~keep] = 0.0
    return Scene(np.maximum(cv.areal, 0.0), pitch_mm, (x0, y0, x1, y1))


def slab_scene(width: int, height: int, material: str, g_cm2: float, *, pitch_mm: float = 1.0,
               box: tuple[int, int, int, int] | None = None) -> Scene:
    """An even slab of one material (a uniform 'bag'), over ``box`` (default: all but a 10 % margin)."""
    areal = np.zeros((len(MAT_INDEX), height, width), np.float32)
    box = box or (width // 10, height // 10, width - width // 10, height - height // 10)
    areal[MAT_INDEX[material], box[1]:box[3], box[0]:box[2]] = g_cm2
    return Scene(areal, pitch_mm, box)


def with_object(scene: Scene, fti: FTI, placement: Placement) -> np.ndarray:
    """(M, H, W) the scene's areal stack plus the FTI's, placed as ``project`` would place it."""
    if fti.areal is None:
        raise TipError(fti.name, "only FTIs with areal densities (generated ones) can be simulated directly")
    _, height, width = scene.areal.shape
    win = warp_layers(fti.areal, fti.mask, placement).clip(height, width)
    out = scene.areal.copy()
    h, w = win.mask.shape
    out[:, win.y0:win.y0 + h, win.x0:win.x0 + w] += win.layers
    return out


def image(areal: np.ndarray, rng: np.random.Generator, *, pitch_mm: float = 1.0, noise: bool = True,
          scan_id: str = "sim") -> Scan:
    """(M, H, W) g/cm^2 -> dual Scan (2, H, W) uint16 [high, low] imaged as ``synth`` images bags."""
    t = transmission(np.maximum(areal, 0.0))
    counts = np.empty(t.shape, np.uint16)
    for c in range(2):
        expected = cv2.GaussianBlur(t[c], (0, 0), BLUR_SIGMA) * np.float32(I0)
        if noise:
            sd = np.sqrt(expected + np.float32(ELECTRONIC_NOISE ** 2))
            expected = expected + rng.standard_normal(expected.shape, dtype=np.float32) * sd
        counts[c] = np.clip(np.rint(expected), 0, 65535).astype(np.uint16)
    return Scan(scan_id=scan_id, kind="dual", channels=counts, i0=I0, path=None, pixel_pitch_mm=pitch_mm,
                metadata={})
