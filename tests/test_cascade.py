"""Coarse-to-fine screening (cascade.py): the grid pieces, and screening that finds the same regions
and alarms as the full grid while scoring fewer patches."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from screen_fixtures import dual_scan, tiny_model
from xscreen.cascade import Cascade, coarse_cells, dilate, fill_unscored, growth, overlap_radius, seeds
from xscreen.config import ScreenConfig
from xscreen.paths import default_model
from xscreen.pipeline import screen
from xscreen.preprocess import model_input
from xscreen.scan import load_scan
from xscreen.scoring import Scorer


@pytest.mark.parametrize("rows,cols,size,stride", [(7, 9, 64, 32), (10, 5, 64, 16), (4, 4, 32, 8), (1, 3, 64, 32)])
def test_coarse_cells_cover_every_pixel(rows, cols, size, stride):
    k = Cascade().factor(stride, size)
    cells = coarse_cells((rows, cols), k)
    assert cells[0, 0] and cells[-1, -1] and cells.sum() < rows * cols or rows * cols <= 4 or k == 1
    cover = np.zeros(((rows - 1) * stride + size, (cols - 1) * stride + size), int)
    for r, c in zip(*np.nonzero(cells.numpy())):
        cover[r * stride:r * stride + size, c * stride:c * stride + size] += 1
    assert cover.min() >= 1


def test_factor_and_fraction_are_checked():
    assert Cascade().factor(16, 64) == 4 and Cascade(coarse_stride=32).factor(16, 64) == 2
    with pytest.raises(ValueError, match="not a multiple"):
        Cascade(coarse_stride=48).factor(32, 64)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="out of range"):
            Cascade(bad)


def test_seeds_growth_and_dilation():
    assert overlap_radius(64, 32) == 1 and overlap_radius(64, 16) == 3 and overlap_radius(64, 64) == 0
    hot = torch.zeros(5, 5, dtype=torch.bool)
    hot[2, 2] = True
    assert seeds(hot, 64, 32).sum() == 9 and seeds(hot, 64, 16).sum() == 25
    assert dilate(hot, 0).sum() == 1
    scored = torch.zeros(5, 5, dtype=torch.bool)
    scored[2, 2] = scored[0, 0] = True
    level = torch.zeros(5, 5, dtype=torch.bool)
    level[2, 2] = True  # only the scored hot cell grows; the cold scored cell (0, 0) does not
    nxt = growth(scored, level)
    assert nxt.sum() == 8 and not nxt[2, 2] and not nxt[0, 1]


def test_fill_unscored_takes_the_highest_overlapping_scored_cell():
    values = torch.tensor([[1.0, 0.0, 3.0], [0.0, 0.0, 0.0], [2.0, 0.0, 5.0]])
    scored = torch.tensor([[True, False, True], [False, False, False], [True, False, True]])
    out = fill_unscored(values, scored, 64, 32)
    assert out[0, 1] == 3.0 and out[1, 0] == 2.0 and out[1, 1] == 5.0 and out[2, 1] == 5.0
    assert torch.equal(out[scored], values[scored])
    other = torch.arange(9.0).reshape(3, 3)  # R or L filled from the cell that gave the score
    assert fill_unscored(other, scored, 64, 32, key=values)[1, 1] == other[2, 2]


class ClampGenerator(torch.nn.Module):
    """x_hat = min(x, 0.2): reconstructs air and light objects exactly, fails on dense material."""

    def forward(self, x):
        return x.clamp(max=0.2)


def _spot_scan(spot_xy):
    scan = dual_scan(256, 320, box=(0, 0, 320, 256), seed=3)
    x, y = spot_xy
    scan.channels[:, y:y + 14, x:x + 14] = int(scan.i0 * 1e-3)
    return scan


@pytest.mark.parametrize("spot", [(150, 100), (40, 200), (290, 20)])
def test_tiny_model_regions_identical_with_fewer_patches(spot):
    scorer = Scorer(replace(tiny_model(size=32), generator=ClampGenerator()), device="cpu", precision="fp32")
    scan = _spot_scan(spot)
    full = screen(scan, scorer, ScreenConfig(stride=8, threshold=_review_for(scan, scorer)))
    fast = screen(scan, scorer, ScreenConfig(stride=8, threshold=full.threshold, cascade=0.5))
    assert full.regions, "the planted spot must make a region for the test to mean anything"
    assert _regions(fast) == _regions(full) and fast.alarm == full.alarm
    assert fast.n_evaluated < 0.6 * full.n_evaluated and full.n_evaluated == full.n_scored
    assert fast.cascade == 0.5 and fast.to_summary()["n_evaluated"] == fast.n_evaluated
    assert np.isfinite(fast.heat).all() and np.isfinite(fast.reconstruction).all()
    flagged = fast.score_grid >= fast.threshold
    np.testing.assert_allclose(fast.score_grid[flagged], full.score_grid[flagged], rtol=1e-5)


def _review_for(scan, scorer):
    """A review level at 0.3 of this scan's highest patch score."""
    s = screen(scan, scorer, ScreenConfig(stride=8, threshold=1e9))
    return 0.3 * float(s.score_grid.max())


