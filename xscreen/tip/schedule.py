"""The TIP scheduler: where an FTI may go in a bag, and a seeded random placement there.

The occupied area is the bag, not the belt: pixels whose (smoothed) attenuation shows something in
the beam, closed and hole-filled so the air pockets between items inside the bag count (the bag's
fabric is there), while the open belt around the bag never does. A placement is accepted only if
the FTI's whole footprint, at the scan's pitch, lies inside that area: it never floats over air and
never leaves the scan.
"""
from __future__ import annotations

import cv2
import numpy as np

from xscreen.scan import Scan
from xscreen.tip.fti import FTI, TipError
from xscreen.tip.warp import Placement, footprint

OCCUPIED_A = 0.04  # attenuation (-ln T) above which a pixel holds something: ~10x the noise at i0 ~ 6e4
CLOSE_PX = 9
REJECTIONS = 200


def darkness(scan: Scan) -> np.ndarray:
    """(H, W) float32 'how much is in the beam': -ln T of the high (or grey) channel; for RGB exports
    -ln of the mean display value over its brightest level (the background)."""
    if scan.kind == "rgb":
        v = scan.channels.astype(np.float32).mean(0)
        bg = max(float(np.percentile(v, 99.5)), 1.0)
        return -np.log(np.clip(v / bg, 1e-4, 1.0))
    return -np.log(np.clip(scan.channels[0].astype(np.float32) / np.float32(scan.i0), 1e-6, 1.0))


def occupied_area(scan: Scan) -> np.ndarray:
    """(H, W) bool: inside the bag (see module docstring)."""
    a = cv2.GaussianBlur(darkness(scan), (0, 0), 1.5)
    occ = (a > OCCUPIED_A).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (CLOSE_PX, CLOSE_PX))
    occ = cv2.morphologyEx(occ, cv2.MORPH_CLOSE, kernel)
    # fill holes: whatever air the border cannot reach is inside the bag
    pad = np.pad(occ, 1)
    flood = pad.copy()
    cv2.floodFill(flood, None, (0, 0), 2)
    inside = flood[1:-1, 1:-1] != 2
    return inside


def scale_for(scan: Scan, fti: FTI, pitch_mm: float | None = None) -> float:
    """FTI px -> scan px so the object keeps its size: FTI pitch / scan pitch (``pitch_mm`` overrides
    a scan that records none)."""
    pitch = scan.pixel_pitch_mm if pitch_mm is None else pitch_mm
    if pitch is None or not pitch > 0:
        raise TipError(scan.scan_id, "the scan records no pixel pitch: give one (--pitch-mm) so the FTI "
                                     "keeps its real size")
    return float(fti.pitch_mm) / float(pitch)


def allowed_centres(occupied: np.ndarray, fp_mask: np.ndarray, off_x: int, off_y: int) -> np.ndarray:
    """(H, W) bool: centres where the footprint (h, w) bool, whose top-left sits at (off_x, off_y) from
    its centre, covers only occupied pixels. One correlation (DFT for large footprints) of the
    not-occupied map, padded with 'not occupied' so the footprint never leaves the scan."""
    h, w = fp_mask.shape
    outside = (~occupied).astype(np.float32)
    pad = cv2.copyMakeBorder(outside, h, h, w, w, cv2.BORDER_CONSTANT, value=1.0)
    hits = cv2.filter2D(pad, cv2.CV_32F, fp_mask.astype(np.float32), anchor=(-off_x, -off_y),
                        borderType=cv2.BORDER_CONSTANT)
    return hits[h:-h, w:-w] < 0.5


def schedule(scan: Scan, fti: FTI, rng: np.random.Generator, *, occupied: np.ndarray | None = None,
             pitch_mm: float | None = None, tries: int = 12) -> Placement:
    """A random placement of ``fti`` inside the bag of ``scan``: uniform angle, mirror with p = 1/2,
    scale from the pitches, centre uniform over the centres where the whole footprint is inside.
    Same rng state, same placement.
    ``occupied`` (H, W) bool may be passed when placing several FTIs in one bag. Raises TipError when
    the FTI fits nowhere (a bag smaller than the threat), or the input kinds differ."""
    if fti.kind != scan.kind:
        raise TipError(fti.name, f"FTI input kind {fti.kind} does not match the scan's ({scan.kind})")
    scale = scale_for(scan, fti, pitch_mm)
    occ = occupied_area(scan) if occupied is None else occupied
    ys, xs = np.nonzero(occ)
    for _ in range(tries):
        angle, flip = float(rng.uniform(0.0, 360.0)), bool(rng.random() < 0.5)
        fp = footprint(fti.mask, Placement(0.0, 0.0, angle, flip, scale))
        centre = _sample_centre(occ, fp.mask, fp.x0, fp.y0, ys, xs, rng)
        if centre is not None:
            return Placement(float(centre[0]), float(centre[1]), angle, flip, scale)
    raise TipError(scan.scan_id, f"no room for FTI {fti.fti_id} ({fti.category}) inside the bag "
                                 f"after {tries} poses")


def _fits(occ: np.ndarray, fp: np.ndarray, x0: int, y0: int) -> bool:
    h, w = fp.shape
    if x0 < 0 or y0 < 0 or x0 + w > occ.shape[1] or y0 + h > occ.shape[0]:
        return False
    return bool(occ[y0:y0 + h, x0:x0 + w][fp].all())


def _sample_centre(occ: np.ndarray, fp: np.ndarray, off_x: int, off_y: int, ys: np.ndarray, xs: np.ndarray,
                   rng: np.random.Generator) -> tuple[int, int] | None:
    """A centre uniform over the allowed ones: occupied pixels drawn at random and kept when the
    footprint fits there (rejection sampling: ~1 ms when the bag has room); after REJECTIONS misses,
    the exact map of allowed centres (one correlation, ~0.2 s) decides."""
    if len(xs) == 0:
        return None
    for k in rng.integers(len(xs), size=REJECTIONS):
        if _fits(occ, fp, int(xs[k]) + off_x, int(ys[k]) + off_y):
            return int(xs[k]), int(ys[k])
    ay, ax = np.nonzero(allowed_centres(occ, fp, off_x, off_y))
    if len(ax) == 0:
        return None
    k = int(rng.integers(len(ax)))
    return int(ax[k]), int(ay[k])
