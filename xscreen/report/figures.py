"""Report images: scan and heatmap thumbnails with numbered boxes, and per-region crops.

All arrays are RGB uint8 (H, W, 3). Crops of the original, the reconstruction, the residual and
the heatmap share one window per region so they line up side by side.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xscreen.config import Preprocess
from xscreen.heatmap import BOX_COLOURS, overlay
from xscreen.materials import render
from xscreen.preprocess import to_transmission
from xscreen.scan import Scan

THUMB_SIDE = 1400  # longest side of the scan thumbnails (px)
CROP_SIDE = 200  # longest side of a region crop as embedded (px)
BOX_RGB = (255, 230, 0)
CROP_NAMES = ("original", "reconstruction", "residual", "heatmap")
HEAT_OPACITY = 0.5  # the GUI's default overlay opacity


@dataclass(frozen=True)
class RegionCrops:
    """Crops for one region; ``None`` where the screening did not keep that layer (re-rendered
    from JSON without a model). ``window``: (x, y, w, h) in scan pixels."""

    rank: int
    window: tuple[int, int, int, int]
    original: np.ndarray
    reconstruction: np.ndarray | None
    residual: np.ndarray | None
    heatmap: np.ndarray | None


@dataclass(frozen=True)
class Figures:
    thumbnail: np.ndarray  # (h, w, 3) scan with numbered region boxes
    heat_thumbnail: np.ndarray | None  # (h, w, 3) heatmap (× alarm) overlay with boxes; None: no heat map
    crops: list[RegionCrops]
    legend: np.ndarray | None = None  # (h, w, 3) the × alarm colour scale with the review level
    _png: dict[int, bytes] = field(default_factory=dict, repr=False, compare=False)

    def png(self, rgb: np.ndarray) -> bytes:
        """PNG bytes of one of this object's images, encoded once for HTML and PDF together
        (keyed by id: the arrays live as long as this object, so ids cannot be reused)."""
        if id(rgb) not in self._png:
            self._png[id(rgb)] = png_bytes(rgb)
        return self._png[id(rgb)]


def display_rgb(scan: Scan) -> np.ndarray:
    """(C, H, W) scan -> (H, W, 3) uint8: the operator's default view (pseudo-colour for dual,
    the image's own colours for rgb, grey for gray)."""
    return render(scan, "gray" if scan.kind == "gray" else "pseudo")


def reconstruction_rgb(screening: Any, scan: Scan, cut: tuple[slice, slice]) -> np.ndarray | None:
    """The reconstruction inside ``cut`` shown exactly like the original: back to detector values
    with the scan's own i0 and dtype, then through the same renderer. None when not stored."""
    recon = getattr(screening, "reconstruction", None)
    if recon is None:
        return None
    t = to_transmission(np.asarray(recon)[(slice(None), *cut)], Preprocess(kind=screening.kind))
    top = float(np.iinfo(scan.channels.dtype).max)
    values = np.clip(t * float(scan.i0) + 0.5, 0, top).astype(scan.channels.dtype)
    return display_rgb(Scan(scan.scan_id, scan.kind, values, scan.i0))


def residual_rgb(residual: np.ndarray, vmax: float) -> np.ndarray:
    """(H, W) |x - x_hat| -> (H, W, 3) inferno, one scale ``vmax`` for every crop of a scan."""
    level = np.clip(np.asarray(residual, np.float32) / max(vmax, 1e-6) * 255.0, 0, 255)
    return cv2.applyColorMap(level.astype(np.uint8), cv2.COLORMAP_INFERNO)[..., ::-1].copy()


def make_figures(screening: Any, scan: Scan, max_regions: int) -> Figures:
    """Thumbnails are composed at thumbnail scale and crops per window, so an 8000 x 3000 scan
    never needs a full-size float overlay or a full-size reconstruction render."""
    base = display_rgb(scan)
    if base.shape[:2] != (screening.height, screening.width):
        raise ValueError(f"{scan.scan_id}: scan is {base.shape[1]}x{base.shape[0]} but the screening "
                         f"is {screening.width}x{screening.height}: not the screened file")
    heat = heat_x_alarm(screening)
    resid = getattr(screening, "residual", None)
    vmax = float(np.percentile(resid, 99.9)) if resid is not None else 1.0
    regions = sorted(screening.regions, key=lambda r: r.rank)
    crops = []
    for r in regions[:max_regions]:
        x, y, w, h = win = crop_window(r, screening.patch_size, screening.width, screening.height)
        cut = (slice(y, y + h), slice(x, x + w))
        recon = reconstruction_rgb(screening, scan, cut)
        crops.append(RegionCrops(
            r.rank, win, _fit(base[cut]), None if recon is None else _fit(recon),
            None if resid is None else _fit(residual_rgb(np.asarray(resid)[cut], vmax)),
            None if heat is None else _fit(overlay(base[cut], heat[cut], "fill", HEAT_OPACITY))))
    heat_thumb = None if heat is None else boxed_thumbnail(base, regions, heat=heat)
    review = screening.threshold / screening.scan_threshold if screening.scan_threshold else float("nan")
    return Figures(boxed_thumbnail(base, regions), heat_thumb, crops, scale_bar(review))


def heat_x_alarm(screening: Any) -> np.ndarray | None:
    """(H, W) heat on the one scale: the pipeline's heat is ÷ the review level, the report draws
    ÷ the bag's alarm threshold (1.00 = alarms), so its colours mean what its numbers say."""
    if screening.heat is None:
        return None
    k = screening.threshold / screening.scan_threshold if screening.scan_threshold else 1.0
    return np.asarray(screening.heat, np.float32) * np.float32(k)


