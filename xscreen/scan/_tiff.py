"""TIFF: dual-energy pairs ``NAME_high.tif`` + ``NAME_low.tif`` and single grey/RGB images;
compressed strips (LZW + predictor, Deflate, JPEG, ...) are decoded by imagecodecs through tifffile.

Our own files carry i0, scan id, pixel pitch and metadata as JSON in the ImageDescription tag.
"""
from __future__ import annotations

import logging
import math
import re
import struct
import threading
from pathlib import Path

import numpy as np
import tifffile

from xscreen.atomic import atomic_path
from xscreen.scan._checks import header_json, make_scan, parse_header_json, to_counts
from xscreen.scan._limits import ReadLimits, check_chunk, check_size
from xscreen.scan._types import Scan, ScanError

TIFF_SUFFIXES = (".tif", ".tiff")
PAIR_TAGS = ("_high", "_low")
_PHOTO = tifffile.PHOTOMETRIC
# tifffile's series formats that open other files named inside this one (OME TiffData UUID FileName,
# Micro-Manager stacks, NDTiff indexes): a scan is one file, so these are never parsed (issue 32 item 6).
_ONE_FILE = {"is_ome": False, "is_mmstack": False, "is_ndtiff": False}
# <UUID FileName="f.tif">urn:uuid:...</UUID> inside TiffData: (FileName, the holder's UUID)
_OME_FILE_NAME = re.compile(r"""<(?:\w+:)?UUID\b[^>]*?\bFileName\s*=\s*(["'])(.*?)\1[^>]*>([^<]*)<""", re.S)
_OME_ROOT_UUID = re.compile(r"""<(?:\w+:)?OME\b[^>]*?\bUUID\s*=\s*(["'])(.*?)\1""", re.S)


def pair_stem(path: Path) -> Path | None:
    """'d/X_high.tif' or 'd/X_low.tiff' -> 'd/X'; None when the name is not a pair member."""
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return None
    for tag in PAIR_TAGS:
        if path.stem.lower().endswith(tag) and len(path.stem) > len(tag):
            return path.with_name(path.stem[: -len(tag)])
    return None


def pair_files(stem: Path) -> tuple[Path | None, Path | None]:
    """The existing (high, low) files of a pair stem; a half that is absent is None."""
    def find(tag: str) -> Path | None:
        exts = (".tif", ".tiff", ".TIF", ".TIFF")
        for name in (stem.name + t + ext for t in (tag, tag.upper()) for ext in exts):
            if stem.with_name(name).is_file():
                return stem.with_name(name)
        return None
    return find("_high"), find("_low")


def read_tiff_pair(stem: Path, limits: ReadLimits, asked: Path) -> Scan:
    """(2, H, W) dual scan from a pair; both headers are checked before either is read."""
    high, low = pair_files(stem)
    if high is None or low is None:
        missing = f"{stem.name}_high.tif" if high is None else f"{stem.name}_low.tif"
        raise ScanError(asked, f"TIFF pair is incomplete: {missing} is missing")
    count_pages(high, limits.max_pages)
    count_pages(low, limits.max_pages)
    with _TiffLog() as log, tifffile.TiffFile(high, **_ONE_FILE) as th, \
            tifffile.TiffFile(low, **_ONE_FILE) as tl:
        ph, pl = _page(high, th, log), _page(low, tl, log)
        for path, page in ((high, ph), (low, pl)):
            if page.samplesperpixel != 1:
                raise ScanError(path, f"a pair half must be one grey channel, found {page.samplesperpixel}")
        if ph.shape != pl.shape:
            raise ScanError(asked, f"high {ph.shape} and low {pl.shape} differ in shape")
        if ph.dtype != pl.dtype:
            raise ScanError(asked, f"high ({ph.dtype}) and low ({pl.dtype}) differ in pixel type")
        need = check_size(asked, ph.imagelength, ph.imagewidth, limits, 2, ph.dtype.itemsize, ph.dtype.kind == "f")
        for path, page in ((high, ph), (low, pl)):
            _check_tiles(path, page, limits, need)
        info = parse_header_json(ph.description)
        channels = np.stack([_grey(high, ph, log, "high"), _grey(low, pl, log, "low")])
    return make_scan(high, "dual", channels, scan_id=info.get("scan_id") or stem.name,
                     i0=info.get("i0"), pixel_pitch_mm=info.get("pixel_pitch_mm"),
                     metadata=info.get("metadata"))


