"""Skip-GANomaly losses and the anomaly score (DESIGN.md 'Model', 'Score').

Generator:     L_G = w_adv·BCE(D(x̂), real) + w_con·mean|x − x̂| + w_lat·mean (f(x) − f(x̂))²
Discriminator: L_D = BCE(D(x), real) + BCE(D(x̂), fake)  (the reference code also added the
               generator's latent term here; that term is what broke its update order, and it is
               not part of the paper's discriminator objective, so it is left out)
Score:         A(x) = λ·R(x) + (1 − λ)·L(x), R = mean |x − x̂| (l1, paper) or mean (x − x̂)² (l2,
               reference code), L = mean (f(x) − f(x̂))², both per sample; optionally + ρ·D(x), a
               density prior (D = the patch's mean density in [0, 1], ρ = weight × the benign scale
               that puts D on A's footing; issue 12, TrainConfig.density).
The adversarial terms take logits (BCE-with-logits): numerically stable and allowed under autocast,
where plain BCE on probabilities is refused. Every loss is computed in fp32.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from xscreen.config import CHANNELS


@dataclass(frozen=True)
class GLoss:
    """Weighted terms; ``total`` = adv + con + lat (each already multiplied by its weight)."""

    total: torch.Tensor
    adv: torch.Tensor
    con: torch.Tensor
    lat: torch.Tensor


@dataclass(frozen=True)
class DLoss:
    total: torch.Tensor
    real: torch.Tensor
    fake: torch.Tensor


def generator_loss(x: torch.Tensor, x_hat: torch.Tensor, fake_logit: torch.Tensor, f_x: torch.Tensor,
                   f_xhat: torch.Tensor, *, w_adv: float = 1.0, w_con: float = 50.0,
                   w_lat: float = 1.0) -> GLoss:
    """x, x_hat (N, C, S, S); fake_logit (N,) = D's logit for x̂; f_x, f_xhat (N, nz, 1, 1).

    ``f_x`` should be detached by the caller: the generator step must not move D.
    """
    adv = w_adv * F.binary_cross_entropy_with_logits(fake_logit.float(), torch.ones_like(fake_logit, dtype=torch.float32))
    con = w_con * (x.float() - x_hat.float()).abs().mean()
    lat = w_lat * (f_x.float() - f_xhat.float()).pow(2).mean()
    return GLoss(adv + con + lat, adv, con, lat)


def discriminator_loss(real_logit: torch.Tensor, fake_logit: torch.Tensor) -> DLoss:
    """real_logit, fake_logit (N,): D's logits for x and for a detached x̂."""
    real = F.binary_cross_entropy_with_logits(real_logit.float(), torch.ones_like(real_logit, dtype=torch.float32))
    fake = F.binary_cross_entropy_with_logits(fake_logit.float(), torch.zeros_like(fake_logit, dtype=torch.float32))
    return DLoss(real + fake, real, fake)


@dataclass(frozen=True)
class ScoreParts:
    """Per-sample score and its two terms, each (N,)."""

    score: torch.Tensor
    recon: torch.Tensor
    latent: torch.Tensor


def pixel_error(x: torch.Tensor, x_hat: torch.Tensor, recon: Literal["l1", "l2"] = "l1") -> torch.Tensor:
    """(N, C, S, S) fp32 per-pixel residual of the score's R: |x - x̂| (l1) or (x - x̂)² (l2)."""
    diff = x.float() - x_hat.float()
    if recon == "l1":
        return diff.abs()
    if recon == "l2":
        return diff.pow(2)
    raise ValueError(f"recon must be 'l1' or 'l2', not {recon!r}")


def pixel_density(x: torch.Tensor, kind: str = "dual") -> torch.Tensor:
    """(N, C, S, S) model input -> (N, S, S) fp32 density in [0, 1]: a / a_max for dual-energy input
    (dense = +1), 1 − value / i0 for rgb / gray (bright = air = +1); averaged over the scan's
    channels (a dual-energy input's material channel, when it has one, is not a density)."""
    m = x[:, :CHANNELS[kind]].float().mean(1)
    return (m + 1.0) * 0.5 if kind == "dual" else (1.0 - m) * 0.5


def patch_density(x: torch.Tensor, kind: str = "dual") -> torch.Tensor:
    """(N,) mean density of each patch (``pixel_density`` averaged)."""
    return pixel_density(x, kind).flatten(1).mean(1)


def pixel_score(x: torch.Tensor, x_hat: torch.Tensor, recon: Literal["l1", "l2"] = "l1", density: float = 0.0,
                kind: str = "dual") -> torch.Tensor:
    """(N, S, S) per-pixel share of the score when it is a mean over the patch (λ 1, no window):
    the channel-mean residual plus ρ × density, so that its patch mean is exactly R + ρ·D."""
    err = pixel_error(x, x_hat, recon).mean(1)
    return err + density * pixel_density(x, kind) if density else err


def score_parts(x: torch.Tensor, x_hat: torch.Tensor, f_x: torch.Tensor, f_xhat: torch.Tensor,
                lam: float = 0.9, recon: Literal["l1", "l2"] = "l1", window: int = 0, density: float = 0.0,
                kind: str = "dual") -> ScoreParts:
    """x, x_hat (N, C, S, S); f_x, f_xhat (N, nz, 1, 1) -> ScoreParts of (N,) fp32 tensors.

    ``window`` 0: R is the mean residual over the patch (paper); w > 0: the largest mean residual
    over w x w windows at stride w / 2. ``density`` ρ > 0 adds ρ × the patch's mean density
    (``patch_density``, input ``kind``) to the score; R and L are reported without it."""
    err = pixel_error(x, x_hat, recon)
    if window:
        pooled = F.avg_pool2d(err.mean(1, keepdim=True), window, max(1, window // 2))
        r = pooled.flatten(1).amax(1)
    else:
        r = err.flatten(1).mean(1)
    lat = (f_x.float() - f_xhat.float()).pow(2).flatten(1).mean(1)
    score = lam * r + (1.0 - lam) * lat
    if density:
        score = score + density * patch_density(x, kind)
    return ScoreParts(score, r, lat)


def density_scale(base: np.ndarray, density: np.ndarray, q: float = 0.99) -> float:
    """The factor that puts the density prior on the score's footing, from benign patches only: the
    q-quantile of their scores without it over the q-quantile of their mean density (so weight 1
    adds, at the benign tail, as much as the score itself). Refuses data that cannot define it."""
    base, density = np.asarray(base, np.float64), np.asarray(density, np.float64)
    if base.size == 0 or base.shape != density.shape or not (np.isfinite(base).all() and np.isfinite(density).all()):
        raise ValueError("the density prior's scale needs finite benign scores and densities, one per patch")
    qb, qd = float(np.quantile(base, q)), float(np.quantile(density, q))
    if not (qb > 0 and qd > 0):
        raise ValueError(f"the density prior's scale is undefined: benign score q{q:g} {qb:.3g}, density {qd:.3g}")
    return qb / qd


def anomaly_score(x: torch.Tensor, x_hat: torch.Tensor, f_x: torch.Tensor, f_xhat: torch.Tensor,
                  lam: float = 0.9, recon: Literal["l1", "l2"] = "l1", window: int = 0) -> torch.Tensor:
    """A = λ·R + (1 − λ)·L per sample: (N,) fp32."""
    return score_parts(x, x_hat, f_x, f_xhat, lam, recon, window).score
