"""pipeline.screen end to end on tiny models and synthetic scans; batch screening and sharding."""
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from screen_fixtures import dual_scan, tiny_model, with_calibration
from xscreen.config import ScreenConfig
from xscreen.pipeline import (ScoreError, ScreenFailure, Screening, collect_paths, parse_shard, screen,
                              screen_paths)
from xscreen.preprocess import model_input
from xscreen.scan import Scan, save_h5
from xscreen.scoring import Scorer

CLAMP = 0.2  # the stub generator cannot reconstruct anything denser than this (model space)


class ClampGenerator(torch.nn.Module):
    """x_hat = min(x, CLAMP): reconstructs air and light objects exactly, fails on dense material."""

    def forward(self, x):
        return x.clamp(max=CLAMP)


def clamp_scorer(**cfg_kwargs) -> Scorer:
    model = tiny_model()
    return Scorer(replace(model, generator=ClampGenerator()), device="cpu", precision="fp32")


def dense_scan(h=100, w=130, block=(40, 30, 20, 20)) -> Scan:
    """Light object (x in [-0.85, -0.5]) with a dense block (T = 1e-3 -> x ~ 0.53) inside it."""
    scan = dual_scan(h, w, box=(10, 10, 100, 70))
    x, y, bw, bh = block
    scan.channels[:, y:y + bh, x:x + bw] = int(scan.i0 * 1e-3)
    return scan


def test_planted_dense_block_is_found_with_the_right_box_and_exact_maps():
    scan, scorer = dense_scan(), clamp_scorer()
    s = screen(scan, scorer, ScreenConfig(stride=16, threshold=1e-6))
    rows, cols = s.score_grid.shape
    assert (rows, cols) == (6, 8) and s.heat.shape == (100, 130) and s.reconstruction.shape == (2, 100, 130)
    # patches (size 32, stride 16) overlapping x in [40, 60), y in [30, 50): cols 1..3, rows 0..3
    (region,) = s.regions
    assert (region.x, region.y, region.w, region.h) == (16, 0, 64, 80)
    assert len(region.patches) == 12 and s.alarm and s.scan_score == pytest.approx(region.max_score)
    x = model_input(scan, scorer.preprocess)
    np.testing.assert_allclose(s.reconstruction, np.minimum(x, CLAMP), atol=1e-6)
    np.testing.assert_allclose(s.residual, np.abs(x - np.minimum(x, CLAMP)).mean(0), atol=1e-6)
    assert s.heat[:, 0:16].max() == 0.0 and s.heat[40, 50] > 1.0
    assert (s.score_grid[s.air_grid] == 0).all()


def test_air_patches_are_not_scored(monkeypatch):
    scan, scorer = dual_scan(96, 160, box=(0, 0, 48, 48)), clamp_scorer()
    seen = []
    real = scorer.score
    monkeypatch.setattr(scorer, "score", lambda p, **k: seen.append(p.shape[0]) or real(p, **k))
    s = screen(scan, scorer, ScreenConfig(stride=32, threshold=1.0))
    assert s.air_grid.shape == (3, 5)  # 32-pixel patches
    assert (~s.air_grid).nonzero()[0].tolist() == [0, 0, 1, 1]
    assert (~s.air_grid).nonzero()[1].tolist() == [0, 1, 0, 1]
    assert sum(seen) == s.n_scored == 4
    seen.clear()
    s2 = screen(scan, scorer, ScreenConfig(stride=32, threshold=1.0, skip_air=False))
    assert sum(seen) == 15 and not s2.air_grid.any()


def test_all_air_scan_has_no_regions_and_no_alarm():
    s = screen(dual_scan(64, 64, box=None), clamp_scorer(), ScreenConfig(threshold=1e-9))
    assert s.air_grid.all() and s.regions == [] and not s.alarm and s.scan_score == 0.0
    assert (s.residual == 0).all() and (s.reconstruction == -1).all()


