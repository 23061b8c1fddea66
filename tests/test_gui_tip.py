"""TIP at the operator console, in the main window (pytest-qt, offscreen): a TIP bag in a queue, the
response and its feedback, the real bag after it, two audit rows of distinct kinds; sign-out between
the feedback and the real decision; the supervisor setting refused to a wrong or missing password;
the statistics page against a hand count."""
import math
import os
from statistics import NormalDist

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from tests.test_gui_app import TIMEOUT, bag_dir, tiny_model  # noqa: E402,F401  (shared fixtures)
from xscreen.audit import AuditLog, Decision, TipEvent  # noqa: E402
from xscreen.gui.app import MainWindow  # noqa: E402
from xscreen.scan import load_scan  # noqa: E402
from xscreen.tip import build_library  # noqa: E402
from xscreen.tip.console import TipConsole  # noqa: E402
from xscreen.tip.supervisor import TipSettings  # noqa: E402

KEYS = {"C": Qt.Key.Key_C, "S": Qt.Key.Key_S, "U": Qt.Key.Key_U, "Enter": Qt.Key.Key_Return}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return build_library(tmp_path_factory.mktemp("tiplib") / "lib", per_category=1, seed=0)


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(settings_path=tmp_path / "gui.ini", audit_path=tmp_path / "audit.sqlite")
    qtbot.addWidget(win)
    win.sign_in("ana")
    win.min_view_seconds = 0
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    yield win
    win.tip_runner.shutdown()
    win.runner.shutdown()


def _tip_first_bag_only(win, library):
    """TIP on at rate 1 in 1 for the first bag drawn, never after (a seeded console for the test)."""
    draws = iter([0])
    win.tip_console = TipConsole(TipSettings(True, 1, (), str(library.path)), chance=lambda n: next(draws, 1),
                                 rng=np.random.default_rng(1))


def _rows(tmp_path):
    with AuditLog(tmp_path / "audit.sqlite") as log:
        assert log.verify().ok
        return log.rows()


def _press(qtbot, win, key):
    qtbot.keyClick(win, KEYS[key])


def _tip_on_screen(qtbot, win, model, folder):
    win.set_model(str(model))
    win.open_path(folder)
    qtbot.waitUntil(lambda: win.tip_console.on_screen() is not None and win.tab.screening is not None,
                    timeout=TIMEOUT)
    return win.tip_console.on_screen()


def _real_bag_on_screen(qtbot, win, path):
    qtbot.waitUntil(lambda: win.tip_console.on_screen() is None and win.tab.screening is not None
                    and win.tab.outcome.path == str(path), timeout=TIMEOUT)
    assert np.array_equal(win.tab.outcome.scan.channels, load_scan(path).channels)  # no threat in it


