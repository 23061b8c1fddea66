"""Baselines run in the same harness as Skip-GANomaly (same patches, same splits, same metrics).

* PCA on patches: the classical linear reconstruction baseline. Fit on benign training patches,
  score = mean |x - x_hat| over the patch (the same R(x) as Skip-GANomaly's contextual term).
* GANomaly (Akcay et al., ACCV 2018; the paper's predecessor): encoder G_E -> decoder G_D ->
  encoder E, *no skip connections*; losses w_adv * |f(x) - f(x_hat)|^2 (feature matching) +
  w_con * |x - x_hat|_1 + w_enc * |z - z_hat|^2, defaults 1 / 50 / 1; score = mean (z - z_hat)^2.
  ``xscreen.train.fit`` builds the Skip-GANomaly generator itself, so GANomaly gets this small
  loop; model selection is the same rule (lowest mean benign validation score).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from xscreen.config import NetConfig
from xscreen.network import Discriminator, init_weights


# --- PCA -------------------------------------------------------------------------------------
class PcaBaseline:
    """Linear reconstruction: x_hat = mean + U_k U_k^T (x - mean), x flattened to C*S*S."""

    def __init__(self, k: int = 64, max_fit: int = 8000, seed: int = 0):
        self.k, self.max_fit, self.seed = k, max_fit, seed
        self.mean: torch.Tensor | None = None
        self.basis: torch.Tensor | None = None  # (D, k)
        self.explained = float("nan")

    def fit(self, data: Dataset) -> "PcaBaseline":
        """Fit on up to ``max_fit`` patches drawn at random (the full set changes little and costs
        memory: 12 288-dimensional 64x64 rgb patches)."""
        n = len(data)  # type: ignore[arg-type]
        idx = np.random.default_rng(self.seed).permutation(n)[: self.max_fit]
        x = _stack(data, np.sort(idx)).flatten(1)
        self.mean = x.mean(0)
        xc = x - self.mean
        k = min(self.k, min(xc.shape) - 1)
        torch.manual_seed(self.seed)
        _, s, v = torch.svd_lowrank(xc, q=min(k + 16, min(xc.shape)), niter=4)
        self.basis = v[:, :k].contiguous()
        self.explained = float((s[:k] ** 2).sum() / xc.pow(2).sum())
        return self

    @torch.no_grad()
    def score(self, data: Dataset, batch_size: int = 1024) -> np.ndarray:
        """(N,) mean absolute reconstruction error per patch."""
        assert self.mean is not None and self.basis is not None, "fit() first"
        out = []
        for x in DataLoader(data, batch_size=batch_size, shuffle=False):
            xf = x.flatten(1) - self.mean
            recon = (xf @ self.basis) @ self.basis.T
            out.append((xf - recon).abs().mean(1).double())
        return torch.cat(out).numpy()


class KnnBaseline:
    """Nearest benign neighbour on raw pixels: score = mean Euclidean distance (per pixel, RMS) from
    the flattened patch to its ``k`` nearest among up to ``max_fit`` benign training patches.
    Needs no network and no training: the simplest density estimate a learned score should beat."""

    def __init__(self, k: int = 1, max_fit: int = 8000, seed: int = 0):
        self.k, self.max_fit, self.seed = k, max_fit, seed
        self.memory: torch.Tensor | None = None  # (M, D)

    def fit(self, data: Dataset) -> "KnnBaseline":
        n = len(data)  # type: ignore[arg-type]
        idx = np.random.default_rng(self.seed).permutation(n)[: self.max_fit]
        self.memory = _stack(data, np.sort(idx)).flatten(1).float()
        return self

    @torch.no_grad()
    def score(self, data: Dataset, batch_size: int = 1024) -> np.ndarray:
        """(N,) RMS distance to the k nearest benign training patches."""
        assert self.memory is not None, "fit() first"
        out = [nearest_distance(x.flatten(1).float(), self.memory, self.k).double()
               for x in DataLoader(data, batch_size=batch_size, shuffle=False)]
        return (torch.cat(out) / self.memory.shape[1] ** 0.5).numpy()


@torch.no_grad()
def nearest_distance(q: torch.Tensor, memory: torch.Tensor, k: int = 1, chunk: int = 4096) -> torch.Tensor:
    """(Q, D) queries, (M, D) memory -> (Q,) mean Euclidean distance to the k nearest memory rows
    (queries in chunks: the distance matrix of a chunk is chunk x M)."""
    return torch.cat([torch.cdist(q[i:i + chunk], memory).topk(k, 1, largest=False).values.mean(1)
                      for i in range(0, len(q), chunk)])


def _stack(data: Dataset, idx: np.ndarray) -> torch.Tensor:
    if hasattr(data, "__getitems__"):
        return torch.stack(data.__getitems__(list(idx)))  # type: ignore[attr-defined]
    return torch.stack([data[int(i)] for i in idx])


# --- GANomaly --------------------------------------------------------------------------------
def _encoder(net: NetConfig, out_ch: int) -> nn.Sequential:
    """DCGAN encoder (N, C, S, S) -> (N, out_ch, 1, 1): stride-2 convs to 4x4, then a 4x4 conv."""
    d, downs = net.ngf, int(math.log2(net.size))
    layers: list[nn.Module] = [nn.Conv2d(net.channels, d, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
    for i in range(downs - 3):
        layers += [nn.Conv2d(d * 2**i, d * 2 ** (i + 1), 4, 2, 1, bias=False),
                   nn.BatchNorm2d(d * 2 ** (i + 1)), nn.LeakyReLU(0.2, True)]
    layers.append(nn.Conv2d(d * 2 ** (downs - 3), out_ch, 4, 1, 0, bias=False))
    return nn.Sequential(*layers)


def _decoder(net: NetConfig) -> nn.Sequential:
    """DCGAN decoder (N, nz, 1, 1) -> (N, C, S, S) in [-1, 1]."""
    g, downs = net.ngf, int(math.log2(net.size))
    ch = g * 2 ** (downs - 3)
    layers: list[nn.Module] = [nn.ConvTranspose2d(net.nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
    for _ in range(downs - 3):
        layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
        ch //= 2
    layers += [nn.ConvTranspose2d(ch, net.channels, 4, 2, 1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


class GanomalyGenerator(nn.Module):
    """x (N, C, S, S) -> (x_hat (N, C, S, S), z (N, nz, 1, 1), z_hat (N, nz, 1, 1)); no skips."""

    def __init__(self, net: NetConfig):
        super().__init__()
        self.encoder1, self.decoder, self.encoder2 = _encoder(net, net.nz), _decoder(net), _encoder(net, net.nz)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder1(x)
        x_hat = self.decoder(z)
        return x_hat, z, self.encoder2(x_hat)


@dataclass
class GanomalyOutcome:
    generator: GanomalyGenerator
    best_epoch: int
    history: list[dict] = field(default_factory=list)


@torch.no_grad()
def ganomaly_scores(g: GanomalyGenerator, data: Dataset, batch_size: int = 256) -> np.ndarray:
    """(N,) mean (z - z_hat)^2, eval-mode BN (a patch's score does not depend on its batch)."""
    was = g.training
    g.eval()
    out = []
    for x in DataLoader(data, batch_size=batch_size, shuffle=False):
        _, z, zh = g(x)
        out.append((z - zh).pow(2).flatten(1).mean(1).double())
    g.train(was)
    return torch.cat(out).numpy()


def _step(g, d, og, od, x, w: tuple[float, float, float]) -> float:
    x_hat, z, zh = g(x)
    _, f_real = d(x)
    _, f_fake = d(x_hat)
    loss_g = (w[0] * (f_real.detach() - f_fake).pow(2).mean() + w[1] * (x - x_hat).abs().mean()
              + w[2] * (z - zh).pow(2).mean())
    og.zero_grad(set_to_none=True)
    loss_g.backward()
    og.step()
    p_real, _ = d(x)
    p_fake, _ = d(x_hat.detach())
    loss_d = F.binary_cross_entropy(p_real, torch.ones_like(p_real)) + \
        F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake))
    od.zero_grad(set_to_none=True)
    loss_d.backward()
    od.step()
    if loss_d.item() < 1e-5:  # as in the reference code: re-initialise a collapsed D
        init_weights(d)
    return float(loss_d.detach())


