"""The training wizard's jobs without Qt: warm-up timing, live reconstructions, recalibration, saving.

Each function is what one wizard button runs (in a worker thread); the GUI only displays results.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xscreen.config import Calibration, NetConfig, RunConfig, TrainConfig
from xscreen.wizard.logic import expand_inputs, safe_model_filename

PREVIEW_PATCHES = 8


@dataclass(frozen=True)
class SpeedEstimate:
    patches_per_s: float
    seconds_per_epoch: float
    total_seconds: float
    precision: str


def measure_speed(net: NetConfig, train: TrainConfig, n_patches: int, steps: int = 3) -> SpeedEstimate:
    """Time a few real training steps of this architecture on random data (after one warm-up step),
    with the run's discriminator batches and D-update cadence."""
    from xscreen.train import train_step
    from xscreen.train.session import new_pair, train_precision
    from xscreen.train.step import d_update_due

    precision = train_precision(net, train)  # what training itself will run in
    pair = new_pair(net, precision.device, train, precision)  # channels_last, as real training
    x = torch.rand(train.batch_size, net.channels, net.size, net.size) * 2 - 1
    joint = train.d_batch == "joint"
    train_step(pair, x, precision, d_joint=joint)
    steps = max(steps, train.d_every)  # at least one whole cycle of D updates (TrainConfig.d_every)
    start = time.perf_counter()
    for k in range(steps):
        train_step(pair, x, precision, d_joint=joint, d_update=d_update_due(k, train.d_every))
    rate = steps * train.batch_size / (time.perf_counter() - start)
    # validation scoring adds roughly a forward pass over the held-out patches; training dominates
    per_epoch = n_patches / rate
    return SpeedEstimate(rate, per_epoch, per_epoch * train.epochs, precision.name)


def fixed_val_patches(workdir: Path, n: int = PREVIEW_PATCHES, candidates: int = 256) -> torch.Tensor:
    """(n, C, S, S): the most structured held-out benign patches (highest pixel spread among up
    to ``candidates`` evenly spaced ones), the same every epoch. Evenly spaced patches alone were
    mostly near-air and showed a washed-out grey strip."""
    from xscreen.dataset import PatchStoreDataset

    val = PatchStoreDataset(Path(workdir) / "patches.h5", "val")
    try:
        if len(val) == 0:
            return torch.zeros(0)
        idx = np.unique(np.linspace(0, len(val) - 1, min(candidates, len(val))).astype(int))
        pool = torch.stack([val[int(i)] for i in idx])
        spread = pool.float().flatten(1).std(dim=1)
        keep = torch.argsort(spread, descending=True)[:n].sort().values
        return pool[keep]
    finally:
        val.close()


def reconstruct_from_state(state_path: Path, net: NetConfig, patches: torch.Tensor) -> torch.Tensor:
    """Reconstructions (N, C, S, S) of ``patches`` by the generator saved in a training-state file."""
    from xscreen.network import build_generator

    state = torch.load(state_path, map_location="cpu", weights_only=True)
    g = build_generator(net)
    g.load_state_dict(state["generator"])
    g.eval()
    with torch.inference_mode():
        return g(patches)


def preview_strip(patches: torch.Tensor, recon: torch.Tensor, kind: str) -> np.ndarray:
    """(3·S, N·S, 3) uint8: originals, reconstructions (one contrast stretch for both, from the
    originals' 1st-99th percentile, so faint benign texture is visible) and |difference| (black =
    reconstructed exactly, white = the originals' full stretched range)."""
    def grey(x: torch.Tensor) -> np.ndarray:  # (N, C, S, S) -> (N, S, S) float, dark = dense
        a = x.float().clamp(-1, 1).numpy()
        return -a[:, 1] if kind == "dual" else a.mean(axis=1)  # dual: low-energy attenuation

    orig, rec = grey(patches), grey(recon)
    lo, hi = np.percentile(orig, [1, 99])
    span = max(float(hi - lo), 1e-3)

    def row(a: np.ndarray) -> np.ndarray:
        u8 = (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)
        return np.repeat(np.concatenate(list(u8), axis=1)[..., None], 3, axis=2)

    return np.concatenate([row((orig - lo) / span), row((rec - lo) / span),
                           row(np.abs(orig - rec) / span)], axis=0)


def can_resume(workdir: Path) -> bool:
    """Whether a run in ``workdir`` stopped before its end: a training state newer than the model
    file it ends with (a finished run writes the model last; Resume would have nothing to do)."""
    state, model = Path(workdir) / "state.pt", Path(workdir) / "model.xsm"
    if not state.is_file():
        return False
    return not model.is_file() or model.stat().st_mtime_ns < state.stat().st_mtime_ns


@dataclass(frozen=True)
class ValScores:
    patch: np.ndarray  # (N,) raw scores of held-out benign patches
    scan_index: np.ndarray  # (N,) which held-out scan each came from


