"""End of training: the best epoch's weights -> model file -> calibration on the validation scans.

Calibration scores the validation patches through ``scoring.Scorer`` loaded from the written file,
i.e. through exactly the code path (eval-mode BN, preprocessing, precision) that screening will
use, so the stored threshold means what screening will compare against.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from xscreen.atomic import atomic_path
from xscreen.checkpoint import ModelCard, ModelMeta, library_versions, save_model, update_model_meta, utc_now
from xscreen.config import Calibration, RunConfig
from xscreen.metrics import calibrate, scan_scores_by_index
from xscreen.train.session import Session
from xscreen.train.state import Progress
from xscreen.train.step import distributed

SCAN_AGGREGATION = "max"  # scan score = its most anomalous patch (metrics.scan_score)
TOP_K = 5


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    model_id: str
    best_epoch: int
    best_objective: float
    epochs_run: int
    stopped_early: bool
    d_reinits: int
    train_seconds: float
    calibration: Calibration


def _card(run: RunConfig, out: Path, progress: Progress, n_train: int, n_val: int, info) -> ModelCard:
    return ModelCard(name=run.name or out.stem, description=run.description, created=utc_now(),
                     seed=run.train.seed, data_manifest_sha256=info.manifest_sha256,
                     n_train_patches=n_train, n_val_patches=n_val, n_train_scans=info.n_train_scans,
                     n_val_scans=info.n_val_scans, versions=library_versions(),
                     train_seconds=round(progress.train_seconds, 3), command=info.command,
                     evaluation={"training": {"best_epoch": progress.best_epoch, "epochs_run": progress.epoch,
                                              "val_objective": progress.best_objective,
                                              "d_reinits": progress.d_reinits}})


def score_file(model: Path, data: Dataset, device: str) -> np.ndarray:
    """Scores (N,) of every patch of ``data`` with the saved model, as screening computes them."""
    from xscreen.scoring import Scorer

    scorer = Scorer(model, device=device)
    parts = []
    for item in DataLoader(data, batch_size=scorer.batch_size, shuffle=False):
        x = item[0] if isinstance(item, (list, tuple)) else item
        parts.append(scorer.score(x, keep_reconstructions=False).scores.double().cpu())
    return torch.cat(parts).numpy()


def calibrate_file(model: Path, data: Dataset, scan_index: np.ndarray | None, run: RunConfig) -> Calibration:
    """Score ``data`` with the model file, calibrate patch and scan thresholds, store them in it."""
    scores = score_file(model, data, run.train.device)
    # without a scan index (image-folder data) each item is a whole image, i.e. its own scan
    index = np.arange(len(scores)) if scan_index is None else np.asarray(scan_index)
    scans = scan_scores_by_index(scores, index, SCAN_AGGREGATION, TOP_K)
    cal = calibrate(scores, scans, run.train.patch_far, run.train.scan_far, aggregation=SCAN_AGGREGATION,
                    top_k=TOP_K)
    update_model_meta(model, calibration=cal)
    return cal


def finish(run: RunConfig, s: Session, best: dict, progress: Progress, val_data: Dataset, out: Path, info,
           stopped_early: bool) -> TrainResult:
    """Rank 0 writes and calibrates the model file; every rank returns the same TrainResult."""
    from xscreen.checkpoint import read_meta

    if best:  # a resumed run that had already finished has no new epoch but keeps its best weights
        s.generator.load_state_dict(best["generator"])
        s.discriminator.load_state_dict(best["discriminator"])
    if s.rank == 0:
        if run.train.density > 0:  # the prior's scale from the chosen weights' benign validation scores
            from xscreen.train.validation import benign_density_scale

            k = benign_density_scale(s.generator, s.discriminator, val_data, s.precision, run)
            run = dataclasses.replace(run, train=dataclasses.replace(run.train, density_scale=k))
        n_train, n_val = len(s.loader.dataset), len(val_data)  # type: ignore[arg-type]
        meta = ModelMeta(run.net, run.preprocess, run.patch, run.train, None,
                         _card(run, out, progress, n_train, n_val, info))
        index = info.val_scan_index if info.val_scan_index is not None else getattr(val_data, "scan_index", None)
        with atomic_path(out) as staged:  # a kill before calibration must not leave an uncalibrated model at out
            save_model(staged, s.generator, s.discriminator, meta)
            calibrate_file(staged, val_data, index, run)
    if distributed():
        dist.barrier()
    meta, checksum = read_meta(out)
    return TrainResult(out, f"{meta.card.name}-{checksum[:12]}", progress.best_epoch, progress.best_objective,
                       progress.epoch, stopped_early, progress.d_reinits, progress.train_seconds,
                       meta.calibration)  # type: ignore[arg-type]
