"""Reader fuzzing (issue 16): seeded mutations of small valid files of every format, each loaded the
way the batch CLI and the GUI load scans (``load_scan``: reader process, memory budget, time limit).

Every outcome must be a fully valid Scan or a ScanError naming the file; the reader crashing or
being stopped on a file is an allowed outcome (it is counted: that is the isolation at work), an
exception of any other type or a half-valid Scan is a failure. The suite runs a few dozen cases
(tests/test_scan_fuzz.py, seed printed); this script runs thousands and reports outcome counts,
time per file and the peak memory of this process and of the reader.

Half-load detector (issue 32 item 5): the seed files are noise out to every edge, so whatever a
decoder really decodes from them is not flat. Rows at the bottom (or columns at the right) that
hold one value end to end in a channel are what decoders invent where data are missing (tifffile's
zeros for absent strips, libjpeg's grey after a premature end, HDF5's fill value): a loaded scan
whose decoded area (declared area less those rows and columns) is short of its declared area fails
the case as "half-load". The ``grow_dims`` mutation multiplies a header integer equal to a seed's
height or width, as the issue's reproductions raised ImageLength, the SOF height or Rows.

    python benchmarks/fuzz_readers.py [--cases 5000] [--seed N] [--budget 1G]
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import struct
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xscreen.scan import ReadLimits, Scan, ScanError, load_scan, save_h5, save_image, save_tiff_pair

MUTATIONS = ("flip_bits", "flip_near_names", "overwrite_header", "truncate", "big_numbers", "append_garbage",
             "grow_dims", "none")
_SEED_SIDES = (64, 72)  # the corpus images are 64 rows x 72 columns
_DIM_FORMATS = ("<H", ">H", "<I", ">I", "<Q")  # TIFF/DICOM/BMP/HDF5 little-endian, JPEG/PNG big-endian
# Where the trial found segfaults: HDF5 attribute messages (names, types, sizes beside them).
_NAMES = (b"i0", b"scan_id", b"metadata", b"kind", b"pixel_pitch_mm", b"high", b"low")


@dataclass
class FuzzReport:
    seed: int
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)  # ok / refused / reader crashed / timed out
    faults: Counter = field(default_factory=Counter)  # refusal reasons, numbers stripped
    failures: list[str] = field(default_factory=list)  # anything but a valid Scan or a ScanError
    failure_kinds: Counter = field(default_factory=Counter)  # exception / half-load / invalid / wrong file
    stopped: dict[str, bytes] = field(default_factory=dict)  # label -> bytes that crashed/hung the reader
    seconds: float = 0.0
    by_mutation: Counter = field(default_factory=Counter)


def corpus(folder: Path) -> dict[str, bytes]:
    """name -> bytes of a small valid file; names end in their suffix ('pair_high.tif' keeps a
    valid 'pair_low.tif' beside it when loaded)."""
    import cv2
    import tifffile
    from PIL import Image

    rng = np.random.default_rng(7)
    g16 = rng.integers(1, 65535, (64, 72)).astype(np.uint16)
    # a bright (air) band that is still noise: a flat row would read as invented to the detector
    g16[:4] = rng.integers(65000, 65535, (4, 72))
    rgb = rng.integers(1, 255, (3, 64, 72)).astype(np.uint8)
    save_h5(Scan("d", "dual", np.stack([g16, g16 // 2]), 65535.0), folder / "dual.h5")
    save_tiff_pair(Scan("p", "dual", np.stack([g16, g16 // 3]), 65535.0), folder / "pair")
    save_image(Scan("g", "gray", g16[None], 65535.0), folder / "g16.tif")
    save_image(Scan("g", "gray", (g16 >> 8).astype(np.uint8)[None], 255.0), folder / "g8.png")
    save_image(Scan("r", "rgb", rgb, 255.0), folder / "rgb.png")
    Image.fromarray(np.moveaxis(rgb, 0, -1)).save(folder / "rgb.jpg", quality=90)
    Image.fromarray(np.moveaxis(rgb, 0, -1)).save(folder / "rgb.bmp")
    cv2.imwrite(str(folder / "c16.png"), np.moveaxis(np.stack([g16] * 3), 0, -1))
    _write_dx(folder / "dx.dcs", g16 % 4096)
    # issue 32's shapes: LZW strips, tiles, progressive, restart-interval and MPF JPEG, early-allocated
    # HDF5 with a fill value, RLE and two-frame (dual) DICOS
    tifffile.imwrite(folder / "lzw.tif", g16, photometric="minisblack", compression="lzw", rowsperstrip=8)
    tifffile.imwrite(folder / "tiled.tif", g16, photometric="minisblack", compression="zlib", tile=(32, 32))
    Image.fromarray(np.moveaxis(rgb, 0, -1)).save(folder / "prog.jpg", quality=90, progressive=True)
    cv2.imwrite(str(folder / "rst.jpg"), (g16 >> 8).astype(np.uint8), [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    Image.fromarray(np.moveaxis(rgb, 0, -1)).save(folder / "mpo.jpg", format="MPO", save_all=True,
                                                  append_images=[Image.fromarray((g16 >> 8).astype(np.uint8))])
    _write_h5_early(folder / "early.h5", np.stack([g16, g16 // 2]))
    _write_dx(folder / "rle.dcs", g16 % 4096, rle=True)
    _write_dx(folder / "two.dcs", np.stack([g16 % 4096, g16 % 2048]))
    names = ("dual.h5", "pair_high.tif", "pair_low.tif", "g16.tif", "g8.png", "rgb.png", "rgb.jpg",
             "rgb.bmp", "c16.png", "dx.dcs", "lzw.tif", "tiled.tif", "prog.jpg", "rst.jpg", "mpo.jpg",
             "early.h5", "rle.dcs", "two.dcs")
    return {n: (folder / n).read_bytes() for n in names}


def _write_h5_early(path: Path, channels: np.ndarray) -> None:
    """Chunked gzip datasets allocated at creation with a fill value, then fully written."""
    import h5py

    with h5py.File(path, "w") as f:
        for name, data in zip(("high", "low"), channels):
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk((32, 36))
            dcpl.set_deflate(4)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_value(np.array(30000, np.uint16))
            space = h5py.h5s.create_simple(data.shape)
            dsid = h5py.h5d.create(f.id, name.encode(), h5py.h5t.STD_U16LE, space, dcpl=dcpl)
            h5py.Dataset(dsid)[...] = data
        f.attrs["i0"] = 65535.0


def _write_dx(path: Path, pixels: np.ndarray, rle: bool = False) -> None:
    """(H, W) or two frames (2, H, W) of 12-bit counts as a DICOS DX file."""
    import pydicom

    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop = "1.2.840.10008.5.1.4.1.1.501.2.2"
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[path.name])  # replayable seeds
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.dataset.FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    if rle:
        ds.compress(pydicom.uid.RLELossless)
    ds.save_as(path, enforce_file_format=True)


def mutate(data: bytes, kind: str, rng: np.random.Generator) -> bytes:
    """One seeded mutation of a file's bytes."""
    b = bytearray(data)
    if kind == "flip_bits":
        for _ in range(int(rng.integers(1, 9))):
            i = int(rng.integers(len(b)))
            b[i] ^= 1 << int(rng.integers(8))
    elif kind == "flip_near_names":
        spots = [m.start() for name in _NAMES for m in re.finditer(re.escape(name), bytes(b))] or [0]
        for _ in range(int(rng.integers(1, 4))):
            i = min(len(b) - 1, max(0, int(rng.choice(spots)) + int(rng.integers(-48, 48))))
            b[i] ^= 1 << int(rng.integers(8))
    elif kind == "overwrite_header":
        i = int(rng.integers(min(len(b), 512)))
        b[i:i + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
    elif kind == "truncate":
        b = b[: int(rng.integers(len(b)))]
    elif kind == "big_numbers":  # header dimensions and counts patched upwards
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(max(1, min(len(b), 1024) - 4)))
            fmt = ">I" if rng.random() < 0.5 else "<I"
            b[i:i + 4] = struct.pack(fmt, int(rng.choice([14000, 65535, 1 << 20, 0x7FFFFFFF])))
    elif kind == "append_garbage":
        b += rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
    elif kind == "grow_dims":
        b = _grow_dims(b, rng)
    return bytes(b)


