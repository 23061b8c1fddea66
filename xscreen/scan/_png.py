"""PNG completeness: Pillow returns missing rows as zeros when the compressed stream ends early but
cleanly (a writer killed mid-file, or a height patched upwards), so the rows are counted here first.

The count inflates the IDAT stream once more in 1 MiB steps (bounded memory, about the decoder's
own time again); it runs inside the reader process like the decode itself.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

from xscreen.scan._types import ScanError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: (x start, y start, x step, y step)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
_STEP = 1 << 20


def check_png_complete(path: Path) -> None:
    """ScanError unless every row the header declares is present in the IDAT stream and the file
    ends with IEND."""
    with open(path, "rb") as fh:
        if fh.read(8) != SIGNATURE:
            return  # not a PNG: the decoder reports it
        expected, inflater, inflated, ended = 0, zlib.decompressobj(), 0, False
        while True:
            head = fh.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IHDR":
                expected = _expected_bytes(path, fh.read(min(length, 13)))
                fh.seek(length - min(length, 13) + 4, 1)
                continue
            if kind == b"IEND":
                ended = True
                break
            if kind == b"IDAT":
                inflated += _inflate(inflater, fh.read(length), expected - inflated)
            else:
                fh.seek(length, 1)
            fh.seek(4, 1)  # CRC
    if not ended:
        raise ScanError(path, "PNG is truncated: no IEND chunk at the end")
    if inflated < expected:
        raise ScanError(path, f"PNG is truncated: pixel data hold {inflated:,} of {expected:,} bytes "
                              f"(rows missing)")


def _inflate(inflater: "zlib._Decompress", data: bytes, wanted: int) -> int:
    """Bytes this IDAT inflates to, stopping once ``wanted`` is reached (a bomb cannot run on)."""
    total = 0
    try:
        while data and total <= wanted:
            total += len(inflater.decompress(data, _STEP))
            data = inflater.unconsumed_tail
    except zlib.error:
        return total  # a corrupt stream: the decoder names the fault
    return total


def _expected_bytes(path: Path, ihdr: bytes) -> int:
    """Filtered bytes the image needs: per row one filter byte + packed samples, per Adam7 pass."""
    if len(ihdr) < 13:
        raise ScanError(path, "PNG header (IHDR) is truncated")
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    bits = _SAMPLES.get(ctype, 1) * depth
    if interlace != 1:
        return height * (1 + (width * bits + 7) // 8)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        w, h = max(0, (width - x0 + dx - 1) // dx), max(0, (height - y0 + dy - 1) // dy)
        if w and h:
            total += h * (1 + (w * bits + 7) // 8)
    return total