def validation_scores(model: Path, workdir: Path, device: str = "auto") -> ValScores:
    """Score the held-out benign patches with the saved model, exactly as screening does."""
    from xscreen.dataset import PatchStoreDataset
    from xscreen.train.finish import score_file

    val = PatchStoreDataset(Path(workdir) / "patches.h5", "val")
    try:
        return ValScores(score_file(Path(model), val, device), np.asarray(val.scan_index))
    finally:
        val.close()


def calibration_for(model: Path, scores: ValScores, patch_far: float, scan_far: float) -> Calibration:
    """Thresholds for the chosen false-alarm rates, aggregating scans as the model's calibration does.
    At the rates the model file was calibrated for, its own calibration: the train page's threshold
    and this page's are one number (rescoring the same held-out patches moved the 4th digit)."""
    import math

    from xscreen.checkpoint import read_meta
    from xscreen.metrics import calibrate, scan_scores_by_index

    meta, _ = read_meta(model)
    stored = meta.calibration
    if stored is not None and math.isclose(stored.patch_far, patch_far) and math.isclose(stored.scan_far, scan_far):
        return stored
    agg = meta.calibration.scan_aggregation if meta.calibration else "max"
    k = meta.calibration.top_k if meta.calibration else 5
    scans = scan_scores_by_index(scores.patch, scores.scan_index, agg, k)
    return calibrate(scores.patch, scans, patch_far, scan_far, aggregation=agg, top_k=k)


def calibration_summary(cal: Calibration, scores: ValScores) -> str:
    """The calibrate page's line: each threshold with how many held-out benign patches / scans reach
    it, and for the scans (few) the 95 % interval that count supports - "5.0 % of 3 scans" said
    nothing about how little 3 scans can show."""
    from xscreen.metrics import clopper_pearson, scan_scores_by_index

    scans = scan_scores_by_index(scores.patch, scores.scan_index, cal.scan_aggregation, cal.top_k)
    k, n = int((scans >= cal.scan_threshold).sum()), int(len(scans))
    ci = clopper_pearson(k, n)
    above = int((scores.patch >= cal.patch_threshold).sum())
    return (f"patch threshold {cal.patch_threshold:.4g}: {above} of {len(scores.patch)} held-out benign patches "
            f"reach it (target {cal.patch_far:.1%}) · scan threshold {cal.scan_threshold:.4g}: {k} of {n} held-out "
            f"benign scans alarm (95 % interval {ci.lo:.1%} to {ci.hi:.1%}; target {cal.scan_far:.1%})")


def recalibrate(model: Path, scores: ValScores, patch_far: float, scan_far: float) -> Calibration:
    """``calibration_for`` written into the model file."""
    from xscreen.checkpoint import update_model_meta

    from xscreen.checkpoint import read_meta

    cal = calibration_for(model, scores, patch_far, scan_far)
    if cal != read_meta(model)[0].calibration:  # unchanged rates: nothing to write
        update_model_meta(model, calibration=cal)
    return cal


def save_trained_model(model: Path, dest_dir: Path, run: RunConfig, evaluation: dict | None = None) -> Path:
    """Copy the trained model into ``dest_dir`` under the chosen name, with its card and config file.

    The copy is made atomically (temp + rename) so the screening tab never sees half a file.
    Returns the new model path; the run config lands beside it as ``<name>.json``.
    """
    from xscreen.atomic import atomic_path
    from xscreen.checkpoint import update_model_meta

    dest = Path(dest_dir) / safe_model_filename(run.name)
    with atomic_path(dest) as tmp:
        shutil.copyfile(model, tmp)
        update_model_meta(tmp, name=run.name, description=run.description, evaluation=evaluation)
    dataclasses.replace(run, output=str(dest)).save(dest.with_suffix(".json"))
    return dest


def evaluation_dirs(folder: Path, workdir: Path, benign_inputs: tuple[Path, ...]) -> tuple[Path, Path]:
    """(benign_dir, threat_dir) for evaluating a wizard-trained model.

    A folder in the ``xscreen synth`` layout (``benign/`` + ``threat/``) is used as it is. A folder of
    threat scans only is paired with the *held-out* benign scans of this run (never training scans),
    linked into ``workdir/eval_benign``.
    """
    from xscreen.dataset import store_info

    folder = Path(folder)
    if (folder / "benign").is_dir() and (folder / "threat").is_dir():
        return folder / "benign", folder / "threat"
    held_out = {s.name for s in store_info(Path(workdir) / "patches.h5").scans if s.split == "val"}
    link_dir = Path(workdir) / "eval_benign"
    shutil.rmtree(link_dir, ignore_errors=True)
    link_dir.mkdir(parents=True)
    for path in expand_inputs(benign_inputs):
        if path.name not in held_out:
            continue
        twin = path.with_name(path.name.replace("_high.", "_low."))  # a TIFF pair travels together
        for part in {path, twin}:
            if part.exists():
                (link_dir / part.name).symlink_to(part.resolve())
    return link_dir, folder
