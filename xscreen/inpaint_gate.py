"""The inpainted score only where it can change the outcome (issue 29): screening that gives the
inpainted score's regions, alarm and bag maximum at a fraction of its cost.

The inpainted score (``score_inpaint`` k: k² generator passes, each judging a hidden block from its
context) costs several times the plain one (x_hat = G(x), one pass), and everything a screening
decides depends only on the cells that reach the review level r: its regions (connected cells >= r),
its alarm (a region >= the bag's alarm threshold, which is >= r) and its bag score (the highest
cell, which the audit, ``model calibrate --from-audit`` and the drift watch read). So:

1. **Plain coarse pass.** G(x) once (no inpainting, no discriminator) on the patches of every k-th
   row and column (k = patch size / stride): together they cover every pixel. Their per-pixel
   residual is kept as b x b block means (``WindowBlocks``, b = the gcd of the stride and the
   window step), from which every operating-grid patch gets ``plain``, the estimate of its plain
   score in the model's own form (the same residual window, the same density prior, exact).
2. **The bound.** On benign and threat bags a cell's plain score is a steady share of its inpainted
   score where that score is high: plain / inpainted >= 0.126 for every cell >= 0.8 r of 24
   synthetic bags with the shipped weights (0.177 on a pseudo-colour SIXray model) (the inpainted residual is never below the plain one,
   which the UNet's skips let copy). ``ratio`` (default 0.1) is that share with a margin:
   ``upper = plain / ratio`` is taken as an upper bound of the inpainted score.
3. **Seeds, growth, closure.** A cell is *hot* when its residual term reaches ``fraction`` of what it
   needs to reach r (r minus its density prior). Every cell whose bound says it may be hot gets the
   exact inpainted score; then every unscored neighbour of a hot scored cell (as the coarse-to-fine
   cascade grows); then every unscored cell whose ``upper`` reaches the highest exact score so far,
   so the bag maximum is an exact score. Repeat until nothing is added.
4. **Self-check.** Every exactly scored hot cell must satisfy R_plain / R_exact >= ratio -
   the bound the seeds relied on. A bag where one does not is screened on the full grid instead.

Where the bound holds, every hot cell is scored exactly, so regions, alarm and bag
score equal the full inpainted grid's. It is a measured bound, not a proven one, which is why every
bag checks it on the cells it scored; `benchmarks/bench_cascade.py --gate` and the tests compare
with the full grid. Cells never scored exactly show ``upper`` clipped below the levels that matter
(below r and the bag maximum) in the heat map. Evaluation and calibration (which read
every patch score) turn it off (``ScreenConfig.gate = 0``).
"""
from __future__ import annotations

import math
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from xscreen.cascade import coarse_cells, dilate, growth, overlap_radius

AUTO = "auto"
DEFAULT_RATIO = 0.1  # plain / inpainted assumed for hot cells (measured min 0.126, see module doc)
DEFAULT_FRACTION = 0.8  # share of the review level at which a cell counts as hot
STATS = {"seeds": 0, "growth": 0, "closure": 0}  # cells scored exactly by each step, this process (benchmarks)


def resolve_gate(value: float | str, inpaint: int) -> float:
    """``ScreenConfig.gate`` -> the ratio in use: "auto" is DEFAULT_RATIO for an inpainted score and
    0 (off) for a plain one, which gains nothing; 0 = off; else a ratio in (0, 1]."""
    if value == AUTO:
        return DEFAULT_RATIO if inpaint else 0.0
    try:
        r = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"gate must be 'auto' or a ratio in (0, 1], not {value!r}") from None
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"gate ratio {r} out of range (0, 1]")
    return r if inpaint else 0.0