def _grow_dims(b: bytearray, rng: np.random.Generator) -> bytearray:
    """One header integer (in the first 4 KiB) equal to a seed side, multiplied by 2-16."""
    head = bytes(b[:4096])
    spots = [(i, fmt) for fmt in _DIM_FORMATS for side in _SEED_SIDES
             for i in _find_all(head, struct.pack(fmt, side))]
    if spots:
        i, fmt = spots[int(rng.integers(len(spots)))]
        value = struct.unpack(fmt, b[i:i + struct.calcsize(fmt)])[0]
        b[i:i + struct.calcsize(fmt)] = struct.pack(fmt, value * int(rng.choice([2, 3, 10, 16])))
    return b


def _find_all(data: bytes, needle: bytes) -> list[int]:
    found, i = [], data.find(needle)
    while i >= 0:
        found.append(i)
        i = data.find(needle, i + 1)
    return found


def decoded_area(channels: np.ndarray, kind: str = "gray") -> tuple[int, int]:
    """(decoded, declared) pixel area of (C, H, W) channels: the declared area less the bottom rows
    and right columns that are flat (one value end to end). A dual scan's channels come from two
    datasets or files, so one flat channel counts; RGB channels come from one decode, whose fill is
    flat in all three (a corrupt but complete JPEG can saturate one channel: that is not missing)."""
    _, h, w = channels.shape
    flat_rows = (channels == channels[:, :, :1]).all(axis=2)  # (C, H)
    flat_cols = (channels == channels[:, :1, :]).all(axis=1)  # (C, W)
    if kind == "rgb":
        flat_rows, flat_cols = flat_rows.all(axis=0, keepdims=True), flat_cols.all(axis=0, keepdims=True)
    rows = max(_trailing(r) for r in flat_rows)
    cols = max(_trailing(c) for c in flat_cols)
    return (h - rows) * (w - cols), h * w


