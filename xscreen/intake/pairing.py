"""The two energies of one bag, received as two DX objects, made into one dual-energy scan.

Objects wait in ``<inbox>/.pending/<group>/`` (hidden: the inbox watcher skips it), the group being
a hash of the series identifiers (names inside files are data, never paths). The second object of a
group completes the pair: both are decoded by the scan reader (in its reader process, under its
limits), stacked [high, low] and written atomically into the inbox as ``<group16>.h5``. An object
still alone after ``wait`` seconds is a single-energy scan of its own and moves into the inbox as
``<sha16>.dcs``. Pending files survive a restart; ``flush`` at start hands on what waited.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from xscreen.atomic import atomic_write_bytes

PENDING = ".pending"
_TEXT_TAGS = ("ImageComments", "SeriesDescription", "AcquisitionDeviceProcessingDescription", "ImageType")


def group_key(ds) -> str:
    ids = "|".join(str(ds.get(k, "")) for k in ("StudyInstanceUID", "SeriesInstanceUID"))
    return hashlib.sha256(ids.encode("utf-8", "replace")).hexdigest()


def energy_rank(ds) -> float | None:
    """A number that orders the two energies (higher = high energy): the tube voltage when recorded,
    else +1/-1 from a 'high'/'low' word in the descriptions; None when nothing says."""
    try:
        kvp = float(ds.get("KVP") or 0)
    except (TypeError, ValueError):
        kvp = 0.0
    if kvp > 1:  # DICOS samples write KVP 1 as a placeholder
        return kvp
    for tag in _TEXT_TAGS:
        words = str(ds.get(tag, "")).lower().replace("\\", " ").replace("_", " ").split()
        if "high" in words or "he" in words:
            return 1.0
        if "low" in words or "le" in words:
            return -1.0
    return None


class Pairing:
    """Thread-safe: receiver associations run in threads. ``wait`` <= 0: no pairing, each object
    is a scan at once."""

    def __init__(self, inbox: str | Path, wait: float = 2.0):
        self.inbox = Path(inbox)
        self.pending = self.inbox / PENDING
        self.wait = float(wait)
        self._lock = threading.Lock()
        self.pending.mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes, ds, sha: str) -> Path | None:
        """Store one received DX object (``data``: the DICOM file bytes). Returns the scan written into
        the inbox (a lone object, or the finished pair), or None while it waits for its twin."""
        if self.wait <= 0:
            target = self.inbox / f"{sha[:16]}.dcs"
            atomic_write_bytes(target, data)
            return target
        group = group_key(ds)
        folder = self.pending / group[:32]
        with self._lock:
            folder.mkdir(parents=True, exist_ok=True)
            rank = energy_rank(ds)
            atomic_write_bytes(folder / f"{sha[:16]}_{'' if rank is None else rank}.dcs", data)
            members = sorted(folder.glob("*.dcs"))
            if len(members) < 2:
                return None
            return self._pair(folder, members[:2], group)

    def _pair(self, folder: Path, members: list[Path], group: str) -> Path | None:
        ranks = [_rank_from_name(m) for m in members]
        if None in ranks or ranks[0] == ranks[1]:
            return self._release_all(folder)  # cannot tell the energies apart: two single-energy scans
        high, low = (members[0], members[1]) if ranks[0] > ranks[1] else (members[1], members[0])
        try:
            scan = dual_from(high, low, f"dx-{group[:16]}")
        except Exception:  # ScanError, shape mismatch: each object is then judged alone by the reader
            return self._release_all(folder)
        from xscreen.scan import save_h5

        target = self.inbox / f"{group[:16]}.h5"
        save_h5(scan, target)
        shutil.rmtree(folder, ignore_errors=True)
        return target

    def _release_all(self, folder: Path) -> Path | None:
        out = None
        for m in sorted(folder.glob("*.dcs")):
            out = self.inbox / f"{m.name[:16]}.dcs"
            os.replace(m, out)
        shutil.rmtree(folder, ignore_errors=True)
        return out

    def flush(self, now: float | None = None) -> list[Path]:
        """Objects that waited ``wait`` seconds without a twin move into the inbox as scans."""
        now, out = now or time.time(), []
        with self._lock:
            for folder in [p for p in self.pending.iterdir() if p.is_dir()]:
                members = sorted(folder.glob("*.dcs"))
                if not members:
                    shutil.rmtree(folder, ignore_errors=True)
                elif all(now - m.stat().st_mtime >= self.wait for m in members):
                    out.append(self._release_all(folder))
        return [p for p in out if p is not None]


def _rank_from_name(path: Path) -> float | None:
    text = path.stem.split("_", 1)[1] if "_" in path.stem else ""
    try:
        return float(text) if text else None
    except ValueError:
        return None


def dual_from(high: Path, low: Path, scan_id: str):
    """Two single-energy DX files -> a dual Scan (2, H, W) [high, low]; ValueError when they differ."""
    from xscreen.scan import Scan, load_scan

    a, b = load_scan(high), load_scan(low)
    if a.kind != "gray" or b.kind != "gray" or a.channels.shape != b.channels.shape:
        raise ValueError(f"energies differ in kind or shape: {a.kind} {a.channels.shape}, {b.kind} {b.channels.shape}")
    channels = np.concatenate([a.channels, b.channels]).astype(np.uint16)
    meta = {"format": "DICOS dual-energy pair", "high_sop_instance": a.metadata.get("SOPInstanceUID", ""),
            "low_sop_instance": b.metadata.get("SOPInstanceUID", "")}
    # one air level for both: the brighter one, so neither channel's air reads as attenuating
    return Scan(scan_id, "dual", channels, max(a.i0, b.i0), pixel_pitch_mm=a.pixel_pitch_mm, metadata=meta)
