"""Drawing primitives for synthetic bags: shapes rasterised into per-material areal-density maps.

A shape is drawn as an anti-aliased (h, w) weight crop at its bounding box, optionally shaped across
its width by a thickness profile (a cylinder is thicker in the middle, a tube at its walls), and the
crop times an areal density (g/cm^2) is added into one material's map. Overlaps add up, as
attenuation along a ray does. Coordinates are pixels; object builders work in cm through ``Pose``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from xscreen.physics import MAT_INDEX, MATERIALS

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_SCALE = 1 << _SHIFT


@dataclass
class Canvas:
    """Areal-density stack (M, H, W) float32 g/cm^2 and the threat mask (H, W) uint8 being drawn.

    ``tag``: while > 0, every drawn shape also marks its pixels with that threat number in ``mask``.
    """

    height: int
    width: int
    pitch_cm: float  # cm per pixel
    areal: np.ndarray = field(init=False)
    mask: np.ndarray = field(init=False)
    tag: int = 0

    def __post_init__(self) -> None:
        self.areal = np.zeros((len(MATERIALS), self.height, self.width), np.float32)
        self.mask = np.zeros((self.height, self.width), np.uint8)

    def add(self, material: str, crop: np.ndarray, x0: int, y0: int, g_cm2: float) -> None:
        """Add ``g_cm2 * crop`` (h, w) into ``material``'s map with its top-left at (x0, y0), clipped."""
        h, w = crop.shape
        xa, ya = max(x0, 0), max(y0, 0)
        xb, yb = min(x0 + w, self.width), min(y0 + h, self.height)
        if xb <= xa or yb <= ya:
            return
        sub = crop[ya - y0:yb - y0, xa - x0:xb - x0]
        dst = self.areal[MAT_INDEX[material], ya:yb, xa:xb]
        dst += np.float32(g_cm2) * sub
        if self.tag:
            self.mask[ya:yb, xa:xb][sub > 0.25] = self.tag


@dataclass(frozen=True)
class Pose:
    """Object frame -> pixels: rotate by ``angle`` (rad), scale, mirror, then translate to (cx, cy) px."""

    cx: float
    cy: float
    angle: float
    pitch_cm: float
    scale: float = 1.0
    mirror: bool = False

    def px(self, pts_cm) -> np.ndarray:
        """(N, 2) cm in the object frame -> (N, 2) float pixel coordinates."""
        p = np.asarray(pts_cm, np.float64).reshape(-1, 2) * (self.scale / self.pitch_cm)
        if self.mirror:
            p = p * np.array([1.0, -1.0])
        c, s = np.cos(self.angle), np.sin(self.angle)
        return p @ np.array([[c, s], [-s, c]]) + np.array([self.cx, self.cy])

    def len_px(self, cm: float) -> float:
        return cm * self.scale / self.pitch_cm


def _frame(pts: np.ndarray, pad: float) -> tuple[np.ndarray, int, int, int, int]:
    """Integer bounding box (x0, y0, w, h) around points with padding, and the points shifted into it."""
    x0 = int(np.floor(pts[:, 0].min() - pad))
    y0 = int(np.floor(pts[:, 1].min() - pad))
    w = int(np.ceil(pts[:, 0].max() + pad)) - x0 + 1
    h = int(np.ceil(pts[:, 1].max() + pad)) - y0 + 1
    return pts - np.array([x0, y0]), x0, y0, max(w, 1), max(h, 1)


def _profile(mask: np.ndarray, kind: str, wall: float = 0.15) -> np.ndarray:
    """(h, w) float32 thickness weight in [0, 1] from an anti-aliased uint8 mask.

    flat: the mask; round: chord of a cylinder, sqrt(1 - (1 - d)^2) with d the distance to the edge
    relative to the half-width; tube: chord through a hollow cylinder of relative wall thickness ``wall``.
    """
    m = mask.astype(np.float32) * (1.0 / 255.0)
    if kind == "flat":
        return m
    dist = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    r = max(float(dist.max()), 1.0)
    x = 1.0 - np.clip(dist / r, 0.0, 1.0)  # 0 on the axis, 1 at the edge
    chord = np.sqrt(np.clip(1.0 - x * x, 0.0, 1.0))
    if kind == "tube":
        inner = 1.0 - wall
        chord = chord - np.sqrt(np.clip(inner * inner - x * x, 0.0, 1.0))
        chord /= max(float(chord.max()), 1e-6)
    return (chord * np.minimum(m * 2.0, 1.0)).astype(np.float32)


