"""FTIs from images: a scan of a threat in an empty tray (source ``import``) or an annotated
pseudo-colour export (source ``rgb-crop``).

Tray scans (dual or grey raw counts): transmission = counts / the tray level, so the tray's own
attenuation divides out: per pixel when a scan of the empty tray is given, else a plane fitted per
channel through the background (pixels the object does not darken), so an evenly sloping tray
divides out too. The footprint is where the high channel is darkened by more than ``threshold``
(smoothed, holes filled, specks dropped) or an annotation mask; transmission outside the footprint
(plus 2 px for the blurred edge) is set to exactly 1, so no tray, background or noise is pasted with
the object (no halo, no crop rectangle). The FTI keeps the scan's noise and blur; it records the
photon count at the tray level (``photons``) so projection adds only the noise still missing (see
``project``). The tray hardens the beam a little: the object's attenuation reads a few per cent low.

RGB exports (e.g. SIXray JPEGs): per-channel display value / background value is an *approximate*
transmission - a vendor colour map is not Beer-Lambert, JPEG adds its own artefacts, and there are no
raw counts, so no noise model; such FTIs can only go into RGB scans of the same look.
"""
from __future__ import annotations

import cv2
import numpy as np

from xscreen.scan import Scan
from xscreen.tip.fti import FTI, TipError
from xscreen.tip.project import photon_gain

MARGIN_PX = 4
EDGE_PX = 2
MIN_PART = 0.02  # a part of the object smaller than 2 % of the largest is noise or dirt


def _crop(a: np.ndarray, box: tuple[int, int, int, int] | None, where: str) -> np.ndarray:
    if box is None:
        return a
    x, y, w, h = box
    if w < 4 or h < 4 or x < 0 or y < 0 or x + w > a.shape[-1] or y + h > a.shape[-2]:
        raise TipError(where, f"box {box} is not inside the {a.shape[-1]}x{a.shape[-2]} image (or under 4 px)")
    return a[..., y:y + h, x:x + w]


