"""Patch store reading: random single-patch reads vs block batches, and memory while streaming.

Builds a store of ``--patches`` dual-energy patches (64x64 by default) from in-memory noise scans,
then, in the same run:
  * a DataLoader with shuffle=True (every patch a separate HDF5 read) against BlockBatchSampler
    (contiguous runs of 16 patches = one chunk read each), patches/s over ``--batches`` batches;
  * the process's peak resident memory growth while streaming the whole store once, against
    the store's size on disk (the dataset must not load the store).

  python benchmarks/bench_patch_store.py --patches 50000 --batches 100
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from xscreen.config import PatchConfig
from xscreen.dataset import BlockBatchSampler, PatchStoreDataset, build_patch_store
from xscreen.scan import Scan


def build(store: Path, n_patches: int, size: int, side: int = 1024) -> None:
    """Runs in a child process, so the scans it holds do not count in the parent's peak memory."""
    stride = size // 4  # overlapping tiles: many patches from few (small) in-memory scans
    per_scan = ((side - size) // stride + 1) ** 2
    rng = np.random.default_rng(0)
    scans = [Scan(f"noise{i}", "dual", rng.integers(1000, 60000, (2, side, side), dtype=np.uint16), 60000.0)
             for i in range(-(-n_patches // per_scan))]
    patch = PatchConfig(size, stride, skip_air=False)
    for _ in build_patch_store(scans, store, patch, max_per_scan=-(-n_patches // len(scans)), val_fraction=0.0):
        pass


def rate(loader, batches: int) -> float:
    it, n = iter(loader), 0
    t0 = time.perf_counter()
    for _ in range(batches):
        n += len(next(it))
    return n / (time.perf_counter() - t0)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=50_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--batches", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.h5"
        t0 = time.perf_counter()
        child = multiprocessing.get_context("fork").Process(target=build, args=(store, args.patches, args.size))
        child.start()
        child.join()
        build_s = time.perf_counter() - t0
        ds = PatchStoreDataset(store)
        mib = store.stat().st_size / 2**20
        print(f"store: {len(ds)} patches, {mib:.0f} MiB, built in {build_s:.1f} s")
        shuffled = rate(DataLoader(ds, batch_size=args.batch, shuffle=True), args.batches)
        blocks = rate(DataLoader(ds, batch_sampler=BlockBatchSampler(len(ds), args.batch, 16)), args.batches)
        print(f"| random reads (shuffle=True) | {shuffled:.0f} patches/s | 1.0 |")
        print(f"| BlockBatchSampler (16-patch runs) | {blocks:.0f} patches/s | {blocks / shuffled:.1f}x |")
        before = peak_rss_mib()
        t0 = time.perf_counter()
        for _ in DataLoader(ds, batch_sampler=BlockBatchSampler(len(ds), 256, 16)):
            pass
        print(f"streamed all {len(ds)} patches in {time.perf_counter() - t0:.0f} s; peak RSS "
              f"{before:.0f} -> {peak_rss_mib():.0f} MiB (store {mib:.0f} MiB)")


if __name__ == "__main__":
    main()
