"""The GUI's fast (coarse-to-fine) screening switch (pytest-qt, offscreen): the setting persists,
the shown result comes from the mode in force and says so, results of the two modes never mix."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from tests.test_gui_app import TIMEOUT, window  # noqa: E402,F401  (shared fixtures)
from xscreen.cascade import AUTO, DEFAULT_FRACTION_ESTIMATE  # noqa: E402
from xscreen.gui import state as st  # noqa: E402
from xscreen.gui.app import MainWindow  # noqa: E402
from xscreen.paths import default_model  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "resources" / "samples"
HANDGUN = SAMPLES / "bag02_handgun.h5"


def _idle_with(qtbot, win, cascade: float):
    qtbot.waitUntil(lambda: win.tab.screening is not None and win.tab.screening.cascade == cascade
                    and win.runner.running is None, timeout=TIMEOUT)
    return win.tab.screening


def _boxes(regions) -> list[tuple]:
    return [(r.x, r.y, r.w, r.h, r.level) for r in regions]


def test_setting_defaults_off_and_persists(qtbot, tmp_path):
    assert st.coerce_setting("screening/fast", None) is False
    assert st.coerce_setting("screening/fast", "true") is True  # QSettings' ini strings
    ini = tmp_path / "gui.ini"
    win = MainWindow(settings_path=ini, audit_path=tmp_path / "audit.sqlite")
    qtbot.addWidget(win)
    assert win.fast_action.isCheckable() and not win.fast_action.isChecked()
    assert win.screen_config().cascade == 0.0
    win.sign_in("ana")
    win.fast_action.trigger()  # the menu item
    assert win.setting("screening/fast") is True
    assert win.screen_config().cascade == AUTO
    win.close()
    again = MainWindow(settings_path=ini, audit_path=tmp_path / "audit.sqlite")
    qtbot.addWidget(again)
    assert again.fast_action.isChecked() and again.screen_config().cascade == AUTO
    again.close()


def test_fast_screening_on_the_handgun_bag_same_boxes_fewer_patches(qtbot, window):  # noqa: F811
    window.set_model(str(default_model()))
    window.open_path(HANDGUN)
    exact = _idle_with(qtbot, window, 0.0)
    assert exact.n_evaluated == exact.n_scored > 0
    assert window.tab.detector.mode_label.isHidden()  # the exact mode says nothing
    exact_shown = _boxes(window.tab.regions)

    window.fast_action.trigger()  # switching re-screens the bag on screen
    fast = _idle_with(qtbot, window, DEFAULT_FRACTION_ESTIMATE)  # the shipped model scores with λ 1
    assert fast.cascade == 0.8 and fast.n_evaluated < fast.n_scored == exact.n_scored
    assert _boxes(fast.regions) == _boxes(exact.regions) and any(r.level == "alarm" for r in fast.regions)
    assert fast.alarm == exact.alarm
    assert _boxes(window.tab.regions) == exact_shown
    label = window.tab.detector.mode_label
    assert not label.isHidden()
    assert label.text() == f"Fast screening: {fast.n_evaluated} of {fast.n_scored} patches scored"

    window.fast_action.trigger()  # back to exact: its own (cached) result, never the fast one
    again = _idle_with(qtbot, window, 0.0)
    assert again is exact and window.tab.detector.mode_label.isHidden()
    model = str(Path(window.model_path))
    assert window.cache.get(str(HANDGUN), model).screening is exact
    assert window.cache.get(str(HANDGUN), model + "#fast").screening is fast


def test_pre_scoring_uses_the_mode_in_force(qtbot, window):  # noqa: F811
    window.set_model(str(default_model()))
    window.set_fast_screening(True)
    assert window.fast_action.isChecked()
    window.open_path(SAMPLES)
    _idle_with(qtbot, window, DEFAULT_FRACTION_ESTIMATE)
    nxt = window.queue.peek_next()
    qtbot.waitUntil(lambda: window.cache.get(nxt, window.scoring_id()) is not None, timeout=TIMEOUT)
    assert window.cache.get(nxt, window.scoring_id()).screening.cascade == DEFAULT_FRACTION_ESTIMATE
    assert window.cache.get(nxt, window.model_path) is None  # nothing filed under the exact mode
