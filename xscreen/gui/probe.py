"""What the screening tab computes, as plain functions over core results (no Qt).

Each function here is one GUI action's core: re-thresholding (via ``heatmap.find_regions``), the
overlay layer, reconstruction/residual images, the patch inspector's crops, the status-bar probe
and the scoring job the worker thread pulls.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from xscreen import heatmap
from xscreen.scan import Scan
from xscreen.gui.model_card import describe_model, list_models  # noqa: F401  (the model selector's)


@dataclass(frozen=True)
class JobStep:
    """Progress of a scoring job: ``stage`` in load | score | done, ``fraction`` in [0, 1]."""

    path: str
    stage: str
    fraction: float


@dataclass
class Outcome:
    """A loaded (and, with a model, screened) scan: what the tab shows. ``screening`` is None
    without a model; ``renderer``/``recon_renderer`` come with the job's view already rendered
    (on an 8000x3000 scan that is seconds of work the GUI thread must not do)."""

    path: str
    scan: Scan
    sha256: str
    renderer: "Renderer"
    screening: Any | None = None
    recon_renderer: "Renderer | None" = None
    residual_rgb: np.ndarray | None = None  # (H, W, 3) uint8, made on the worker too


def screen_job(path: str | Path, scorer: Callable[[], Any] | None, cfg: Any | None = None,
               view: str = "pseudo") -> Iterator[JobStep | Outcome]:
    """Generator the worker pulls: JobStep(load), Outcome (image only), [JobStep(score)],
    JobStep(done), Outcome (screened when a model is given; the last item is the result).
    ``scorer`` is a zero-argument factory so a model loads on the worker thread too.
    Raises ScanError/ModelError naming the file."""
    from xscreen.scan import file_sha256, load_scan

    key = str(path)
    yield JobStep(key, "load", 0.0)
    scan = load_scan(path)
    renderer = Renderer(scan)
    renderer.prepare(view)
    out = Outcome(key, scan, file_sha256(path), renderer)
    yield out  # the plain image can be shown while the model works
    if scorer is not None:
        yield JobStep(key, "score", 0.2)
        from xscreen import pipeline
        from xscreen.config import ScreenConfig

        model = scorer()
        for item in pipeline.screen_steps(scan, model, cfg or ScreenConfig()):
            if isinstance(item, pipeline.ScreenProgress):  # per batch: Cancel acts within one batch
                yield JobStep(key, "score", 0.2 + 0.75 * item.done / max(item.total, 1))
        screening = item
        recon = Renderer(reconstruction_scan(scan, screening.reconstruction, model.preprocess))
        recon.prepare(view)
        out = dataclasses.replace(out, screening=screening, recon_renderer=recon,
                                  residual_rgb=residual_rgb(screening.residual))
    yield JobStep(key, "done", 1.0)
    yield out


def geometry(screening: Any) -> heatmap.GridGeometry:
    return heatmap.GridGeometry(size=int(screening.patch_size), stride=int(screening.stride),
                                height=int(screening.height), width=int(screening.width))


@dataclass(frozen=True)
class Scale:
    """The one scale every region number on screen is on (issue 31): score ÷ the bag's alarm
    threshold, "× alarm", 1.00 = alarms. ``review``: the calibrated review level on it (regions
    from there are drawn by default); ``live``: where the operator's threshold now draws them from."""

    review: float
    live: float

    @property
    def moved(self) -> bool:
        """The live threshold is not the review level (the banner says so)."""
        return abs(self.live - self.review) > 1e-6 * max(self.review, 1e-12)


def scale_for(screening: Any, rel_threshold: float = 1.0) -> Scale:
    """``rel_threshold``: the live threshold as a multiple of the review level (ViewState)."""
    review = float(screening.threshold) / float(screening.scan_threshold)
    return Scale(review, review * float(rel_threshold))


def rethreshold(screening: Any, rel_threshold: float, min_patches: int = 1) -> list[heatmap.Region]:
    """Regions at ``rel_threshold`` x the review level, from the stored score grid (no rescoring);
    rel 1.0 reproduces the screening's own regions. ``max_rel``/``mean_rel`` are on the one scale,
    × alarm (score ÷ the bag's alarm threshold), whatever threshold drew them; ``level`` is the
    calibrated rule's (alarm iff the region reaches the alarm threshold)."""
    if rel_threshold <= 0:
        raise ValueError(f"relative threshold must be > 0, got {rel_threshold}")
    alarm = float(screening.scan_threshold)
    found = heatmap.find_regions(screening.score_grid, float(screening.threshold) * rel_threshold,
                                 geometry(screening), min_patches=min_patches, alarm_threshold=alarm)
    return [dataclasses.replace(r, max_rel=r.max_score / alarm, mean_rel=r.mean_score / alarm) for r in found]


