"""Shared harness for the real-data benchmarks (paper_cifar10.py, sixray.py).

Every method sees the same uint8 patches and the same splits. Skip-GANomaly is trained with the
product's own loop (``xscreen.train.fit``) and the selected model is scored through
``xscreen.scoring.Scorer`` loaded from the written model file, i.e. exactly what screening runs.
Model selection uses only the benign validation split; the "paper's way" (best epoch chosen on the
test set) is computed alongside from the per-epoch training state and is labelled optimistic.
"""
from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from xscreen.atomic import atomic_write_text
from xscreen.metrics import average_precision, roc_auc

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def log(msg: str) -> None:
    """Timestamped progress line on stdout (the background runs tee this into /tmp logs)."""
    print(f"[{datetime.now(timezone.utc):%H:%M:%S}] {msg}", flush=True)


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ArrayPatches(Dataset):
    """uint8 patches (N, C, S, S) -> items (C, S, S) float32 in [-1, 1] (Preprocess 'rgb' with
    i0 = 255: bright = air = +1; the reference repo's Normalize(0.5, 0.5) is the same map)."""

    def __init__(self, patches: np.ndarray, scan_index: np.ndarray | None = None):
        if patches.dtype != np.uint8 or patches.ndim != 4:
            raise ValueError(f"expected uint8 (N, C, S, S) patches, got {patches.dtype} {patches.shape}")
        self.patches = patches
        self.scan_index = scan_index

    def __len__(self) -> int:
        return int(self.patches.shape[0])

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.patches[i]).float().div_(127.5).sub_(1.0)

    def __getitems__(self, idx: list[int]) -> list[torch.Tensor]:
        # one fancy-index per batch instead of one per item: the loader is otherwise the bottleneck
        x = torch.from_numpy(self.patches[np.asarray(idx)]).float().div_(127.5).sub_(1.0)
        return list(x)


def auc_ap(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    return roc_auc(labels, scores), average_precision(labels, scores)


# --- Skip-GANomaly through the product's train loop -----------------------------------------
@dataclass
class SkipOutcome:
    model_path: Path
    best_epoch: int  # chosen on the benign validation objective
    history: list[dict] = field(default_factory=list)  # per epoch: val objective (+ test AUC when given)
    train_seconds: float = 0.0


def nets_from_state(state_path: Path, run) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The networks of the last finished epoch, from the training-state file fit() writes."""
    from xscreen.network import Discriminator, build_generator

    state = torch.load(state_path, map_location="cpu", weights_only=True)
    g, d = build_generator(run.net), Discriminator(run.net)
    g.load_state_dict(state["generator"])
    d.load_state_dict(state["discriminator"])
    return g.eval(), d.eval()


def score_nets(g: torch.nn.Module, d: torch.nn.Module, data: Dataset, run) -> np.ndarray:
    """(N,) anomaly scores, eval-mode BN, with the train loop's own validation scorer."""
    from xscreen.runtime import precision_for
    from xscreen.train import validation_scores

    prec = precision_for(run.train.device, run.train.precision)
    g, d = g.to(prec.device), d.to(prec.device)
    t = run.train
    return validation_scores(g, d, data, prec, lam=t.lam, recon=t.recon, batch_size=256, inpaint=t.score_inpaint,
                             window=t.recon_window)


def train_skip(run, train: Dataset, val: Dataset, workdir: Path,
               on_epoch: Callable[[int, torch.nn.Module, torch.nn.Module], dict] | None = None,
               val_scan_index: np.ndarray | None = None) -> SkipOutcome:
    """fit() to ``workdir/skipganomaly.xsm``; ``on_epoch(epoch, G, D)`` may add test numbers per epoch."""
    from xscreen.train import DataInfo, EpochReport, TrainResult, fit

    workdir.mkdir(parents=True, exist_ok=True)
    out = SkipOutcome(workdir / "skipganomaly.xsm", 0)
    info = DataInfo(val_scan_index=val_scan_index, command=" ".join(sys.argv))
    t0 = time.time()
    for rep in fit(run, train, val, out=out.model_path, workdir=workdir, info=info):
        if isinstance(rep, EpochReport):
            row = {"epoch": rep.epoch, "val_objective": rep.val_objective, "g_loss": rep.g_loss,
                   "d_loss": rep.d_loss, "d_reinits": rep.d_reinits, "patches_per_s": rep.patches_per_s}
            if on_epoch is not None:
                row.update(on_epoch(rep.epoch, *nets_from_state(rep.checkpoint, run)))
            out.history.append(row)
            log(f"skip-ganomaly epoch {rep.epoch}/{rep.epochs}: " + ", ".join(
                f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        elif isinstance(rep, TrainResult):
            out.best_epoch = rep.best_epoch
    out.train_seconds = time.time() - t0
    return out


def score_model_file(path: Path, data: Dataset, device: str) -> np.ndarray:
    """(N,) scores with the saved model through scoring.Scorer (what screening computes)."""
    from xscreen.train.finish import score_file

    return score_file(path, data, device)


# --- reporting ------------------------------------------------------------------------------
def environment() -> dict:
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "machine": platform.machine(), "threads": torch.get_num_threads(), "date": utc_stamp()}


def write_outputs(out_dir: Path, stem: str, result: dict, markdown: str) -> None:
    """``stem``.json and ``stem``.md, each written atomically (a crashed run leaves no half file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / f"{stem}.json", json.dumps(result, indent=1, default=_json_default))
    atomic_write_text(out_dir / f"{stem}.md", markdown)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def md_table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        if v is None:
            return "n/a"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
