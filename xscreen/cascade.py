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
did not score carry the highest score of the coarse patches they overlap (below ``fraction * r``)
for the heat map, and the residual and reconstruction there come from the coarse patches only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

DEFAULT_FRACTION = 0.5


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


def cascade_cells(plan: Cascade, run: Callable[[torch.Tensor], Iterator], live: torch.Tensor,
                  scored: torch.Tensor, score: torch.Tensor, size: int, stride: int, review: float):
    """The cascade's passes as a generator over ``run(cells)`` (which scores the cells not yet
    ``scored``, updating ``scored`` and ``score`` in place, yielding progress): coarse cells, then
    cells overlapping hot coarse ones (and any the coarse pass left uncovered), then growth around
    hot cells until none has an unscored neighbour. Returns the coarse cells (rows, cols) bool."""
    coarse = coarse_cells(tuple(live.shape), plan.factor(stride, size), live.device) & live
    yield from run(coarse)
    hot_level = plan.fraction * review
    uncovered = live & ~dilate(coarse, overlap_radius(size, stride))
    yield from run((seeds(coarse & (score >= hot_level), size, stride) | uncovered) & live)
    while True:
        more = growth(scored, score >= hot_level) & live
        if not bool(more.any()):
            return coarse
        yield from run(more)


def fill_grids(grids: list[torch.Tensor], scored: torch.Tensor, coarse: torch.Tensor, size: int,
               stride: int) -> list[torch.Tensor]:
    """[score, R, L] (rows, cols) with every unscored cell showing the highest *coarse* patch over
    it (below the hot level by construction); R and L come from that same patch."""
    src, found = _sources(coarse, grids[0], size, stride)  # one choice of source for all three grids
    keep = scored | ~found
    return [torch.where(keep, g, g.reshape(-1)[src]) for g in grids]
