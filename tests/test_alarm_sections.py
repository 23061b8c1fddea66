"""The alarm level at the edges of the calibrated range of bag areas (issue 32): a scan far larger
than the calibration's bags is screened as bag-sized sections (item 4: it failed open), an empty
tray as empty (item 9: it failed as a broken calibration). Stub generator, no training."""
import math
from dataclasses import replace

import numpy as np
import pytest

from screen_fixtures import dual_scan
from test_alarm_rule import area_scorer, probe_score
from test_alarm_tampered import REAL
from test_pipeline import clamp_scorer, dense_scan
from xscreen.config import ScreenConfig
from xscreen.pipeline import screen
from xscreen.scan import Scan
from xscreen.scoring import Scorer
from xscreen.thresholds import EMPTY_NOTICE, bag_level, resolve_thresholds

CFG = ScreenConfig(stride=16)


def tiled_bag(rows: int, cols: int, threat_at: tuple[int, int] | None = (3, 4)) -> Scan:
    """rows x cols copies of a benign bag (dense_scan's light object, no dense block), one of them
    (``threat_at``) the threat bag: a scan of rows * cols bags' area with one threat in it."""
    benign, threat = dual_scan(100, 130, box=(10, 10, 100, 70)), dense_scan()
    channels = np.tile(benign.channels, (1, rows, cols))
    if threat_at is not None:
        r, c = threat_at
        channels[:, r * 100:(r + 1) * 100, c * 130:(c + 1) * 130] = threat.channels
    return Scan(scan_id="tiled", kind="dual", channels=channels, i0=benign.i0)


def steep_scorer(alarm_at_ref: float, ref_area: float) -> Scorer:
    """area_scorer's calibration with a Gumbel scale of 10 % of the level (a steep area law)."""
    base = area_scorer(alarm_at_ref, ref_area)
    scale = 0.1 * alarm_at_ref
    cal = replace(base.calibration, alarm_scale=scale, alarm_loc=alarm_at_ref + scale * math.log(-math.log1p(-0.05)))
    return Scorer(replace(base.loaded, meta=replace(base.loaded.meta, calibration=cal)), device="cpu",
                  precision="fp32")


def test_a_threat_bag_tiled_to_100x_the_calibration_area_still_alarms():
    top, area = probe_score()
    scorer = steep_scorer(top * 0.9, area)  # the threat bag alone alarms: 0.9 x its score
    alone = screen(dense_scan(), scorer, CFG)
    assert alone.alarm and alone.sections == 1 and alone.notices == []
    big = screen(tiled_bag(10, 10), scorer, replace(CFG, maps=False))  # no per-pixel maps: faster
    assert big.area > 90 * area
    # the reproduction: the extrapolated level (what was applied before) is above the threat's score
    th = resolve_thresholds(scorer, CFG)
    assert th.rule.threshold(big.area) > big.scan_score > top
    # now: sections of at most 4x the reference area (no larger calibration bag recorded), each held to
    # the rule at its share of the area; the bag alarms because the threat's section does
    n = math.ceil(big.area / (4 * area))
    assert big.sections == n >= 23 and big.alarm and big.n_alarm_regions == 1
    assert big.scan_threshold == pytest.approx(th.rule.threshold(big.area / n)) and big.scan_threshold < big.scan_score
    assert "screened as" in big.notices[0] and f"{n} consecutive sections" in big.notices[0]
    summary = big.to_summary()
    assert summary["sections"] == n and summary["notices"] == big.notices and summary["alarm"]


def test_a_recorded_calibration_range_sets_the_section_size():
    top, area = probe_score()
    base = area_scorer(top * 0.9, area)
    cal = replace(base.calibration, area_max=30 * area)  # its calibration bags reached 30x
    scorer = Scorer(replace(base.loaded, meta=replace(base.loaded.meta, calibration=cal)), device="cpu",
                    precision="fp32")
    th = resolve_thresholds(scorer, CFG)
    assert th.rule.area_hi == 30 * area
    assert bag_level(th, 20 * area).sections == 1  # inside the range: the plain rule
    level = bag_level(th, 100 * area)
    assert level.sections == 4 and level.threshold == pytest.approx(th.rule.threshold(25 * area))
    assert "19%" in level.notice  # 1 - 0.95^4 of benign scans this size: said, not hidden


def test_constant_rules_have_no_range_to_leave():
    scorer = clamp_scorer()
    th = resolve_thresholds(scorer, ScreenConfig(stride=16, threshold=0.1, scan_threshold=0.2))
    assert math.isinf(th.rule.area_hi)
    assert bag_level(th, 1e12).sections == 1 and bag_level(th, 1e12).threshold == 0.2


def test_an_empty_tray_is_screened_as_empty_not_as_a_broken_calibration():
    """Before: 'alarm threshold 0.0 ... the model's calibration is broken' (the area rule's level for
    an area of 0, clamped to 1 px^2, fell to 0 in the shipped model's score^0.5 fit)."""
    base = clamp_scorer()
    scorer = Scorer(replace(base.loaded, meta=replace(base.loaded.meta, calibration=REAL)), device="cpu",
                    precision="fp32")
    s = screen(dual_scan(96, 128, box=None), scorer, ScreenConfig())
    assert s.air_grid.all() and s.area == 0.0 and s.regions == [] and not s.alarm and s.scan_score == 0.0
    assert s.sections == 0 and s.notices == [EMPTY_NOTICE]
    assert s.scan_threshold == pytest.approx(REAL.scan_threshold, rel=1e-4)  # the reference level, shown
    # a bag with something in it is screened as before
    bag = screen(dual_scan(96, 128), scorer, ScreenConfig())
    assert bag.sections == 1 and bag.notices == [] and bag.area > 0


def test_xscreen_screen_prints_the_empty_tray_notice(tmp_path, capsys):
    """The CLI says what the pipeline's notices say (they are not only in the per-scan JSON)."""
    from xscreen import paths
    from xscreen.cli import main
    from xscreen.scan import save_h5
    tray = dual_scan(96, 128, box=None)
    save_h5(replace(tray, scan_id="empty-tray"), tmp_path / "tray.h5")
    rc = main(["screen", str(tmp_path / "tray.h5"), "--model", str(paths.default_model()),
               "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0
    assert f"notice: {tmp_path / 'tray.h5'}: {EMPTY_NOTICE}" in err
