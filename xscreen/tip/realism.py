"""Numbers that catch the known TIP artefacts screeners report (halo, floating over air, wrong scale,
pasted edges / a too-clean pasted region), measured on a projection against the bag it went into.

- ``halo``: mean change of high-channel attenuation in a ring 3-7 px outside the footprint. A crop
  that keeps its tray or background (divided by the wrong level) shows a rim of its own.
- ``box_edge``: mean change along the border of the FTI's crop rectangle as placed, outside the
  footprint: the rectangle of a crop that was not masked to the object.
- ``over_air``: share of the footprint lying over air in the bag (attenuation below materials.AIR_A).
- ``scale_error``: physical footprint area (mm^2) after projection over the FTI's own, minus 1.
- ``noise_ratio``: robust std of the noise the projection added to the footprint over what a scan
  of the object needs on top of the bag's own noise (``noise_ratio``): 1 for a faithful projection;
  a pasted noise-free object (only the bag's noise, scaled down) reads near 0. Read on the object's
  flat parts only (NaN if it has under MIN_FLAT_PIXELS of them).
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
from xscreen.tip.warp import Placement, footprint

FLAT_T = 0.05  # relative
# noise: only "too clean" is an artefact; fine structure inside an object (cartridges, wires, rounded
# steel) reads as extra noise, so values above 1 are reported, not failed (handguns read 1.1-1.7)
TOLERANCES = {"halo": 0.01, "box_edge": 0.01, "over_air": 0.001, "scale_error": 0.1, "noise_low": 0.5}
MIN_FLAT_PIXELS = 200


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
        if np.isfinite(self.noise_ratio) and self.noise_ratio < t["noise_low"]:
            out.append("noise")
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "failures": self.failures()}


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k).astype(bool)


def crop_frame(fti: FTI, placement: Placement, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the inner 2-px band of the FTI's whole crop rectangle as placed in the scan."""
    win = footprint(np.ones(fti.mask.shape, bool), placement).clip(*shape)
    full = np.zeros(shape, bool)
    h, w = win.mask.shape
    full[win.y0:win.y0 + h, win.x0:win.x0 + w] = win.mask
    inner = cv2.erode(full.astype(np.uint8), np.ones((5, 5), np.uint8), borderValue=1).astype(bool)
    return full & ~inner


def noise_ratio(bag: Scan, projected: Scan, region: np.ndarray, gain: float | None = None) -> float:
    """Robust std of the noise the projection added over region (H, W) bool, relative to what a scan
    of the object in the bag needs on top of the bag's own (scaled) noise: g*N*T*(1-T) per pixel.

    The bag's contents cancel: projected = bag * T + added, so projected / bag = T + added / bag, and
    its 5x5 median T_m (which keeps the object's edges) leaves r = projected - bag * T_m = the added
    noise (plus the object's own, for imported FTIs). High channel; pixels the object hardly darkens
    (T_m > 0.95) or that vary by more than FLAT_T within 3x3 (edges, wires, cartridges) are left out."""
    b = bag.channels[0].astype(np.float64)
    p = projected.channels[0].astype(np.float64)
    g = photon_gain(bag)[0] if gain is None else gain
    t = cv2.medianBlur((p / np.maximum(b, 1.0)).astype(np.float32), 5).astype(np.float64)
    k = np.ones((3, 3), np.uint8)
    flat = cv2.dilate(t, k) - cv2.erode(t, k) < FLAT_T * t  # the object's own fine structure is not noise
    use = region & (t > 0.05) & (t < 0.95) & (b > 0) & flat
    if use.sum() < MIN_FLAT_PIXELS:
        return float("nan")
    z = (p - b * t)[use] / np.sqrt(np.maximum(g * b[use] * t[use] * (1.0 - t[use]), 1.0))
    return float(1.4826 * np.median(np.abs(z - np.median(z))))


def realism(bag: Scan, projected: Projected, fti: FTI) -> Realism:
    """The artefact numbers of ``projected`` (made from ``bag``) - see the module docstring."""
    mask = projected.mask
    change = darkness(projected.scan) - darkness(bag)
    ring = _dilate(mask, 7) & ~_dilate(mask, 3)
    halo = float(change[ring].mean()) if ring.any() else 0.0
    frame = crop_frame(fti, projected.placement, mask.shape) & ~_dilate(mask, 3)
    box_edge = float(change[frame].mean()) if frame.any() else 0.0
    over_air = float((darkness(bag)[mask] < AIR_A).mean()) if mask.any() else 0.0
    pitch = bag.pixel_pitch_mm or fti.pitch_mm
    scale_error = float(mask.sum() * pitch ** 2 / (fti.mask.sum() * fti.pitch_mm ** 2) - 1.0)
    interior = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    gain = projected.gain[0] if projected.gain else None
    return Realism(halo, box_edge, over_air, scale_error,
                   noise_ratio(bag, projected.scan, interior, gain) if bag.kind != "rgb" else float("nan"))