def _trailing(flags: np.ndarray) -> int:
    """How many True values end the 1-D array."""
    return int(flags.size) if flags.all() else int(np.argmin(flags[::-1]))


def check_valid(scan: Scan) -> str | None:
    """Why ``scan`` is not a fully valid Scan, or None."""
    c, h, w = scan.channels.shape
    if {"dual": 2, "rgb": 3, "gray": 1}.get(scan.kind) != c:
        return f"kind {scan.kind} with {c} channels"
    if scan.channels.dtype not in (np.uint8, np.uint16) or h < 64 or w < 64:
        return f"channels {scan.channels.dtype} {h}x{w}"
    if not (np.isfinite(scan.i0) and scan.i0 > 0 and scan.channels.any()):
        return f"i0 {scan.i0} / all zero"
    decoded, declared = decoded_area(scan.channels, scan.kind)
    if decoded < declared:
        return f"half-load: decoded area {decoded} of declared {declared} ({w}x{h})"
    return None


def fuzz(cases: int, seed: int, limits: ReadLimits = ReadLimits(memory_bytes=1 << 30, seconds=20.0),
         only: str = "", mutations: tuple[str, ...] = MUTATIONS) -> FuzzReport:
    """``cases`` seeded mutations (drawn from ``mutations``); ``only``: a suffix ('.h5') to fuzz one
    format."""
    rng = np.random.default_rng(seed)
    report = FuzzReport(seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = corpus(Path(tmp))
        names = sorted(n for n in base if n != "pair_low.tif" and n.endswith(only))
        for k in range(cases):
            name, kind = str(rng.choice(names)), str(rng.choice(mutations))
            report.by_mutation[kind] += 1
            _one(Path(tmp) / f"case{k % 8}", name, mutate(base[name], kind, rng), base, limits, report,
                 f"{name}/{kind}/{k}")
    report.cases, report.seconds = cases, time.perf_counter() - t0
    return report


def _one(folder: Path, name: str, data: bytes, base: dict[str, bytes], limits: ReadLimits,
         report: FuzzReport, label: str) -> None:
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    if name == "pair_high.tif":
        (folder / "pair_low.tif").write_bytes(base["pair_low.tif"])
    (folder / name).write_bytes(data)
    try:
        why = check_valid(load_scan(folder / name, limits=limits))
    except ScanError as err:
        outcome = "reader crashed" if "crashed" in err.fault else \
            "timed out" if "longer than" in err.fault else "refused"
        report.outcomes[outcome] += 1
        if outcome != "refused":
            report.stopped[label] = data
        report.faults[re.sub(r"[\d.,x]+", "#", err.fault)[:90]] += 1
        if name not in err.path and "pair" not in err.path:
            _fail(report, "wrong file named", f"{label}: error names {err.path}")
        return
    except Exception as exc:  # the failure this fuzzing looks for
        _fail(report, f"exception {type(exc).__name__}", f"{label}: {type(exc).__name__}: {exc}")
        return
    report.outcomes["ok" if why is None else "invalid"] += 1
    if why is not None:
        _fail(report, "half-load" if why.startswith("half-load") else "invalid Scan",
              f"{label}: half-valid Scan ({why})")


def _fail(report: FuzzReport, kind: str, line: str) -> None:
    report.failure_kinds[kind] += 1
    report.failures.append(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    ap.add_argument("--budget", default="1G", help="memory budget per file (XSCREEN_MEMORY_BUDGET syntax)")
    ap.add_argument("--only", default="", help="fuzz one format, by suffix (e.g. .h5)")
    ap.add_argument("--mutations", default=",".join(MUTATIONS), help="comma-separated subset of: "
                    + ", ".join(MUTATIONS))
    ap.add_argument("--keep", type=Path, help="save the files that crashed or hung the reader here")
    args = ap.parse_args()
    from xscreen.scan._limits import parse_bytes

    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"seed {seed}, {args.cases} cases, budget {args.budget} {args.only}", flush=True)
    kinds = tuple(k for k in args.mutations.split(",") if k)
    if not kinds or set(kinds) - set(MUTATIONS):
        ap.error(f"--mutations: choose from {', '.join(MUTATIONS)}")
    r = fuzz(args.cases, seed, ReadLimits(memory_bytes=parse_bytes(args.budget), seconds=20.0), args.only, kinds)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{r.cases} cases in {r.seconds:.1f} s ({1000 * r.seconds / max(r.cases, 1):.1f} ms/file); "
          f"peak RSS: this process {own:.0f} MiB, reader (largest) {child:.0f} MiB")
    for outcome, n in r.outcomes.most_common():
        print(f"  {outcome:<15} {n:>6}")
    print("most common refusals:")
    for fault, n in r.faults.most_common(12):
        print(f"  {n:>6}  {fault}")
    for label, data in r.stopped.items():
        print(f"  stopped the reader: {label}")
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            (args.keep / label.replace("/", "_")).write_bytes(data)
    print(f"failures: {len(r.failures)}" + "".join(f"; {k} {n}" for k, n in r.failure_kinds.most_common()))
    print("cases by mutation: " + ", ".join(f"{k} {n}" for k, n in sorted(r.by_mutation.items())))
    for line in r.failures[:20]:
        print("  " + line)
    raise SystemExit(1 if r.failures else 0)


if __name__ == "__main__":
    main()
