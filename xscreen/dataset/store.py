"""Training data: the HDF5 patch store built from benign scans, and image-folder benchmarks.

Store layout (one file, written atomically):
    train/patches (N, C, S, S) uint8|uint16  raw detector values, as in the source scans
    train/scan_index (N,) int32              row of ``scans`` each patch came from
    train/origin (N, 2) int32                (y, x) of the patch's top-left corner in its scan
    val/...                                  same, from held-out scans only
    scans  compound (name, sha256, split, i0, n_patches)
    attrs: preprocess, patch (JSON), kind, seed, val_fraction, manifest_sha256
Normalisation is applied on read with each scan's own i0 (``preprocess.model_input``), so a store
built once serves any later change of the fixed map and scoring repeats exactly what training saw.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

import h5py
import numpy as np

from xscreen.atomic import atomic_path
from xscreen.config import PatchConfig, Preprocess
from xscreen.scan import Scan, ScanError

# 16 patches of 2x64x64 uint16 = 256 KiB per chunk: one chunk read serves a contiguous run of a
# batch, while a random single-patch read stays cheap.
CHUNK_PATCHES = 16
_SCAN_DTYPE = np.dtype([("name", h5py.string_dtype()), ("sha256", "S64"), ("split", "S5"),
                        ("i0", "f8"), ("n_patches", "i8")])


@dataclass(frozen=True)
class StoreProgress:
    """One scan processed (``done`` False), or the finished store (``done`` True)."""

    scan: int  # scans processed so far
    n_scans: int
    name: str
    split: str  # "train" | "val" | "" when done
    patches: int  # patches kept from this scan
    skipped_air: int  # air patches skipped in this scan
    n_train: int  # running totals
    n_val: int
    done: bool = False
    manifest_sha256: str = ""


@dataclass(frozen=True)
class StoreScan:
    name: str
    sha256: str
    split: str
    i0: float
    n_patches: int


@dataclass(frozen=True)
class StoreInfo:
    path: Path
    manifest_sha256: str
    kind: str
    preprocess: Preprocess
    patch: PatchConfig
    n_train: int
    n_val: int
    scans: list[StoreScan]

    @property
    def n_train_scans(self) -> int:
        return sum(s.split == "train" for s in self.scans)

    @property
    def n_val_scans(self) -> int:
        return sum(s.split == "val" for s in self.scans)


def split_scans(n: int, val_fraction: float, seed: int) -> np.ndarray:
    """(n,) bool, True = validation scan. Split by *scan*, so no validation patch shares a bag
    with a training patch; at least one scan on each side when val_fraction > 0."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    is_val = np.zeros(n, dtype=bool)
    if val_fraction == 0.0:
        return is_val
    if n < 2:
        raise ValueError(f"holding out validation scans needs at least 2 scans, got {n} (or set val_fraction 0)")
    n_val = min(max(1, round(n * val_fraction)), n - 1)
    is_val[np.random.default_rng(seed).permutation(n)[:n_val]] = True
    return is_val


def tile_origins(height: int, width: int, size: int, stride: int) -> np.ndarray:
    """(K, 2) int (y, x) top-left corners covering the whole image; the last row/column is pulled
    back to the edge rather than padded. The image must be at least ``size`` on each side."""
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")

    def axis(n: int) -> list[int]:
        starts = list(range(0, n - size + 1, stride))
        return starts if starts[-1] == n - size else starts + [n - size]

    ys, xs = axis(height), axis(width)
    return np.array([(y, x) for y in ys for x in xs], dtype=np.int32).reshape(-1, 2)


def _pad_to(scan: Scan, size: int) -> np.ndarray:
    """(C, H', W') channels padded with air (i0) up to ``size`` on each side."""
    c, h, w = scan.channels.shape
    if h >= size and w >= size:
        return scan.channels
    air = min(scan.i0, np.iinfo(scan.channels.dtype).max)
    out = np.full((c, max(h, size), max(w, size)), air, dtype=scan.channels.dtype)
    out[:, :h, :w] = scan.channels
    return out


