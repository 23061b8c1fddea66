"""The console on a shift (issue 31 items 4, 11, 13): the wheel scrolls the side panel, the queue
knows every standing decision when it opens (and which model it was taken under), a decision moves
on to the next undecided bag, the status bar never shows another bag's readout, the side panel's
model card is written for the operator. Main window, offscreen."""
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QWheelEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.test_gui_app import TIMEOUT, bag_dir, tiny_model  # noqa: E402,F401  (shared fixtures)
from xscreen.audit import AuditLog, Decision  # noqa: E402
from xscreen.gui.app import MainWindow  # noqa: E402


@pytest.fixture(scope="module")
def three_bags(tmp_path_factory):
    from xscreen.scan import save_scan
    from xscreen.synth import synth_bag

    d = tmp_path_factory.mktemp("three")
    for i in range(3):
        save_scan(synth_bag(20 + i, threat=i == 0, width=128).scan, d / f"bag{i}.h5")
    return d


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


def _scored(qtbot, win, index=None):
    if index is not None:
        win._on_queue_chosen(index)
    qtbot.waitUntil(lambda: win.tab.screening is not None and win.runner.running is None, timeout=TIMEOUT)
    if win.queue.current is not None:
        assert win.tab.outcome.path == str(win.queue.current)


def _wheel(widget, down: bool = True) -> None:
    pos = QPointF(widget.width() / 2, widget.height() / 2)
    ev = QWheelEvent(pos, widget.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120 if down else 120),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(widget, ev)


def test_the_wheel_over_the_side_panel_scrolls_it_and_changes_no_control(qtbot, win, bag_dir, tiny_model):  # noqa: F811
    win.resize(1100, 560)  # a side panel taller than the window: there is something to scroll
    win.set_model(str(tiny_model))
    win.open_path(bag_dir / "a_threat.h5")
    _scored(qtbot, win)
    tab = win.tab
    bar = tab.side_scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(0)
    slider, combo = tab.detector.threshold, tab.detector.layer
    before = (slider.value(), tab.state.rel_threshold, combo.currentIndex(), tab.state.layer)
    _wheel(slider)
    _wheel(combo)
    _wheel(tab.detector.opacity)
    assert (slider.value(), tab.state.rel_threshold, combo.currentIndex(), tab.state.layer) == before
    assert bar.value() > 0 and tab.wheel.forwarded == 3  # the panel scrolled instead
    top = bar.value()
    _wheel(tab.display.view_combo, down=False)
    assert bar.value() < top and tab.state.view == "pseudo"


def test_the_queue_knows_standing_decisions_at_once_and_a_model_change_is_marked(qtbot, win, three_bags,
                                                                                  tiny_model, tmp_path):  # noqa: F811
    win.set_model(str(tiny_model))
    win.open_path(three_bags)
    _scored(qtbot, win, 1)
    s, outcome = win.tab.screening, win.tab.outcome
    assert "0/3 decided" in win.tab.queue_panel.title()
    with AuditLog(tmp_path / "audit.sqlite") as log:  # another console decided bag 1 under another model
        log.record(Decision(operator="bo", scan_id=outcome.scan.scan_id, file_sha256=outcome.sha256,
                            model_id="older-0123456789ab", threshold=1.0, decision="clear", decision_seconds=2.0,
                            machine_alarm=not s.alarm))
    win.open_path(three_bags)  # the queue opens again: looked up before any bag is visited
    qtbot.waitUntil(lambda: "1/3 decided" in win.tab.queue_panel.title(), timeout=TIMEOUT)
    assert win.queue.index == 0 and "CLEAR" in win.tab.queue_panel.list.item(1).text()
    _scored(qtbot, win, 1)
    info = win.tab.decisions.info.text()
    assert "CLEAR by bo" in info and "under model older-0123456789ab" in info
    assert f"the current model {s.model_id}" in info and "look again" in info
    assert "(under older-0123456789ab)" in win.tab.queue_panel.list.item(1).text()  # marked in the queue too


