"""Tiling covers every pixel, stitching is exact, air is skipped (xscreen.patches)."""
import numpy as np
import pytest
import torch

from xscreen.config import Preprocess
from xscreen.patches import (TAPER_FLOOR, StitchAccumulator, air_mask, air_value, blend_window,
                             coverage, grid_extent, grid_to_pixels, seam_energy, stitch_mean,
                             tile, weight_sum)

SIZES = [(64, 64, 32), (70, 90, 32), (100, 65, 24), (33, 200, 16), (64, 129, 64), (10, 20, 8)]


def brute_coverage(h, w, size, stride):
    rows, _ = grid_extent(h, size, stride)
    cols, _ = grid_extent(w, size, stride)
    cov = np.zeros((h, w), int)
    for r in range(rows):
        for c in range(cols):
            cov[r * stride:r * stride + size, c * stride:c * stride + size] += 1
    return cov


@pytest.mark.parametrize("h,w,stride", SIZES)
def test_tiling_covers_every_pixel_and_coverage_matches_brute_force(h, w, stride):
    x = torch.rand(2, h, w)
    t = tile(x, 32 if stride <= 32 else 64, stride, pad_value=-1.0)
    size = t.size
    cov = coverage(t)[:h, :w].numpy()
    np.testing.assert_array_equal(cov, brute_coverage(h, w, size, stride))
    assert cov.min() >= 1
    hp, wp = t.padded
    assert hp >= h and wp >= w and (hp - size) % stride == 0 and (wp - size) % stride == 0
    assert hp - h < stride + size and wp - w < stride + size


def test_padding_is_air_and_view_matches_slices():
    x = torch.rand(2, 70, 90)
    t = tile(x, 32, 24, pad_value=air_value(Preprocess("dual")))
    assert air_value(Preprocess("dual")) == -1.0 and air_value(Preprocess("rgb")) == 1.0
    assert (t.padded_x[:, 70:, :] == -1).all() and (t.padded_x[:, :, 90:] == -1).all()
    rows, cols = t.grid
    assert t.view.data_ptr() == t.padded_x.data_ptr()  # a view, no copy
    got = t.gather(torch.tensor([0, cols + 1, rows * cols - 1]))
    assert got.shape == (3, 2, 32, 32) and got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got[1], t.padded_x[:, 24:56, 24:56])
    last = t.padded_x[:, (rows - 1) * 24:(rows - 1) * 24 + 32, (cols - 1) * 24:(cols - 1) * 24 + 32]
    torch.testing.assert_close(got[2], last)
    assert len(t.origins) == rows * cols and t.origins[cols + 1] == (24, 24)


def test_stride_out_of_range_is_refused():
    with pytest.raises(ValueError, match="stride"):
        tile(torch.zeros(1, 64, 64), 64, 4, 1.0)
    with pytest.raises(ValueError, match="stride"):
        tile(torch.zeros(1, 64, 64), 32, 48, 1.0)


@pytest.mark.parametrize("h,w,stride", SIZES)
def test_constant_patch_values_stitch_to_constant_map(h, w, stride):
    t = tile(torch.zeros(3, h, w), 32, min(stride, 32), 1.0)
    vals = torch.full((t.n_patches, 3, 32, 32), 0.37)
    out = stitch_mean(vals, t)
    assert out.shape == (3, h, w)
    torch.testing.assert_close(out, torch.full_like(out, 0.37))
    heat = grid_to_pixels(torch.full(t.grid, 2.5), t)
    assert heat.shape == (h, w)
    torch.testing.assert_close(heat, torch.full_like(heat, 2.5))


def test_stitch_of_own_patches_reproduces_the_image():
    x = torch.rand(2, 70, 90)
    t = tile(x, 32, 16, -1.0)
    torch.testing.assert_close(stitch_mean(t.patches, t), x)


def test_grid_to_pixels_is_weighted_mean_of_covering_patches():
    t = tile(torch.zeros(1, 64, 64), 32, 16, 1.0)  # grid 3x3
    grid = torch.arange(9, dtype=torch.float32).reshape(3, 3)
    heat = grid_to_pixels(grid, t)
    assert heat[0, 0] == 0.0  # only patch (0,0)
    assert heat[63, 63] == 8.0
    # pixel (20, 20): offset 20 in patches (0,0), offset 4 in (0,1)/(1,0), (4, 4) in (1,1)
    w = blend_window(32)
    weights = torch.stack([w[20, 20], w[20, 4], w[4, 20], w[4, 4]])
    expect = (weights * torch.tensor([0.0, 1, 3, 4])).sum() / weights.sum()
    assert heat[20, 20] == pytest.approx(float(expect), rel=1e-5)
    assert 0 < heat[20, 20] < (0 + 1 + 3 + 4) / 4  # the nearer patch (0,0) weighs more
    flat = grid_to_pixels(grid, t, floor=1.0)  # the old flat mean stays reachable
    assert flat[20, 20] == pytest.approx((0 + 1 + 3 + 4) / 4)


