"""Safe decisions at the operator console (pytest-qt, offscreen): keys act only on the screening tab
with a scored bag and never take a text field's typing; a repeated key writes one row, a change is
an amendment linked to it; sign-in at every launch, sign-out / switch, idle lock."""
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtWidgets import QLineEdit, QMessageBox  # noqa: E402

from tests.test_gui_app import TIMEOUT, bag_dir, tiny_model  # noqa: E402,F401  (shared fixtures)
from xscreen.audit import AuditLog  # noqa: E402
from xscreen.gui.app import MainWindow  # noqa: E402

KEYS = {"C": Qt.Key.Key_C, "S": Qt.Key.Key_S, "U": Qt.Key.Key_U}


def _window(qtbot, tmp_path, operator="ana", minutes=None):
    if minutes is not None:
        QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat).setValue("session/idle_lock_minutes", minutes)
    win = MainWindow(settings_path=tmp_path / "gui.ini", audit_path=tmp_path / "audit.sqlite")
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    win.activateWindow()
    if operator:
        win.sign_in(operator)
    win.min_view_seconds = 0  # tests decide as soon as a bag is scored (the guard has its own test)
    return win


@pytest.fixture
def window(qtbot, tmp_path):
    win = _window(qtbot, tmp_path)
    yield win
    win.runner.shutdown()


def _rows(tmp_path):
    with AuditLog(tmp_path / "audit.sqlite") as log:
        assert log.verify().ok
        return log.rows()


def _scored(qtbot, win, path, model):
    win.set_model(str(model))
    win.open_path(path)
    qtbot.waitUntil(lambda: win.tab.screening is not None and win.runner.running is None, timeout=TIMEOUT)


def _press(qtbot, win, *keys):
    for k in keys:
        qtbot.keyClick(win, KEYS[k])


def _amend(win):
    next(b for b in win.amend_box.buttons() if "Amend" in b.text()).click()


def _focus(qtbot, widget):
    widget.setFocus()
    qtbot.waitUntil(widget.hasFocus, timeout=5000)


def test_decision_keys_act_only_on_the_screening_tab_and_never_take_typing(qtbot, window, bag_dir, tiny_model,
                                                                            tmp_path):
    _scored(qtbot, window, bag_dir / "a_threat.h5", tiny_model)
    window.tabs.setCurrentIndex(1)  # Training tab, the ALARM bag behind it
    _press(qtbot, window, "C", "S", "U")
    assert window.decide("decide.clear") is None  # the menu path is refused too
    assert not window.actions_by_id["decide.clear"].isEnabled()
    # typing a name into the wizard's text field: the field gets every letter, no decision is taken
    field = window.tabs.widget(1).pages["data"].threat
    _focus(qtbot, field)
    qtbot.keyClicks(field, "cuss")
    assert field.text() == "cuss" and _rows(tmp_path) == []
    # a text field on the screening tab keeps its keys as well (the decision keys are off meanwhile)
    window.tabs.setCurrentIndex(0)
    other = QLineEdit(window.tab.title.parentWidget())
    other.show()
    _focus(qtbot, other)
    assert not window.actions_by_id["decide.suspect"].isEnabled()
    assert not window.actions_by_id["view.gray"].isEnabled()
    qtbot.keyClicks(other, "sc2")
    assert other.text() == "sc2" and window.tab.state.view == "pseudo" and _rows(tmp_path) == []
    # on the screening tab with the scored bag and no text field focused: one key, exactly one row
    other.hide()
    _focus(qtbot, window.tab)
    assert window.actions_by_id["decide.suspect"].isEnabled()
    _press(qtbot, window, "S")
    rows = _rows(tmp_path)
    assert [(r["decision"], r["operator"], r["amends"]) for r in rows] == [("suspect", "ana", None)]


def test_no_decision_without_a_scored_bag(qtbot, window, bag_dir, tmp_path):
    _press(qtbot, window, "C")  # nothing on screen
    window.set_model("")
    window.open_path(bag_dir / "b_benign.h5")
    qtbot.waitUntil(lambda: window.tab.outcome is not None and window.runner.running is None, timeout=TIMEOUT)
    _press(qtbot, window, "C", "S")
    assert window.decide("decide.unresolved") is None and _rows(tmp_path) == []
    assert not window.tab.decisions.buttons["decide.clear"].isEnabled()
    assert "scored" in window.tab.decisions.info.text()


def test_a_repeated_key_writes_one_row_and_a_change_is_a_linked_amendment(qtbot, window, bag_dir, tiny_model,
                                                                           tmp_path):
    _scored(qtbot, window, bag_dir / "a_threat.h5", tiny_model)  # a one-bag queue: the bag stays on screen
    _press(qtbot, window, "S", "S", "S", "S")
    assert [r["decision"] for r in _rows(tmp_path)] == ["suspect"]
    assert "SUSPECT by ana" in window.tab.decisions.info.text() and "#1" in window.tab.decisions.info.text()
    assert "SUSPECT" in window.tab.queue_panel.list.item(0).text()
    assert "1/1 decided" in window.tab.queue_panel.title()
    _press(qtbot, window, "C")  # a different decision asks first; Cancel writes nothing
    box = window.amend_box
    assert box is not None and "SUSPECT" in box.text() and "CLEAR" in box.text()
    assert box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert len(_rows(tmp_path)) == 1 and "SUSPECT" in window.tab.decisions.info.text()
    _press(qtbot, window, "C")
    _amend(window)
    rows = _rows(tmp_path)
    assert [(r["id"], r["decision"], r["amends"]) for r in rows] == [(1, "suspect", None), (2, "clear", 1)]
    assert "CLEAR (amended)" in window.tab.decisions.info.text()
    assert "CLEAR (amended)" in window.tab.queue_panel.list.item(0).text()
    _press(qtbot, window, "C")
    assert window.amend_box is None and len(_rows(tmp_path)) == 2  # the amended call stands: no repeat
    window.dispatch("audit.stats")  # one bag (the amended one counts once), one amendment
    assert [window.dialog.table.item(0, c).text() for c in (0, 1, 4)] == ["ana", "1", "1"]


