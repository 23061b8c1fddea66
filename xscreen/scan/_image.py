"""Single grey or RGB images through Pillow: PNG, JPEG, BMP (8 or 16 bit).

Typical source: vendor pseudo-colour exports (e.g. SIXray JPEGs), white background = air.
Our own PNGs carry i0, scan id, pixel pitch and metadata as JSON in an iTXt chunk 'xscreen'.
"""
from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from xscreen.atomic import atomic_path
from xscreen.scan._checks import header_json, make_scan, parse_header_json, to_counts
from xscreen.scan._jpeg import check_jpeg_complete
from xscreen.scan._limits import ReadLimits, check_size
from xscreen.scan._png import SIGNATURE as _PNG_SIGNATURE, check_png_complete
from xscreen.scan._types import Scan, ScanError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# Only the formats we claim: random bytes must never reach e.g. the EPS plugin (Ghostscript).
_FORMATS = ("PNG", "JPEG", "BMP")
_TO_RGB = {"P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBA", "RGBa", "RGBX"}


_OPEN_LOCK = threading.Lock()


def _open(path: Path) -> Image.Image:
    """Header only. Pillow refuses > ~179 MP inside open(); our own check (max_pixels) replaces
    it, so its global limit is lifted just for this call (the caller holds _OPEN_LOCK)."""
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        return Image.open(path, formats=_FORMATS)
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def read_image(path: Path, limits: ReadLimits) -> Scan:
    """(1, H, W) grey or (3, H, W) RGB; the size is checked from the header before decoding.
    Pillow's warnings (damaged EXIF, a malformed MPO index, the bomb warning our own size check
    replaces) are not printed on the user's stderr: damaged pixels raise, and that is the error.
    Locked: the warning filters and Pillow's pixel limit are process-wide (GUI workers' threads)."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _open(path) as im:
            width, height = im.size
            rgb16 = _is_png_rgb16(path)
            bands = len(im.getbands()) + (3 if im.mode in _TO_RGB else 0)  # a converted copy too
            itemsize = 2 if rgb16 else {"I": 4, "F": 4}.get(im.mode, 2 if im.mode.startswith("I;16") else 1)
            check_size(path, height, width, limits, bands, itemsize, im.mode == "F")
            info = parse_header_json(im.info.get("xscreen"))
            channels = _png_rgb16(path) if rgb16 else _pixels(path, im)
            if im.format == "PNG":
                check_png_complete(path)
            elif im.format in ("JPEG", "MPO"):  # Pillow opens a JPEG with an MPF segment as MPO
                check_jpeg_complete(path, im)
    kind = "gray" if channels.shape[0] == 1 else "rgb"
    return make_scan(path, kind, channels, scan_id=info.get("scan_id"), i0=info.get("i0"),
                     pixel_pitch_mm=info.get("pixel_pitch_mm"), metadata=info.get("metadata"))


def _pixels(path: Path, im: Image.Image) -> np.ndarray:
    """Decoded pixels as (C, H, W) uint8/uint16: grey C = 1, colour C = 3 (alpha dropped)."""
    mode = im.mode
    if mode in ("LA", "La"):
        raise ScanError(path, "image has 2 channels (grey + alpha); expected grey or RGB")
    if mode == "1":
        raise ScanError(path, "image is 1-bit (black/white); an X-ray scan needs 8 or 16 bits")
    if mode in _TO_RGB:
        im = im.convert("RGB")  # palette / CMYK / YCbCr / alpha -> plain RGB
    data = np.asarray(im)
    if data.ndim == 2:
        return to_counts(path, data.astype(data.dtype.newbyteorder("="), copy=False))[None]
    if data.ndim == 3 and data.shape[2] == 3:
        return np.moveaxis(to_counts(path, data), -1, 0)
    raise ScanError(path, f"unsupported image layout: mode {mode}, shape {data.shape}")


def _is_png_rgb16(path: Path) -> bool:
    """Pillow silently reduces 16-bit colour PNGs to 8 bits; those go through OpenCV instead."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    return len(head) == 26 and head[:8] == _PNG_SIGNATURE and head[12:16] == b"IHDR" \
        and head[24] == 16 and head[25] in (2, 6)


def _png_rgb16(path: Path) -> np.ndarray:
    """(3, H, W) uint16 through imagecodecs' libpng binding, which raises on damage; OpenCV's
    reader printed "libpng error: ..." on the user's stderr for every broken file."""
    import imagecodecs

    try:
        rgb = imagecodecs.png_decode(path.read_bytes())
    except imagecodecs.PngError as exc:
        raise ScanError(path, f"corrupt or truncated 16-bit colour PNG ({exc})") from exc
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ScanError(path, f"corrupt or truncated 16-bit colour PNG (decoded as {rgb.shape})")
    return np.ascontiguousarray(np.moveaxis(rgb[..., :3], -1, 0))


def save_png(scan: Scan, path: Path) -> Path:
    """Grey 8/16-bit or RGB 8-bit PNG with the scan's header in an iTXt chunk."""
    if scan.kind == "rgb" and scan.channels.dtype != np.uint8:
        raise ScanError(path, "16-bit RGB cannot be written as PNG here; save it as .tif")
    data = scan.channels[0] if scan.kind == "gray" else np.moveaxis(scan.channels, 0, -1)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("xscreen", header_json(scan), zip=True)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(data)).save(tmp, format="PNG", pnginfo=info)
    return path