def read_tiff_image(path: Path, limits: ReadLimits) -> Scan:
    """(1, H, W) grey or (3, H, W) RGB from a single TIFF (alpha dropped)."""
    count_pages(path, limits.max_pages)
    with _TiffLog() as log, tifffile.TiffFile(path, **_ONE_FILE) as tif:
        page = _page(path, tif, log)
        need = check_size(path, page.imagelength, page.imagewidth, limits, page.samplesperpixel,
                          page.dtype.itemsize, page.dtype.kind == "f")
        _check_tiles(path, page, limits, need)
        samples = page.samplesperpixel
        if page.photometric in (_PHOTO.MINISBLACK, _PHOTO.MINISWHITE) and samples == 1:
            kind, channels = "gray", _grey(path, page, log)[None]
        elif _is_rgb(page) and samples in (3, 4):
            data = to_counts(path, _read(path, page, log))
            hwc = data if page.planarconfig == tifffile.PLANARCONFIG.CONTIG else np.moveaxis(data, 0, -1)
            kind, channels = "rgb", np.moveaxis(hwc[..., :3], -1, 0)
        else:
            raise ScanError(path, f"unsupported TIFF layout: {page.photometric.name} with {samples} "
                                  f"channel(s) (expected grey, RGB or RGBA)")
        info = parse_header_json(page.description)
    return make_scan(path, kind, channels, scan_id=info.get("scan_id"), i0=info.get("i0"),
                     pixel_pitch_mm=info.get("pixel_pitch_mm"), metadata=info.get("metadata"))


def _is_rgb(page: tifffile.TiffPage) -> bool:
    """RGB, or YCbCr inside JPEG strips: the JPEG decoder hands back RGB (tifffile and most tools
    write colour JPEG TIFFs as YCbCr); uncompressed YCbCr would come back raw, so it stays refused."""
    return page.photometric == _PHOTO.RGB or (
        page.photometric == _PHOTO.YCBCR and page.compression == tifffile.COMPRESSION.JPEG)