def gate_for(value: float | str, scorer) -> float:
    """``resolve_gate`` for a Scorer: off (0) where the bound does not describe the score - a model
    whose score is fused with a known-threat head (a patch can reach the review level through the
    head alone) or whose score mixes in the latent term (λ < 1) - or where there is no plain pass
    (an ONNX scorer)."""
    from xscreen.scoring import Scorer

    # the plain pass needs the torch generator: an ONNX graph holds only the model's own form
    plain_pass = getattr(type(scorer), "reconstruct", None) is Scorer.reconstruct and \
        getattr(scorer, "generator", None) is not None
    if not plain_pass or getattr(scorer, "known", None) is not None or float(getattr(scorer, "lam", 1.0)) != 1.0:
        return 0.0 if value == AUTO else resolve_gate(value, 0)
    return resolve_gate(value, int(scorer.inpaint))


class WindowBlocks:
    """The plain coarse pass's per-pixel residual (and density) as b x b block means, b dividing the
    stride, the patch size and the window step, so every residual window of every grid patch is a
    union of blocks: (rows * stride / b + ..) floats, ~1.5 MB for an 8000 x 3000 scan at b = 8."""

    def __init__(self, grid: tuple[int, int], size: int, stride: int, window: int, device=None):
        step = window // 2 if window else stride
        self.b = math.gcd(math.gcd(stride, size), max(1, step))
        self.size, self.stride, self.window, self.grid = size, stride, window, grid
        shape = ((grid[0] - 1) * stride // self.b + size // self.b, (grid[1] - 1) * stride // self.b + size // self.b)
        self.err = torch.zeros(shape, device=device)
        self.dens = torch.zeros(shape, device=device)

    def add(self, cells: torch.Tensor, err: torch.Tensor, dens: torch.Tensor | None) -> None:
        """cells (n,) flat grid indices; err, dens (n, S, S) per-pixel residual and density."""
        k, step = self.size // self.b, self.stride // self.b
        e = F.avg_pool2d(err[:, None].float(), self.b)[:, 0].to(self.err.device)
        d = None if dens is None else F.avg_pool2d(dens[:, None].float(), self.b)[:, 0].to(self.err.device)
        for j, i in enumerate(cells.tolist()):
            r, c = divmod(i, self.grid[1])
            self.err[r * step:r * step + k, c * step:c * step + k] = e[j]
            if d is not None:
                self.dens[r * step:r * step + k, c * step:c * step + k] = d[j]

    def estimate(self, density: float = 0.0) -> torch.Tensor:
        """(rows, cols) plain score of every grid patch as the coarse reconstructions see it: the
        largest window mean (or the patch mean) of the residual, + density x the patch's density."""
        resid, prior = self.parts(density)
        return resid + prior

    def parts(self, density: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, prior), each (rows, cols): the residual term of every grid patch's plain score as the
        coarse reconstructions see it, and its density prior term (exact: it does not depend on the
        reconstruction, so it is the same in the plain and the inpainted score)."""
        k, step = self.size // self.b, self.stride // self.b
        e = self.err[None, None]
        if self.window:
            w, hop = self.window // self.b, max(1, self.window // 2 // self.b)
            means = F.avg_pool2d(e, w, 1)  # every window on the block lattice
            n = (self.size - self.window) // max(1, self.window // 2) + 1  # windows per patch side
            est = F.max_pool2d(means, n, step, dilation=hop)  # the patch's windows, as loss.score_parts takes them
        else:
            est = F.avg_pool2d(e, k, step)
        est = est[0, 0, : self.grid[0], : self.grid[1]]
        prior = torch.zeros_like(est)
        if density:
            prior = density * F.avg_pool2d(self.dens[None, None], k, step)[0, 0, : self.grid[0], : self.grid[1]]
        return est, prior


def gated_cells(run: Callable[..., Iterator], proxy: Callable[..., Iterator], live: torch.Tensor,
                scored: torch.Tensor, score: torch.Tensor, recon: torch.Tensor, size: int, stride: int,
                review: float, blocks: WindowBlocks, density: float, ratio: float = DEFAULT_RATIO,
                fraction: float = DEFAULT_FRACTION, chunk: int = 64):
    """The passes of the module doc as a generator over ``proxy(cells)`` (plain pass, fills
    ``blocks``) and ``run(cells)`` (exact score of the cells not yet ``scored``, updating ``scored``,
    ``score`` and ``recon`` - its residual term R - in place); both yield progress. Returns (upper
    (rows, cols) bound of the exact score, proxy cells (rows, cols) bool, fell_back: the bound
    failed and the full grid was scored)."""
    # coarse patches over air too where they overlap a live patch: every pixel a live patch sees is
    # reconstructed once (an air coarse patch left out would read as zero residual)
    coarse = coarse_cells(tuple(live.shape), max(1, size // stride), live.device) & \
        dilate(live, overlap_radius(size, stride))
    yield from proxy(coarse)
    plain, prior = blocks.parts(density)  # the bound is on the residual term: the prior is exact
    upper = plain / ratio + prior
    # a cell is hot when its residual term reaches ``fraction`` of what it needs to reach the review
    # level (the margin is on the residual: a density prior that fills most of the level is exact)
    need = fraction * (review - prior)
    yield from run((plain / ratio >= need) & live)
    STATS["seeds"] += int(scored.sum())
    while True:
        more = growth(scored, recon >= need) & live
        step = "growth"
        if not bool(more.any()):
            more, step = _closure(upper, scored, live, score, chunk), "closure"
            if more is None:
                break
        n0 = int(scored.sum())
        yield from run(more)
        STATS[step] += int(scored.sum()) - n0
    checked = scored & (recon >= need)
    if bool(checked.any()) and bool((plain[checked] < ratio * recon[checked]).any()):
        yield from run(live)  # the bound failed on this bag: score the rest exactly
        return upper, coarse, True
    return upper, coarse, False


def _closure(upper: torch.Tensor, scored: torch.Tensor, live: torch.Tensor, score: torch.Tensor,
             chunk: int) -> torch.Tensor | None:
    """The next unscored cells whose upper estimate reaches the highest exact score so far (the bag
    maximum must be an exact score): the ``chunk`` highest first, so each batch's exact scores raise
    the bar for the rest. None when there are none."""
    top = float(score[scored].max()) if bool(scored.any()) else -math.inf
    cand = live & ~scored & (upper >= top)
    n = int(cand.sum())
    if n == 0:
        return None
    if n > chunk:
        keys = torch.where(cand, upper, torch.full_like(upper, -math.inf)).reshape(-1)
        pick = torch.zeros_like(cand).reshape(-1)
        pick[torch.topk(keys, chunk).indices] = True
        cand = pick.view(cand.shape)
    return cand


def stand_in(upper: torch.Tensor, scored: torch.Tensor, live: torch.Tensor, score: torch.Tensor,
             review: float) -> torch.Tensor:
    """(rows, cols) score grid with every live cell not scored exactly showing its upper estimate,
    clipped just below the review level and the bag's highest exact score: it can neither form a
    region nor become the bag score."""
    top = float(score[scored].max()) if bool(scored.any()) else review
    cap = min(review, top) * (1.0 - 1e-6)
    return torch.where(live & ~scored, upper.clamp(max=cap), score)


def plain_residual_parts(x: torch.Tensor, x_hat: torch.Tensor, recon: str, kind: str, density: float):
    """(err (n, S, S) channel-mean residual of R's form, dens (n, S, S) or None) for ``WindowBlocks``."""
    from xscreen.loss import pixel_density, pixel_error

    err = pixel_error(x, x_hat, recon).mean(1)  # type: ignore[arg-type]
    return err, (pixel_density(x, kind) if density else None)


__all__ = ["AUTO", "DEFAULT_FRACTION", "DEFAULT_RATIO", "WindowBlocks", "dilate", "gate_for", "gated_cells",
           "overlap_radius", "plain_residual_parts", "resolve_gate", "stand_in"]
