"""Tiling and stitching on the model's device (DESIGN.md, 'patches').

The scan enters as one model-space tensor ``x (C, H, W)``; it is padded with air on the right and
bottom so that every pixel is covered for any width and height, and tiled with ``unfold`` into a
strided *view* ``(rows, cols, C, S, S)`` - no copy. Patches are gathered a batch at a time, and
per-patch results are scattered back into per-pixel accumulators batch by batch
(``StitchAccumulator``), so peak memory is the scan, its maps and one batch, whatever the scan size.
Whole-grid stitching (``stitch_mean``) uses ``fold``; coverage and heat use the same overlap-add
as a transposed convolution with a patch-sized kernel, which needs only the (rows, cols) grid.

Overlapping patches are blended with weights that taper toward the patch edge (``blend_window``),
not a flat mean: a flat mean changes the set of contributing patches abruptly at every patch edge,
which drew a grid of seams every ``stride`` pixels over the reconstruction, residual and heatmap
(issue 14 item 7; ``seam_energy`` measures it, benchmarks/RESULTS.md 'Stitching seams').
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xscreen.config import Preprocess

MIN_STRIDE, MAX_STRIDE = 8, 64
# Weight of a patch's edge pixels relative to its centre: > 0 so that pixels covered by one patch
# only (the scan border) keep a well-defined value; small, so a patch fades in at its edge.
# 1.0 gives the flat mean of covering patches.
TAPER_FLOOR = 0.02  # measured: 0.05 still left a step on the grid lines, see seam_energy tests


def air_value(pre: Preprocess) -> float:
    """Model-space value of transmission T = 1: a = 0 -> -1 for dual, +1 for rgb/gray."""
    return -1.0 if pre.kind == "dual" else 1.0


def grid_extent(length: int, size: int, stride: int) -> tuple[int, int]:
    """(number of patches, padded length) so that patches at k*stride cover [0, length)."""
    n = max(1, math.ceil(max(length - size, 0) / stride) + 1)
    return n, (n - 1) * stride + size


@dataclass
class Tiling:
    """A tiled scan. ``view`` is ``(rows, cols, C, S, S)``, a strided view of ``padded_x``.

    Patch ``i`` (row-major) has grid cell ``(i // cols, i % cols)`` and top-left pixel
    ``(row * stride, col * stride)`` in scan coordinates.
    """

    view: torch.Tensor
    padded_x: torch.Tensor  # (C, Hp, Wp)
    size: int
    stride: int
    height: int
    width: int

    @property
    def grid(self) -> tuple[int, int]:
        return int(self.view.shape[0]), int(self.view.shape[1])

    @property
    def padded(self) -> tuple[int, int]:
        return int(self.padded_x.shape[1]), int(self.padded_x.shape[2])

    @property
    def n_patches(self) -> int:
        rows, cols = self.grid
        return rows * cols

    @property
    def origins(self) -> list[tuple[int, int]]:
        """(y, x) top-left pixel of every patch, row-major."""
        rows, cols = self.grid
        return [(r * self.stride, c * self.stride) for r in range(rows) for c in range(cols)]

    def gather(self, index: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
        """Patches ``index`` (n,) row-major -> (n, C, S, S) contiguous (channels-last if asked)."""
        cols = self.grid[1]
        index = index.to(self.view.device)
        batch = self.view[index // cols, index % cols]
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        return batch.contiguous(memory_format=fmt)

    def geometry_only(self) -> "Tiling":
        """The same grid with its pixels dropped (zero-stride views of one element): enough for
        heat maps and weights (``grid_to_pixels``), and the padded scan's memory can go."""
        one = self.padded_x.new_empty(1)
        return Tiling(view=one.expand(tuple(self.view.shape)), padded_x=one.expand(tuple(self.padded_x.shape)),
                      size=self.size, stride=self.stride, height=self.height, width=self.width)

    @property
    def patches(self) -> torch.Tensor:
        """All patches (N, C, S, S), materialised: for small scans and tests only."""
        return self.gather(torch.arange(self.n_patches), channels_last=False)


def check_stride(stride: int, size: int) -> None:
    if not MIN_STRIDE <= stride <= min(MAX_STRIDE, size):
        raise ValueError(f"stride {stride} out of range [{MIN_STRIDE}, {min(MAX_STRIDE, size)}]")


def tile(x: torch.Tensor, size: int, stride: int, pad_value: float) -> Tiling:
    """x (C, H, W) -> Tiling with an air-padded (C, Hp, Wp) copy and its unfold view."""
    c, h, w = x.shape
    padded = padded_buffer(c, h, w, size, stride, pad_value, x.device)
    padded[:, :h, :w] = x
    return tile_padded(padded, size, stride, h, w)


def padded_buffer(channels: int, height: int, width: int, size: int, stride: int, pad_value: float,
                  device=None) -> torch.Tensor:
    """(C, Hp, Wp) float32 filled with ``pad_value``, the size ``tile`` pads a (C, H, W) scan to:
    write the scan into ``[:, :H, :W]`` and call ``tile_padded`` - one full-size copy, not two."""
    check_stride(stride, size)
    _, hp = grid_extent(height, size, stride)
    _, wp = grid_extent(width, size, stride)
    return torch.full((channels, hp, wp), pad_value, dtype=torch.float32, device=device)


def tile_padded(padded: torch.Tensor, size: int, stride: int, height: int, width: int) -> Tiling:
    """A Tiling over ``padded`` (C, Hp, Wp) from ``padded_buffer`` holding an H x W scan."""
    check_stride(stride, size)
    # unfold over H then W: (C, rows, cols, S, S) -> (rows, cols, C, S, S), still a view
    view = padded.unfold(1, size, stride).unfold(2, size, stride).permute(1, 2, 0, 3, 4)
    return Tiling(view=view, padded_x=padded, size=size, stride=stride, height=height, width=width)


def transmission(x: torch.Tensor, pre: Preprocess) -> torch.Tensor:
    """Model space -> transmission in [0, 1] (torch twin of ``preprocess.to_transmission``).
    One new tensor, then in place: on a whole scan each temporary is hundreds of MB."""
    t = x + 1.0
    if pre.kind == "dual":  # exp(-(x + 1) * 0.5 * a_max), in that order
        return t.neg_().mul_(0.5).mul_(pre.a_max).exp_()
    return t.mul_(0.5).clamp_(0.0, 1.0)


def air_mask(tiling: Tiling, threshold: float, pre: Preprocess) -> torch.Tensor:
    """(rows, cols) bool: mean transmission of the patch (all the scan's channels; a material
    channel is not a transmission) >= threshold.
    One channel at a time, in place: whole-array temporaries cost ~3x the padded scan."""
    x = tiling.padded_x
    total = torch.zeros(x.shape[1:], dtype=torch.float32, device=x.device)
    for c in range(pre.scan_channels):
        total += transmission(x[c], pre)
    total /= pre.scan_channels
    mean_t = F.avg_pool2d(total[None, None], tiling.size, tiling.stride)[0, 0]
    return mean_t >= threshold


def blend_window(size: int, floor: float = TAPER_FLOOR, device=None) -> torch.Tensor:
    """(S, S) float32 patch weights: a separable Hann window lifted to ``floor`` at the edge.

    Sampled at pixel centres, sin^2 of one patch and cos^2 of its half-stride neighbour sum to 1, so
    at stride S/2 the weights of covering patches sum to a constant and blending adds no ripple.
    """
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"taper floor {floor} out of range (0, 1]")
    i = torch.arange(size, dtype=torch.float32, device=device)
    h = floor + (1.0 - floor) * torch.sin(math.pi * (i + 0.5) / size) ** 2
    return h[:, None] * h[None, :]


