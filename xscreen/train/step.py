"""One Skip-GANomaly optimisation step: a generator step, then a discriminator step.

Update order (the reference code's order fails on PyTorch >= 1.5 with an in-place autograd error:
it stepped G and then back-propagated a D loss whose graph still ran through G's old weights):
  1. x̂ = G(x); D runs once on x and once on x̂ᵈ (or once on [x; x̂ᵈ] with ``d_joint``), x̂ᵈ a
     detached *leaf* copy of x̂ that records its gradient. G's adversarial and latent terms are taken through D(x̂ᵈ); only ∂L_G/∂x̂ᵈ is formed
     (``autograd.grad`` prunes D's weight gradients, which the reference computed and threw away)
     and pushed into G with ``x̂.backward(∂L_G/∂x̂ᵈ)``. G steps.
  2. The same D(x), D(x̂ᵈ) logits give L_D (D has not moved, so they equal a fresh D(x̂.detach())
     pass, which the reference paid for a third time; only D's BatchNorm running statistics see x̂
     once instead of twice). D steps; D is re-initialised when L_D < 1e-5.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from xscreen.loss import discriminator_loss, generator_loss
from xscreen.network import init_weights
from xscreen.runtime import Precision


@dataclass(frozen=True)
class LossWeights:
    adv: float = 1.0
    con: float = 50.0
    lat: float = 1.0


@dataclass
class GanPair:
    """What one step updates. ``generator`` may be DistributedDataParallel-wrapped; the
    discriminator never is (it needs two forwards per backward; its gradients are averaged by
    ``average_gradients``)."""

    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


@dataclass(frozen=True)
class StepResult:
    g_loss: float
    g_adv: float
    g_con: float
    g_lat: float
    d_loss: float
    d_real: float
    d_fake: float
    d_reinit: bool


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def average_gradients(module: nn.Module) -> None:
    """All-reduce-average the gradients of ``module`` across ranks (one flat buffer)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Make parameters and buffers (BN running statistics) identical to rank ``src``'s."""
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src)


def _mean_across_ranks(value: torch.Tensor) -> float:
    if distributed():
        value = value.detach().clone()
        dist.all_reduce(value)
        value /= dist.get_world_size()
    return float(value.detach())


def hide_blocks(x: torch.Tensor, share: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """A copy of x (N, C, S, S) where a random ``share`` of the patches has one square block (side
    S/4..S/2, random place) replaced by that patch's per-channel mean.

    Trained to restore the whole patch from such input, G has to predict hidden content from its
    context instead of copying it through the UNet skips (issue 12: the skips let G redraw a threat).
    """
    n, _, s, _ = x.shape
    pick = torch.rand(n, generator=gen) < share
    side = torch.randint(s // 4, s // 2 + 1, (n,), generator=gen)
    y0 = (torch.rand(n, generator=gen) * (s - side + 1)).long()
    x0 = (torch.rand(n, generator=gen) * (s - side + 1)).long()
    rows = torch.arange(s)
    inside_y = (rows[None, :] >= y0[:, None]) & (rows[None, :] < (y0 + side)[:, None])
    inside_x = (rows[None, :] >= x0[:, None]) & (rows[None, :] < (x0 + side)[:, None])
    mask = (inside_y[:, :, None] & inside_x[:, None, :] & pick[:, None, None]).to(x.device)[:, None]
    return torch.where(mask, x.mean((2, 3), keepdim=True), x)


def d_update_due(step: int, every: int) -> bool:
    """Whether D is stepped on training step ``step`` (counted from 0 within the epoch) when it is
    stepped on every ``every``-th step only (TrainConfig.d_every): the first step of each cycle."""
    return step % every == 0


def train_step(pair: GanPair, x: torch.Tensor, precision: Precision, weights: LossWeights = LossWeights(),
               *, noise_std: float = 0.0, noise_gen: torch.Generator | None = None,
               d_reinit_below: float = 1e-5, channels_last: bool = True, mask_share: float = 0.0,
               d_joint: bool = False, d_update: bool = True) -> StepResult:
    """One G step and one D step on a batch x (N, C, S, S) in [-1, 1]; G sees x with noise
    (``noise_std``) and hidden blocks (``mask_share``, see ``hide_blocks``) and must restore x.
    ``d_joint``: D runs once on [x; x̂] instead of twice (TrainConfig.d_batch). ``d_update`` False:
    G's step only - D's loss is reported but D is not stepped, so D(x) runs without a graph and
    D's backward is skipped (TrainConfig.d_every)."""
    g_net, d_net, scaler = pair.generator, pair.discriminator, pair.scaler
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = x.to(precision.device, non_blocking=True).contiguous(memory_format=fmt)
    x_in = x
    if noise_std > 0:  # real Gaussian noise (the reference added uninitialised memory)
        noise = torch.randn(x.shape, generator=noise_gen, device="cpu").to(x.device)
        x_in = x + noise_std * noise.contiguous(memory_format=fmt)
    if mask_share > 0:
        x_in = hide_blocks(x_in, mask_share, noise_gen).contiguous(memory_format=fmt)
    with precision.autocast():
        x_hat = g_net(x_in)
        x_leaf = x_hat.detach().requires_grad_(True)
        # logits, not D's sigmoid output: the losses are BCE-with-logits. Until 2026-11-29 this fed
        # D's probabilities in as logits, which bounds L_D below by ~1.0 and let D saturate at
        # p = 0 for every patch (L_D = 2 ln 2, adversarial term ln 2 with zero gradient): the
        # "D at chance from epoch 2" of issue 12
        if d_joint:  # one pass, shared BatchNorm statistics (TrainConfig.d_batch)
            logits, feats = d_net.logits_features(torch.cat([x, x_leaf]).contiguous(memory_format=fmt))
            real_logit, fake_logit = logits.split(x.shape[0])
            f_x, f_xhat = feats.split(x.shape[0])
        else:
            with torch.set_grad_enabled(d_update):  # only D's own step needs D(x)'s graph
                real_logit, f_x = d_net.logits_features(x)
            fake_logit, f_xhat = d_net.logits_features(x_leaf)
    gl = generator_loss(x, x_leaf, fake_logit, f_x.detach(), f_xhat, w_adv=weights.adv, w_con=weights.con,
                        w_lat=weights.lat)
    pair.opt_g.zero_grad(set_to_none=True)
    (grad_xhat,) = torch.autograd.grad(scaler.scale(gl.total), x_leaf, retain_graph=d_update)
    x_hat.backward(grad_xhat)
    scaler.step(pair.opt_g)

    if not d_update:
        scaler.update()
        dl = discriminator_loss(real_logit.detach(), fake_logit.detach())
        return StepResult(_f(gl.total), _f(gl.adv), _f(gl.con), _f(gl.lat), _mean_across_ranks(dl.total),
                          _f(dl.real), _f(dl.fake), False)
    dl = discriminator_loss(real_logit, fake_logit)
    pair.opt_d.zero_grad(set_to_none=True)
    scaler.scale(dl.total).backward(inputs=list(d_net.parameters()))
    if distributed():
        average_gradients(d_net)
    scaler.step(pair.opt_d)
    scaler.update()

    d_loss = _mean_across_ranks(dl.total)  # every rank takes the same re-init decision
    reinit = d_loss < d_reinit_below
    if reinit:
        init_weights(d_net)
        if distributed():
            broadcast_module(d_net)
    return StepResult(_f(gl.total), _f(gl.adv), _f(gl.con), _f(gl.lat), d_loss, _f(dl.real), _f(dl.fake), reinit)


def _f(t: torch.Tensor) -> float:
    return float(t.detach())
