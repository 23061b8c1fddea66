"""Lazy torch Dataset over a patch store: nothing but the file name and small metadata is held,
so a store of millions of patches trains in constant memory, and DataLoader workers each open
their own HDF5 handle (h5py handles must not cross a fork)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from xscreen.dataset.store import store_info
from xscreen.preprocess import model_input
from xscreen.scan import Scan


def augment_patch(x: torch.Tensor) -> torch.Tensor:
    """(C, S, S) -> a random one of the 8 flips/90-degree rotations. Uses torch's RNG, which the
    DataLoader seeds per worker (numpy's RNG would be duplicated across forked workers)."""
    k = int(torch.randint(0, 4, ()))
    if k:
        x = torch.rot90(x, k, dims=(1, 2))
    if int(torch.randint(0, 2, ())):
        x = torch.flip(x, dims=(2,))
    return x


class PatchStoreDataset(Dataset):
    """``split`` ("train" | "val") of a patch store; items are (C, S, S) float32 in [-1, 1]."""

    def __init__(self, path: str | Path, split: str = "train", augment: bool = False):
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        self.path = Path(path)
        self.split = split
        self.augment = augment
        info = store_info(self.path)
        self.preprocess = info.preprocess
        self.patch = info.patch
        self.manifest_sha256 = info.manifest_sha256
        self.scan_names = [s.name for s in info.scans]
        self._i0 = [s.i0 for s in info.scans]  # per scan, tiny
        self._len = info.n_train if split == "train" else info.n_val
        self._file: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return self._len

    def _group(self) -> h5py.Group:
        if self._file is None or self._pid != os.getpid():
            # a handle inherited through fork shares the parent's file state: open our own
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file[self.split]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, -1
        return state

    def _normalise(self, raw: np.ndarray, scan_row: int, augment: bool) -> torch.Tensor:
        scan = Scan("", self.preprocess.kind, raw, self._i0[scan_row])
        x = torch.from_numpy(model_input(scan, self.preprocess))
        return augment_patch(x) if augment else x

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -self._len <= i < self._len:
            raise IndexError(f"patch {i} out of range for {self._len} {self.split} patches")
        g = self._group()
        i = int(i) % self._len
        return self._normalise(g["patches"][i], int(g["scan_index"][i]), self.augment)

    def __getitems__(self, indices: list[int]) -> list[torch.Tensor]:
        """Batched fetch (used by DataLoader): each contiguous run of indices is one slice read."""
        g = self._group()
        position = sorted(range(len(indices)), key=indices.__getitem__)
        out: list[torch.Tensor] = [torch.empty(0)] * len(indices)
        k = 0
        for run in _runs(sorted(indices)):
            x = self._normalise_run(g["patches"][run[0]:run[-1] + 1], g["scan_index"][run[0]:run[-1] + 1])
            for j in range(len(run)):
                out[position[k]] = augment_patch(x[j]) if self.augment else x[j]
                k += 1
        return out

    def _normalise_run(self, raw: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """(n, C, S, S) raw -> float32, one model_input call per scan in the run (a run is
        usually a strip of one scan); model_input is element-wise, so a stack of patches is fine."""
        x = np.empty((raw.shape[0], self.preprocess.channels, *raw.shape[2:]), np.float32)
        for r in np.unique(rows):
            sel = rows == r
            x[sel] = model_input(Scan("", self.preprocess.kind, raw[sel], self._i0[int(r)]), self.preprocess)
        return torch.from_numpy(x)

    def read(self, start: int, stop: int) -> torch.Tensor:
        """(stop - start, C, S, S) float32, never augmented: for scoring the validation split."""
        g = self._group()
        return self._normalise_run(g["patches"][start:stop], g["scan_index"][start:stop])

    @property
    def scan_index(self) -> np.ndarray:
        """(N,) int32: the store's scan row of each patch (read on demand, not held)."""
        return self._group()["scan_index"][()]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _runs(sorted_indices: list[int]) -> Iterator[list[int]]:
    run: list[int] = []
    for i in sorted_indices:
        if run and i != run[-1] + 1:
            yield run
            run = []
        run.append(i)
    if run:
        yield run


class BlockBatchSampler(Sampler[list[int]]):
    """Batches made of ``block`` contiguous patches from random places in the store: a batch of 64
    with block 16 costs 4 chunk reads instead of 64 random ones, and since a block is a strip of one
    scan, each batch still mixes several scans. Shuffled afresh each epoch (``set_epoch``)."""

    def __init__(self, n: int, batch_size: int, block: int = 16, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0):
        if batch_size < 1 or block < 1:
            raise ValueError("batch_size and block must be >= 1")
        self.n, self.batch_size, self.block = n, batch_size, block
        self.shuffle, self.drop_last, self.seed, self.epoch = shuffle, drop_last, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        # only whole blocks are shuffled; the short tail block stays last so every other batch
        # stays aligned to block (= chunk) boundaries
        full = np.arange(0, self.n - self.n % self.block, self.block)
        if self.shuffle:
            full = np.random.default_rng((self.seed, self.epoch)).permutation(full)
        starts = np.r_[full, [self.n - self.n % self.block] if self.n % self.block else []].astype(int)
        flat = np.concatenate([np.arange(s, min(s + self.block, self.n)) for s in starts]) if self.n else []
        for b in range(0, len(flat), self.batch_size):
            batch = [int(i) for i in flat[b:b + self.batch_size]]
            if len(batch) == self.batch_size or not self.drop_last:
                yield batch

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)