def scale_bar(review_x_alarm: float, width: int = 900, height: int = 58) -> np.ndarray:
    """(h, w, 3) legend of the heat colours on the × alarm scale, over white as on air: ticks at
    0.5, 1.0 (alarms: a thick line) and HEAT_MAX below the bar, the review level above it (dashed)."""
    from xscreen.heatmap import HEAT_MAX, colormap

    top, bar_h, span = 19, 18, HEAT_MAX * 1.1
    values = np.linspace(0.0, span, width, dtype=np.float32)[None, :].repeat(bar_h, 0)
    rgba = colormap(values, 1.0).astype(np.float32)
    a = rgba[..., 3:4] / 255.0
    img = np.full((height, width, 3), 255, np.uint8)
    img[top:top + bar_h] = (255.0 * (1 - a) + rgba[..., :3] * a + 0.5).astype(np.uint8)
    pil = Image.fromarray(img)
    draw, font = ImageDraw.Draw(pil), _font(15)
    x_of = lambda v: int(round(v / span * (width - 1)))  # noqa: E731
    for v in (0.5, 1.0, HEAT_MAX):
        x = x_of(v)
        draw.line([x, top, x, top + bar_h + 4], fill=(0, 0, 0), width=4 if v == 1.0 else 1)
        label = f"{v:.2f} × alarm" + (" (alarms)" if v == 1.0 else "")
        tw = draw.textbbox((0, 0), label, font=font)[2]
        draw.text((min(max(x - tw // 2, 0), width - tw - 1), top + bar_h + 5), label, fill=(0, 0, 0), font=font)
    if np.isfinite(review_x_alarm) and 0 < review_x_alarm < span:
        x = x_of(review_x_alarm)
        for y in range(top - 4, top + bar_h, 5):
            draw.line([x, y, x, y + 2], fill=(0, 0, 0), width=2)
        label = f"review level {review_x_alarm:.2f}"
        tw = draw.textbbox((0, 0), label, font=font)[2]
        draw.text((min(max(x - tw // 2, 0), width - tw - 1), 0), label, fill=(0, 0, 0), font=font)
    draw.rectangle([0, top, width - 1, top + bar_h], outline=(80, 80, 80))
    return np.asarray(pil)


def crop_window(region: Any, patch: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The region box grown by half a patch of context on each side (at least 2 patches wide),
    clipped to the scan: (x, y, w, h)."""
    side_w, side_h = max(region.w + patch, 2 * patch), max(region.h + patch, 2 * patch)
    cx, cy = region.x + region.w / 2, region.y + region.h / 2
    x0, y0 = int(max(0, min(cx - side_w / 2, width - side_w))), int(max(0, min(cy - side_h / 2, height - side_h)))
    return x0, y0, int(min(side_w, width - x0)), int(min(side_h, height - y0))


def boxed_thumbnail(rgb: np.ndarray, regions: list[Any], side: int = THUMB_SIDE,
                    heat: np.ndarray | None = None) -> np.ndarray:
    """Scale rgb (H, W, 3) to ``side`` (and overlay ``heat`` (H, W) rel, scaled alike), then draw
    boxes and rank numbers at thumbnail scale so they stay legible."""
    h, w = rgb.shape[:2]
    # Small scans are enlarged (nearest, up to 4x) so labels and boxes stay legible on the page.
    k = min(4.0, side / max(h, w))
    size = (max(1, round(w * k)), max(1, round(h * k)))
    img = Image.fromarray(rgb).resize(size, Image.NEAREST if k > 1 else Image.LANCZOS)
    if heat is not None:
        small = cv2.resize(heat, size, interpolation=cv2.INTER_NEAREST if k > 1 else cv2.INTER_AREA)
        img = Image.fromarray(overlay(np.asarray(img), small, "fill", HEAT_OPACITY))
    draw = ImageDraw.Draw(img)
    font = _font(max(14, img.height // 24))
    for r in regions:
        box = [r.x * k, r.y * k, (r.x + r.w) * k - 1, (r.y + r.h) * k - 1]
        colour = BOX_COLOURS.get(getattr(r, "level", "alarm"), BOX_RGB)
        lw = max(3, img.width // 250) // (2 if colour != BOX_RGB else 1)  # attention: thinner
        # Black under the colour: the box stays visible on light (air, organic) and dark (metal) areas.
        draw.rectangle([box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1], outline=(0, 0, 0), width=lw + 2)
        draw.rectangle(box, outline=colour, width=lw)
        label = str(r.rank)
        tw, th = draw.textbbox((0, 0), label, font=font)[2:]
        tx, ty = box[0], box[1] - th - 6 if box[1] - th - 6 >= 0 else box[1] + 3  # else inside the box
        draw.rectangle([tx, ty, tx + tw + 6, ty + th + 6], fill=(0, 0, 0))
        draw.text((tx + 3, ty + 1), label, fill=colour, font=font)
    return np.asarray(img)


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG of rgb (h, w, 3) uint8. ``optimize=True`` cost ~5x the encode time for ~10 % smaller
    files on scan images, so it is off."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _fit(rgb: np.ndarray, side: int = CROP_SIDE) -> np.ndarray:
    """Scale a crop so its longest side is ``side``; nearest-neighbour when enlarging keeps
    patch-level structure honest (no invented smoothness)."""
    h, w = rgb.shape[:2]
    k = side / max(h, w)
    interp = cv2.INTER_NEAREST if k > 1 else cv2.INTER_AREA
    return cv2.resize(np.ascontiguousarray(rgb), (max(1, round(w * k)), max(1, round(h * k))),
                      interpolation=interp)


def _font(size: int) -> ImageFont.ImageFont:
    for name in ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "Arial Bold.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)