def test_blend_window_tapers_to_the_floor_and_sums_flat_at_half_stride():
    w = blend_window(64)
    assert tuple(w.shape) == (64, 64) and torch.equal(w, w.T)
    torch.testing.assert_close(w, w.flip(0))
    f = TAPER_FLOOR
    assert w.max() == pytest.approx(1.0, abs=2e-3) and w[32, 0] == pytest.approx(f, abs=1e-3)
    assert w.min() == pytest.approx(f * f, rel=0.1)  # the corner: > 0, so border pixels count
    # away from the scan border, the weights of the covering patches sum to a constant
    t = tile(torch.zeros(1, 256, 256), 64, 32, 1.0)
    inner = weight_sum(t, w)[32:-32, 32:-32]
    torch.testing.assert_close(inner, torch.full_like(inner, (1 + f) ** 2))
    assert torch.equal(blend_window(16, 1.0), torch.ones(16, 16))
    with pytest.raises(ValueError, match="floor"):
        blend_window(64, 0.0)


def test_tapered_blending_removes_grid_seams():
    """Each patch reconstructs as its own constant: a flat mean steps at every patch edge, the
    tapered blend fades patches in, so the step across grid lines is no larger than elsewhere."""
    g = torch.Generator().manual_seed(0)
    t = tile(torch.zeros(1, 256, 320), 64, 32, 1.0)
    vals = torch.rand(t.n_patches, 1, 1, 1, generator=g).expand(-1, 1, 64, 64)
    tapered, flat = stitch_mean(vals, t)[0], stitch_mean(vals, t, floor=1.0)[0]
    assert seam_energy(flat.numpy(), 32) > 20  # the defect: energy only on the grid lines
    assert seam_energy(tapered.numpy(), 32) < 1.5
    # the largest step between neighbouring pixels shrinks to about a tenth
    def max_step(m):
        return max(m.diff(dim=0).abs().max(), m.diff(dim=1).abs().max())
    assert max_step(tapered) < 0.15 * max_step(flat)
    heat, heat_flat = grid_to_pixels(vals[:, 0, 0, 0].reshape(t.grid), t), \
        grid_to_pixels(vals[:, 0, 0, 0].reshape(t.grid), t, floor=1.0)
    torch.testing.assert_close(heat, tapered)
    assert seam_energy(heat.numpy(), 32) < 1.5 < 20 < seam_energy(heat_flat.numpy(), 32)


def test_seam_energy_is_one_without_grid_structure_and_counts_grid_steps():
    rng = np.random.default_rng(0)
    assert seam_energy(rng.random((128, 128)), 32) == pytest.approx(1.0, abs=0.15)
    steps = np.zeros((64, 64))
    steps[:, 32:] = 1.0  # one step, exactly on a grid line
    assert seam_energy(steps, 32) == float("inf") and seam_energy(np.ones((8, 8)), 4) == 1.0
    assert seam_energy(steps, 24) == 0.0  # off this grid


def test_streamed_accumulator_equals_fold_in_any_batch_order():
    x = torch.rand(2, 50, 77) * 2 - 1
    t = tile(x, 32, 16, -1.0)
    x_hat = torch.rand(t.n_patches, 2, 32, 32) * 2 - 1
    scored = torch.tensor([i for i in range(t.n_patches) if i % 3 != 1])
    # reference: fold over all patches, unscored ones reconstruct as themselves
    full = t.patches.clone()
    full[scored] = x_hat[scored]
    ref_recon = stitch_mean(full, t)
    resid = (full - t.patches).abs().mean(dim=1, keepdim=True)
    ref_resid = stitch_mean(resid, t)[0]
    acc = StitchAccumulator(t)
    for chunk in scored[torch.randperm(len(scored))].split(5):
        acc.add(chunk, t.gather(chunk), x_hat[chunk])
    recon, residual = acc.result()
    torch.testing.assert_close(recon, ref_recon, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(residual, ref_resid, atol=1e-5, rtol=1e-5)
    flat = StitchAccumulator(t, floor=1.0)
    flat.add(scored, t.gather(scored), x_hat[scored])
    torch.testing.assert_close(flat.result()[0], stitch_mean(full, t, floor=1.0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["dual", "rgb"])
def test_air_mask_flags_air_patches_only(kind):
    pre = Preprocess(kind)
    c = pre.channels
    x = torch.full((c, 64, 96), air_value(pre))  # all air
    x[:, 0:20, 0:20] = 0.0  # an object in the top-left patch only
    t = tile(x, 32, 32, air_value(pre))
    air = air_mask(t, 0.95, pre)
    assert air.shape == (2, 3)
    assert not air[0, 0] and air.sum() == 5
    # a faint object (mean transmission just below the threshold) is not air
    assert not air_mask(t, 0.9999, pre)[0, 0]
    assert air_mask(t, 0.0, pre).all()
