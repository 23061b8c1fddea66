"""Scans and every reader/writer (DESIGN.md 'Scan formats in').

Formats in: HDF5 (native, dual), TIFF pairs NAME_high.tif + NAME_low.tif (dual), single grey/RGB
images (PNG, JPEG, BMP, TIFF; 8 or 16 bit), DICOS/DICOM DX (.dcs, .dcm).
Formats out: HDF5 and TIFF pairs (dual); PNG and TIFF (rgb/gray). All writes are atomic.

``load_scan`` raises ``ScanError(path, fault)`` for anything it cannot use, and nothing else:
every library error is wrapped, and a Scan is only built once all its pixels are read and checked.
By default the file is decoded in a reader process (_isolated.py) under ReadLimits (_limits.py:
pixels, memory budget, time, TIFF pages), so a file that crashes, hangs or exhausts the decoder
fails alone. ``isolated=False`` decodes in this process: only for files this program wrote itself
or already checked, where the one pixel copy through the pipe matters (benchmarks, tests).
"""
from __future__ import annotations

import dataclasses
import hashlib
import warnings
from pathlib import Path

from xscreen.budget import memory_budget_from_env
from xscreen.text import valid_data, valid_text

from xscreen.scan._dicom import DICOM_SUFFIXES, read_dicom
from xscreen.scan._hdf5 import read_h5, save_h5
from xscreen.scan._image import IMAGE_SUFFIXES, read_image, save_png
from xscreen.scan._isolated import ReaderUnavailable, shared_reader
from xscreen.scan._limits import DEFAULT_MEMORY_BUDGET, ReadLimits
from xscreen.scan._tiff import (TIFF_SUFFIXES, pair_files, pair_stem, read_tiff_image, read_tiff_pair,
                                save_tiff_image, save_tiff_pair)
from xscreen.scan._types import DEFAULT_MAX_PIXELS, MIN_SIDE, Scan, ScanError

__all__ = ["DEFAULT_MAX_PIXELS", "DEFAULT_MEMORY_BUDGET", "MIN_SIDE", "ReadLimits", "SCAN_SUFFIXES", "Scan",
           "ScanError", "file_sha256", "list_scans", "load_scan", "pair_files", "read_in_process", "save_h5",
           "save_image", "save_scan", "save_tiff_pair"]

H5_SUFFIXES = (".h5", ".hdf5", ".hdf")
SCAN_SUFFIXES = H5_SUFFIXES + TIFF_SUFFIXES + IMAGE_SUFFIXES + DICOM_SUFFIXES
_READERS = {
    **{s: (read_h5, "HDF5") for s in H5_SUFFIXES},
    **{s: (read_tiff_image, "TIFF") for s in TIFF_SUFFIXES},
    **{s: (read_image, s[1:].upper()) for s in IMAGE_SUFFIXES},
    **{s: (read_dicom, "DICOM") for s in DICOM_SUFFIXES},
}


def load_scan(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, limits: ReadLimits | None = None,
              isolated: bool = True) -> Scan:
    """Any supported scan file, a TIFF-pair half, or a pair's stem path ('d/NAME') -> Scan.
    ``limits`` default: ReadLimits.from_env(max_pixels) (XSCREEN_MEMORY_BUDGET, XSCREEN_READ_TIMEOUT)."""
    try:
        if limits is None:
            memory_budget_from_env()  # 'inf' or 1e30: a named error, not an OverflowError or no limit
        limits = limits or ReadLimits.from_env(max_pixels)
    except (ValueError, OverflowError) as exc:
        raise ScanError(path, f"cannot read under these settings: {exc}") from exc
    reader = shared_reader(read_in_process) if isolated else None
    if reader is not None:
        try:
            return _valid(reader.load(Path(path), limits))
        except ReaderUnavailable as exc:  # say so, but a platform without it still reads scans
            warnings.warn(f"{exc}; reading {path} in this process, without crash isolation", RuntimeWarning)
    return _valid(read_in_process(Path(path), limits))


def _valid(scan: Scan) -> Scan:
    """Text read from the file made valid Unicode once, here (text.valid_text): a lone surrogate in
    a scan id from a TIFF/PNG JSON header made summary.csv and the audit log raise
    UnicodeEncodeError after every bag had been screened (issue 32 item 2)."""
    scan_id, metadata = valid_text(scan.scan_id), valid_data(scan.metadata)
    if scan_id == scan.scan_id and metadata == scan.metadata:
        return scan
    return dataclasses.replace(scan, scan_id=scan_id, metadata=metadata)