def test_suspect_on_a_tip_bag_gives_detected_feedback_then_the_real_bag_and_two_rows(qtbot, window, bag_dir,
                                                                                       tiny_model, library, tmp_path):
    _tip_first_bag_only(window, library)
    trial = _tip_on_screen(qtbot, window, tiny_model, bag_dir)
    real = bag_dir / "a_threat.h5"
    assert trial.bag == str(real) and window.tab.outcome.path == str(real)
    shown = window.tab.outcome.scan
    assert not np.array_equal(shown.channels, load_scan(real).channels)  # the TIP image is what is shown
    assert shown.scan_id == load_scan(real).scan_id and not window.tip_panel.isVisible()  # nothing tells it apart
    assert window.tab.screening.path is None  # the heat map and boxes are the detector's on the TIP image
    tip_regions, tip_grid = window.tab.regions_shown(), window.tab.screening.score_grid.copy()
    # select a region on the threat when the detector drew one there
    on_threat = next((r for r in window.tab.regions if trial.tip.projected.mask[r.y:r.y + r.h, r.x:r.x + r.w].any()),
                     None)
    if on_threat is not None:
        window.tab.select_region(on_threat.rank)
    _press(qtbot, window, "S")
    assert window.tip_panel.isVisible() and window.tip_panel.headline.text() == "TIP detected"
    assert len(window._tip_items) >= 2  # the outline and its tag
    rows = _rows(tmp_path)
    assert [r["kind"] for r in rows] == ["tip"] and window.queue.decision(real) is None
    tip = rows[0]["tip"]
    assert (tip["response"], tip["detected"], tip["fti_id"]) == ("suspect", True, trial.tip.fti.fti_id)
    assert tip["overlap"] is (None if on_threat is None else True)
    assert rows[0]["operator"] == "ana" and rows[0]["regions_shown"] and tip["placement"]["cx"] > 0
    _press(qtbot, window, "C")  # a decision key during the feedback decides nothing
    assert len(_rows(tmp_path)) == 1
    _press(qtbot, window, "Enter")
    _real_bag_on_screen(qtbot, window, real)
    assert not window.tip_panel.isVisible() and window._tip_items == []
    real_score = window.tab.screening.scan_score
    assert not np.array_equal(window.tab.screening.score_grid, tip_grid)  # the TIP image's scores were its own
    _press(qtbot, window, "C")
    rows = _rows(tmp_path)
    assert [r["kind"] for r in rows] == ["tip", "bag"]
    assert rows[1]["decision"] == "clear" and rows[1]["bag_score"] == pytest.approx(real_score)
    assert rows[1]["regions_shown"] != rows[0]["regions_shown"] or tip_regions == []
    # the next bag of the queue follows, without TIP (drawn: no)
    qtbot.waitUntil(lambda: window.tab.outcome is not None and window.tab.outcome.path.endswith("b_benign.h5")
                    and window.tab.screening is not None, timeout=TIMEOUT)
    assert window.tip_console.on_screen() is None


def test_a_tip_bag_drawn_while_pre_scoring_comes_up_at_once_like_any_pre_scored_bag(qtbot, window, bag_dir,
                                                                                    tiny_model, library, tmp_path):
    draws = iter([1, 0])  # the first bag: no TIP; the second (drawn when it is pre-scored): TIP
    window.tip_console = TipConsole(TipSettings(True, 2, (), str(library.path)), chance=lambda n: next(draws, 1),
                                    rng=np.random.default_rng(1))
    window.set_model(str(tiny_model))
    window.open_path(bag_dir)
    second = str(bag_dir / "b_benign.h5")
    qtbot.waitUntil(lambda: window.tab.screening is not None and second in window._tip_ready
                    and window.cache.get(second, window.scoring_id()) is not None, timeout=TIMEOUT)
    assert window.tip_console.on_screen() is None and window.tab.outcome.path.endswith("a_threat.h5")
    _press(qtbot, window, "C")  # the first bag's real decision; the next bag comes up at once, as its TIP image
    trial = window.tip_console.on_screen()
    assert trial is not None and trial.bag == second and window.tab.outcome.path == second
    assert not np.array_equal(window.tab.outcome.scan.channels, load_scan(second).channels)
    _press(qtbot, window, "U")
    assert window.tip_panel.headline.text() == "TIP detected" and "Unresolved counts as detected" in \
        window.tip_panel.detail.text()
    _press(qtbot, window, "Enter")
    _real_bag_on_screen(qtbot, window, second)
    rows = _rows(tmp_path)
    assert [(r["kind"], r["tip"] and r["tip"]["response"]) for r in rows] == [("bag", None), ("tip", "unresolved")]


def test_clear_on_a_tip_bag_is_missed_and_a_sign_out_leaves_the_real_bag_undecided(qtbot, window, bag_dir,
                                                                                    tiny_model, library, tmp_path):
    _tip_first_bag_only(window, library)
    trial = _tip_on_screen(qtbot, window, tiny_model, bag_dir)
    window.load_tip_settings()  # a setting re-read meanwhile (supervisor): the trial on screen stays
    _press(qtbot, window, "C")
    assert window.tip_panel.headline.text() == "TIP missed" and "where the outline is" in window.tip_panel.detail.text()
    assert _rows(tmp_path)[0]["tip"]["detected"] is False
    window.sign_out()  # between the TIP feedback and the real decision
    window.sign_in("bo")
    _real_bag_on_screen(qtbot, window, trial.bag)
    assert [r["kind"] for r in _rows(tmp_path)] == ["tip"] and window.queue.decision(trial.bag) is None
    _press(qtbot, window, "S")
    rows = _rows(tmp_path)
    assert [(r["kind"], r["operator"], r["decision"]) for r in rows] == [("tip", "ana", "tip"), ("bag", "bo", "suspect")]


