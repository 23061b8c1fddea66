"""One scale on the screening tab (issue 31 item 2): every region number is score ÷ the bag's alarm
threshold ("× alarm"); the live threshold changes what is drawn, the banner says so and counts what
is drawn, and the machine verdict stays the calibrated rule's. Main window, offscreen."""
import json
import os
import shutil

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from tests.test_gui_app import TIMEOUT, bag_dir, tiny_model  # noqa: E402,F401  (shared fixtures)
from xscreen.audit import AuditLog  # noqa: E402
from xscreen.gui.app import MainWindow  # noqa: E402


@pytest.fixture(scope="module")
def review_model(bag_dir, tiny_model, tmp_path_factory):  # noqa: F811
    """The tiny model with a review level (30th percentile of the threat bag's patch scores) well
    below its alarm threshold (just under the highest score): the threat bag alarms on one region
    and shows attention regions beside it."""
    from xscreen.checkpoint import update_model_meta
    from xscreen.config import Calibration, ScreenConfig
    from xscreen.pipeline import screen
    from xscreen.scan import load_scan
    from xscreen.scoring import Scorer

    path = tmp_path_factory.mktemp("scale") / "review.xsm"
    shutil.copyfile(tiny_model, path)
    s = screen(load_scan(bag_dir / "a_threat.h5"), Scorer(path, device="cpu"), ScreenConfig(threshold=1.0))
    live = s.score_grid[~s.air_grid]
    update_model_meta(path, calibration=Calibration(float(np.quantile(live, 0.3)), 0.01,
                                                    float(live.max()) * 0.999, 0.05))
    return path


@pytest.fixture
def win(qtbot, tmp_path):
    w = MainWindow(settings_path=tmp_path / "gui.ini", audit_path=tmp_path / "audit.sqlite")
    qtbot.addWidget(w)
    w.sign_in("ana")
    w.min_view_seconds = 0
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.runner.shutdown()


def _box_labels(tab) -> list[str]:
    return [label.textItem.toPlainText() for _, label in tab.view._boxes]


def _check_one_scale(tab) -> None:
    """Boxes, list and banner all count and number the same regions, on the × alarm scale."""
    s = tab.screening
    n = len(tab.regions)
    assert tab.view.n_boxes == n == tab.region_panel.list.count()
    for r, label in zip(tab.regions, _box_labels(tab)):
        assert r.max_rel == pytest.approx(r.max_score / s.scan_threshold)
        assert label == f"#{r.rank}  {r.max_rel:.2f}× alarm"
        assert f"{r.max_rel:.2f} × alarm" in tab.region_panel.list.item(r.rank - 1).text()
        assert r.max_score >= s.threshold * tab.state.rel_threshold * (1 - 1e-6)  # drawn from the live threshold
    detail = tab.banner.verdict.detail
    assert (f"{n} region{'s' if n != 1 else ''} drawn" in detail) if n else ("no region drawn" in detail)
    assert tab.banner.headline.text() == "ALARM" and f"highest {s.scan_rel:.2f} × alarm" in detail


def test_one_scale_at_three_thresholds_and_the_machine_verdict_stays(qtbot, win, bag_dir, review_model,  # noqa: F811
                                                                      tmp_path):
    win.set_model(str(review_model))
    win.open_path(bag_dir / "a_threat.h5")
    tab = win.tab
    qtbot.waitUntil(lambda: tab.screening is not None and win.runner.running is None, timeout=TIMEOUT)
    s = tab.screening
    review = s.threshold / s.scan_threshold
    assert s.alarm and 0 < review < 1 and s.n_alarm_regions >= 1
    # 1. as calibrated: regions from the review level, the review level drawn on the colour bar
    _check_one_scale(tab)
    assert len(tab.regions) == len(s.regions) and "showing regions" not in tab.banner.verdict.detail
    assert (review / 2.0, f"review {review:.2f}", "mark") in tab.legend.colour_bar.ticks
    assert f"{review:.2f} × alarm" in tab.detector.threshold_label.text()
    # 2. lowered: more is drawn, the banner names the live threshold, the verdict is unchanged
    for _ in range(3):
        win.dispatch("threshold.down")
    live = tab.scale.live
    assert live == pytest.approx(review / 1.1 ** 3)
    _check_one_scale(tab)
    assert len(tab.regions) >= len(s.regions)
    assert f"showing regions ≥ {live:.2f} × alarm; machine verdict ALARM" in tab.banner.verdict.detail
    assert f"{live:.2f} × alarm" in tab.detector.threshold_label.text()
    # 3. raised far above the alarm: nothing drawn, and the banner says so - never NO ALARM
    for _ in range(40):
        win.dispatch("threshold.up")
    assert tab.scale.live > s.scan_rel
    _check_one_scale(tab)
    assert tab.regions == [] and tab.view.n_boxes == 0 and tab.banner.verdict.kind == "alarm"
    assert f"showing regions ≥ {tab.scale.live:.2f} × alarm; machine verdict ALARM" in tab.banner.verdict.detail
    # a decision taken here records what was shown (nothing) and the machine's alarm
    win.dispatch("decide.suspect")
    with AuditLog(tmp_path / "audit.sqlite") as log:
        row = log.rows()[-1]
    assert json.loads(row["regions_shown"]) == [] and row["machine_alarm"] in (1, True)
    assert row["threshold"] == pytest.approx(s.scan_threshold)  # the calibrated alarm threshold ...
    assert row["live_threshold"] == pytest.approx(tab.scale.live * s.scan_threshold)  # ... and the live one
    win.dispatch("threshold.reset")
    assert "showing regions" not in tab.banner.verdict.detail and len(tab.regions) == len(s.regions)