@dataclass(frozen=True)
class StoreGrid:
    """The store's tiling of one scan: ``chans`` (C, H', W') air-padded to at least one patch,
    ``origins`` (K, 2) (y, x) and ``air`` (K,) bool - mean transmission >= the air threshold."""

    chans: np.ndarray
    origins: np.ndarray
    air: np.ndarray


def store_grid(scan: Scan, patch: PatchConfig) -> StoreGrid:
    """Where the store takes patches from ``scan`` and which of them are air (whatever ``skip_air``)."""
    chans = _pad_to(scan, patch.size)
    origins = tile_origins(chans.shape[1], chans.shape[2], patch.size, patch.stride)
    # float32 transmission, float64 only for the (H, W) mean whose running sums need it
    t = np.clip(chans.astype(np.float32) / np.float32(scan.i0), 0.0, 1.0).mean(axis=0, dtype=np.float64)
    integral = np.pad(t.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # patch means in O(1) each
    y, x, s = origins[:, 0], origins[:, 1], patch.size
    means = (integral[y + s, x + s] - integral[y, x + s] - integral[y + s, x] + integral[y, x]) / (s * s)
    return StoreGrid(chans, origins, means >= patch.air_threshold)


def extract_patches(scan: Scan, patch: PatchConfig, max_per_scan: int | None, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, int]:
    """Raw non-air patches of one scan: (K, C, S, S) source dtype, origins (K, 2), air patches skipped."""
    grid = store_grid(scan, patch)
    chans, origins, skipped = grid.chans, grid.origins, 0
    if patch.skip_air:
        skipped = int(grid.air.sum())
        origins = origins[~grid.air]
    if max_per_scan is not None and len(origins) > max_per_scan:
        origins = origins[np.sort(rng.choice(len(origins), max_per_scan, replace=False))]
    s = patch.size
    out = np.stack([chans[:, y:y + s, x:x + s] for y, x in origins]) if len(origins) else \
        np.zeros((0, chans.shape[0], s, s), chans.dtype)
    return out, origins, skipped


def _load(item: Path | Scan) -> tuple[Scan, str]:
    """The scan and the sha256 of its file (of its pixels for an in-memory scan)."""
    if isinstance(item, Scan):
        return item, hashlib.sha256(np.ascontiguousarray(item.channels).tobytes()).hexdigest()
    from xscreen.scan import file_sha256, load_scan  # readers land separately from the Scan type

    return load_scan(item), file_sha256(item)


def _append(group: h5py.Group, patches: np.ndarray, origins: np.ndarray, scan_row: int) -> None:
    n0, k = group["patches"].shape[0], len(patches)
    for name, data in (("patches", patches), ("origin", origins),
                       ("scan_index", np.full(k, scan_row, np.int32))):
        group[name].resize(n0 + k, axis=0)
        group[name][n0:] = data


def _create_groups(f: h5py.File, channels: int, size: int, dtype: np.dtype) -> None:
    for split in ("train", "val"):
        g = f.create_group(split)
        g.create_dataset("patches", (0, channels, size, size), dtype=dtype,
                         maxshape=(None, channels, size, size), chunks=(CHUNK_PATCHES, channels, size, size))
        g.create_dataset("scan_index", (0,), dtype=np.int32, maxshape=(None,), chunks=(4096,))
        g.create_dataset("origin", (0, 2), dtype=np.int32, maxshape=(None, 2), chunks=(4096, 2))


def _check(scan: Scan, item: Path | Scan, pre: Preprocess, dtype: np.dtype | None) -> None:
    where = item if isinstance(item, Path) else (scan.path or scan.scan_id)
    if scan.kind != pre.kind:
        raise ScanError(where, f"is a '{scan.kind}' scan but this store holds '{pre.kind}' scans")
    if dtype is not None and scan.channels.dtype != dtype:
        raise ScanError(where, f"is {scan.channels.dtype} but earlier scans in this store are {dtype}")


def build_patch_store(scans: Sequence[Path | Scan], out: Path, patch: PatchConfig = PatchConfig(),
                      pre: Preprocess | None = None, *, max_per_scan: int | None = None,
                      val_fraction: float = 0.2, seed: int = 0) -> Iterator[StoreProgress]:
    """Tile benign ``scans`` (files or in-memory Scans) into an HDF5 store at ``out``, one
    StoreProgress per scan and a final one with ``done``. ``pre`` None: the first scan's kind.
    Stopping the generator early leaves no file behind. Raises ScanError for a bad scan."""
    items = [Path(s) if not isinstance(s, Scan) else s for s in scans]
    if not items:
        raise ValueError("no scans given for the patch store")
    is_val = split_scans(len(items), val_fraction, seed)
    rng, digest = np.random.default_rng(seed), hashlib.sha256()
    rows, counts = [], {"train": 0, "val": 0}
    with atomic_path(Path(out)) as tmp, h5py.File(tmp, "w") as f:
        for i, item in enumerate(items):
            scan, sha = _load(item)
            pre = pre or Preprocess(kind=scan.kind)
            _check(scan, item, pre, f["train/patches"].dtype if "train" in f else None)
            if "train" not in f:
                _create_groups(f, pre.scan_channels, patch.size, scan.channels.dtype)
            split = "val" if is_val[i] else "train"
            patches, origins, skipped = extract_patches(scan, patch, max_per_scan, rng)
            _append(f[split], patches, origins, i)
            digest.update(f"{i}:{sha}:{split}:{scan.i0!r}:".encode())
            digest.update(np.ascontiguousarray(patches).tobytes() + origins.tobytes())
            counts[split] += len(patches)
            name = item.name if isinstance(item, Path) else scan.scan_id
            rows.append((name, sha.encode(), split.encode(), float(scan.i0), len(patches)))
            yield StoreProgress(i + 1, len(items), name, split, len(patches), skipped,
                                counts["train"], counts["val"])
        digest.update(json.dumps([asdict(pre), asdict(patch)], sort_keys=True).encode())
        _write_attrs(f, rows, pre, patch, seed, val_fraction, digest.hexdigest())
    yield StoreProgress(len(items), len(items), str(out), "", 0, 0, counts["train"], counts["val"],
                        done=True, manifest_sha256=digest.hexdigest())


def _write_attrs(f: h5py.File, rows: list, pre: Preprocess, patch: PatchConfig, seed: int,
                 val_fraction: float, manifest: str) -> None:
    f.create_dataset("scans", data=np.array(rows, dtype=_SCAN_DTYPE))
    f.attrs.update({"format": "xscreen-patch-store-1", "preprocess": json.dumps(asdict(pre)),
                    "patch": json.dumps(asdict(patch)), "kind": pre.kind, "seed": seed,
                    "val_fraction": val_fraction, "manifest_sha256": manifest})


def store_info(path: str | Path) -> StoreInfo:
    """Counts, configs, scan table and manifest hash of a store; raises ValueError if not a store."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != "xscreen-patch-store-1":
                raise ValueError(f"{path}: not an xscreen patch store")
            scans = [StoreScan(str(r["name"].decode() if isinstance(r["name"], bytes) else r["name"]),
                               r["sha256"].decode(), r["split"].decode(), float(r["i0"]), int(r["n_patches"]))
                     for r in f["scans"][()]]
            return StoreInfo(path, str(f.attrs["manifest_sha256"]), str(f.attrs["kind"]),
                             Preprocess(**json.loads(f.attrs["preprocess"])),
                             PatchConfig(**json.loads(f.attrs["patch"])),
                             int(f["train/patches"].shape[0]), int(f["val/patches"].shape[0]), scans)
    except OSError as exc:
        raise ValueError(f"{path}: cannot open patch store: {exc}") from exc
