"""Regions, scan alarm and overlays (xscreen.heatmap)."""
import numpy as np
import pytest

from xscreen.heatmap import (BOX_COLOURS, GridGeometry, Region, bag_alarm, colormap, draw_boxes, find_regions,
                             overlay)

GEOM = GridGeometry(size=64, stride=32, height=300, width=400)  # grid up to 9 x 12


def test_planted_blob_gives_one_region_with_the_right_box():
    grid = np.full((9, 12), 0.1, np.float32)
    grid[2:4, 5:8] = 1.5
    grid[3, 6] = 3.0
    (r,) = find_regions(grid, 1.0, GEOM)
    assert (r.x, r.y, r.w, r.h) == (5 * 32, 2 * 32, 2 * 32 + 64, 1 * 32 + 64)
    assert r.rank == 1 and r.max_score == pytest.approx(3.0) and r.max_rel == pytest.approx(3.0)
    assert r.mean_score == pytest.approx((5 * 1.5 + 3.0) / 6)
    assert sorted(r.patches) == [(2, 5), (2, 6), (2, 7), (3, 5), (3, 6), (3, 7)]


def test_regions_are_8_connected_ranked_by_max_and_clipped_to_the_scan():
    grid = np.zeros((9, 12), np.float32)
    grid[0, 0], grid[1, 1] = 2.0, 2.0  # diagonal neighbours: one region
    grid[8, 11] = 5.0  # bottom-right corner, its patch extends past the scan
    regions = find_regions(grid, 1.0, GEOM)
    assert [r.rank for r in regions] == [1, 2]
    corner, diag = regions
    assert corner.max_score == 5.0 and len(diag.patches) == 2
    assert corner.x + corner.w == 400 and corner.y + corner.h == 300
    assert (diag.x, diag.y, diag.w, diag.h) == (0, 0, 96, 96)
    assert find_regions(grid, 10.0, GEOM) == []
    assert len(find_regions(grid, 1.0, GEOM, min_patches=2)) == 1


def test_regions_below_the_alarm_threshold_are_attention_and_only_alarm_regions_alarm():
    grid = np.zeros((6, 6), np.float32)
    grid[0, 0], grid[4, 4] = 0.9, 0.6  # two separate regions above the review level 0.5
    geom = GridGeometry(size=16, stride=8, height=56, width=56)
    regions = find_regions(grid, 0.5, geom, alarm_threshold=0.8)
    assert [(r.rank, r.level) for r in regions] == [(1, "alarm"), (2, "attention")]
    assert bag_alarm(regions)
    quiet = find_regions(grid, 0.5, geom, alarm_threshold=0.95)
    assert [r.level for r in quiet] == ["attention", "attention"] and not bag_alarm(quiet)
    assert not bag_alarm([])


def test_attention_boxes_are_drawn_in_their_own_colour():
    grid = np.zeros((6, 6), np.float32)
    grid[0, 0], grid[4, 4] = 0.9, 0.6
    geom = GridGeometry(size=16, stride=8, height=56, width=56)
    regions = find_regions(grid, 0.5, geom, alarm_threshold=0.8)
    out = draw_boxes(np.zeros((56, 56, 3), np.uint8), regions)
    assert tuple(out[0, 5]) == BOX_COLOURS["alarm"]  # top edge of the alarm box at (0, 0)
    assert tuple(out[32, 40]) == BOX_COLOURS["attention"]  # top edge of the attention box at (32, 32)

def test_colormap_is_transparent_below_the_ramp_and_opaque_at_threshold():
    rel = np.array([[0.0, 0.4, 0.75, 1.0, 3.0]], np.float32)
    rgba = colormap(rel, opacity=1.0)
    assert rgba.shape == (1, 5, 4) and rgba.dtype == np.uint8
    assert list(rgba[0, :, 3]) == [0, 0, 128, 255, 255]


def test_fill_overlay_leaves_benign_pixels_and_colours_flagged_ones():
    rgb = np.full((50, 60, 3), 100, np.uint8)
    heat = np.zeros((50, 60), np.float32)
    heat[10:20, 10:30] = 2.0
    out = overlay(rgb, heat, "fill", opacity=0.6)
    assert (out[30:, :] == 100).all()
    assert np.abs(out[15, 20].astype(int) - 100).max() > 30


def test_contour_overlay_outlines_the_flagged_area_and_boxes_are_drawn():
    rgb = np.zeros((50, 60, 3), np.uint8)
    heat = np.zeros((50, 60), np.float32)
    heat[10:20, 10:30] = 1.2
    out = overlay(rgb, heat, "contour")
    changed = out.any(axis=2)
    assert changed[10, 20] and not changed[15, 20] and not changed[40, 50]
    box = Region(1, 1, 35, 30, 20, 15, 2.0, 2.0, 2.0, 2.0)
    boxed = overlay(rgb, np.zeros((50, 60), np.float32), "fill", regions=[box])
    assert boxed[30, 40].any() and not boxed[5, 5].any()
    with pytest.raises(ValueError, match="mode"):
        overlay(rgb, heat, "nope")
    with pytest.raises(ValueError, match="differ"):
        overlay(rgb, heat[:10], "fill")
