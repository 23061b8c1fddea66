"""JPEG completeness. When a scan's entropy-coded data end before every block the frame header (SOF)
declares has been decoded, libjpeg fills the rest with flat grey and only *warns*; Pillow drops the
warning, so a JPEG whose SOF height was raised x10 loaded ~900 invented rows (issue 32 item 5).

No Python JPEG binding reports that warning, so the decode is repeated with filler bytes placed at
the end of every entropy-coded segment (before the marker that ends it). A complete image never
reads them: once its last block is decoded libjpeg skips whatever precedes the next marker. A short
image decodes them into its missing blocks, so the two decodes differ. The check costs one more
decode, inside the reader process like the first; white margins (flat blocks that the encoder did
code) decode identically both times.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from xscreen.scan._types import ScanError

_SOS, _EOI, _SOI, _DRI = 0xDA, 0xD9, 0xD8, 0xDD
_RST = range(0xD0, 0xD8)
# Deterministic bytes without 0xFF (which would start a marker): a DC difference and AC codes
# that are anything but "no change" for practically any Huffman table.
_FILLER = bytes((i * 151 + 73) % 255 for i in range(256))


def check_jpeg_complete(path: Path, decoded: Image.Image) -> None:
    """ScanError unless the file's data cover every block of the image Pillow decoded from it."""
    data = path.read_bytes()
    inserts = filler_points(data)
    if not inserts:
        return  # no entropy-coded segment found: the decoder has reported whatever is wrong
    padded, start = bytearray(), 0
    for end, extra in inserts:
        padded += data[start:end] + extra
        start = end
    padded += data[start:]
    try:
        with Image.open(io.BytesIO(bytes(padded)), formats=("JPEG",)) as probe:
            probe.load()
            same = probe.size == decoded.size and probe.mode == decoded.mode and \
                np.array_equal(np.asarray(probe), np.asarray(decoded))
    except (OSError, ValueError, SyntaxError):
        same = False  # the filler was read and was not even decodable: the data were short
    if not same:
        w, h = decoded.size
        raise ScanError(path, f"JPEG is incomplete: its compressed data end before the declared "
                              f"{w}x{h} image does (the decoder would invent the missing rows)")


def filler_points(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, bytes to insert) at the end of each entropy-coded segment (the data after each SOS
    header), i.e. where the marker that ends it starts. With restart intervals the filler is
    followed by the restart marker the decoder expects next and more filler: data that stop at an
    interval boundary make libjpeg look for that marker (skipping the first filler) and decode on.
    Markers are found as libjpeg finds them (junk between segments skipped); parsing stops at EOI."""
    points: list[tuple[int, bytes]] = []
    if data[:2] != b"\xff\xd8":
        return points
    i, n, restart = 2, len(data), 0
    while i + 4 <= n:
        if data[i] != 0xFF:  # junk between segments: libjpeg (and Pillow) skip to the next 0xFF
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if marker == 0x00:  # a stuffed zero outside a scan: skipped the same way
            i += 2
            continue
        if marker == _EOI:
            return points
        if marker in _RST or marker in (0x01, _SOI):  # markers without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker == _DRI and length >= 4:
            restart = int.from_bytes(data[i + 4:i + 6], "big")
        i += 2 + length
        if marker == _SOS:
            i, last = _entropy_end(data, i, restart)
            extra = _FILLER + bytes((0xFF, 0xD0 + (last + 1) % 8)) + _FILLER if restart else _FILLER
            points.append((i, extra))
    return points


def _entropy_end(data: bytes, i: int, restart: int) -> tuple[int, int]:
    """(offset of the first marker at or after ``i`` other than a stuffed 0xFF00 or, when restart
    intervals are on, a restart marker; number of the last restart marker before it (-1: none)).
    Without an interval (DRI) libjpeg takes a restart marker as the end of the data."""
    n, last = len(data), -1
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= n:
            return n, last
        following = data[i + 1]
        if following == 0x00 or (restart and following in _RST):
            last = following - 0xD0 if following in _RST else last
            i += 2
            continue
        return i, last  # a marker, or the first of the fill bytes (0xFF...) before one
