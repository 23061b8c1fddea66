"""The screening tab's computations without Qt (gui/probe.py)."""
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from xscreen import heatmap, materials
from xscreen.config import Preprocess
from xscreen.gui import probe
from xscreen.preprocess import model_input
from xscreen.scan import Scan, ScanError


def _scan(h=96, w=128, seed=0) -> Scan:
    rng = np.random.default_rng(seed)
    high = np.full((h, w), 60000, np.uint16)
    low = np.full((h, w), 60000, np.uint16)
    high[20:70, 30:100] = rng.integers(8000, 30000, (50, 70))
    low[20:70, 30:100] = rng.integers(3000, 20000, (50, 70))
    return Scan("t", "dual", np.stack([high, low]), 60000.0)


def _screening(grid, threshold=1.0, alarm_threshold=2.5):
    grid = np.asarray(grid, np.float32)
    return SimpleNamespace(score_grid=grid, threshold=threshold, scan_threshold=alarm_threshold, patch_size=64,
                           stride=32, height=32 * grid.shape[0] + 32, width=32 * grid.shape[1] + 32)


def test_probe_imports_without_qt():
    code = "import sys, xscreen.gui.probe\nassert not [m for m in sys.modules if m.startswith(('PySide6','pyqtgraph'))]"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_rethreshold_uses_the_stored_grid():
    grid = [[0.5, 2.0, 0.1, 0.0], [0.2, 1.2, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]]
    s = _screening(grid, threshold=1.0)
    at_one = probe.rethreshold(s, 1.0)
    assert [r.max_score for r in at_one] == [3.0, 2.0]  # ranked; (0,1)+(1,1) connected
    assert at_one[1].patches and sorted(at_one[1].patches) == [(0, 1), (1, 1)]
    assert at_one[0].max_rel == pytest.approx(3.0 / 2.5)  # × alarm: score / the bag's alarm threshold
    # the alarm level is the bag's alarm threshold (2.5), whatever review level the slider sets
    assert [r.level for r in at_one] == ["alarm", "attention"]
    higher = probe.rethreshold(s, 1.5)
    assert [r.max_score for r in higher] == [3.0, 2.0] and len(higher[1].patches) == 1
    assert higher[0].max_rel == pytest.approx(3.0 / 2.5)  # the same number whatever threshold drew it
    assert probe.rethreshold(s, 4.0) == []
    with pytest.raises(ValueError):
        probe.rethreshold(s, 0)


def test_overlay_layer_fill_and_contour():
    assert probe.layer_step(3000, 8000) == 4 and probe.layer_step(500, 700) == 1
    assert probe.overlay_rgba(np.zeros((3000, 8000), np.float32), step=4).shape == (750, 2000, 4)
    heat = np.zeros((40, 50), np.float32)
    heat[10:30, 10:30] = 1.5
    at_review = probe.Scale(0.5, 0.5)  # review level at half the alarm threshold
    fill = probe.overlay_rgba(heat, at_review, "fill")
    assert fill.shape == (40, 50, 4) and fill.dtype == np.uint8
    assert fill[0, 0, 3] == 0 and fill[20, 20, 3] == 255
    # raising the live threshold to 2x makes the same heat sub-threshold: weaker alpha, same colour
    raised = probe.overlay_rgba(heat, probe.Scale(0.5, 1.0), "fill")
    assert raised[20, 20, 3] < 255 and (raised[20, 20, :3] == fill[20, 20, :3]).all()
    # colour is the × alarm scale: the same heat on a bag whose review level is the alarm is hotter
    assert not (probe.overlay_rgba(heat, probe.Scale(1.0, 1.0), "fill")[20, 20, :3] == fill[20, 20, :3]).all()
    contour = probe.overlay_rgba(heat, at_review, "contour")
    assert contour[10, 20, 3] == 255 and contour[20, 20, 3] == 0 and contour[0, 0, 3] == 0
    with pytest.raises(ValueError):
        probe.overlay_rgba(heat, at_review, "glow")


