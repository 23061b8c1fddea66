"""Numbers that catch the known TIP artefacts screeners report (halo, floating over air, wrong scale,
pasted edges / a too-clean pasted region), measured on a projection against the bag it went into.

- ``halo``: mean change of high-channel attenuation in a ring 3-7 px outside the footprint. A crop
  that keeps its tray or background (divided by the wrong level) shows a rim of its own.
- ``box_edge``: mean change along the border of the window the FTI was pasted through, outside the
  footprint: the rectangle of a crop that was not masked to the object.
- ``over_air``: share of the footprint lying over air in the bag (attenuation below materials.AIR_A).
- ``scale_error``: physical footprint area (mm^2) after projection over the FTI's own, minus 1.
- ``noise_ratio``: robust noise of the projected footprint over what a scan of it would have
  (sqrt(g*N) per pixel, from neighbour differences, median-absolute-deviation so edges do not count):
  1 for a faithful projection; a pasted noise-free object over a noisy bag reads well below 1.
``TOLERANCES`` are the limits a projection must stay within (tests/test_tip_realism.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from xscreen.materials import AIR_A
from xscreen.scan import Scan
from xscreen.tip.fti import FTI
from xscreen.tip.project import Projected, photon_gain
from xscreen.tip.schedule import darkness

TOLERANCES = {"halo": 0.01, "box_edge": 0.01, "over_air": 0.001, "scale_error": 0.1, "noise_low": 0.8,
              "noise_high": 1.25}


@dataclass(frozen=True)
class Realism:
    halo: float
    box_edge: float
    over_air: float
    scale_error: float
    noise_ratio: float  # NaN where the footprint has too few interior pixels to tell

    def failures(self) -> list[str]:
        """The artefacts this projection shows, by name ([] = none caught)."""
        t, out = TOLERANCES, []
        if abs(self.halo) > t["halo"]:
            out.append("halo")
        if abs(self.box_edge) > t["box_edge"]:
            out.append("pasted_edges")
        if self.over_air > t["over_air"]:
            out.append("floating_over_air")
        if abs(self.scale_error) > t["scale_error"]:
            out.append("wrong_scale")
        if np.isfinite(self.noise_ratio) and not t["noise_low"] <= self.noise_ratio <= t["noise_high"]:
            out.append("noise")
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "failures": self.failures()}


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


def _border(box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the 2-px frame of ``box`` (x, y, w, h)."""
    x, y, w, h = box
    out = np.zeros(shape, bool)
    out[y:y + h, x:x + w] = True
    inner = np.zeros(shape, bool)
    inner[y + 2:y + h - 2, x + 2:x + w - 2] = True
    return out & ~inner


def noise_ratio(scan: Scan, region: np.ndarray, gain: float | None = None) -> float:
    """Robust noise of the high channel over region (H, W) bool, relative to sqrt(g*N) per pixel."""
    ch = scan.channels[0].astype(np.float64)
    g = photon_gain(scan)[0] if gain is None else gain
    pair = region[:, 1:] & region[:, :-1]
    if pair.sum() < 50:
        return float("nan")
    z = (ch[:, 1:] - ch[:, :-1])[pair] / np.sqrt(g * np.maximum(ch[:, 1:] + ch[:, :-1], 1.0)[pair])
    return float(1.4826 * np.median(np.abs(z - np.median(z))))


def realism(bag: Scan, projected: Projected, fti: FTI) -> Realism:
    """The artefact numbers of ``projected`` (made from ``bag``) - see the module docstring."""
    mask = projected.mask
    change = darkness(projected.scan) - darkness(bag)
    ring = _dilate(mask, 7) & ~_dilate(mask, 3)
    halo = float(change[ring].mean()) if ring.any() else 0.0
    frame = _border(projected.box, mask.shape) & ~_dilate(mask, 3)
    box_edge = float(change[frame].mean()) if frame.any() else 0.0
    over_air = float((darkness(bag)[mask] < AIR_A).mean()) if mask.any() else 0.0
    pitch = bag.pixel_pitch_mm or fti.pitch_mm
    scale_error = float(mask.sum() * pitch ** 2 / (fti.mask.sum() * fti.pitch_mm ** 2) - 1.0)
    interior = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    gain = projected.gain[0] if projected.gain else None
    return Realism(halo, box_edge, over_air, scale_error,
                   noise_ratio(projected.scan, interior, gain) if bag.kind != "rgb" else float("nan"))
