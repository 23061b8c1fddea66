"""Coarse-to-fine screening (issue 17): score less, find the same regions.

Where convolutions are slow (CPUs without native bf16, where scoring runs at the fp32 wall), the
cheapest patch is the one never scored. Regions are connected groups of grid cells whose score
reaches the review level r (heatmap.find_regions), and a bag alarms iff one of them reaches its
alarm threshold (>= r). So only the cells near such groups need their exact score:

1. **Coarse pass.** Score the cells on every k-th row and column of the operating grid (k =
   ``coarse_stride / stride``; the last row and column too), i.e. patches at ``coarse_stride``
   pixels: together they cover every pixel of the scan.
2. **Seeds.** A coarse cell is *hot* when its score reaches ``fraction * r``. Every cell of the
   operating grid whose patch overlaps a hot coarse patch is scored.
3. **Growth.** Every unscored 8-neighbour of a scored hot cell is scored, until no hot cell has an
   unscored neighbour.

After step 3 every connected group of hot cells that contains a scored cell is scored whole,
together with its border, so its regions (cells >= r, hot since fraction <= 1) come out exactly as
the full grid gives them: same cells, same scores, same boxes, same alarm. What the cascade cannot
guarantee is that every such group *has* a scored cell: a patch reaching r while every coarse patch
overlapping it stays below ``fraction * r``. ``fraction`` is that margin (a threat half inside a
coarse patch raises its mean residual about half as much); the tests compare region sets with the
full grid on the sample bags and a synthetic set, and `benchmarks/bench_cascade.py` counts misses.
It is off by default and must stay off where exactness matters (evaluation, calibration): cells it
did not score carry a stand-in below ``fraction * r`` for the heat map - their estimate from the
coarse residual (``ResidualBlocks``, when the score is the mean residual) or else the highest score
of the coarse patches they overlap - and the residual and reconstruction there come from the
coarse patches only.

Seeds (step 2) come from the better estimate where there is one: when the score is the mean
residual (λ = 1), the coarse pass's per-pixel residual gives every grid patch's mean residual as
the coarse reconstructions see it, and only the cells whose estimate is hot are seeds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

# Default fractions ("auto"), by what the seeds come from: the coarse maxima (any score) or the
# residual estimate (score = mean residual), whose error is far smaller (ResidualBlocks). Measured on
# 100 synthetic bags at stride 32 (benchmarks/RESULTS.md): 0 of 100 bags with other regions at either
# default; coarse maxima already missed attention regions at 0.7, the estimate none at 0.8.
DEFAULT_FRACTION = 0.5
DEFAULT_FRACTION_ESTIMATE = 0.8
AUTO = "auto"


def resolve_fraction(value: float | str, estimate: bool) -> float:
    """``ScreenConfig.cascade`` -> the fraction to use: "auto" picks the default of the seed rule
    in use (``estimate``: the residual estimate applies); 0 = off; else the number, range-checked."""
    if value == AUTO:
        return DEFAULT_FRACTION_ESTIMATE if estimate else DEFAULT_FRACTION
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"cascade must be 'auto' or a fraction in (0, 1], not {value!r}") from None
    if f:
        Cascade(f)  # range check
    return f


@dataclass(frozen=True)
class Cascade:
    """``fraction`` of the review level that marks a coarse cell hot (0 < fraction <= 1);
    ``coarse_stride`` in pixels, a multiple of the operating stride (default: the patch size)."""

    fraction: float = DEFAULT_FRACTION
    coarse_stride: int | None = None

    def __post_init__(self):
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"cascade fraction {self.fraction} out of range (0, 1]")

    def factor(self, stride: int, size: int) -> int:
        """k: coarse cells are every k-th cell of the operating grid."""
        coarse = self.coarse_stride or size
        if coarse % stride or coarse < stride:
            raise ValueError(f"cascade coarse stride {coarse} is not a multiple of the stride {stride}")
        return coarse // stride


def coarse_cells(grid: tuple[int, int], k: int, device=None) -> torch.Tensor:
    """(rows, cols) bool: every k-th row and column, plus the last ones (the scan's far edges)."""
    rows, cols = grid
    r = torch.zeros(rows, dtype=torch.bool, device=device)
    c = torch.zeros(cols, dtype=torch.bool, device=device)
    r[::k] = True
    r[-1] = True
    c[::k] = True
    c[-1] = True
    return r[:, None] & c[None, :]


def dilate(cells: torch.Tensor, radius: int) -> torch.Tensor:
    """(rows, cols) bool -> cells within ``radius`` (Chebyshev) of a True cell."""
    if radius <= 0:
        return cells.clone()
    f = cells.float()[None, None]
    return F.max_pool2d(f, 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0


def overlap_radius(size: int, stride: int) -> int:
    """Grid cells within this distance of a cell have patches that overlap its patch."""
    return -(-size // stride) - 1


def seeds(coarse_hot: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Cells whose patch overlaps a hot coarse patch: (rows, cols) bool."""
    return dilate(coarse_hot, overlap_radius(size, stride))


def growth(scored: torch.Tensor, hot: torch.Tensor) -> torch.Tensor:
    """Unscored 8-neighbours of scored hot cells: the next cells to score, (rows, cols) bool."""
    return dilate(scored & hot, 1) & ~scored


def fill_unscored(values: torch.Tensor, scored: torch.Tensor, size: int, stride: int,
                  key: torch.Tensor | None = None) -> torch.Tensor:
    """values (rows, cols) with cells outside ``scored`` set from the ``scored`` cell of highest
    ``key`` (default: ``values``) among those whose patch overlaps theirs; cells with none keep theirs.
    Returns a new grid (``fill_grids`` is what screening uses)."""
    src, found = _sources(scored, values if key is None else key, size, stride)
    return torch.where(scored | ~found, values, values.reshape(-1)[src])


def _sources(sources: torch.Tensor, key: torch.Tensor, size: int, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For every cell: the flat index of the ``sources`` cell of highest ``key`` whose patch overlaps
    its patch, and whether there is one ((rows, cols) long, (rows, cols) bool)."""
    radius = overlap_radius(size, stride)
    index = torch.arange(key.numel(), device=key.device).view(key.shape)
    masked_key = torch.where(sources, key, torch.full_like(key, -float("inf")))
    best_key, best_index = torch.full_like(key, -float("inf")), index
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            k_src = _shift(masked_key, dy, dx, -float("inf"))
            better = k_src > best_key
            best_key = torch.where(better, k_src, best_key)
            best_index = torch.where(better, _shift(index, dy, dx, 0), best_index)
    return best_index, best_key > -float("inf")


def _shift(grid: torch.Tensor, dy: int, dx: int, fill: float) -> torch.Tensor:
    """out[r, c] = grid[r + dy, c + dx] where that exists, else ``fill``."""
    rows, cols = grid.shape
    out = torch.full_like(grid, fill)
    r0, r1 = max(0, -dy), min(rows, rows - dy)
    c0, c1 = max(0, -dx), min(cols, cols - dx)
    if r0 < r1 and c0 < c1:
        out[r0:r1, c0:c1] = grid[r0 + dy:r1 + dy, c0 + dx:c1 + dx]
    return out


class ResidualBlocks:
    """The coarse pass's per-pixel residual, kept as its means over ``stride`` x ``stride`` blocks.

    When a patch's score is its mean residual (λ = 1, no window, no inpainting; a density prior adds
    ρ × density per pixel, exactly as the score does - loss.pixel_score) and the stride divides the
    patch size, every operating-grid patch is a union of such blocks, so the mean of the
    blocks under it is its residual *as the coarse reconstructions see it* - a far closer estimate
    of its own score than the highest coarse score over it (on the synthetic test bags the ratio
    true/estimate of patches near the review level stayed within 0.90-1.10, against 0.67 for the
    coarse maximum). The blocks are (rows + k, cols + k) floats: a few kB even for a huge scan.
    """

    def __init__(self, grid: tuple[int, int], size: int, stride: int, device=None):
        self.k = size // stride
        self.stride = stride
        self.blocks = torch.zeros(grid[0] + self.k, grid[1] + self.k, device=device)
        self.cols = grid[1]

    @staticmethod
    def usable(size: int, stride: int, lam: float, window: int, inpaint: int) -> bool:
        return size % stride == 0 and lam == 1.0 and window == 0 and inpaint == 0

    def add(self, cells: torch.Tensor, error: torch.Tensor) -> None:
        """cells (n,) flat grid indices; error (n, S, S) per-pixel residual of those patches."""
        means = F.avg_pool2d(error[:, None].float(), self.stride)[:, 0].to(self.blocks.device)  # (n, k, k)
        for i, m in zip(cells.tolist(), means):
            r, c = divmod(i, self.cols)
            self.blocks[r:r + self.k, c:c + self.k] = m

    def estimate(self) -> torch.Tensor:
        """(rows, cols) estimated score of every operating-grid patch."""
        est = F.avg_pool2d(self.blocks[None, None], self.k, 1)[0, 0]
        return est[: self.blocks.shape[0] - self.k, : self.cols]


def cascade_cells(plan: Cascade, run: Callable[..., Iterator], live: torch.Tensor,
                  scored: torch.Tensor, score: torch.Tensor, size: int, stride: int, review: float,
                  residual: ResidualBlocks | None = None):
    """The cascade's passes as a generator over ``run(cells, keep_residual)`` (which scores the cells
    not yet ``scored``, updating ``scored`` and ``score`` in place, yielding progress, and with
    ``keep_residual`` adds their residual to ``residual``): coarse cells, then
    the seeds (and any cell the coarse pass left uncovered), then growth around hot cells until none
    has an unscored neighbour. Seeds: with ``residual`` (filled by ``run`` during the coarse pass),
    the cells whose estimated score is hot; else every cell overlapping a hot coarse patch.
    Growth then follows the exact scores only.
    Returns the coarse cells (rows, cols) bool."""
    coarse = coarse_cells(tuple(live.shape), plan.factor(stride, size), live.device) & live
    yield from run(coarse, residual is not None)
    hot_level = plan.fraction * review
    uncovered = live & ~dilate(coarse, overlap_radius(size, stride))
    hot = residual.estimate() >= hot_level if residual is not None else \
        seeds(coarse & (score >= hot_level), size, stride)
    yield from run((hot | uncovered) & live)
    while True:
        more = growth(scored, score >= hot_level) & live
        if not bool(more.any()):
            return coarse
        yield from run(more)


def fill_grids(grids: list[torch.Tensor], scored: torch.Tensor, coarse: torch.Tensor, size: int,
               stride: int, estimate: torch.Tensor | None = None,
               live: torch.Tensor | None = None) -> list[torch.Tensor]:
    """[score, R, L] (rows, cols) with every unscored cell showing the highest *coarse* patch over
    it; R and L come from that same patch. With ``estimate`` (``ResidualBlocks.estimate()``, seeds
    from the coarse residual) the unscored ``live`` cells show their own estimate in the score and R
    grids instead: below the hot level, unlike a coarse patch over them, which may be hot itself."""
    src, found = _sources(coarse, grids[0], size, stride)  # one choice of source for all three grids
    keep = scored | ~found
    out = [torch.where(keep, g, g.reshape(-1)[src]) for g in grids]
    if estimate is not None:
        stand_in = ~scored if live is None else live & ~scored
        out[0], out[1] = (torch.where(stand_in, estimate, g) for g in out[:2])
    return out