def read_in_process(path: Path, limits: ReadLimits) -> Scan:
    """``load_scan`` in this process (what the reader process runs)."""
    try:
        return _load(path, limits)
    except ScanError:
        raise
    except MemoryError as exc:
        raise ScanError(path, "not enough memory to load this scan") from exc
    except Exception as exc:  # any library's error on a broken file: name the file, keep the cause
        fmt = _READERS.get(path.suffix.lower(), (None, "scan"))[1]
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise ScanError(path, f"corrupt or unreadable {fmt} file ({type(exc).__name__}"
                              f"{': ' + detail if detail else ''})") from exc


def _load(path: Path, limits: ReadLimits) -> Scan:
    if path.is_dir():
        raise ScanError(path, "is a folder, not a scan file (list_scans lists the scans in it)")
    stem = pair_stem(path)
    if stem is None and not path.exists():
        # A pair's stem path: 'd/NAME' (or 'd/NAME.tif') for d/NAME_high.tif + d/NAME_low.tif.
        bare = path.with_suffix("") if path.suffix.lower() in TIFF_SUFFIXES else path
        stem = bare if any(pair_files(bare)) else None
    if stem is not None:
        if not path.exists() and not any(pair_files(stem)):
            raise ScanError(path, "file not found")
        for half in pair_files(stem):
            if half is not None:
                _check_file(half)
        return read_tiff_pair(stem, limits, path)
    _check_file(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ScanError(path, f"unsupported file type '{path.suffix or '(no extension)'}' "
                              f"(supported: {' '.join(SCAN_SUFFIXES)})")
    return reader[0](path, limits)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ScanError(path, "file not found")
    if not path.is_file():
        raise ScanError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise ScanError(path, "empty file")


def list_scans(folder: str | Path, recursive: bool = False) -> list[Path]:
    """Scan files in a folder, sorted; a TIFF pair is one entry (its _high file, or the half
    present when the other is missing, so that loading it reports the fault). Hidden files,
    other extensions and sub-folders (unless ``recursive``) are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScanError(folder, "folder not found" if not folder.exists() else "not a folder")
    try:
        candidates = sorted(folder.rglob("*") if recursive else folder.iterdir())
    except OSError as exc:
        raise ScanError(folder, f"cannot list folder ({exc.strerror or exc})") from exc
    found: list[Path] = []
    pairs: set[Path] = set()
    for p in candidates:
        hidden = any(part.startswith(".") for part in p.relative_to(folder).parts)
        if hidden or p.suffix.lower() not in SCAN_SUFFIXES or not p.is_file():
            continue
        stem = pair_stem(p)
        if stem is None:
            found.append(p)
        elif stem not in pairs:
            pairs.add(stem)
            high, low = pair_files(stem)
            found.append(high or low or p)
    return sorted(found)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a scan file's bytes; a pair's stem path hashes its _high file."""
    path = Path(path)
    if not path.is_file() and pair_files(path)[0] is not None:
        path = pair_files(path)[0]
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise ScanError(path, f"cannot read file ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def save_image(scan: Scan, path: str | Path) -> Path:
    """A grey or RGB scan as PNG or TIFF (by extension), atomically."""
    path = Path(path)
    if scan.kind == "dual":
        raise ScanError(path, "a dual-energy scan needs two images: use save_h5 or save_tiff_pair")
    if path.suffix.lower() == ".png":
        return save_png(scan, path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        return save_tiff_image(scan, path)
    raise ScanError(path, f"cannot write '{path.suffix}' images (use .png or .tif)")


def save_scan(scan: Scan, path: str | Path) -> list[Path]:
    """Write any scan by extension: .h5 (dual), .tif (dual -> NAME_high/_low pair), .png/.tif (rgb/gray)."""
    path = Path(path)
    if path.suffix.lower() in H5_SUFFIXES:
        return [save_h5(scan, path)]
    if scan.kind == "dual" and path.suffix.lower() in TIFF_SUFFIXES:
        return list(save_tiff_pair(scan, path))
    return [save_image(scan, path)]