def polygon(canvas: Canvas, pts_px, material: str, g_cm2: float, profile: str = "flat",
            texture: np.ndarray | None = None) -> None:
    """Filled polygon (N, 2) px; ``texture`` (h, w) multiplies the weight (cloth folds, grain)."""
    pts, x0, y0, w, h = _frame(np.asarray(pts_px, np.float64), 2)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(pts * _SCALE).astype(np.int32)], 255, cv2.LINE_AA, _SHIFT)
    crop = _profile(mask, profile)
    if texture is not None:
        crop *= cv2.resize(texture, (w, h), interpolation=cv2.INTER_CUBIC)
    canvas.add(material, crop, x0, y0, g_cm2)


def polyline(canvas: Canvas, pts_px, width_px: float, material: str, g_cm2: float,
             profile: str = "round", closed: bool = False) -> None:
    """Thick open or closed polyline (N, 2) px of width ``width_px``: cables, rods, wires, straps."""
    pts, x0, y0, w, h = _frame(np.asarray(pts_px, np.float64), width_px + 2)
    mask = np.zeros((h, w), np.uint8)
    thick = max(int(round(width_px)), 1)
    cv2.polylines(mask, [np.round(pts * _SCALE).astype(np.int32)], closed, 255, thick, cv2.LINE_AA, _SHIFT)
    canvas.add(material, _profile(mask, profile), x0, y0, g_cm2)


def ellipse(canvas: Canvas, pose: Pose, cx_cm: float, cy_cm: float, rx_cm: float, ry_cm: float,
            material: str, g_cm2: float, profile: str = "round") -> None:
    """Filled ellipse in the object frame (cm): coins, wheels, apples, bottle caps."""
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    pts = np.stack([cx_cm + rx_cm * np.cos(t), cy_cm + ry_cm * np.sin(t)], axis=1)
    polygon(canvas, pose.px(pts), material, g_cm2, profile)


def rect(canvas: Canvas, pose: Pose, x_cm: float, y_cm: float, w_cm: float, h_cm: float,
         material: str, g_cm2: float, profile: str = "flat", texture: np.ndarray | None = None) -> None:
    """Rectangle centred at (x_cm, y_cm) in the object frame."""
    hw, hh = w_cm / 2, h_cm / 2
    pts = [(x_cm - hw, y_cm - hh), (x_cm + hw, y_cm - hh), (x_cm + hw, y_cm + hh), (x_cm - hw, y_cm + hh)]
    polygon(canvas, pose.px(pts), material, g_cm2, profile, texture)


def line(canvas: Canvas, pose: Pose, pts_cm, width_cm: float, material: str, g_cm2: float,
         profile: str = "round", closed: bool = False) -> None:
    """Polyline in the object frame (cm)."""
    polyline(canvas, pose.px(pts_cm), max(pose.len_px(width_cm), 1.0), material, g_cm2, profile, closed)


def blob(rng: np.random.Generator, radius: float, n: int = 14, rough: float = 0.35) -> np.ndarray:
    """(4n, 2) random smooth star-shaped polygon (cm) of mean radius ``radius``: clothes, food, fabric."""
    t = np.linspace(0, 2 * np.pi, 4 * n, endpoint=False)
    knots = radius * (1 + rough * rng.uniform(-1, 1, n))
    # Periodic interpolation of n random radii: a rounded outline, not a jagged star.
    r = np.interp(t, np.linspace(0, 2 * np.pi, n + 1), np.append(knots, knots[0]))
    r = (np.roll(r, 1) + 2 * r + np.roll(r, -1)) / 4
    return np.stack([r * np.cos(t), r * np.sin(t) * rng.uniform(0.6, 1.0)], axis=1)


def noise(rng: np.random.Generator, lo: float, hi: float, cells: int = 6) -> np.ndarray:
    """(cells, cells) float32 texture in [lo, hi]; resized to the shape it multiplies (smooth folds)."""
    return rng.uniform(lo, hi, (cells, cells)).astype(np.float32)


def curve(rng: np.random.Generator, start, length_cm: float, n: int = 12, wiggle: float = 0.6) -> np.ndarray:
    """(n, 2) cm random smooth path (cables, wires, belts) of roughly ``length_cm``."""
    step = length_cm / max(n - 1, 1)
    heading = np.cumsum(rng.normal(0, wiggle, n))
    d = np.stack([np.cos(heading), np.sin(heading)], axis=1) * step
    return np.asarray(start, np.float64) + np.cumsum(d, axis=0) - d[0]