def _plane(values: np.ndarray, use: np.ndarray) -> np.ndarray:
    """(h, w) least-squares plane through ``values`` (h, w) at the pixels ``use`` (h, w) bool."""
    ys, xs = np.nonzero(use)
    step = max(1, len(xs) // 20000)  # a plane needs few points: subsample big crops
    ys, xs = ys[::step], xs[::step]
    basis = np.stack([np.ones(len(xs)), xs, ys], 1).astype(np.float64)
    coef = np.linalg.lstsq(basis, values[ys, xs].astype(np.float64), rcond=None)[0]
    yy, xx = np.mgrid[:values.shape[0], :values.shape[1]]
    return (coef[0] + coef[1] * xx + coef[2] * yy).astype(np.float32)


def _levels(ch: np.ndarray, threshold: float) -> np.ndarray:
    """(C, h, w) tray level per channel without an empty-tray scan: a plane through the log counts of
    the pixels the object leaves alone (a tray thicker to one side is a slope, not an object),
    refined once with the pixels that plane calls background."""
    logs = np.log(np.maximum(ch, 1.0))
    smooth = cv2.GaussianBlur(logs[0], (0, 0), 1.0)
    bg = smooth > np.log(max(float(np.percentile(ch[0], 90)), 1.0)) - threshold
    for _ in range(2):
        if bg.sum() < 100:
            raise TipError("import", "too little tray or background around the object to read its level: "
                                     "give a larger box or a scan of the empty tray")
        bg = smooth > _plane(logs[0], bg) - threshold
    return np.exp(np.stack([_plane(c, bg) for c in logs]))


def object_mask(dark: np.ndarray, threshold: float) -> np.ndarray:
    """(h, w) bool footprint from a darkness map (-ln T, high channel): smoothed threshold, holes
    filled, parts under MIN_PART of the largest dropped."""
    m = (cv2.GaussianBlur(dark, (0, 0), 1.0) > threshold).astype(np.uint8)
    n, labels, st, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return m.astype(bool)
    areas = st[1:, cv2.CC_STAT_AREA]
    keep = np.isin(labels, 1 + np.nonzero(areas >= MIN_PART * areas.max())[0])
    flood = np.pad(keep.astype(np.uint8), 1)
    cv2.floodFill(flood, None, (0, 0), 2)
    return flood[1:-1, 1:-1] != 2


def _finish(t: np.ndarray, mask: np.ndarray, *, name: str, category: str, kind: str, pitch_mm: float,
            source: str, photons: float) -> FTI:
    if not mask.any():
        raise TipError(name, "no object found (nothing darker than the threshold): check the box or threshold")
    edge = cv2.dilate(mask.astype(np.uint8), np.ones((2 * EDGE_PX + 1,) * 2, np.uint8)).astype(bool)
    t = np.clip(t, 1e-6, 1.0).astype(np.float32)
    t[:, ~edge] = 1.0
    ys, xs = np.nonzero(edge)
    y0, x0 = max(ys.min() - MARGIN_PX, 0), max(xs.min() - MARGIN_PX, 0)
    y1, x1 = ys.max() + MARGIN_PX + 1, xs.max() + MARGIN_PX + 1
    return FTI(name=name, category=category, kind=kind, transmission=np.ascontiguousarray(t[:, y0:y1, x0:x1]),
               mask=np.ascontiguousarray(mask[y0:y1, x0:x1]), pitch_mm=float(pitch_mm), source=source,
               photons=float(photons))


def import_tray_scan(scan: Scan, *, category: str, name: str, box: tuple[int, int, int, int] | None = None,
                     tray: Scan | None = None, mask: np.ndarray | None = None, pitch_mm: float | None = None,
                     threshold: float = 0.03) -> FTI:
    """A threat scanned alone in an empty tray (dual or grey) -> FTI (source 'import'); or an RGB
    export -> FTI (source 'rgb-crop', approximate). ``box`` (x, y, w, h) px crops first; ``mask``
    (H, W) bool of the whole image is an annotation that replaces the threshold."""
    where = scan.scan_id
    pitch = pitch_mm if pitch_mm is not None else scan.pixel_pitch_mm
    if pitch is None:
        raise TipError(where, "the scan records no pixel pitch: give one (--pitch-mm)")
    if mask is not None and np.shape(mask) != scan.channels.shape[1:]:
        raise TipError(where, f"the annotation mask is {np.shape(mask)[::-1]} px, the scan "
                              f"{scan.channels.shape[:0:-1]}: they must be the same size")
    ch = _crop(scan.channels.astype(np.float32), box, where)
    if tray is not None:
        if tray.kind != scan.kind or tray.channels.shape != scan.channels.shape:
            raise TipError(tray.scan_id, "the empty-tray scan must have the threat scan's kind and size")
        tr = _crop(tray.channels.astype(np.float32), box, tray.scan_id)
        level = np.stack([cv2.GaussianBlur(c, (0, 0), 2.0) for c in tr])
    else:
        level = _levels(ch, threshold)
    t = ch / np.maximum(level, 1e-3)
    dark = -np.log(np.clip(t.mean(0) if scan.kind == "rgb" else t[0], 1e-6, 1.0))
    m = object_mask(dark, threshold) if mask is None else _crop(np.asarray(mask, bool), box, where)
    if scan.kind == "rgb":
        return _finish(t, m, name=name, category=category, kind="rgb", pitch_mm=pitch, source="rgb-crop", photons=0.0)
    gain = photon_gain(tray)[0] if tray is not None else _bg_gain(ch[0], dark, threshold)
    photons = float(np.median(level[0])) / gain
    return _finish(t, m, name=name, category=category, kind=scan.kind, pitch_mm=pitch, source="import",
                   photons=photons)


def _bg_gain(ch: np.ndarray, dark: np.ndarray, threshold: float) -> float:
    """Counts per photon from the background's neighbour differences (the tray is noisy like air)."""
    bg = (dark[:, 1:] < threshold / 2) & (dark[:, :-1] < threshold / 2)
    if bg.sum() < 200:
        return 1.0
    d = (ch[:, 1:] - ch[:, :-1])[bg]
    return float(np.clip(np.var(d) / 2.0 / np.mean(ch[:, 1:][bg]), 1e-3, 1e3))
