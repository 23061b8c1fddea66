"""``fit``: the training loop as a generator of small reports (DESIGN.md 'Long jobs are generators').

Per epoch: train steps (ProgressReport every ``log_every`` steps), then the held-out *benign*
validation objective (mean anomaly score, eval-mode BatchNorm, lower is better; or with
``selection="pasted"``/``"inserted"`` minus the AUC of benign patches with a synthetic anomaly,
selection.py), LR schedulers
stepped, the training state written atomically, an EpochReport. Model selection and early
stopping use only that benign objective - never test data. At the end the best epoch's weights are
saved to the model file and calibrated on the validation scans (finish.py).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

from xscreen.config import RunConfig
from xscreen.loss import density_scale
from xscreen.runtime import Precision
from xscreen.train.session import Session, build_session, deterministic_mode, fingerprint
from xscreen.train.state import Progress, cpu_state, load_state, restore, save_state
from xscreen.train.step import StepResult, broadcast_module, d_update_due, distributed, train_step
from xscreen.train.validation import batch_of as _batch
from xscreen.train.validation import validation_density, validation_scores


PROGRESS_SECONDS = 2.0  # longest silence between two progress reports within an epoch


@dataclass(frozen=True)
class ProgressReport:
    epoch: int  # 1-based
    step: int  # steps done in this epoch
    steps: int
    g_loss: float
    d_loss: float
    patches_per_s: float


@dataclass(frozen=True)
class EpochReport:
    epoch: int  # 1-based
    epochs: int
    g_loss: float  # epoch means of the weighted terms
    g_adv: float
    g_con: float
    g_lat: float
    d_loss: float
    d_reinits: int  # in this epoch
    patches_per_s: float
    val_score_mean: float
    val_score_std: float
    val_objective: float
    lr: float
    seconds: float
    checkpoint: Path
    best: bool


@dataclass(frozen=True)
class DataInfo:
    """Provenance for the model card, and how validation patches group into scans."""

    manifest_sha256: str = ""
    n_train_scans: int = 0
    n_val_scans: int = 0
    val_scan_index: np.ndarray | None = field(default=None, compare=False)  # (N_val,)
    command: str = ""


def _set_epoch(loader: DataLoader, epoch: int) -> None:
    for s in (loader.batch_sampler, loader.sampler):
        if hasattr(s, "set_epoch"):
            s.set_epoch(epoch)


def _train_epoch(s: Session, run: RunConfig, epoch: int, sums: dict[str, float]) -> Iterator[ProgressReport]:
    """Runs one epoch, accumulating loss sums, step count, patches and D re-inits into ``sums``."""
    t = run.train
    _set_epoch(s.loader, epoch)
    noise_gen = torch.Generator().manual_seed(t.seed * 100_003 + epoch * 1009 + s.rank)
    steps, start = len(s.loader), time.perf_counter()
    last = start
    for i, item in enumerate(s.loader, 1):
        x = _batch(item)
        r: StepResult = train_step(s.pair, x, s.precision, s.weights, noise_std=t.input_noise,
                                   noise_gen=noise_gen, d_reinit_below=t.d_reinit_below, mask_share=t.input_mask,
                                   d_joint=t.d_batch == "joint", d_update=d_update_due(i - 1, t.d_every))
        for k in ("g_loss", "g_adv", "g_con", "g_lat", "d_loss"):
            sums[k] += getattr(r, k)
        sums["steps"] += 1
        sums["patches"] += x.shape[0] * s.world
        sums["d_reinits"] += int(r.d_reinit)
        now = time.perf_counter()
        # every log_every steps, and at least every PROGRESS_SECONDS: an epoch of fewer steps than
        # log_every must not sit silent until its end (issue 31 item 5)
        if i % max(1, t.log_every) == 0 or i == steps or now - last >= PROGRESS_SECONDS:
            last = now
            rate = sums["patches"] / max(now - start, 1e-9)
            yield ProgressReport(epoch + 1, i, steps, r.g_loss, r.d_loss, rate)
    sums["train_seconds"] = time.perf_counter() - start


def _objective(s: Session, run: RunConfig, val_data: Dataset) -> tuple[np.ndarray, float]:
    """Held-out benign scores (N,) and the objective to minimise (selection.py for ``pasted``)."""
    if distributed():
        # BN running statistics are per rank; take rank 0's so every rank scores (and decides) alike
        broadcast_module(s.generator)
        broadcast_module(s.discriminator)
    t = run.train
    score = lambda data: validation_scores(s.generator, s.discriminator, data, s.precision,  # noqa: E731
                                           lam=t.lam, recon=t.recon, batch_size=t.batch_size,
                                           inpaint=t.score_inpaint, window=t.recon_window)
    pre = run.preprocess
    scores, rho = score(val_data), 0.0
    if t.density > 0:  # the prior on this epoch's benign scale, as finish() will set it for the best epoch
        dens = validation_density(val_data, pre.kind)
        rho = t.density * density_scale(scores, dens)
        scores = scores + rho * dens
    if t.selection != "mean_score":
        from xscreen.train.selection import anomaly_dataset, anomaly_auc

        bad = anomaly_dataset(t.selection, val_data, pre.kind, pre.a_max, t.seed)
        bad_scores = score(bad) + (rho * validation_density(bad, pre.kind) if rho else 0.0)
        return scores, -anomaly_auc(scores, bad_scores)
    return scores, float(scores.mean())


def _agreed(value: float) -> float:
    """Rank 0's value on every rank (early stopping must stop all ranks on the same epoch)."""
    if not distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(t, 0)
    return float(t)