def test_operators_cannot_change_tip_settings_without_the_supervisor_password(qtbot, window, library):
    window.show_tip_settings()
    first = window.dialog
    assert first.first  # no password yet: the first supervisor sets one
    first.who.setText("sam")
    first.password.setText("supervisor-pw")
    first.repeat.setText("supervisor-pw")
    first.enabled.setChecked(True)
    first.rate.setValue(25)
    first.library.setText(str(library.path))
    assert first.submit(), first.message.text()
    assert window.tip_console.settings == TipSettings(True, 25, (), str(library.path))
    assert "supervisor-pw" not in window.tip_store.path.read_text()
    for typed in ("", "ana", "supervisor-PW"):  # the operator's own name or a guess
        window.show_tip_settings()
        dlg = window.dialog
        assert not dlg.first
        dlg.who.setText("ana")
        dlg.password.setText(typed)
        dlg.enabled.setChecked(False)
        assert not dlg.submit()
        assert "password" in dlg.message.text() and dlg.isVisible()
        dlg.reject()
    assert window.tip_console.settings.enabled and window.tip_store.settings().rate == 25
    assert [e["who"] for e in window.tip_store.entries()] == ["sam", "sam"]


def test_tip_statistics_page_matches_a_hand_count(qtbot, window, tmp_path):
    with AuditLog(tmp_path / "audit.sqlite") as log:
        for i, response in enumerate(["suspect", "unresolved", "suspect", "clear"]):
            log.record_tip(TipEvent("ana", f"t{i}", f"{i:064x}", "m", "f1", "knife", {"cx": 1.0, "cy": 1.0},
                                    response, 2.0))
        for i, decision in enumerate(["clear", "clear", "suspect", "clear", "clear"]):
            log.record(Decision("ana", f"b{i}", f"{i + 100:064x}", "m", 1.0, decision, 3.0))
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "TIP")
    next(a for a in menu.actions() if a.text().startswith("TIP statistics")).trigger()  # from the menu
    rows = {(r[0], r[1]): r for r in window.dialog.rows}
    ana = rows[("ana", "*")]
    assert ana[2] == "4" and ana[4] == "1/5" and "< 100" in ana[7]
    z = NormalDist().inv_cdf
    assert float(ana[6]) == pytest.approx(z(3.5 / 5) - z(1.5 / 6), abs=0.005)
    n, p, zz = 4, 0.75, 1.959963984540054
    mid, half = (p + zz * zz / (2 * n)) / (1 + zz * zz / n), zz * math.sqrt(p * (1 - p) / n + zz * zz / (4 * n * n)) / (1 + zz * zz / n)
    assert ana[3] == f"0.75 [{mid - half:.2f}, {mid + half:.2f}]"
    assert rows[("ana", "knife")][2] == "4" and window.dialog.table.rowCount() == len(window.dialog.rows)


def test_feedback_screen_grab(qtbot, window, bag_dir, tiny_model, library, tmp_path):
    """The TIP-missed screen as the operator sees it, grabbed offscreen (XSCREEN_TIP_SCREENSHOT: also saved)."""
    _tip_first_bag_only(window, library)
    _tip_on_screen(qtbot, window, tiny_model, bag_dir)
    _press(qtbot, window, "C")
    window.resize(1400, 860)
    qtbot.wait(200)
    image = window.grab().toImage()
    out = os.environ.get("XSCREEN_TIP_SCREENSHOT") or str(tmp_path / "tip_feedback.png")
    assert image.save(out) and os.path.getsize(out) > 10_000
    assert window.tip_panel.isVisible() and image.width() >= 1000