def overlap_add(grid: torch.Tensor, size: int, stride: int,
                window: torch.Tensor | None = None) -> torch.Tensor:
    """grid (rows, cols) -> (Hp, Wp): each pixel gets the sum over covering patches of the patch's
    value times ``window`` (S, S) at that pixel (ones: a plain sum).

    A separable window (ones, ``blend_window``) is applied as two small matrix products,
    Ly^T @ grid @ Lx with L the (n, padded length) lattice of 1-D window factors: no temporary
    beyond the output. ``conv_transpose2d`` (kept for other windows) builds an S^2 x rows*cols
    column buffer first - 385 MB for an 8000 x 3000 scan at stride 32 (issue 17, memory).
    """
    factors = _separable(window, size, grid.device)
    if factors is None:
        kernel = window.to(grid.device, grid.dtype)
        return F.conv_transpose2d(grid[None, None], kernel[None, None], stride=stride)[0, 0]
    rows, cols = grid.shape
    ly = _lattice(rows, size, stride, factors[0].to(grid.dtype))
    lx = _lattice(cols, size, stride, factors[1].to(grid.dtype))
    return ly.T @ (grid @ lx)


def _separable(window: torch.Tensor | None, size: int, device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(column factor, row factor) with window = outer(a, b), or None when it is not separable."""
    if window is None:
        one = torch.ones(size, dtype=torch.float32, device=device)
        return one, one
    w = window.to(device, torch.float32)
    k = int(torch.argmax(w.abs().sum(1)))
    if float(w[k, k]) == 0.0:
        return None
    a, b = w[:, k], w[k] / w[k, k]
    return (a, b) if torch.allclose(torch.outer(a, b), w, rtol=1e-6, atol=1e-7) else None


def _lattice(n: int, size: int, stride: int, h: torch.Tensor) -> torch.Tensor:
    """(n, (n - 1) * stride + size): row i holds ``h`` at columns i*stride .. i*stride + size - 1."""
    out = torch.zeros(n, (n - 1) * stride + size, dtype=h.dtype, device=h.device)
    cols = (torch.arange(n, device=h.device) * stride)[:, None] + torch.arange(size, device=h.device)
    out.scatter_(1, cols, h.expand(n, size).contiguous())
    return out


def coverage(tiling: Tiling) -> torch.Tensor:
    """(Hp, Wp) float32: number of patches covering each pixel (>= 1 everywhere)."""
    ones = torch.ones(tiling.grid, dtype=torch.float32, device=tiling.padded_x.device)
    return overlap_add(ones, tiling.size, tiling.stride)


def weight_sum(tiling: Tiling, window: torch.Tensor) -> torch.Tensor:
    """(Hp, Wp) float32: sum of the blending weights of the patches covering each pixel (> 0)."""
    ones = torch.ones(tiling.grid, dtype=torch.float32, device=tiling.padded_x.device)
    return overlap_add(ones, tiling.size, tiling.stride, window)


def grid_to_pixels(grid: torch.Tensor, tiling: Tiling, floor: float = TAPER_FLOOR) -> torch.Tensor:
    """(rows, cols) per-patch values -> (H, W): weighted mean over the patches covering each pixel,
    weights ``blend_window`` (``floor=1``: the flat mean)."""
    w = blend_window(tiling.size, floor, grid.device)
    summed = overlap_add(grid.float(), tiling.size, tiling.stride, w)
    summed /= weight_sum(tiling, w)  # in place: one scan-sized map less at the peak
    return summed[: tiling.height, : tiling.width]


def stitch_mean(values: torch.Tensor, tiling: Tiling, floor: float = TAPER_FLOOR) -> torch.Tensor:
    """values (N, C, S, S) for all N patches, row-major -> (C, H, W) weighted mean of covering
    patches (weights ``blend_window``; ``floor=1``: the flat mean).

    ``fold`` needs every patch at once, so this is for whole grids (small scans, tests);
    screening streams through ``StitchAccumulator`` instead.
    """
    n, c, s, _ = values.shape
    w = blend_window(s, floor, values.device)
    cols_in = (values.float() * w).reshape(n, c * s * s).T.unsqueeze(0)  # (1, C*S*S, N)
    summed = F.fold(cols_in, tiling.padded, s, stride=tiling.stride)[0]
    return (summed / weight_sum(tiling, w))[:, : tiling.height, : tiling.width]


def seam_energy(image: np.ndarray, stride: int) -> float:
    """image (H, W) or (C, H, W) -> mean squared step between neighbouring pixels across the patch
    grid lines (boundaries at multiples of ``stride``) over the same mean elsewhere; ~1: no seams.

    The patch grid starts at pixel 0 and every patch edge falls on a multiple of the stride
    whenever the patch size is one (all shipped models), so a ratio above 1 is grid structure.
    """
    a = np.asarray(image, dtype=np.float64)
    a = a[None] if a.ndim == 2 else a
    on, off = [], []
    for axis in (1, 2):
        step = np.diff(a, axis=axis) ** 2  # step k lies between pixels k and k + 1
        grid_line = (np.arange(step.shape[axis]) + 1) % stride == 0
        on.append(np.compress(grid_line, step, axis=axis).ravel())
        off.append(np.compress(~grid_line, step, axis=axis).ravel())
    on_mean, off_mean = np.concatenate(on).mean(), np.concatenate(off).mean()
    return float(on_mean / off_mean) if off_mean > 0 else float("inf") if on_mean > 0 else 1.0


class StitchAccumulator:
    """Streams per-patch maps into per-pixel weighted sums, one batch at a time.

    Holds (C + 1, Hp, Wp) float32: the reconstruction delta (x_hat - x) per channel and the
    residual mean|x - x_hat| over channels, each weighted by ``blend_window``. Unscored (air)
    patches contribute x_hat = x, i.e. delta 0 and residual 0, so they need no work; the division
    by the weight sum counts them. ``floor=1`` gives the flat mean of covering patches.
    """

    def __init__(self, tiling: Tiling, floor: float = TAPER_FLOOR):
        self.tiling = tiling
        c = tiling.padded_x.shape[0]
        hp, wp = tiling.padded
        self.sums = torch.zeros(c + 1, hp * wp, dtype=torch.float32, device=tiling.padded_x.device)
        s, st = tiling.size, tiling.stride
        self.window = blend_window(s, floor, self.sums.device)
        dy = torch.arange(s, device=self.sums.device)
        # flat pixel offsets of a patch relative to its top-left pixel: (S, S)
        self._offsets = dy[:, None] * wp + dy[None, :]
        self._step = (st * wp, st)

    def add(self, index: torch.Tensor, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        """index (n,) row-major patch ids; x, x_hat (n, C, S, S) model space."""
        cols = self.tiling.grid[1]
        index = index.to(self.sums.device)
        base = (index // cols) * self._step[0] + (index % cols) * self._step[1]
        flat = (base[:, None, None] + self._offsets).reshape(-1)  # (n*S*S,)
        delta = (x_hat.float() - x.float())
        resid = delta.abs().mean(dim=1, keepdim=True)
        vals = torch.cat([delta, resid], dim=1) * self.window
        vals = vals.permute(1, 0, 2, 3).reshape(self.sums.shape[0], -1)
        for k in range(vals.shape[0]):  # 1-D index_add_ per plane: measured 3x faster than 2-D
            self.sums[k].index_add_(0, flat, vals[k])

    def result(self, counted: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (reconstruction (C, H, W) in model space, residual (H, W)), float32 views of the
        accumulator (call once: the sums are normalised in place). ``counted`` (rows, cols) float:
        1 for the patches whose weights count (default all: air counts as x_hat = x); a cell left
        out (the cascade's unscored cells) must not be the only cover of a pixel."""
        t = self.tiling
        hp, wp = t.padded
        sums = self.sums.reshape(-1, hp, wp)
        weights = weight_sum(t, self.window) if counted is None else \
            overlap_add(counted.to(sums.device, torch.float32), t.size, t.stride, self.window)
        sums /= weights  # in place: for a 24-Mpixel scan a copy is ~300 MB
        recon = sums[:-1].add_(t.padded_x)[:, : t.height, : t.width]
        return recon, sums[-1, : t.height, : t.width]