def count_pages(path: Path, max_pages: int) -> int:
    """Pages (IFDs) in the file, walking the chain of offsets ourselves and stopping past
    ``max_pages``: tifffile parses every page before we could refuse (quadratic in the count)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None or len(head) < 8:
            return 0  # not a TIFF at all: tifffile names the fault
        big = struct.unpack(order + "H", head[2:4])[0] == 43
        offset = struct.unpack(order + ("Q" if big else "I"), head[8:16] if big else head[4:8])[0]
        count_fmt, entry, ptr = ("Q", 20, "Q") if big else ("H", 12, "I")
        seen: set[int] = set()
        while offset and offset not in seen:
            if len(seen) >= max_pages:
                raise ScanError(path, f"TIFF has more than {max_pages} pages; a scan is one image")
            seen.add(offset)
            fh.seek(offset)
            raw = fh.read(struct.calcsize(count_fmt))
            if len(raw) < struct.calcsize(count_fmt):
                break  # a dangling offset: tifffile reports the damage
            n = struct.unpack(order + count_fmt, raw)[0]
            fh.seek(offset + len(raw) + n * entry)
            raw = fh.read(struct.calcsize(ptr))
            offset = struct.unpack(order + ptr, raw)[0] if len(raw) == struct.calcsize(ptr) else 0
    return len(seen)


def _page(path: Path, tif: tifffile.TiffFile, log: "_TiffLog") -> tifffile.TiffPage:
    if not tif.pages or not tif.series:
        raise ScanError(path, "TIFF holds no image")
    _refuse_other_files(path, tif)
    series = tif.series[0]
    if len(series.pages) > 1:
        raise ScanError(path, f"TIFF holds a stack of {len(series.pages)} images; expected one")
    page = series.keyframe
    if page.is_tiled and page.imagedepth > 1:
        raise ScanError(path, "TIFF holds a volume; expected one 2-D image")
    if page.parent is not tif:
        raise ScanError(path, "TIFF image data live in another file; refused")
    _check_segments(path, page, log)
    return page


def _refuse_other_files(path: Path, tif: tifffile.TiffFile) -> None:
    """Multi-file OME-TIFF names the files holding its planes (<TiffData><UUID FileName=...>);
    tifffile would read pixels from there, past every check made on this file. Refused, as HDF5
    external storage is. A reference to this very file (its own name, or the UUID its OME root
    declares: a renamed single-file OME-TIFF) is the single-file form."""
    description = tif.pages.first.description or ""
    root = _OME_ROOT_UUID.search(description)
    own = root.group(2).strip() if root else None
    others = sorted({m.group(2) for m in _OME_FILE_NAME.finditer(description)
                     if m.group(2) != path.name and m.group(3).strip() != own})
    if others:
        raise ScanError(path, f"multi-file OME-TIFF: its planes are declared in other file(s) "
                              f"({others[0][:120]!r}); a scan must be one file, refused")


def _check_segments(path: Path, page: tifffile.TiffPage, log: "_TiffLog") -> None:
    """Every strip/tile the declared size needs must be present: tifffile leaves a missing one as
    zeros (ImageLength raised 100 -> 1000 over 1 strip gave 900 invented rows, issue 32 item 5)."""
    planes = page.samplesperpixel if page.planarconfig == tifffile.PLANARCONFIG.SEPARATE else 1
    if page.is_tiled:
        need = (math.ceil(page.imagelength / page.tilelength) * math.ceil(page.imagewidth / page.tilewidth)
                * math.ceil(page.imagedepth / max(page.tiledepth, 1)))
        what = "tiles"
    else:
        need = math.ceil(page.imagelength / max(page.rowsperstrip, 1)) * page.imagedepth
        what = "strips"
    need *= planes
    have = min(len(page.dataoffsets), len(page.databytecounts))
    if log.short_segments or have < need:
        raise ScanError(path, f"TIFF is incomplete: {page.imagelength} rows declared but only "
                              f"{have} of {need} {what} present (pixels would be invented)")


def _check_tiles(path: Path, page: tifffile.TiffPage, limits: ReadLimits, need: int) -> None:
    """A tile is decoded whole: a 64x72 image declaring 16384x16384 tiles needed 512 MiB per tile."""
    if page.is_tiled:
        samples = page.samplesperpixel if page.planarconfig == tifffile.PLANARCONFIG.CONTIG else 1
        check_chunk(path, "the image", (page.tilelength, page.tilewidth, samples), page.dtype.itemsize,
                    limits, need, unit="tiles")


def _read(path: Path, page: tifffile.TiffPage, log: "_TiffLog") -> np.ndarray:
    """Pixels of one page; a page whose data run past the end of the file, or a strip that is
    absent (offset or byte count 0, which tifffile fills with zeros), is refused."""
    size = path.stat().st_size
    ends = [int(o) + int(c) for o, c in zip(page.dataoffsets, page.databytecounts)]
    if not ends or max(ends) > size or min(page.databytecounts) <= 0 or min(page.dataoffsets) <= 0:
        raise ScanError(path, "TIFF is truncated: pixel data run past the end of the file or are absent")
    data = page.asarray()
    if log.short_segments:
        raise ScanError(path, "TIFF is incomplete: tifffile found fewer strips or tiles than the image "
                              "needs (pixels would be invented)")
    return data


def _grey(path: Path, page: tifffile.TiffPage, log: "_TiffLog", what: str = "image") -> np.ndarray:
    """(H, W) uint8/uint16; MINISWHITE is inverted so bright = air as everywhere else."""
    data = to_counts(path, _read(path, page, log).reshape(page.imagelength, page.imagewidth), what)
    if page.photometric == _PHOTO.MINISWHITE:
        data = np.iinfo(data.dtype).max - data
    return data


class _TiffLog(logging.Handler):
    """While a TIFF is parsed, tifffile's log records are kept here rather than printed to the
    user's stderr; the ones that mean pixels are missing (strip counts short of the declared size,
    which tifffile "fixes" by truncating its lists) fail the file."""

    _LOGGER = logging.getLogger("tifffile")
    _LOCK = threading.Lock()
    # tifffile's words for pixel data it could not find (it reads what is there, zeros elsewhere)
    _SHORT = ("incorrect StripOffsets count", "incorrect StripByteCounts count", "missing ByteCounts",
              "missing data ByteCounts", "segments, got")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.short_segments = False
        self._saved = True

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if any(sign in text for sign in self._SHORT):
            self.short_segments = True

    def __enter__(self) -> "_TiffLog":
        self._LOCK.acquire()  # one TIFF parse at a time per process: the logger is shared state
        self._saved = self._LOGGER.propagate
        self._LOGGER.addHandler(self)
        self._LOGGER.propagate = False
        return self

    def __exit__(self, *exc: object) -> None:
        self._LOGGER.removeHandler(self)
        self._LOGGER.propagate = self._saved
        self._LOCK.release()


def save_tiff_pair(scan: Scan, stem: str | Path) -> tuple[Path, Path]:
    """Write NAME_high.tif and NAME_low.tif (zlib) for a dual scan; returns (high, low) paths.

    ``stem`` may be 'd/NAME', 'd/NAME.tif' or either half's file name.
    """
    stem = Path(stem)
    stem = pair_stem(stem) or (stem.with_suffix("") if stem.suffix.lower() in TIFF_SUFFIXES else stem)
    if scan.kind != "dual":
        raise ScanError(stem, f"a TIFF pair holds a dual-energy scan; this scan is '{scan.kind}'")
    high, low = stem.with_name(stem.name + "_high.tif"), stem.with_name(stem.name + "_low.tif")
    # Nested temps: a write that fails part-way leaves neither half behind.
    with atomic_path(high) as tmp_high, atomic_path(low) as tmp_low:
        for tmp, data, channel in ((tmp_high, scan.high, "high"), (tmp_low, scan.low, "low")):
            tifffile.imwrite(tmp, data, photometric="minisblack", compression="zlib",
                             description=header_json(scan, channel=channel), metadata=None)
    return high, low


def save_tiff_image(scan: Scan, path: Path) -> Path:
    """Single grey (H, W) or RGB (H, W, 3) TIFF, 8 or 16 bit."""
    rgb = scan.kind == "rgb"
    data = np.moveaxis(scan.channels, 0, -1) if rgb else scan.channels[0]
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, data, photometric="rgb" if rgb else "minisblack", compression="zlib",
                         description=header_json(scan), metadata=None)
    return path
