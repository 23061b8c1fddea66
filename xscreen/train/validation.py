"""Scoring held-out benign patches during training: the epoch objective, the density prior's scale.

Shared by the loop (per epoch) and finish (the chosen weights), so neither imports the other.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from xscreen.config import RunConfig
from xscreen.loss import density_scale, patch_density, score_parts
from xscreen.network import reconstruct
from xscreen.runtime import Precision


def batch_of(item) -> torch.Tensor:
    """The tensor of a dataset item (TensorDataset items are 1-tuples)."""
    return item[0] if isinstance(item, (list, tuple)) else item


@torch.no_grad()
def validation_scores(generator: torch.nn.Module, discriminator: torch.nn.Module, data: Dataset,
                      precision: Precision, *, lam: float, recon: str, batch_size: int = 64, inpaint: int = 0,
                      window: int = 0) -> np.ndarray:
    """Anomaly scores (N,) float64 of every patch of ``data``, in order, with both networks in eval
    mode (restored to their previous mode after): a patch's score does not depend on its batch."""
    modes = generator.training, discriminator.training
    generator.eval(), discriminator.eval()
    out = []
    try:
        for item in DataLoader(data, batch_size=batch_size, shuffle=False):
            x = batch_of(item).to(precision.device).contiguous(memory_format=torch.channels_last)
            with precision.autocast():
                x_hat = reconstruct(generator, x, inpaint)
                _, f_x = discriminator(x)
                _, f_xh = discriminator(x_hat)
            out.append(score_parts(x, x_hat, f_x, f_xh, lam, recon, window).score.double().cpu())
    finally:
        generator.train(modes[0]), discriminator.train(modes[1])
    return torch.cat(out).numpy() if out else np.zeros(0)


def validation_density(data: Dataset, kind: str, batch_size: int = 256) -> np.ndarray:
    """(N,) float64 mean density (loss.patch_density) of every patch of ``data``, in order."""
    out = [patch_density(batch_of(item), kind).double() for item in DataLoader(data, batch_size=batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def benign_density_scale(generator: torch.nn.Module, discriminator: torch.nn.Module, data: Dataset,
                         precision: Precision, run: RunConfig) -> float:
    """TrainConfig.density_scale from benign patches: their scores without the prior against their
    densities (loss.density_scale)."""
    t = run.train
    base = validation_scores(generator, discriminator, data, precision, lam=t.lam, recon=t.recon,
                             batch_size=t.batch_size, inpaint=t.score_inpaint, window=t.recon_window)
    return density_scale(base, validation_density(data, run.preprocess.kind))