def _regions(s):
    return [(r.x, r.y, r.w, r.h, r.level, round(r.max_score, 5), sorted(r.patches)) for r in s.regions]


def test_sample_bags_same_regions_and_alarms_with_the_shipped_model():
    from pathlib import Path

    scorer = Scorer(default_model(), device="cpu", precision="fp32")
    samples = sorted(Path(__file__).resolve().parents[1].joinpath("resources", "samples").glob("*.h5"))
    assert len(samples) >= 5
    n_full = n_fast = 0
    for path in samples:
        scan = load_scan(path)
        full = screen(scan, scorer, ScreenConfig(stride=32))
        fast = screen(scan, scorer, ScreenConfig(stride=32, cascade="auto"))  # 0.8: residual seeds
        assert _regions(fast) == _regions(full) and fast.alarm == full.alarm, path.name
        assert fast.cascade == 0.8
        n_full, n_fast = n_full + full.n_evaluated, n_fast + fast.n_evaluated
    assert n_fast < 0.8 * n_full


def test_synthetic_threat_bags_same_regions_with_the_shipped_model():
    from xscreen.synth import synth_bag

    scorer = Scorer(default_model(), device="cpu", precision="fp32")
    saved = 0
    for seed in range(4):
        bag = synth_bag(seed=7100 + seed, threat=True)
        full = screen(bag.scan, scorer, ScreenConfig(stride=32))
        for f in (0.5, "auto"):
            fast = screen(bag.scan, scorer, ScreenConfig(stride=32, cascade=f))
            assert _regions(fast) == _regions(full) and fast.alarm == full.alarm, (seed, f)
        saved += full.n_evaluated - fast.n_evaluated
    assert saved > 0


def test_a_hot_patch_no_coarse_patch_sees_is_missed_at_a_high_fraction():
    """What the fraction is for: a stand-in score that only off-grid patches reach. A 16-px block at
    (56, 56) lies whole only in the stride-8 patches at 40, 48, 56 (none on the 32-px coarse grid);
    the coarse patches at 32 and 64 hold an eighth of it."""
    scorer = Scorer(tiny_model(size=32), device="cpu", precision="fp32")
    scan = dual_scan(128, 128, box=(0, 0, 128, 128), seed=1)
    scan.channels[:, 56:72, 56:72] = int(scan.i0 * 1e-3)
    real = scorer.score

    def score(p, **kw):
        out = real(p, **kw)
        whole = ((p > 0.3).float().mean((1, 2, 3)) >= 0.2).float()
        return replace(out, scores=0.1 + whole)

    scorer.score = score
    full = screen(scan, scorer, ScreenConfig(stride=8, threshold=1.0))
    assert len(full.regions) == 1 and len(full.regions[0].patches) == 9 and full.alarm
    missed = screen(scan, scorer, ScreenConfig(stride=8, threshold=1.0, cascade=1.0))
    assert not missed.regions and not missed.alarm and missed.n_evaluated < full.n_evaluated
    low = screen(scan, scorer, ScreenConfig(stride=8, threshold=1.0, cascade=0.05))  # every cell hot
    assert _regions(low) == _regions(full) and low.n_evaluated == full.n_evaluated


def test_cli_cascade_flag_writes_the_same_regions_and_counts_patches(tmp_path):
    import csv
    import json
    from pathlib import Path

    from xscreen.cli import main as cli

    sample = Path(__file__).resolve().parents[1] / "resources" / "samples" / "bag02_handgun.h5"
    outs = {}
    for name, extra in (("full", []), ("fast", ["--cascade"])):
        out = tmp_path / name
        assert cli(["screen", str(sample), "--out", str(out), "--precision", "fp32", "--overlay", "none", *extra]) == 0
        outs[name] = json.loads((out / "bag02_handgun.json").read_text())
        (row,) = csv.DictReader((out / "summary.csv").open())
        assert int(row["n_evaluated"]) == outs[name]["n_evaluated"]
    full, fast = outs["full"], outs["fast"]
    assert fast["cascade"] == 0.8 and full["cascade"] == 0.0  # 'auto' for a λ 1 model and full["alarm"] and fast["alarm"]
    assert fast["n_evaluated"] < full["n_evaluated"] == full["n_scored"]
    assert [r["patches"] for r in fast["regions"]] == [r["patches"] for r in full["regions"]]


