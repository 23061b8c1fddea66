"""``train_model``: benign scans -> patch store(s) -> ``fit`` -> calibrated model file.

What ``xscreen train`` and the training wizard both run. Under ``torchrun`` (WORLD_SIZE > 1) wrap
the call in ``distributed_context()``: rank 0 builds the patch store, every rank trains on its
DistributedSampler shard, rank 0 writes the files.

The model file appears at ``run.output`` only with its final calibration (issue 32 item 11: a kill
between training's provisional, patch-derived calibration and the held-out bags' left a
"legacy-derived" model at the path): ``fit`` writes and calibrates a staged copy in the work
folder, which is moved to the output path in one step when it is final.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist

from xscreen.atomic import atomic_path
from xscreen.config import Preprocess, RunConfig
from xscreen.train.finish import TrainResult
from xscreen.train.loop import DataInfo, fit
from xscreen.train.step import distributed


@contextlib.contextmanager
def distributed_context(device: str = "auto") -> Iterator[str]:
    """Join the torchrun process group when launched by torchrun (gloo on CPU, nccl on CUDA).

    Yields the device this rank should use (``cuda:<LOCAL_RANK>`` under multi-GPU torchrun).
    Outside torchrun it does nothing and yields ``device`` unchanged.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        yield device
        return
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    try:
        yield device
    finally:
        dist.destroy_process_group()


def expand_scans(items: tuple[str, ...] | list[str]) -> list[Path]:
    """Scan files and folders (each folder's scans, TIFF pairs grouped) -> sorted unique paths."""
    from xscreen.scan import ScanError, list_scans

    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = list_scans(p, recursive=True)
            if not found:
                raise ScanError(p, "folder holds no scan files")
            out += found
        elif p.exists() or Path(str(p) + "_high.tif").exists():
            out.append(p)
        else:
            raise ScanError(p, "no such file or folder")
    return list(dict.fromkeys(out))


def _kind_preprocess(run: RunConfig, first: Path) -> Preprocess:
    """The model input kind is the data's: taken from the first scan, keeping the config's a_max and
    material channel."""
    from xscreen.scan import load_scan

    try:  # Preprocess refuses a material channel on colour or grey data
        return Preprocess(kind=load_scan(first).kind, a_max=run.preprocess.a_max, material=run.preprocess.material)
    except ValueError as exc:
        raise ValueError(f"{first}: {exc}") from exc


def _build(scans: list[Path], out: Path, run: RunConfig, pre: Preprocess, val_fraction: float) -> Iterator:
    from xscreen.dataset import build_patch_store

    yield from build_patch_store(scans, out, run.patch, pre, val_fraction=val_fraction, seed=run.train.seed)


def prepare_stores(run: RunConfig, workdir: Path, reuse: bool) -> Iterator:
    """Build the patch store(s) in ``workdir`` (rank 0 only), yielding StoreProgress.

    ``run.val`` given: training store from ``run.benign``, validation store from ``run.val``;
    otherwise one store split by scan with ``train.val_fraction``.
    """
    benign = expand_scans(run.benign)
    if not benign:
        raise ValueError("no benign scans to train on")
    val = expand_scans(run.val) if run.val else []
    pre = _kind_preprocess(run, benign[0])
    jobs = [(benign, workdir / "patches.h5", 0.0 if val else run.train.val_fraction)]
    if val:
        jobs.append((val, workdir / "val_patches.h5", 0.0))
    for scans, path, fraction in jobs:
        if reuse and path.is_file():
            continue  # a resumed run must see exactly the patches it started with
        yield from _build(scans, path, run, pre, fraction)