def test_queue_shows_each_bags_decision_and_going_back_shows_it(qtbot, window, bag_dir, tiny_model, tmp_path):
    _scored(qtbot, window, bag_dir, tiny_model)
    first = window.tab.outcome.path
    _press(qtbot, window, "S")
    qtbot.waitUntil(lambda: window.tab.outcome is not None and window.tab.outcome.path != first, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: window.tab.screening is not None, timeout=TIMEOUT)
    items = window.tab.queue_panel.list
    assert "SUSPECT" in items.item(0).text() and "SUSPECT" not in items.item(1).text()
    assert items.currentRow() == 1 and window.tab.decisions.info.text() == "Not decided yet"
    window.dispatch("queue.prev")
    qtbot.waitUntil(lambda: window.tab.screening is not None, timeout=TIMEOUT)
    assert window.tab.outcome.path == first and "SUSPECT by ana" in window.tab.decisions.info.text()
    _press(qtbot, window, "S")
    assert len(_rows(tmp_path)) == 1 and window.queue.position() == "1/2"  # no second row, no move
    # a new launch reads the standing decision back from the audit log
    window.close()
    again = _window(qtbot, tmp_path, operator="bo")
    _scored(qtbot, again, bag_dir / "a_threat.h5", tiny_model)
    assert "SUSPECT by ana" in again.tab.decisions.info.text()
    _press(qtbot, again, "U")
    assert again.amend_box is not None and len(_rows(tmp_path)) == 1
    again.amend_box.reject()


def test_a_double_press_does_not_decide_the_next_bag(qtbot, window, bag_dir, tiny_model, tmp_path):
    window.min_view_seconds = 0.5
    assert not window.actions_by_id["decide.suspect"].autoRepeat()  # a held key is one decision
    _scored(qtbot, window, bag_dir, tiny_model)
    nxt = window.queue.peek_next()
    qtbot.waitUntil(lambda: window.cache.get(nxt, window.model_path) is not None, timeout=TIMEOUT)
    qtbot.wait(600)
    _press(qtbot, window, "S", "S")  # the second press lands on the next bag, shown at once from the cache
    assert window.tab.outcome.path == str(nxt) and window.tab.screening is not None
    assert len(_rows(tmp_path)) == 1
    assert "decision key ignored" in window.statusBar().currentMessage()
    qtbot.wait(600)
    _press(qtbot, window, "C")
    assert [r["decision"] for r in _rows(tmp_path)] == ["suspect", "clear"]


def test_every_launch_signs_in_and_the_name_is_always_shown(qtbot, tmp_path, bag_dir, tiny_model):
    win = _window(qtbot, tmp_path, operator=None)
    assert win.stack.currentWidget() is win.sign_in_page and win.operator.name == ""
    assert "not signed in" in win.operator_label.text()
    assert not win.actions_by_id["decide.clear"].isEnabled() and not win.actions_by_id["file.open"].isEnabled()
    _focus(qtbot, win.sign_in_page.name)
    qtbot.keyClicks(win.sign_in_page.name, "csu ana")  # decision letters typed as a name
    qtbot.keyClick(win.sign_in_page.name, Qt.Key.Key_Return)
    assert win.operator.name == "csu ana" and win.stack.currentWidget() is win.tabs
    assert "csu ana" in win.operator_label.text() and "csu ana" in win.windowTitle()
    _scored(qtbot, win, bag_dir / "a_threat.h5", tiny_model)
    _focus(qtbot, win.tab)
    _press(qtbot, win, "S")
    # sign out (Ctrl+Shift+U), the next operator signs in: their decisions are theirs
    qtbot.keyClick(win, Qt.Key.Key_U, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert win.stack.currentWidget() is win.sign_in_page and not win.can_decide()
    _press(qtbot, win, "C")
    win.sign_in("bo")
    assert win.tab.outcome is not None  # the bag is still there for the next operator
    win.decide("decide.unresolved")
    _amend(win)
    assert [(r["operator"], r["decision"], r["amends"]) for r in _rows(tmp_path)] == \
        [("csu ana", "suspect", None), ("bo", "unresolved", 1)]
    assert not QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat).contains("operator/name")
    win.close()


def test_idle_time_from_the_settings_locks_the_console(qtbot, tmp_path):
    win = _window(qtbot, tmp_path, minutes=2)
    assert win.operator.idle_seconds == 120
    now = [1000.0]
    win.operator._clock = lambda: now[0]
    win.operator.touch()
    now[0] += 100
    qtbot.keyClick(win, Qt.Key.Key_F)  # any input restarts the idle clock
    now[0] += 100
    win._on_idle_timer_timeout()
    assert win.operator.signed_in
    now[0] += 21
    win._on_idle_timer_timeout()
    assert win.stack.currentWidget() is win.sign_in_page and not win.operator.signed_in
    assert "Locked after 2 min" in win.sign_in_page.message.text() and "ana" in win.sign_in_page.message.text()
    assert "not signed in" in win.operator_label.text()
    win.close()
    (tmp_path / "b").mkdir()
    never = _window(qtbot, tmp_path / "b", minutes=0)
    never.operator._clock = lambda: now[0] + 1e6
    never._on_idle_timer_timeout()
    assert never.operator.signed_in  # 0 = never lock
    never.close()
