"""Checks every reader shares (size limits: _limits.py): pixel types, the air level, Scan assembly.

Each reader turns its format into (C, H, W) arrays and hands them to ``make_scan``, so every
format is validated the same way and a Scan is only ever built from fully checked data.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from xscreen.config import ScanKind
from xscreen.scan._types import MIN_SIDE, Scan, ScanError

_UINT16_MAX = 65535
# Air is the brightest common value in a bag image; a high percentile rather than the max keeps
# a few hot pixels or noise spikes from setting I0 (Poisson noise on ~60k counts is ~250 counts).
_I0_PERCENTILE = 99.5
_I0_SAMPLES = 1_000_000
# A recorded i0 within a factor 2 of the data's bright level passes (a dark bag's p99.5 sits below
# air; a few saturated pixels above it); outside it, the calibration does not belong to these pixels.
_I0_SLACK = 2.0


def check_min_side(path: Path, height: int, width: int) -> None:
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ScanError(path, f"image {width}x{height} is smaller than one {MIN_SIDE}x{MIN_SIDE} patch")


def to_counts(path: Path, data: np.ndarray, what: str = "image") -> np.ndarray:
    """Any pixel array -> uint8/uint16, or a ScanError saying why it cannot be mapped.

    Float data are accepted when they map without guessing: [0, 1] is read as transmission
    (scaled to the full 16-bit range), [0, 65535] as detector counts (rounded).
    """
    dt = data.dtype
    if dt in (np.uint8, np.uint16):
        return data
    if dt.kind == "f":
        return _float_to_counts(path, data, what)
    if dt.kind == "b":
        raise ScanError(path, f"{what} is 1-bit (black/white); an X-ray scan needs 8 or 16 bits")
    if dt.kind in "iu" and dt.itemsize <= 2:
        # Signed 8/16-bit (e.g. DICOM PixelRepresentation = 1) is fine when nothing is negative.
        if data.size and int(data.min()) < 0:
            raise ScanError(path, f"{what} is signed {8 * dt.itemsize}-bit with negative values")
        return data.astype(np.uint8 if dt.itemsize == 1 else np.uint16)
    raise ScanError(path, f"{what} has unsupported bit depth: {8 * dt.itemsize}-bit "
                          f"{'integer' if dt.kind in 'iu' else dt.name} (expected 8 or 16-bit)")


def _float_to_counts(path: Path, data: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(data).all():
        raise ScanError(path, f"{what} is float data containing NaN or Inf")
    lo, hi = (float(data.min()), float(data.max())) if data.size else (0.0, 0.0)
    if lo < 0.0 or hi > _UINT16_MAX:
        raise ScanError(path, f"{what} is float data in [{lo:g}, {hi:g}], which maps neither to "
                              f"transmission [0, 1] nor to 16-bit counts [0, 65535]")
    scale = _UINT16_MAX if hi <= 1.0 else 1.0
    return np.rint(data.astype(np.float64) * scale).astype(np.uint16)


def estimate_i0(channels: np.ndarray) -> float:
    """Air level of (C, H, W) integer data that records none: 255 for 8-bit, else a high percentile."""
    if channels.dtype == np.uint8:
        return 255.0
    i0 = _bright_level(channels)
    return i0 if i0 > 0 else float(channels.max())


def _bright_level(channels: np.ndarray) -> float:
    step = max(1, int(math.sqrt(channels[0].size / _I0_SAMPLES)))
    return float(np.percentile(channels[:, ::step, ::step], _I0_PERCENTILE))


def check_plausible_i0(path: Path, i0: float, channels: np.ndarray) -> float:
    """A recorded air level must fit the pixels: far below the bag's bright level every pixel reads
    as air (i0 = 1 clears any bag); far above the detector's range nothing does."""
    bright, top = _bright_level(channels), float(np.iinfo(channels.dtype).max)
    if i0 < bright / _I0_SLACK:
        raise ScanError(path, f"air level i0 = {i0:g} is implausible: the bag's bright level is "
                              f"{bright:g} (99.5th percentile), so every pixel would read as air")
    if i0 > top * _I0_SLACK:
        raise ScanError(path, f"air level i0 = {i0:g} is implausible for {8 * channels.itemsize}-bit "
                              f"data (at most {top:g}): nothing would read as air")
    return i0


def _positive(path: Path, label: str, value: Any) -> float:
    """A file attribute that must be one finite positive number (scalar or 1-element array)."""
    try:
        number = float(np.asarray(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError) as exc:
        raise ScanError(path, f"{label} = {value!r} is not a number") from exc
    if not math.isfinite(number) or number <= 0:
        raise ScanError(path, f"{label} = {number} is not a positive number")
    return number


def check_i0(path: Path, value: Any) -> float:
    return _positive(path, "air level i0", value)


def check_pitch(path: Path, value: Any) -> float | None:
    return None if value is None else _positive(path, "pixel_pitch_mm", value)


def make_scan(path: Path, kind: ScanKind, channels: np.ndarray, *, scan_id: str | None = None,
              i0: Any = None, pixel_pitch_mm: Any = None, metadata: dict | None = None) -> Scan:
    """Validate (C, H, W) integer channels and assemble the Scan; the last step of every reader."""
    _, h, w = channels.shape
    check_min_side(path, h, w)
    if not channels.any():
        raise ScanError(path, "all pixels are zero (no signal)")
    i0 = estimate_i0(channels) if i0 is None else check_plausible_i0(path, check_i0(path, i0), channels)
    return Scan(
        scan_id=str(scan_id) if scan_id else path.stem,
        kind=kind,
        channels=np.ascontiguousarray(channels),
        i0=i0,
        path=path,
        pixel_pitch_mm=check_pitch(path, pixel_pitch_mm),
        metadata=dict(metadata or {}),
    )


def header_json(scan: Scan, **extra: Any) -> str:
    """The JSON that TIFF descriptions and PNG text chunks carry (i0, id, pitch, metadata)."""
    return json.dumps({"xscreen": {"scan_id": scan.scan_id, "kind": scan.kind, "i0": scan.i0,
                                   "pixel_pitch_mm": scan.pixel_pitch_mm,
                                   "metadata": scan.metadata, **extra}}, default=json_default)


def json_default(value: Any) -> Any:
    """Metadata values JSON cannot hold natively: numpy arrays and scalars; anything else as text."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def parse_header_json(text: Any) -> dict:
    """Inverse of ``header_json``; {} for foreign or absent descriptions (never an error)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or not text.lstrip().startswith("{"):
        return {}
    try:
        info = json.loads(text).get("xscreen", {})
    except (ValueError, AttributeError):
        return {}
    return info if isinstance(info, dict) else {}