def _epoch_report(run: RunConfig, s: Session, epoch: int, sums: dict[str, float], scores: np.ndarray,
                  objective: float, lr: float, seconds: float, ckpt: Path, best: bool) -> EpochReport:
    n = max(sums["steps"], 1)
    rate = sums["patches"] / max(sums["train_seconds"], 1e-9)
    return EpochReport(epoch + 1, run.train.epochs, sums["g_loss"] / n, sums["g_adv"] / n, sums["g_con"] / n,
                       sums["g_lat"] / n, sums["d_loss"] / n, int(sums["d_reinits"]), rate,
                       float(scores.mean()), float(scores.std()), objective, lr, seconds, ckpt, best)


def _save(s: Session, path: Path, progress: Progress, best: dict, fp: str) -> None:
    if s.rank == 0:
        save_state(path, generator=s.generator, discriminator=s.discriminator, opt_g=s.pair.opt_g,
                   opt_d=s.pair.opt_d, sched_g=s.sched_g, sched_d=s.sched_d, scaler=s.pair.scaler,
                   progress=progress, best=best, fingerprint=fp)
    if distributed():
        dist.barrier()


def _check_inputs(run: RunConfig, train_data: Dataset, val_data: Dataset) -> None:
    """Refuse, before any work, data and configs that would fail late or save a wrong model file."""
    if len(val_data) == 0:  # type: ignore[arg-type]
        raise ValueError("no validation patches: calibration needs held-out benign scans")
    if len(train_data) == 0:  # type: ignore[arg-type]
        raise ValueError("no training patches")
    net = run.net
    if run.preprocess.channels != net.channels or run.patch.size != net.size:
        raise ValueError(f"inconsistent run: input '{run.preprocess.kind}' ({run.preprocess.channels} ch), patch "
                         f"{run.patch.size} px, network {net.channels} ch {net.size} px")
    shape = tuple(_batch(train_data[0]).shape)
    if shape != (net.channels, net.size, net.size):
        raise ValueError(f"training patches are {shape}, the network expects {(net.channels, net.size, net.size)}")


def fit(run: RunConfig, train_data: Dataset, val_data: Dataset, *, out: str | Path,
        workdir: str | Path | None = None, resume: bool = False, info: DataInfo = DataInfo()) -> Iterator[object]:
    """Train on ``train_data`` (items (C,S,S) in [-1,1]), select/calibrate on benign ``val_data``.

    Yields ProgressReport, EpochReport, and finally a TrainResult (finish.py) after the model file
    ``out`` is written. ``workdir`` (default ``<out>.work``) holds ``state.pt``; ``resume``
    continues from it exactly.
    """
    out = Path(out)
    workdir = Path(workdir) if workdir is not None else out.with_name(out.name + ".work")
    _check_inputs(run, train_data, val_data)
    with deterministic_mode(run.train.deterministic):
        yield from _fit(run, train_data, val_data, out, workdir, resume, info)


def _fit(run: RunConfig, train_data: Dataset, val_data: Dataset, out: Path, workdir: Path, resume: bool,
         info: DataInfo) -> Iterator[object]:
    from xscreen.train.finish import finish

    s = build_session(run, train_data)
    state_path = workdir / "state.pt"
    fp = fingerprint(run, len(train_data), len(val_data), info.manifest_sha256)  # type: ignore[arg-type]
    progress, best = Progress(), {}
    if resume and state_path.is_file():
        progress, best = restore(load_state(state_path, fp), generator=s.generator,
                                 discriminator=s.discriminator, opt_g=s.pair.opt_g, opt_d=s.pair.opt_d,
                                 sched_g=s.sched_g, sched_d=s.sched_d, scaler=s.pair.scaler)
    stopped_early = False
    for epoch in range(progress.epoch, run.train.epochs):
        if run.train.patience and progress.bad_epochs >= run.train.patience:
            stopped_early = True
            break
        t0 = time.perf_counter()
        sums = dict.fromkeys(("g_loss", "g_adv", "g_con", "g_lat", "d_loss", "steps", "patches", "d_reinits",
                              "train_seconds"), 0.0)
        yield from _train_epoch(s, run, epoch, sums)
        scores, objective = _objective(s, run, val_data)
        objective = _agreed(objective)
        lr = s.pair.opt_g.param_groups[0]["lr"]
        s.sched_g.step(), s.sched_d.step()
        is_best = objective < progress.best_objective
        if is_best:
            best = {"generator": cpu_state(s.generator), "discriminator": cpu_state(s.discriminator)}
            progress.best_epoch, progress.best_objective, progress.bad_epochs = epoch + 1, objective, 0
        else:
            progress.bad_epochs += 1
        progress.epoch, progress.d_reinits = epoch + 1, progress.d_reinits + int(sums["d_reinits"])
        progress.train_seconds += time.perf_counter() - t0
        progress.history.append({"epoch": epoch + 1, "val_objective": objective, "g_loss": sums["g_loss"]})
        _save(s, state_path, progress, best, fp)
        yield _epoch_report(run, s, epoch, sums, scores, objective, lr, time.perf_counter() - t0, state_path,
                            is_best)
    yield finish(run, s, best, progress, val_data, out, info, stopped_early)
