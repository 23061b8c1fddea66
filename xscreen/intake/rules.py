"""When a file in an inbox is a complete bag (no Qt, no I/O beyond stat and header reads).

A sender writes a bag over seconds; a scan read half-written is a wrong scan, and one reported as
corrupt while still being written is a false fault. So a file is taken only when (1) its name is
final (not hidden, not ``.part``/``.tmp``: the rename convention), (2) its size and mtime have not
changed for ``settle`` seconds (senders that do not rename), (3) both halves of a TIFF pair are
there and settled, and (4) its format's own end is present (a DICOS object parses in full, an HDF5
file opens, a PNG has IEND...). A file that stays incomplete by (4) for ``corrupt_after`` seconds
is handed over anyway, and the reader reports its fault.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from xscreen.atomic import is_temp_name

PART_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".filepart", ".download", ".!ut")


@dataclass(frozen=True)
class Rules:
    """``settle``: seconds a file's size and mtime must stay unchanged (0: the sender renames a
    finished file into place, so a visible final name is complete); ``corrupt_after``: seconds a
    settled file may fail its format's completeness check before it is handed over as a fault."""

    settle: float = 2.0
    corrupt_after: float = 30.0

    def __post_init__(self):
        if self.settle < 0 or self.corrupt_after < 0:
            raise ValueError(f"settle ({self.settle}) and corrupt_after ({self.corrupt_after}) must be >= 0")


def in_progress_name(name: str) -> bool:
    """A name a sender uses while writing: hidden, our own temporaries, editor/spool partials."""
    low = name.lower()
    return name.startswith((".", "~")) or is_temp_name(name) or low.endswith(PART_SUFFIXES)


@dataclass
class _Seen:
    signature: tuple[int, int]  # (size, mtime_ns)
    since: float  # monotonic time this signature was first seen
    settled_at: float | None = None  # monotonic time it first passed the settle rule


@dataclass
class SettleTracker:
    """Remembers each file's (size, mtime) across polls. ``clock`` is injectable for tests."""

    rules: Rules = field(default_factory=Rules)
    clock: Callable[[], float] = time.monotonic
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def settled(self, path: Path) -> bool:
        """Whether ``path`` is non-empty and unchanged for ``rules.settle`` seconds (first call: no,
        unless settle is 0). A changed file starts its wait again."""
        try:
            st = path.stat()
        except OSError:
            self._seen.pop(str(path), None)
            return False
        sig, now = (st.st_size, st.st_mtime_ns), self.clock()
        seen = self._seen.get(str(path))
        if seen is None or seen.signature != sig:
            seen = self._seen[str(path)] = _Seen(sig, now)
        if st.st_size == 0:
            return False
        if now - seen.since >= self.rules.settle:
            seen.settled_at = seen.settled_at if seen.settled_at is not None else now
            return True
        return False

    def overdue(self, path: Path) -> bool:
        """Settled and still failing its completeness check for ``corrupt_after`` seconds."""
        seen = self._seen.get(str(path))
        return bool(seen and seen.settled_at is not None
                    and self.clock() - seen.settled_at >= self.rules.corrupt_after)

    def forget(self, path: Path) -> None:
        self._seen.pop(str(path), None)

    def prune(self, present: set[str]) -> None:
        for key in [k for k in self._seen if k not in present]:
            del self._seen[key]


def format_complete(path: Path) -> bool:
    """Whether the file's format-level end is present. Cheap header/tail reads; never raises."""
    suffix = path.suffix.lower()
    try:
        check = _CHECKS.get(suffix)
        return True if check is None else bool(check(path))
    except Exception:  # any parse error of a file still being written means: not yet
        return False


def _tail(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - n))
        return fh.read()


def _png(path: Path) -> bool:
    return b"IEND" in _tail(path, 16)


def _jpeg(path: Path) -> bool:
    return b"\xff\xd9" in _tail(path, 64)  # some encoders pad after the end-of-image marker


def _bmp(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(6)
    return len(head) == 6 and int.from_bytes(head[2:6], "little") <= path.stat().st_size


def _hdf5(path: Path) -> bool:
    import h5py

    with h5py.File(path, "r") as f:
        if "high" not in f or "low" not in f or f["high"].shape != f["low"].shape:
            return False
        # the last rows are the last bytes a writer puts down: reading them fails on a truncated file
        return f["high"][-1:].size >= 0 and f["low"][-1:].size >= 0


def _tiff(path: Path) -> bool:
    import tifffile

    size = path.stat().st_size
    with tifffile.TiffFile(path) as tf:
        page = tf.pages[0]
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts)]
    return bool(ends) and max(ends) <= size


def dicom_complete(path: Path) -> bool:
    """A DICOS/DICOM object parses to its end and holds all the pixel data its header declares."""
    import pydicom

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(path)  # reads every element: a truncated stream raises here
        if "PixelData" not in ds:
            return False
        syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
        if syntax is not None and syntax.is_compressed:
            return len(ds.PixelData) > 0  # encapsulated: parsed up to its sequence delimiter
        need = (int(ds.get("Rows") or 0) * int(ds.get("Columns") or 0) * int(ds.get("SamplesPerPixel") or 1)
                * int(ds.get("NumberOfFrames") or 1) * max(1, int(ds.get("BitsAllocated") or 16) // 8))
        return need > 0 and len(ds.PixelData) >= need


_CHECKS: dict[str, Callable[[Path], bool]] = {
    ".png": _png, ".jpg": _jpeg, ".jpeg": _jpeg, ".bmp": _bmp,
    ".h5": _hdf5, ".hdf5": _hdf5, ".hdf": _hdf5, ".tif": _tiff, ".tiff": _tiff,
    ".dcs": dicom_complete, ".dcm": dicom_complete, ".dicom": dicom_complete,
}
