"""ROC curves and the benign-vs-threat score histogram as PNG, drawn with OpenCV (no plotting
library needed in the product)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from xscreen.atomic import atomic_path
from xscreen.metrics import RocCurve

W, H, M = 640, 520, 60  # canvas and margin (pixels)
COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]  # RGB
BENIGN, THREAT = (31, 119, 180), (214, 39, 40)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _canvas() -> np.ndarray:
    return np.full((H, W, 3), 255, np.uint8)


def _to_px(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Unit square (0..1, 0..1) -> plot pixels, y up. Returns (K, 1, 2) int32 for polylines."""
    px = M + x * (W - 2 * M)
    py = H - M - y * (H - 2 * M)
    return np.stack([px, py], axis=1).round().astype(np.int32).reshape(-1, 1, 2)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5, colour=(0, 0, 0)) -> None:
    cv2.putText(img, text, org, _FONT, scale, colour, 1, cv2.LINE_AA)


def _axes(img: np.ndarray, title: str, xlabel: str, ylabel: str, xticks: list[tuple[float, str]]) -> None:
    for v in np.linspace(0, 1, 6):
        p = _to_px(np.array([v, v, 0.0, 1.0]), np.array([0.0, 1.0, v, v]))
        cv2.line(img, tuple(p[0, 0]), tuple(p[1, 0]), (225, 225, 225), 1)
        cv2.line(img, tuple(p[2, 0]), tuple(p[3, 0]), (225, 225, 225), 1)
    cv2.rectangle(img, (M, M), (W - M, H - M), (0, 0, 0), 1)
    for v, label in xticks:
        x = int(_to_px(np.array([v]), np.array([0.0]))[0, 0, 0])
        _text(img, label, (x - 14, H - M + 18), 0.4)
    _text(img, title, (M, M - 20), 0.6)
    _text(img, xlabel, (W // 2 - 60, H - 15))
    _text(img, ylabel, (5, M - 5))


def _save(img: np.ndarray, path: Path) -> Path:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(img, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: cannot write PNG")
    return path


def plot_roc(curves: dict[str, RocCurve], aucs: dict[str, float | None], path: Path) -> Path:
    """One ROC curve per level, the chance diagonal, AUCs in the legend."""
    img = _canvas()
    _axes(img, "ROC", "false-positive rate", "true-positive rate",
          [(v, f"{v:.1f}") for v in np.linspace(0, 1, 6)])
    for v in np.linspace(0, 1, 6):
        y = int(_to_px(np.array([0.0]), np.array([v]))[0, 0, 1])
        _text(img, f"{v:.1f}", (M - 32, y + 4), 0.4)
    cv2.polylines(img, [_to_px(np.array([0.0, 1.0]), np.array([0.0, 1.0]))], False, (160, 160, 160), 1)
    for i, (name, c) in enumerate(curves.items()):
        colour = COLOURS[i % len(COLOURS)]
        cv2.polylines(img, [_to_px(c.fpr, c.tpr)], False, colour, 2, cv2.LINE_AA)
        auc = aucs.get(name)
        y = H - M - 20 - 20 * (len(curves) - 1 - i)
        cv2.line(img, (W - M - 190, y - 4), (W - M - 165, y - 4), colour, 2)
        _text(img, f"{name}  AUC {auc:.3f}" if auc is not None else name, (W - M - 158, y), 0.45)
    return _save(img, path)


def plot_histogram(benign: np.ndarray, threat: np.ndarray, threshold: float | None, path: Path,
                   bins: int = 50) -> Path:
    """Densities of benign and threat patch scores (each normalised to its own count), with the
    threshold as a vertical line. The x range stops at the 99.9th percentile so one outlier cannot
    squash the plot."""
    img = _canvas()
    both = np.r_[benign, threat]
    lo, hi = (float(np.quantile(both, 0.001)), float(np.quantile(both, 0.999))) if both.size else (0.0, 1.0)
    if threshold:
        lo, hi = min(lo, threshold * 0.9), max(hi, threshold * 1.1)
    hi = max(hi, lo + 1e-12)
    span = hi - lo
    edges = np.linspace(lo, hi, bins + 1)
    ticks = [(v, f"{lo + v * span:.3g}") for v in np.linspace(0, 1, 5)]
    _axes(img, "patch scores: benign vs threat", "anomaly score", "density", ticks)
    dens = [np.histogram(np.clip(s, lo, hi), edges)[0] / max(s.size, 1) for s in (benign, threat)]
    top = max(float(d.max()) for d in dens) or 1.0
    for d, colour in zip(dens, (BENIGN, THREAT)):
        x = np.r_[0.0, np.repeat((edges - lo) / span, 2)[1:-1], 1.0]
        y = np.r_[0.0, np.repeat(d / top, 2), 0.0]
        layer = img.copy()
        cv2.fillPoly(layer, [_to_px(x, y)], colour)
        img[:] = cv2.addWeighted(layer, 0.3, img, 0.7, 0)  # translucent fill: overlaps stay visible
        cv2.polylines(img, [_to_px(x, y)], False, colour, 2, cv2.LINE_AA)
    for i, (colour, name, s) in enumerate(((BENIGN, "benign", benign), (THREAT, "threat", threat))):
        cv2.line(img, (W - M - 170, M + 20 + 20 * i - 4), (W - M - 145, M + 20 + 20 * i - 4), colour, 2)
        _text(img, f"{name} (n={s.size})", (W - M - 138, M + 20 + 20 * i), 0.45)
    if threshold:
        p = _to_px(np.array([(threshold - lo) / span] * 2), np.array([0.0, 1.0]))
        cv2.line(img, tuple(p[0, 0]), tuple(p[1, 0]), (0, 0, 0), 1, cv2.LINE_AA)
        _text(img, "threshold", (int(p[0, 0, 0]) + 4, M + 70), 0.4)
    return _save(img, path)