LAYER_PIXELS = 2_000_000


def layer_step(height: int, width: int, max_pixels: int = LAYER_PIXELS) -> int:
    """Decimation for the heatmap layer: the heat map is a smooth blend of stride-sized cells
    (32 px), so drawing it at 1/step resolution (<= ``max_pixels``) loses nothing visible and keeps
    the live threshold slider fast on 8000x3000 scans."""
    return max(1, int(np.ceil(np.sqrt(height * width / max_pixels))))


def overlay_rgba(heat: np.ndarray, scale: Scale = Scale(1.0, 1.0), mode: str = "fill", step: int = 1) -> np.ndarray:
    """heat (H, W) score ÷ review level -> (ceil(H/step), ceil(W/step), 4) uint8 RGBA layer at full
    strength (the view sets the layer's opacity, so the opacity slider never recomputes). Colour is
    the × alarm scale (the colour bar's), the same on every bag; opacity fades in up to the live
    threshold; ``contour`` outlines where the score reaches it."""
    over_alarm = np.asarray(heat, dtype=np.float32)[::step, ::step] * np.float32(scale.review)
    over_live = over_alarm / np.float32(scale.live)
    if mode == "fill":
        rgba = heatmap.colormap(over_alarm, opacity=1.0)
        alpha = np.clip((over_live - heatmap.RAMP_LO) / (1.0 - heatmap.RAMP_LO), 0.0, 1.0)
        rgba[..., 3] = (np.nan_to_num(alpha) * 255.0 + 0.5).astype(np.uint8)
        return rgba
    lines = heatmap.overlay(np.zeros(over_live.shape + (3,), np.uint8), over_live, mode=mode, opacity=1.0)
    alpha = (lines.max(axis=2) > 0).astype(np.uint8) * 255
    return np.dstack([lines, alpha])


def residual_rgb(residual: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """residual (H, W) float -> (H, W, 3) uint8, black = reconstructed exactly; scaled so the 99.9th
    percentile is white (one hot pixel must not darken the rest)."""
    import cv2

    r = np.asarray(residual, dtype=np.float32)
    top = float(vmax) if vmax else residual_scale(r)
    # OpenCV end to end (saturating scale, colour map, BGR->RGB): ~10x numpy on an 8000x3000 map
    level = cv2.convertScaleAbs(np.nan_to_num(r, copy=False) if np.isnan(r[::64, ::64]).any() else r,
                                alpha=255.0 / top)
    return cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)


def residual_scale(residual: np.ndarray) -> float:
    """99.9th percentile of the residual (from a strided sample: exact enough, 100x faster on big scans)."""
    r = np.asarray(residual, dtype=np.float32)
    step = max(1, int(np.sqrt(r.size / 250_000)))
    return float(np.percentile(np.nan_to_num(r[::step, ::step]), 99.9)) or 1.0


def reconstruction_scan(scan: Scan, reconstruction: np.ndarray, pre: Any) -> Scan:
    """The model's reconstruction (C, H, W) in model space as a Scan of the same kind and air level,
    so every image view renders it exactly like the original."""
    from xscreen.preprocess import to_transmission

    t = to_transmission(reconstruction, pre)
    limit = np.iinfo(scan.channels.dtype).max
    channels = np.clip(np.rint(t * scan.i0), 0, limit).astype(scan.channels.dtype)
    return Scan(scan_id=scan.scan_id + ":reconstruction", kind=scan.kind, channels=channels, i0=scan.i0)


@dataclass(frozen=True)
class Inspection:
    """Patch inspector content for one region: crops (h, w, 3) uint8 of the same box."""

    box: tuple[int, int, int, int]
    original: np.ndarray
    reconstruction: np.ndarray | None
    residual: np.ndarray | None
    max_rel: float
    mean_rel: float


def zoom_rect(region: heatmap.Region, width: int, height: int, margin: float = 0.75) -> tuple[float, float, float, float]:
    """(x, y, w, h) to zoom to: the box grown by ``margin`` x its size on each side, inside the scan."""
    mx, my = region.w * margin, region.h * margin
    x0, y0 = max(0.0, region.x - mx), max(0.0, region.y - my)
    x1, y1 = min(float(width), region.x + region.w + mx), min(float(height), region.y + region.h + my)
    return x0, y0, x1 - x0, y1 - y0