def test_calibrated_thresholds_ids_and_summary(tmp_path):
    model = with_calibration(tiny_model(), patch_threshold=0.05, scan_threshold=0.3, aggregation="topk")
    scan = dual_scan()
    save_h5(scan, tmp_path / "bag.h5")
    scan.path = tmp_path / "bag.h5"
    s = screen(scan, Scorer(model, device="cpu"), ScreenConfig(stride=16))
    assert isinstance(s, Screening)
    assert s.threshold == 0.05 and s.threshold_far == 0.01 and s.scan_threshold == 0.3
    # a legacy top-k calibration cannot be upgraded to the area rule: its threshold, held constant
    assert s.scan_aggregation == "max" and s.alarm_rule == "constant" and s.model_id == "tiny-000000000000"
    assert len(s.sha256) == 64 and s.path.endswith("bag.h5")
    summ = s.to_summary()
    assert summ["n_patches"] == s.score_grid.size and summ["regions"][0]["rank"] == 1
    assert set(summ["timings"]) == {"load", "tile", "score", "stitch", "regions", "total"}
    over = screen(scan, Scorer(model, device="cpu"), ScreenConfig(stride=16, threshold=0.5))
    assert over.threshold == 0.5 and over.threshold_far is None


def test_bad_inputs_raise_clear_errors():
    scorer = Scorer(tiny_model(), device="cpu")
    with pytest.raises(ValueError, match="no calibrated threshold"):
        screen(dual_scan(), scorer, ScreenConfig())
    gray = Scan("g", "gray", np.zeros((1, 64, 64), np.uint8), 255.0)
    with pytest.raises(ValueError, match="expects 'dual'"):
        screen(gray, scorer, ScreenConfig(threshold=1.0))


def test_screen_paths_reports_bad_files_and_screens_the_rest(tmp_path):
    for i in range(2):
        save_h5(dual_scan(seed=i, scan_id=f"b{i}"), tmp_path / "sub" / f"b{i}.h5")
    (tmp_path / "broken.h5").write_bytes(b"not an hdf5 file")
    out = list(screen_paths([tmp_path], clamp_scorer(), ScreenConfig(threshold=1.0)))
    good = [r for r in out if hasattr(r, "screening")]
    bad = [r for r in out if not hasattr(r, "screening")]
    assert sorted(r.path.name for r in good) == ["b0.h5", "b1.h5"]
    assert len(bad) == 1 and "broken.h5" in bad[0].fault


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_shards_are_disjoint_and_complete(tmp_path, n):
    for i in range(10):
        (tmp_path / f"d{i % 3}").mkdir(exist_ok=True)
        save_h5(dual_scan(64, 64, box=None), tmp_path / f"d{i % 3}" / f"s{i}.h5")
    everything = collect_paths([tmp_path])
    assert len(everything) == 10
    parts = [collect_paths([tmp_path], (i, n)) for i in range(n)]
    flat = [p for part in parts for p in part]
    assert sorted(flat) == sorted(everything) and len(set(flat)) == len(flat)
    assert collect_paths([tmp_path], (0, n)) == parts[0]  # deterministic