def test_residual_and_reconstruction_images():
    r = np.zeros((10, 10), np.float32)
    r[5, 5] = 1.0
    rgb = probe.residual_rgb(r)
    assert rgb.shape == (10, 10, 3) and rgb[5, 5].sum() > rgb[0, 0].sum()
    scan = _scan()
    pre = Preprocess()
    back = probe.reconstruction_scan(scan, model_input(scan, pre), pre)
    assert back.kind == "dual" and back.channels.dtype == np.uint16 and back.i0 == scan.i0
    # an exact reconstruction maps back to the scan (to within rounding of the fixed map)
    assert np.abs(back.channels.astype(int) - scan.channels.astype(int)).max() <= scan.i0 * 1e-3


def test_renderer_matches_materials_render():
    scan = _scan()
    r = probe.Renderer(scan)
    for view, kw in (("pseudo", {}), ("gray", {"window": 0.5, "level": 0.4}), ("organic", {"gamma": 1.5, "edge": True})):
        assert np.array_equal(r.image(view, **kw), materials.render(scan, view, **kw))
    box = (30, 20, 40, 25)
    full = materials.render(scan, "gray", window=0.6, level=0.5)
    # inspector crops: from the cached base (exact) and from the crop alone (no full render)
    assert np.array_equal(r.crop(box, "gray", 0.6, 0.5), full[20:45, 30:70])
    fresh = probe.Renderer(scan).crop(box, "gray", 0.6, 0.5)
    assert fresh.shape == (25, 40, 3) and np.abs(fresh.astype(int) - full[20:45, 30:70]).mean() < 8
    assert not r.has("negative")
    r.prepare("negative")
    assert r.has("negative")
    counts, edges = r.histogram("pseudo", bins=16)
    assert counts.sum() == scan.width * scan.height and edges[0] == 0 and edges[-1] == 1


def test_inspection_zoom_and_cursor():
    region = heatmap.Region(rank=1, region_id=1, x=10, y=20, w=30, h=16, max_score=2, mean_score=1.5,
                            max_rel=2.0, mean_rel=1.5, patches=[(0, 0)])
    assert probe.zoom_rect(region, 80, 60, margin=0.5) == (0.0, 12.0, 55.0, 32.0)
    scan = _scan()
    classes = materials.material_classes(*materials.attenuation(scan)[::-1])
    heat = np.full((scan.height, scan.width), 0.5, np.float32)
    info = probe.cursor_info(scan, 40.7, 30.2, heat, review=2.0)  # heat 0.5 x review, review 2 x alarm
    assert (info.x, info.y) == (40, 30) and info.rel_score == pytest.approx(1.0)
    assert info.values == tuple(int(v) for v in scan.channels[:, 30, 40])
    # the per-pixel class is the whole-scan class map's value there
    for (x, y) in ((40, 30), (0, 0), (99, 69)):
        assert probe.pixel_material(scan, x, y) == materials.MATERIAL_NAMES[classes[y, x]]
    assert "high" in info.text("dual") and "score 1.00 × alarm" in info.text("dual")
    assert probe.cursor_info(scan, -1, 5) is None and probe.cursor_info(scan, 5, scan.height) is None
    assert probe.cursor_info(scan, 1, 1).rel_score is None


def test_screen_job_loads_and_reports_bad_files(tmp_path):
    from xscreen.scan import save_scan

    path = tmp_path / "bag.h5"
    save_scan(_scan(), path)
    items = list(probe.screen_job(path, scorer=None))
    assert [type(i).__name__ for i in items] == ["JobStep", "Outcome", "JobStep", "Outcome"]
    out = items[-1]
    assert out.screening is None and out.scan.width == 128 and len(out.sha256) == 64
    assert out.renderer.has("pseudo")  # the job renders the view so the GUI thread does not
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"nope")
    with pytest.raises(ScanError, match="bad.h5"):
        list(probe.screen_job(bad, scorer=None))


def test_model_listing_and_card_errors(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m1.xsm").write_bytes(b"x")
    other = tmp_path / "m0.xsm"
    other.write_bytes(b"y")
    found = probe.list_models([tmp_path / "a", tmp_path / "missing"], [other, tmp_path / "gone.xsm"])
    assert [p.name for p in found] == ["m0.xsm", "m1.xsm"]
    with pytest.raises(Exception, match="m0.xsm"):
        probe.describe_model(other)