@dataclass(frozen=True)
class CursorInfo:
    """What the status bar shows for the pixel under the cursor. ``values``: raw channel values
    (high, low for dual scans); ``rel_score``: the score there × alarm, None before scoring."""

    x: int
    y: int
    values: tuple[int, ...]
    material: str | None
    rel_score: float | None

    def text(self, kind: str = "dual") -> str:
        names = ("high", "low") if kind == "dual" else ("R", "G", "B") if kind == "rgb" else ("grey",)
        parts = [f"x {self.x}  y {self.y}"]
        parts.append("  ".join(f"{n} {v}" for n, v in zip(names, self.values)))
        if self.material is not None:
            parts.append(self.material)
        parts.append("score -" if self.rel_score is None else f"score {self.rel_score:.2f} × alarm")
        return "   |   ".join(parts)


def pixel_material(scan: Scan, x: int, y: int) -> str | None:
    """Material class name at one pixel of a dual scan (computed for that pixel only: a whole-scan
    class map of 8000x3000 takes tens of seconds and the status bar needs one value)."""
    if scan.kind != "dual":
        return None
    from xscreen import materials

    a = materials.attenuation(scan.channels[:, y:y + 1, x:x + 1].astype(np.float32) / np.float32(scan.i0))
    return str(materials.MATERIAL_NAMES[int(materials.material_classes(a[1], a[0])[0, 0])])


def cursor_info(scan: Scan, x: float, y: float, heat: np.ndarray | None = None,
                review: float = 1.0) -> CursorInfo | None:
    """Probe at scan pixel (x, y); None outside the scan. ``heat`` is score ÷ review level and
    ``review`` the review level × alarm (``Scale.review``), so the score reads × alarm."""
    xi, yi = int(np.floor(x)), int(np.floor(y))
    if not (0 <= xi < scan.width and 0 <= yi < scan.height):
        return None
    material = pixel_material(scan, xi, yi)
    rel = None if heat is None else float(heat[yi, xi]) * review
    return CursorInfo(xi, yi, tuple(int(v) for v in scan.channels[:, yi, xi]), material, rel)


class Renderer:
    """Display images for one scan with the expensive part cached: the colour-table lookup per
    view is done once, window/level/gamma (a 256-entry LUT) and edge enhancement per change."""

    def __init__(self, scan: Scan):
        self.scan = scan
        self._base: dict[str, np.ndarray] = {}

    def has(self, view: str) -> bool:
        return view in self._base

    def prepare(self, view: str) -> None:
        """Render ``view`` now (on a worker thread) if the scan has it; other views stay lazy."""
        from xscreen import materials

        if view in materials.available_views(self.scan):
            self.base(view)

    def crop(self, box: tuple[int, int, int, int], view: str, window: float | None = None,
             level: float | None = None, gamma: float = 1.0, edge: bool = False) -> np.ndarray:
        """(h, w, 3) display of box (x, y, w, h): from the cached full image when there is one,
        else rendered from the crop alone (the inspector must not render a whole 8000x3000 scan)."""
        x, y, w, h = box
        if view in self._base:
            return self._tone_crop(self._base[view][y:y + h, x:x + w], window, level, gamma, edge)
        from xscreen import materials

        sub = Scan(self.scan.scan_id, self.scan.kind, self.scan.channels[:, y:y + h, x:x + w], self.scan.i0)
        return materials.render(sub, view, window=window, level=level, gamma=gamma, edge=edge)

    @staticmethod
    def _tone_crop(rgb: np.ndarray, window, level, gamma, edge) -> np.ndarray:
        from xscreen import materials

        out = materials.tone(np.ascontiguousarray(rgb), window=window, level=level, gamma=gamma)
        return materials.unsharp(out) if edge else out

    def base(self, view: str) -> np.ndarray:
        """(H, W, 3) uint8 of ``view`` before window/level; ViewUnavailable for a view the scan lacks."""
        from xscreen import materials

        if view not in self._base:
            self._base[view] = materials.render(self.scan, view)
        return self._base[view]

    def image(self, view: str, window: float | None = None, level: float | None = None,
              gamma: float = 1.0, edge: bool = False) -> np.ndarray:
        """Same result as ``materials.render(scan, view, window=, level=, gamma=, edge=)``."""
        from xscreen import materials

        rgb = materials.tone(self.base(view), window=window, level=level, gamma=gamma)
        return materials.unsharp(rgb) if edge else rgb

    def histogram(self, view: str, bins: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(counts (bins,), edges (bins + 1,)) of display brightness in [0, 1] for the histogram
        control; a strided sample keeps it instant on 8000x3000 scans."""
        rgb = self.base(view)
        step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 250_000)))
        lum = rgb[::step, ::step].mean(axis=2) / 255.0
        return np.histogram(lum, bins=bins, range=(0.0, 1.0))