def test_parse_shard():
    assert parse_shard("2/5") == (2, 5)
    for bad in ("5/5", "x", "1/0", "-1/3"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


class NanGenerator(torch.nn.Module):
    """A generator gone wrong at run time (overflow, a faulty device): every reconstruction is NaN."""

    def forward(self, x):
        return torch.full_like(x, float("nan"))


def test_a_non_finite_score_fails_the_bag_never_clears_it(tmp_path):
    scorer = Scorer(replace(tiny_model(), generator=NanGenerator()), device="cpu", precision="fp32")
    with pytest.raises(ScoreError, match="not finite"):
        screen(dual_scan(), scorer, ScreenConfig(threshold=1.0))
    save_h5(dual_scan(), tmp_path / "bag.h5")
    (item,) = screen_paths([tmp_path], scorer, ScreenConfig(threshold=1.0))
    assert isinstance(item, ScreenFailure) and "not finite" in item.fault and "bag.h5" in item.fault


@pytest.mark.parametrize("kw", [dict(threshold=float("inf")), dict(threshold=float("nan")),
                                dict(threshold=1.0, scan_threshold=float("nan")),
                                dict(threshold=1.0, scan_threshold=float("inf")),
                                dict(threshold=1.0, scan_threshold=0.0)])
def test_thresholds_that_could_never_alarm_are_refused(kw):
    with pytest.raises(ValueError, match="not a positive finite number"):
        screen(dense_scan(), clamp_scorer(), ScreenConfig(**kw))


def test_screen_steps_reports_every_batch_and_stops_when_no_longer_pulled(monkeypatch):
    from xscreen.pipeline import ScreenProgress, screen_steps

    scan, scorer = dense_scan(), clamp_scorer()
    scorer.batch_size = 4
    seen = []
    real = scorer.score
    monkeypatch.setattr(scorer, "score", lambda p, **k: seen.append(p.shape[0]) or real(p, **k))
    cfg = ScreenConfig(stride=16, threshold=1.0)
    items = list(screen_steps(scan, scorer, cfg))
    progress, last = items[:-1], items[-1]
    assert all(isinstance(p, ScreenProgress) for p in progress) and isinstance(last, Screening)
    assert [p.done for p in progress] == list(np.cumsum(seen)) and progress[-1].done == progress[-1].total
    assert len(progress) == len(seen) > 3 and progress[-1].total == last.n_scored
    np.testing.assert_array_equal(last.score_grid, screen(scan, scorer, cfg).score_grid)
    seen.clear()
    steps = screen_steps(scan, scorer, cfg)
    assert isinstance(next(steps), ScreenProgress)  # a consumer that cancels after the first batch ...
    steps.close()
    assert seen == [4]  # ... has cost one batch, not the scan


def test_screen_paths_passes_batch_progress_on_request(tmp_path):
    from xscreen.pipeline import ScreenProgress, ScreenResult, screen_paths

    for i in range(2):
        save_h5(dense_scan(), tmp_path / f"bag{i}.h5")
    scorer = clamp_scorer()
    scorer.batch_size = 8
    plain = list(screen_paths([tmp_path], scorer, ScreenConfig(stride=16, threshold=1.0)))
    assert [type(r) for r in plain] == [ScreenResult, ScreenResult]
    items = list(screen_paths([tmp_path], scorer, ScreenConfig(stride=16, threshold=1.0), progress=True))
    kinds = ["P" if isinstance(r, ScreenProgress) else "R" for r in items]
    first = kinds.index("R")
    assert first > 1 and kinds[first + 1:].count("R") == 1 and kinds[-1] == "R"
    assert items[first - 1].done == items[first - 1].total == items[first].screening.n_scored


@pytest.mark.parametrize("fault", [MemoryError(),
                                   RuntimeError("[enforce fail at alloc_cpu.cpp:121] DefaultCPUAllocator: "
                                                "can't allocate memory: you tried to allocate 9663676416 bytes")])
def test_a_bag_that_runs_out_of_memory_fails_alone_and_is_not_cleared(tmp_path, monkeypatch, fault):
    import xscreen.pipeline as pipeline

    for i in range(3):
        save_h5(dual_scan(seed=i, scan_id=f"b{i}"), tmp_path / f"b{i}.h5")
    real = pipeline.screen_steps

    def steps(scan, *args, **kwargs):
        if scan.scan_id == "b1":
            raise fault
        return real(scan, *args, **kwargs)

    monkeypatch.setattr(pipeline, "screen_steps", steps)
    out = list(screen_paths([tmp_path], clamp_scorer(), ScreenConfig(threshold=1.0)))
    assert [type(r).__name__ for r in out] == ["ScreenResult", "ScreenFailure", "ScreenResult"]
    assert "b1.h5" in out[1].fault and "out of memory" in out[1].fault and "not cleared" in out[1].fault


def test_a_runtime_error_that_is_not_an_allocation_failure_is_not_swallowed(tmp_path, monkeypatch):
    import xscreen.pipeline as pipeline

    save_h5(dual_scan(), tmp_path / "bag.h5")

    def steps(*args, **kwargs):
        raise RuntimeError("shape mismatch in a kernel")

    monkeypatch.setattr(pipeline, "screen_steps", steps)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        list(screen_paths([tmp_path], clamp_scorer(), ScreenConfig(threshold=1.0)))


def test_a_scan_of_another_kind_fails_typed_not_by_its_wording(tmp_path):
    """screen_paths marks a scan the model does not take (WrongKind) so callers skip it without
    reading the message; a broken file carries no such mark."""
    from xscreen.pipeline import ScreenFailure, screen_paths
    from xscreen.preprocess import WrongKind
    from xscreen.scoring import Scorer
    from xscreen import paths
    rgb = next((paths.samples_dir() / "rgb").glob("*.png"))
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not hdf5")
    items = [i for i in screen_paths([rgb, broken], Scorer(str(paths.default_model()), device="cpu"),
                                     ScreenConfig()) if isinstance(i, ScreenFailure)]
    marks = {i.path.name: i.wrong_kind for i in items}
    assert set(marks) == {rgb.name, "broken.h5"} and marks["broken.h5"] is None
    assert isinstance(marks[rgb.name], WrongKind)
    assert (marks[rgb.name].expected, marks[rgb.name].got) == ("dual", "rgb")