def test_cli_cascade_fraction_out_of_range_is_refused(tmp_path, capsys):
    from pathlib import Path

    from xscreen.cli import main as cli

    sample = Path(__file__).resolve().parents[1] / "resources" / "samples" / "bag01_benign.h5"
    assert cli(["screen", str(sample), "--out", str(tmp_path), "--cascade", "1.5"]) == 2
    assert "cascade fraction 1.5 out of range" in capsys.readouterr().err
    assert cli(["screen", str(sample), "--out", str(tmp_path), "--cascade", "fast"]) == 2
    assert "cascade must be 'auto' or a fraction" in capsys.readouterr().err


def test_auto_fraction_follows_the_seed_rule():
    from xscreen.cascade import resolve_fraction

    assert resolve_fraction("auto", True) == 0.8 and resolve_fraction("auto", False) == 0.5
    assert resolve_fraction(0.0, True) == 0.0 and resolve_fraction("0.6", False) == 0.6
    with pytest.raises(ValueError, match="out of range"):
        resolve_fraction(1.2, True)
    scorer = Scorer(tiny_model(size=32), device="cpu", precision="fp32")  # λ 0.9: no residual estimate
    scan = _spot_scan((150, 100))
    fast = screen(scan, scorer, ScreenConfig(stride=8, threshold=_review_for(scan, scorer), cascade="auto"))
    assert fast.cascade == 0.5


@pytest.mark.parametrize("prior", [0.0, 0.5])
def test_residual_blocks_estimate_every_patch_exactly_for_a_pointwise_reconstruction(prior):
    """With x̂ a pixelwise function of x the residual of a pixel does not depend on the patch that
    reconstructs it, so the coarse pass's residual blocks give every grid patch's mean residual -
    and, averaging loss.pixel_score, its whole score when a density prior (ρ = ``prior``) is added."""
    from xscreen.cascade import ResidualBlocks, coarse_cells
    from xscreen.loss import pixel_score
    from xscreen.patches import tile

    m = replace(tiny_model(size=32), generator=ClampGenerator())
    if prior:
        m = replace(m, meta=replace(m.meta, train=replace(m.meta.train, density=1.0, density_scale=prior)))
    scorer = Scorer(m, device="cpu", precision="fp32")
    scorer.lam = 1.0  # score = mean residual (+ the prior): what the estimate is for
    assert scorer.density == prior
    scan = _spot_scan((150, 100))
    x = torch.from_numpy(model_input(scan, scorer.preprocess))
    t = tile(x, 32, 8, pad_value=-1.0)
    full = scorer.score(t.gather(torch.arange(t.n_patches)), keep_reconstructions=False).scores
    blocks = ResidualBlocks(t.grid, 32, 8)
    cells = torch.nonzero(coarse_cells(t.grid, 4).reshape(-1)).reshape(-1)
    patches = t.gather(cells)
    blocks.add(cells, pixel_score(patches, ClampGenerator()(patches), "l1", scorer.density, scorer.kind))
    np.testing.assert_allclose(blocks.estimate().reshape(-1).numpy(), full.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("size, stride, lam, window, inpaint, ok", [
    (64, 32, 1.0, 0, 0, True), (64, 16, 1.0, 0, 0, True), (64, 24, 1.0, 0, 0, False),
    (64, 32, 0.9, 0, 0, False), (64, 32, 1.0, 8, 0, False), (64, 32, 1.0, 0, 2, False)])
def test_residual_estimate_is_used_only_where_the_score_is_the_mean_residual(size, stride, lam, window, inpaint, ok):
    from xscreen.cascade import ResidualBlocks

    assert ResidualBlocks.usable(size, stride, lam, window, inpaint) is ok


def test_residual_seeds_score_fewer_patches_than_coarse_maxima_for_the_same_regions(monkeypatch):
    from xscreen.cascade import ResidualBlocks

    scorer = Scorer(replace(tiny_model(size=32), generator=ClampGenerator()), device="cpu", precision="fp32")
    scorer.lam = 1.0  # score = mean residual: what the estimate is for
    scan = _spot_scan((150, 100))
    full = screen(scan, scorer, ScreenConfig(stride=8, threshold=_review_for(scan, scorer)))
    new = screen(scan, scorer, ScreenConfig(stride=8, threshold=full.threshold, cascade=0.5))
    monkeypatch.setattr(ResidualBlocks, "usable", staticmethod(lambda *a: False))
    old = screen(scan, scorer, ScreenConfig(stride=8, threshold=full.threshold, cascade=0.5))
    assert full.regions and _regions(new) == _regions(old) == _regions(full)
    assert new.n_evaluated < old.n_evaluated < full.n_evaluated
