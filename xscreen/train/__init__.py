"""Training (DESIGN.md 'train'): ``train_step``, ``fit`` (a generator of reports), ``train_model``.

step.py     one G step + one D step (update order that works on current PyTorch)
session.py  networks, optimisers, schedulers, loaders, seeds, deterministic mode, DDP set-up
state.py    the per-epoch training-state file that ``resume`` continues from exactly
loop.py     ``fit`` and its reports; validation objective; model selection; early stopping
finish.py   best weights -> model file -> calibration on held-out benign scans
run.py      ``train_model``: scans -> patch store -> fit (what the CLI and the wizard call)
"""
from xscreen.train.finish import TrainResult
from xscreen.train.loop import DataInfo, EpochReport, ProgressReport, fit, validation_scores
from xscreen.train.session import Session, build_session
from xscreen.train.step import GanPair, LossWeights, StepResult, train_step

__all__ = ["DataInfo", "EpochReport", "GanPair", "LossWeights", "ProgressReport", "Session", "StepResult",
           "TrainResult", "build_session", "fit", "train_step", "validation_scores"]
