"""The training-state file (``state.pt`` in the work dir), written atomically after every epoch.

Holds everything ``resume`` needs to continue *exactly*: both networks, both optimisers, both
schedulers, the grad scaler, the RNG states, the epoch counter, the D re-init count, the
early-stopping bookkeeping and the best epoch's weights. Only tensors and primitive containers are
stored, so it loads with ``torch.load(weights_only=True)`` (no arbitrary unpickling).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from xscreen.atomic import atomic_path

STATE_FORMAT = "xscreen-train-state/1"


@dataclass
class Progress:
    """Bookkeeping carried across epochs (and across a resume)."""

    epoch: int = 0  # epochs completed
    d_reinits: int = 0
    best_epoch: int = 0
    best_objective: float = float("inf")
    bad_epochs: int = 0  # epochs since the best one (early stopping)
    train_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


def _unwrap(m: nn.Module) -> nn.Module:
    return getattr(m, "module", m)


def cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in _unwrap(module).state_dict().items()}


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(),
                             "numpy": np.random.get_state()[1].astype(np.int64).tolist(),
                             "numpy_pos": int(np.random.get_state()[2]),
                             "python": list(random.getstate()[1])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", np.array(state["numpy"], dtype=np.uint32), state["numpy_pos"], 0, 0.0))
    random.setstate((3, tuple(state["python"]), None))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, *, generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, sched_g, sched_d,
               scaler, progress: Progress, best: dict[str, dict[str, torch.Tensor]], fingerprint: str) -> None:
    state = {"format": STATE_FORMAT, "fingerprint": fingerprint,
             "generator": cpu_state(generator), "discriminator": cpu_state(discriminator),
             "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
             "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict(),
             "scaler": scaler.state_dict(), "progress": asdict(progress), "rng": rng_state(), "best": best}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path, fingerprint: str) -> dict[str, Any]:
    """The saved state; ValueError when it is unreadable or belongs to a different run set-up."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, foreign pickle refused by weights_only, ...
        raise ValueError(f"{path}: cannot read training state: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: not an xscreen training-state file")
    if state.get("fingerprint") != fingerprint:
        raise ValueError(f"{path}: saved by a run with different settings or data; "
                         "resume needs the same configuration (or start afresh without --resume)")
    return state


def restore(state: dict[str, Any], *, generator: nn.Module, discriminator: nn.Module, opt_g, opt_d, sched_g,
            sched_d, scaler) -> tuple[Progress, dict[str, dict[str, torch.Tensor]]]:
    _unwrap(generator).load_state_dict(state["generator"])
    _unwrap(discriminator).load_state_dict(state["discriminator"])
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    sched_g.load_state_dict(state["sched_g"])
    sched_d.load_state_dict(state["sched_d"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    return Progress(**state["progress"]), state["best"]