def test_a_decision_moves_on_to_the_next_undecided_bag(qtbot, win, three_bags, tiny_model, tmp_path):  # noqa: F811
    win.set_model(str(tiny_model))
    win.open_path(three_bags)
    _scored(qtbot, win, 1)
    win.dispatch("decide.suspect")  # bag 2 decided; on to bag 3
    assert win.queue.index == 2
    _scored(qtbot, win, 0)
    win.dispatch("decide.clear")  # bag 1: the next bag is decided already - skip to bag 3
    assert win.queue.index == 2
    _scored(qtbot, win)
    win.dispatch("decide.clear")  # the last undecided bag: stay, and say the queue is done
    assert win.queue.index == 2 and "all 3 bags of the queue are decided" in win.statusBar().currentMessage()
    assert "3/3 decided" in win.tab.queue_panel.title()


def test_no_readout_of_another_bag_and_an_operators_model_card(qtbot, win, bag_dir, tiny_model, tmp_path):  # noqa: F811
    win.set_model(str(tiny_model))
    card = win.tab.models.card.text()
    assert "Learned what" in card and "Alarm rate" in card and "Ctrl+I" in card
    assert "ngf" not in card and "BCE" not in card  # the network's details are for Ctrl+I
    win.dispatch("model.card")
    assert "== Network ==" in win.dialog.text.toPlainText()
    win.open_path(bag_dir / "a_threat.h5")
    _scored(qtbot, win)
    win.tab._on_view_cursor_moved(10.2, 10.2)
    assert "x 10  y 10" in win.cursor_label.text()
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 50)
    win.open_path(bad)
    qtbot.waitUntil(lambda: win.tab.errors.paths() == [str(bad)], timeout=TIMEOUT)
    assert win.cursor_label.text() == ""  # the error bag shows no pixel readout of the last one
    win.open_path(bag_dir / "a_threat.h5")
    _scored(qtbot, win)
    win.tab._on_view_cursor_moved(10.2, 10.2)
    assert win.cursor_label.text()
    win.statusBar().showMessage("recorded #7: clear by ana")
    win.sign_out()
    assert win.cursor_label.text() == "" and win.statusBar().currentMessage() == ""


def test_an_unreadable_bag_gets_a_disposition_of_its_own_and_the_queue_completes(qtbot, win, three_bags,  # noqa: F811
                                                                                  tiny_model, tmp_path):
    folder = tmp_path / "lane"
    folder.mkdir()
    for name in ("bag0.h5", "bag2.h5"):
        (folder / name).write_bytes((three_bags / name).read_bytes())
    (folder / "bag1.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 50)
    win.set_model(str(tiny_model))
    win.open_path(folder)
    _scored(qtbot, win)
    assert not win.actions_by_id["decide.unreadable"].isEnabled()  # a scored bag takes a verdict, not X
    assert not win.tab.decisions.buttons["decide.unreadable"].isVisible()
    win.dispatch("decide.clear")  # on to the broken bag
    qtbot.waitUntil(lambda: win.failed_path == str(folder / "bag1.h5"), timeout=TIMEOUT)
    assert win.tab.banner.verdict.kind == "error" and not win.actions_by_id["decide.suspect"].isEnabled()
    assert win.actions_by_id["decide.unreadable"].isEnabled() and win.tab.decisions.buttons["decide.unreadable"].isVisible()
    assert "re-scan / hand search" in win.tab.decisions.info.text()
    win.dispatch("decide.unreadable")
    with AuditLog(tmp_path / "audit.sqlite") as log:
        rows = log.rows()
    assert [r["decision"] for r in rows] == ["clear", "unreadable"]
    assert rows[1]["scan_id"] == "bag1.h5" and rows[1]["operator"] == "ana" and len(rows[1]["file_sha256"]) == 64
    assert "UNREADABLE" in win.tab.queue_panel.list.item(1).text()
    _scored(qtbot, win)
    assert win.queue.index == 2
    win.dispatch("decide.suspect")
    assert "3/3 decided" in win.tab.queue_panel.title()
    assert "all 3 bags of the queue are decided" in win.statusBar().currentMessage()
    win._on_queue_chosen(1)  # back on the broken bag: its disposition stands, X again writes nothing
    qtbot.waitUntil(lambda: win.failed_path == str(folder / "bag1.h5"), timeout=TIMEOUT)
    assert "UNREADABLE by ana" in win.tab.decisions.info.text()
    win.dispatch("decide.unreadable")
    with AuditLog(tmp_path / "audit.sqlite") as log:
        assert len(log.rows()) == 3