def train_ganomaly(net: NetConfig, train: Dataset, val: Dataset, *, epochs: int, batch_size: int = 64,
                   lr: float = 2e-4, seed: int = 0, weights: tuple[float, float, float] = (1.0, 50.0, 1.0),
                   on_epoch: Callable[[int, GanomalyGenerator], dict] | None = None,
                   log: Callable[[str], None] = print) -> GanomalyOutcome:
    """Train; keep the epoch with the lowest mean benign validation score."""
    torch.manual_seed(seed)
    g, d = GanomalyGenerator(net), Discriminator(net)
    og = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    loader = DataLoader(train, batch_size=batch_size, shuffle=True, drop_last=len(train) >= batch_size,  # type: ignore[arg-type]
                        generator=torch.Generator().manual_seed(seed))
    best, best_obj, best_epoch, history = None, float("inf"), 0, []
    for epoch in range(1, epochs + 1):
        g.train(), d.train()
        d_losses = [_step(g, d, og, od, x, weights) for x in loader]
        obj = float(ganomaly_scores(g, val).mean())
        row = {"epoch": epoch, "val_objective": obj, "d_loss": float(np.mean(d_losses))}
        if on_epoch is not None:
            row.update(on_epoch(epoch, g))
        history.append(row)
        log(f"ganomaly epoch {epoch}/{epochs}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch"))
        if obj < best_obj:
            best, best_obj, best_epoch = copy.deepcopy(g.state_dict()), obj, epoch
    g.load_state_dict(best)  # type: ignore[arg-type]
    return GanomalyOutcome(g.eval(), best_epoch, history)