def open_data(run: RunConfig, workdir: Path, command: str) -> tuple[RunConfig, object, object, DataInfo]:
    """(run with net/preprocess set from the store, train dataset, val dataset, DataInfo)."""
    from xscreen.dataset import PatchStoreDataset, store_info

    main = store_info(workdir / "patches.h5")
    split_val = not (workdir / "val_patches.h5").is_file()
    train = PatchStoreDataset(workdir / "patches.h5", "train", augment=run.train.augment)
    if split_val:
        val, val_info = PatchStoreDataset(workdir / "patches.h5", "val"), main
        manifest = main.manifest_sha256
    else:
        val_info = store_info(workdir / "val_patches.h5")
        val = PatchStoreDataset(workdir / "val_patches.h5", "train")  # a val-only store keeps all in 'train'
        manifest = hashlib.sha256((main.manifest_sha256 + val_info.manifest_sha256).encode()).hexdigest()
    n_val_scans = val_info.n_val_scans if split_val else val_info.n_train_scans
    net = dataclasses.replace(run.net, size=main.patch.size, channels=main.preprocess.channels)
    run = dataclasses.replace(run, net=net, preprocess=main.preprocess, patch=main.patch)
    info = DataInfo(manifest, main.n_train_scans, n_val_scans, val.scan_index, command)
    return run, train, val, info


def train_model(run: RunConfig, workdir: str | Path, resume: bool = False, command: str = "") -> Iterator[object]:
    """Yields StoreProgress (store building), ProgressReport, EpochReport, then a TrainResult.

    The model file goes to ``run.output``; ``workdir`` keeps the patch stores and ``state.pt``.
    """
    workdir = Path(workdir)
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    rank = dist.get_rank() if distributed() else 0
    if rank == 0:
        try:
            yield from prepare_stores(run, workdir, reuse=resume)
        except BaseException:
            # a run refused or stopped before its first store was complete leaves no empty folder
            # behind (stores are written to a temporary file and renamed, so nothing else is there)
            if created and not any(workdir.iterdir()):
                workdir.rmdir()
            raise
    if distributed():
        dist.barrier()
    run, train, val, info = open_data(run, workdir, command)
    out, staged = Path(run.output), workdir / STAGED
    run = dataclasses.replace(run, name=run.name or out.stem)  # the card's name is the output's, not the stage's
    for item in fit(run, train, val, out=staged, workdir=workdir, resume=resume, info=info):
        if isinstance(item, TrainResult):
            if rank == 0:
                item = yield from calibrate_for_screening(run, workdir, item)
                publish(staged, out)
            # the other ranks do not wait for rank 0's calibration (it screens scans: minutes)
            item = dataclasses.replace(item, model_path=out)
        yield item


STAGED = "model.staged.xsm"  # the model file in the work folder until its calibration is final


def publish(staged: Path, out: Path) -> None:
    """Move the finished model file to ``out`` in one step: a rename on the same file system, else
    a copy to a temporary file beside ``out`` renamed over it (atomic either way)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(staged, out)
    except OSError:  # another file system (EXDEV): copy, then rename
        with atomic_path(out) as tmp:
            shutil.copyfile(staged, tmp)
        staged.unlink()


def val_scans(run: RunConfig, workdir: Path) -> list[Path]:
    """The held-out benign scans: ``run.val``, or those of ``run.benign`` that the patch store in
    ``workdir`` held out (matched by file name; a name read from the store only selects among the
    paths given, it never becomes a path)."""
    if run.val:
        return expand_scans(run.val)
    from xscreen.dataset import store_info

    held_out = {s.name for s in store_info(workdir / "patches.h5").scans if s.split == "val"}
    return [p for p in expand_scans(run.benign) if p.name in held_out]


def calibrate_for_screening(run: RunConfig, workdir: Path, result: TrainResult) -> Iterator[object]:
    """Fit the alarm rule (issue 13: per bag, area-aware) on the held-out benign scans screened as
    operators screen them, so a freshly trained model carries the one rule instead of a calibration
    derived from patch statistics. Yields CalibrationProgress; returns the updated TrainResult. With
    fewer than 3 usable held-out scans the training calibration stays (the card says it is legacy)."""
    from xscreen.config import ScreenConfig
    from xscreen.evaluate.recalibrate import ScanCalibration, calibrate_on_scans, write_calibration

    final = None
    try:
        for item in calibrate_on_scans(result.model_path, val_scans(run, workdir), patch_far=run.train.patch_far,
                                       scan_far=run.train.scan_far, stride=ScreenConfig().stride,
                                       device=run.train.device):
            if isinstance(item, ScanCalibration):
                final = item
            else:
                yield item
    except ValueError:
        return result
    checksum = write_calibration(result.model_path, final)
    name = result.model_id.rsplit("-", 1)[0]
    return dataclasses.replace(result, model_id=f"{name}-{checksum[:12]}", calibration=final.calibration)
