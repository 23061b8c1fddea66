"""The memory-lean paths of screening (issue 17) give the results of the plain formulas: model input
written into the padded buffer, the per-channel air mask, separable overlap-add, banded overlay,
screening without per-pixel maps."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from screen_fixtures import dual_scan
from xscreen import heatmap
from xscreen.config import Preprocess, ScreenConfig
from xscreen.heatmap import Region, colormap, overlay
from xscreen.paths import default_model
from xscreen.patches import (air_mask, blend_window, grid_to_pixels, overlap_add, padded_buffer, tile,
                             tile_padded, transmission)
from xscreen.pipeline import screen
from xscreen.preprocess import _T_MIN, model_input
from xscreen.scan import Scan, load_scan
from xscreen.scoring import Scorer


def _whole_array_input(scan, pre):
    t = scan.transmission()
    if pre.kind == "dual":
        return (2.0 * np.clip(-np.log(np.maximum(t, _T_MIN)) / pre.a_max, 0.0, 1.0) - 1.0).astype(np.float32)
    return (2.0 * t - 1.0).astype(np.float32)


@pytest.mark.parametrize("kind", ["dual", "rgb", "gray"])
def test_model_input_in_place_is_bit_identical_and_fills_a_padded_buffer(kind):
    rng = np.random.default_rng(0)
    c = {"dual": 2, "rgb": 3, "gray": 1}[kind]
    dtype, i0 = (np.uint16, 60000.0) if kind == "dual" else (np.uint8, 255.0)
    ch = rng.integers(0, int(i0) + 1, size=(c, 37, 53)).astype(dtype)
    ch.flat[:5] = 0  # T = 0: the clip at T_MIN
    scan, pre = Scan("s", kind, ch, i0), Preprocess(kind=kind)
    ref = _whole_array_input(scan, pre)
    assert np.array_equal(model_input(scan, pre), ref)
    buf = padded_buffer(c, 37, 53, 32, 16, 7.0)
    model_input(scan, pre, out=buf[:, :37, :53].numpy())
    assert np.array_equal(buf[:, :37, :53].numpy(), ref) and (buf[:, 37:] == 7.0).all() and (buf[:, :, 53:] == 7.0).all()
    t = tile_padded(buf, 32, 16, 37, 53)
    assert torch.equal(t.patches, tile(torch.from_numpy(ref), 32, 16, 7.0).patches)
    with pytest.raises(ValueError, match="does not fit"):
        model_input(scan, pre, out=np.empty((c, 37, 52), np.float32))


def test_air_mask_equals_the_whole_array_formula():
    scan = dual_scan(150, 190, box=(20, 30, 90, 60), seed=4)
    pre = Preprocess(kind="dual")
    t = tile(torch.from_numpy(model_input(scan, pre)), 32, 16, -1.0)
    mean_t = F.avg_pool2d(transmission(t.padded_x, pre).mean(0, keepdim=True)[None], 32, 16)[0, 0]
    got = air_mask(t, 0.95, pre)
    assert torch.equal(got, mean_t >= 0.95) and got.any() and (~got).any()


@pytest.mark.parametrize("size,stride", [(64, 32), (64, 16), (32, 8)])
def test_separable_overlap_add_matches_the_transposed_convolution(size, stride):
    g = torch.rand(9, 11, generator=torch.Generator().manual_seed(size + stride))
    for w in (None, blend_window(size), blend_window(size, 1.0)):
        k = torch.ones(size, size) if w is None else w
        ref = F.conv_transpose2d(g[None, None], k[None, None], stride=stride)[0, 0]
        torch.testing.assert_close(overlap_add(g, size, stride, w), ref, rtol=1e-5, atol=1e-5)
    odd = torch.rand(size, size)  # not separable: the general path
    ref = F.conv_transpose2d(g[None, None], odd[None, None], stride=stride)[0, 0]
    torch.testing.assert_close(overlap_add(g, size, stride, odd), ref)


def test_banded_overlay_equals_the_whole_image_blend(monkeypatch):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (70, 45, 3), dtype=np.uint8)
    before = rgb.copy()
    heat = rng.uniform(0, 2.5, (70, 45)).astype(np.float32)
    rgba = colormap(heat, 0.5).astype(np.float32)
    a = rgba[..., 3:4] / 255.0
    whole = (rgb.astype(np.float32) * (1.0 - a) + rgba[..., :3] * a + 0.5).astype(np.uint8)
    monkeypatch.setattr(heatmap, "BAND_ROWS", 16)  # 5 bands, the last one short
    assert np.array_equal(overlay(rgb, heat, "fill"), whole)
    box = [Region(1, 1, 5, 5, 20, 20, 3.0, 2.0, 1.5, 1.0)]
    boxed = overlay(rgb, heat, "fill", regions=box)
    assert np.array_equal(boxed, heatmap.draw_boxes(whole, box)) and not np.array_equal(boxed, whole)
    assert np.array_equal(rgb, before)  # boxes go on the overlay's own array, never the caller's


def test_screening_without_maps_has_the_same_scores_heat_and_regions():
    from pathlib import Path

    scorer = Scorer(default_model(), device="cpu", precision="fp32")
    scan = load_scan(Path(__file__).resolve().parents[1] / "resources" / "samples" / "bag02_handgun.h5")
    full = screen(scan, scorer, ScreenConfig())
    lean = screen(scan, scorer, ScreenConfig(maps=False))
    assert lean.reconstruction is None and lean.residual is None
    assert full.reconstruction.shape == (2, scan.height, scan.width)
    np.testing.assert_array_equal(lean.score_grid, full.score_grid)
    np.testing.assert_array_equal(lean.heat, full.heat)
    assert [(r.x, r.y, r.w, r.h, r.level) for r in lean.regions] == [(r.x, r.y, r.w, r.h, r.level) for r in full.regions]
    assert lean.alarm and full.alarm


def test_grid_to_pixels_on_a_geometry_only_tiling_equals_the_full_one():
    t = tile(torch.rand(2, 100, 130), 32, 16, -1.0)
    g = torch.rand(t.grid)
    ref = grid_to_pixels(g, t)
    light = t.geometry_only()
    assert light.grid == t.grid and light.padded == t.padded and light.padded_x.untyped_storage().nbytes() == 4
    torch.testing.assert_close(grid_to_pixels(g, light), ref, rtol=0, atol=0)
