"""Tiny in-memory models and synthetic scans shared by the screening tests (test_scoring,
test_pipeline, test_cli_screen)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from xscreen.config import Calibration, NetConfig, PatchConfig, Preprocess, TrainConfig
from xscreen.checkpoint import LoadedModel, ModelCard, ModelMeta, save_model
from xscreen.network import Discriminator, Generator
from xscreen.scan import Scan


def tiny_meta(kind: str = "dual", size: int = 32, calibration: Calibration | None = None,
              recon: str = "l1") -> ModelMeta:
    pre = Preprocess(kind=kind)
    net = NetConfig(size=size, channels=pre.channels, ngf=8, ndf=8, nz=16)
    # the paper's λ 0.9: both score terms take part, so the tests check the whole formula
    return ModelMeta(net, pre, PatchConfig(size=size, stride=size // 2), TrainConfig(recon=recon, lam=0.9),
                     calibration, ModelCard(name="tiny"))


def tiny_model(kind: str = "dual", size: int = 32, seed: int = 0, calibration: Calibration | None = None,
               recon: str = "l1") -> LoadedModel:
    """Random-init ngf = ndf = 8 model in eval mode, with BN running stats made non-trivial so that a
    train-mode BN would give visibly different (batch-dependent) scores."""
    torch.manual_seed(seed)
    meta = tiny_meta(kind, size, calibration, recon)
    g, d = Generator(meta.net), Discriminator(meta.net)
    for m in list(g.modules()) + list(d.modules()):
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return LoadedModel(g.eval(), d.eval(), meta, f"tiny-{seed:012d}", "0" * 64, Path("tiny.xsm"))


def save_tiny_model(path: Path, **kwargs) -> Path:
    model = tiny_model(**kwargs)
    save_model(path, model.generator, model.discriminator, model.meta)
    return path


def with_calibration(model: LoadedModel, patch_threshold: float, scan_threshold: float,
                     aggregation: str = "max") -> LoadedModel:
    cal = Calibration(patch_threshold, 0.01, scan_threshold, 0.05, aggregation)  # type: ignore[arg-type]
    return replace(model, meta=replace(model.meta, calibration=cal))


def dual_scan(h: int = 70, w: int = 90, seed: int = 0, i0: float = 60000.0,
              box: tuple[int, int, int, int] | None = (10, 12, 40, 30), scan_id: str = "bag") -> Scan:
    """Air background (T ~ 1) with one attenuating block at box (x, y, w, h)."""
    rng = np.random.default_rng(seed)
    t = np.ones((2, h, w), np.float32)
    if box is not None:
        x, y, bw, bh = box
        t[:, y:y + bh, x:x + bw] = rng.uniform(0.1, 0.5, size=(2, bh, bw))
    vals = np.clip(t * i0, 0, 65535).astype(np.uint16)
    return Scan(scan_id=scan_id, kind="dual", channels=vals, i0=i0)
