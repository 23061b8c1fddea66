"""Patch scores -> regions, scan score, colour and contour overlays. Pure numpy/OpenCV functions.

Scores are shown relative to the model's calibrated threshold (rel = score / threshold, flagged at
rel >= 1); a min-max normalisation over a test set is a paper-evaluation device, never used here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

# Alpha ramp: fully transparent below RAMP_LO (well inside the benign range), full opacity from 1
# (the threshold), so the operator's eye goes to flagged areas and benign texture stays visible.
RAMP_LO = 0.5
HEAT_MAX = 2.0  # rel score at the top of the colour map
# overlay() blends this many rows at a time: an 8000 x 3000 scan blended whole took ~1 GB of floats
BAND_ROWS = 256
# alarm boxes thick yellow (as in the GUI), attention boxes thin pale blue: never read as a threat
BOX_COLOURS = {"alarm": (255, 230, 0), "attention": (120, 200, 255)}


@dataclass
class Region:
    """A connected group of flagged patches; box (x, y, w, h) in scan pixels."""

    rank: int
    region_id: int
    x: int
    y: int
    w: int
    h: int
    max_score: float
    mean_score: float
    max_rel: float
    mean_rel: float
    patches: list[tuple[int, int]] = field(default_factory=list)  # (row, col) grid cells
    # "alarm": max_score reaches the bag's alarm threshold (the bag alarms); "attention": found at the
    # review level only - shown in its own style, never reported as a threat
    level: str = "alarm"


@dataclass(frozen=True)
class GridGeometry:
    """Where grid cell (row, col) lies in the scan: pixels [row*stride, row*stride + size)."""

    size: int
    stride: int
    height: int
    width: int


def find_regions(score_grid: np.ndarray, threshold: float, geom: GridGeometry,
                 min_patches: int = 1, alarm_threshold: float | None = None) -> list[Region]:
    """score_grid (rows, cols) raw scores -> regions (8-connected cells >= threshold), ranked by
    max score (rank 1 = highest). Boxes are the union of the member patches, clipped to the scan.
    With ``alarm_threshold``, a region whose max score is below it has level "attention"."""
    grid = np.asarray(score_grid, dtype=np.float32)
    flagged = (grid >= threshold).astype(np.uint8)
    n, labels = cv2.connectedComponents(flagged, connectivity=8)
    regions = []
    for label in range(1, n):
        rows, cols = np.nonzero(labels == label)
        if rows.size < min_patches:
            continue
        vals = grid[rows, cols]
        x0, y0 = int(cols.min()) * geom.stride, int(rows.min()) * geom.stride
        x1 = min(int(cols.max()) * geom.stride + geom.size, geom.width)
        y1 = min(int(rows.max()) * geom.stride + geom.size, geom.height)
        regions.append(Region(
            rank=0, region_id=label, x=x0, y=y0, w=x1 - x0, h=y1 - y0,
            max_score=float(vals.max()), mean_score=float(vals.mean()),
            max_rel=float(vals.max() / threshold), mean_rel=float(vals.mean() / threshold),
            patches=[(int(r), int(c)) for r, c in zip(rows, cols)],
            level="attention" if alarm_threshold is not None and vals.max() < alarm_threshold else "alarm",
        ))
    regions.sort(key=lambda r: -r.max_score)
    for i, region in enumerate(regions, start=1):
        region.rank = i
    return regions


def bag_alarm(regions: list[Region]) -> bool:
    """The one rule (alarm.py): a bag alarms iff one of its regions reaches its alarm threshold."""
    return any(r.level == "alarm" for r in regions)


def colormap(rel: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """rel (H, W) relative scores -> (H, W, 4) uint8 RGBA; alpha ramps from 0 at RAMP_LO to
    ``opacity`` at 1 (the threshold) and above."""
    rel = np.nan_to_num(np.asarray(rel, dtype=np.float32))
    level = np.clip(rel / HEAT_MAX * 255.0, 0, 255).astype(np.uint8)
    rgb = cv2.applyColorMap(level, cv2.COLORMAP_JET)[..., ::-1]  # OpenCV gives BGR
    alpha = np.clip((rel - RAMP_LO) / (1.0 - RAMP_LO), 0.0, 1.0) * opacity
    return np.dstack([rgb, (alpha * 255.0 + 0.5).astype(np.uint8)])


def overlay(rgb: np.ndarray, heat: np.ndarray, mode: str = "fill", opacity: float = 0.5,
            regions: list[Region] | None = None) -> np.ndarray:
    """rgb (H, W, 3) uint8 + heat (H, W) rel scores -> (H, W, 3) uint8.

    ``fill``: alpha-blended colour map; ``contour``: outlines of rel >= 1. Region boxes (if given)
    are drawn on top with their rank.
    """
    if rgb.shape[:2] != heat.shape:
        raise ValueError(f"image {rgb.shape[:2]} and heat map {heat.shape} differ in size")
    if mode == "fill":
        out = np.empty_like(rgb)
        for y in range(0, rgb.shape[0], BAND_ROWS):  # bands: float temporaries of a band, not the scan
            rgba = colormap(heat[y:y + BAND_ROWS], opacity).astype(np.float32)
            a = rgba[..., 3:4] / 255.0
            out[y:y + BAND_ROWS] = (rgb[y:y + BAND_ROWS].astype(np.float32) * (1.0 - a)
                                    + rgba[..., :3] * a + 0.5).astype(np.uint8)
    elif mode == "contour":
        out = np.ascontiguousarray(rgb.copy())
        mask = (np.nan_to_num(heat) >= 1.0).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 40, 40), _line(rgb))
    else:
        raise ValueError(f"unknown overlay mode {mode!r} (expected 'fill' or 'contour')")
    return _draw_boxes_into(out, regions or [])  # out is this call's own array: no second copy


def draw_boxes(rgb: np.ndarray, regions: list[Region]) -> np.ndarray:
    """Region boxes with their rank, on a copy of rgb (H, W, 3) uint8; style by region level."""
    return _draw_boxes_into(np.ascontiguousarray(rgb.copy()), regions)


def _draw_boxes_into(out: np.ndarray, regions: list[Region]) -> np.ndarray:
    lw = _line(out)
    for r in regions:
        colour = BOX_COLOURS.get(r.level, BOX_COLOURS["alarm"])
        width = lw if r.level == "attention" else 2 * lw
        cv2.rectangle(out, (r.x, r.y), (r.x + r.w - 1, r.y + r.h - 1), colour, width)
        cv2.putText(out, str(r.rank), (r.x + 2, r.y + 14 * lw), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * lw, colour, lw)
    return out


def _line(rgb: np.ndarray) -> int:
    return max(1, int(round(max(rgb.shape[:2]) / 800)))
