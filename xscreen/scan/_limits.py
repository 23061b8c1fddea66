"""What reading one scan file may cost: pixels, memory, time, TIFF pages (DESIGN.md 'Untrusted input').

The memory budget covers what the whole command holds for that scan, not only the decoder: a
screening adds ~32-38 bytes per pixel on top of the scan itself (benchmarks/RESULTS.md 'Memory'), so
a 1.7 KB HDF5 declaring 14000x14000 is refused from its header instead of taking 11 GB later.
Settings (environment, read at each load so the CLI, GUI and batch jobs share them):
    XSCREEN_MEMORY_BUDGET  bytes, K/M/G suffix allowed; default 4G
    XSCREEN_READ_TIMEOUT   seconds one file may take to decode in the reader process; default 60
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from xscreen.scan._types import DEFAULT_MAX_PIXELS, MIN_SIDE, ScanError

DEFAULT_MEMORY_BUDGET = 4 << 30
DEFAULT_READ_SECONDS = 60.0
# Scans are single images; a few extra pages (thumbnails, masks) are common, 20 000 are an attack
# (tifffile's series parsing is quadratic in the page count: 149 s for 20 000 1-pixel pages).
DEFAULT_MAX_PAGES = 16
# Measured peak of screening beyond the scan: 32-38 B/pixel (RESULTS.md 'Memory'), rounded up.
PIPELINE_BYTES_PER_PIXEL = 40
_COUNT_BYTES = 2  # every reader ends in uint8/uint16 counts: budget the larger
_MAX_BYTES = 64 << 40
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


@dataclass(frozen=True)
class ReadLimits:
    max_pixels: int = DEFAULT_MAX_PIXELS
    memory_bytes: int = DEFAULT_MEMORY_BUDGET
    seconds: float = DEFAULT_READ_SECONDS
    max_pages: int = DEFAULT_MAX_PAGES

    @classmethod
    def from_env(cls, max_pixels: int = DEFAULT_MAX_PIXELS,
                 environ: Mapping[str, str] = os.environ) -> "ReadLimits":
        """Defaults overridden by XSCREEN_MEMORY_BUDGET / XSCREEN_READ_TIMEOUT; a malformed value is
        a ValueError naming the variable (a typo must not silently lift a limit)."""
        return cls(max_pixels=max_pixels,
                   memory_bytes=parse_bytes(environ.get("XSCREEN_MEMORY_BUDGET", ""), "XSCREEN_MEMORY_BUDGET")
                   or DEFAULT_MEMORY_BUDGET,
                   seconds=_parse_seconds(environ.get("XSCREEN_READ_TIMEOUT", "")) or DEFAULT_READ_SECONDS)


def parse_bytes(text: str, name: str = "size") -> int:
    """'4G', '512M', '1000000' -> bytes; '' -> 0 (use the default)."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if not text:
        return 0
    unit = text[-1] if text[-1] in _UNITS else ""
    try:
        value = float(text[: len(text) - len(unit)]) * _UNITS[unit]
    except ValueError:
        raise ValueError(f"{name} must be a size such as 4G or 512M, got {text!r}") from None
    if not value >= 1 << 20:
        raise ValueError(f"{name} = {text!r} is below 1M")
    if not value <= _MAX_BYTES:  # 'inf' (OverflowError in int()) and 1e30 (no limit at all)
        raise ValueError(f"{name} = {text!r} is above 64T, no limit at all")
    return int(value)


def _parse_seconds(text: str) -> float:
    if not text.strip():
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"XSCREEN_READ_TIMEOUT must be seconds, got {text!r}") from None
    if not 0 < value < 1e6:
        raise ValueError(f"XSCREEN_READ_TIMEOUT = {text!r} is not a positive number of seconds")
    return value


def check_size(path: Path, height: int, width: int, limits: ReadLimits, channels: int = 1,
               itemsize: int = 2, floating: bool = False) -> int:
    """Reject from header dimensions, before any pixel is read: the pixel cap, then the memory the
    decode (stored samples + counts, + a float64 copy for float data) and the screening would need.
    Returns that need in bytes."""
    pixels = height * width
    if pixels > limits.max_pixels:
        raise ScanError(path, f"image {width}x{height} = {pixels:,} pixels exceeds the limit of "
                              f"{limits.max_pixels:,} pixels")
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ScanError(path, f"image {width}x{height} is smaller than one {MIN_SIDE}x{MIN_SIDE} patch")
    per_pixel = channels * (itemsize + _COUNT_BYTES + (8 if floating else 0)) + PIPELINE_BYTES_PER_PIXEL
    need = pixels * per_pixel
    if need > limits.memory_bytes:
        raise ScanError(path, f"image {width}x{height}x{channels} would need ~{need / (1 << 30):.1f} GiB "
                              f"to read and screen, over the memory budget of "
                              f"{limits.memory_bytes / (1 << 30):.1f} GiB (XSCREEN_MEMORY_BUDGET)")
    return need


def check_chunk(path: Path, name: str, chunk: tuple[int, ...], itemsize: int, limits: ReadLimits,
                reserved: int = 0, unit: str = "chunks") -> None:
    """A compressed chunk is decoded whole, whatever the image's size: a 128x160 dataset stored in
    one 40000x40000 chunk made the reader allocate 3.2 GB (issue 32 item 8). The decoder holds the
    chunk and the filter's output buffer (~2x), beside the ``reserved`` bytes of the scan itself.
    TIFF tiles are decoded whole the same way (``unit="tiles"``)."""
    chunk_bytes = itemsize
    for side in chunk:
        chunk_bytes *= int(side)
    need = 2 * chunk_bytes + reserved
    if need > limits.memory_bytes:
        shape = "x".join(str(int(side)) for side in chunk)
        raise ScanError(path, f"{name} is stored in {shape} {unit}: decoding one needs "
                              f"~{2 * chunk_bytes / (1 << 30):.1f} GiB, over the memory budget of "
                              f"{limits.memory_bytes / (1 << 30):.1f} GiB (XSCREEN_MEMORY_BUDGET); refused")
