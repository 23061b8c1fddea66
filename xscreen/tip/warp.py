"""Placement of an FTI in scan coordinates: scale to the scan's pitch, mirror, rotate, translate.

``warp_layers`` maps FTI-pixel layers (K, h, w) onto a window of the scan grid; the projection, the
scheduler (which needs the footprint for a trial pose) and the direct simulation used to check the
projection all go through it, so "the same object in the same place" means the same pixels.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from xscreen.tip.fti import TipError


@dataclass(frozen=True)
class Placement:
    """Where an FTI goes: centre (cx, cy) in scan px, ``angle_deg`` counter-clockwise, ``flip``
    (mirror along the FTI's x axis, applied before rotating), ``scale`` = FTI px -> scan px
    (FTI pitch / scan pitch: the object keeps its physical size)."""

    cx: float
    cy: float
    angle_deg: float = 0.0
    flip: bool = False
    scale: float = 1.0

    def to_dict(self) -> dict:
        return {k: (bool(v) if k == "flip" else float(v)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "Placement":
        try:
            p = cls(float(d["cx"]), float(d["cy"]), float(d.get("angle_deg", 0.0)), bool(d.get("flip", False)),
                    float(d.get("scale", 1.0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise TipError("placement", f"invalid placement ({exc})") from exc
        if not all(math.isfinite(v) for v in (p.cx, p.cy, p.angle_deg, p.scale)) or not 0.05 <= p.scale <= 20:
            raise TipError("placement", "placement values must be finite, scale within 0.05..20")
        return p


@dataclass(frozen=True)
class Window:
    """Warped layers on the scan grid: ``layers`` (K, h, w) float32 with top-left (x0, y0) in scan px
    (may lie partly outside the scan: ``clip`` cuts it), ``mask`` (h, w) bool footprint."""

    x0: int
    y0: int
    layers: np.ndarray
    mask: np.ndarray

    def clip(self, height: int, width: int) -> "Window":
        xa, ya = max(self.x0, 0), max(self.y0, 0)
        xb, yb = min(self.x0 + self.mask.shape[1], width), min(self.y0 + self.mask.shape[0], height)
        if xb <= xa or yb <= ya:
            return Window(xa, ya, self.layers[:, :0, :0], self.mask[:0, :0])
        sy, sx = slice(ya - self.y0, yb - self.y0), slice(xa - self.x0, xb - self.x0)
        return Window(xa, ya, self.layers[:, sy, sx], self.mask[sy, sx])


def _resize(layers: np.ndarray, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Rescale first with area averaging when shrinking (a rotation alone would alias fine parts)."""
    if abs(scale - 1.0) < 1e-6:
        return layers, mask.astype(np.float32)
    h, w = mask.shape
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = (np.stack([cv2.resize(l, size, interpolation=interp) for l in layers]) if len(layers)
           else np.zeros((0, size[1], size[0]), np.float32))
    return out, cv2.resize(mask.astype(np.float32), size, interpolation=interp)


def warp_layers(layers: np.ndarray, mask: np.ndarray, p: Placement) -> Window:
    """FTI layers (K, h, w) float32 (attenuation or areal densities: 0 = nothing) and mask (h, w) bool
    -> Window on the scan grid. Layers are interpolated linearly; the mask is the warped mask > 0.5."""
    layers, m = _resize(np.ascontiguousarray(layers, np.float32), mask, p.scale)
    if p.flip:
        layers, m = layers[:, ::-1, :], m[::-1, :]
    h, w = m.shape
    centre = ((w - 1) / 2.0, (h - 1) / 2.0)
    rot = cv2.getRotationMatrix2D(centre, p.angle_deg, 1.0)
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], np.float64) @ rot.T
    corners += np.array([p.cx, p.cy]) - np.array(centre)
    x0, y0 = int(math.floor(corners[:, 0].min())) - 1, int(math.floor(corners[:, 1].min())) - 1
    x1, y1 = int(math.ceil(corners[:, 0].max())) + 2, int(math.ceil(corners[:, 1].max())) + 2
    rot[:, 2] += np.array([p.cx - centre[0] - x0, p.cy - centre[1] - y0])
    size = (x1 - x0, y1 - y0)
    warp = [cv2.warpAffine(np.ascontiguousarray(l), rot, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0) for l in layers]
    wm = cv2.warpAffine(np.ascontiguousarray(m), rot, size, flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    out = np.stack(warp) if warp else np.zeros((0, size[1], size[0]), np.float32)
    np.maximum(out, 0.0, out=out)  # linear interpolation of non-negative layers stays >= 0, up to rounding
    return Window(x0, y0, out, wm > 0.5)


def footprint(mask: np.ndarray, p: Placement) -> Window:
    """The warped mask alone (for the scheduler), with no layers."""
    return warp_layers(np.zeros((0,) + mask.shape, np.float32), mask, p)
