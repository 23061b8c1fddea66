"""The training wizard inside the full main window (issue 31 items 3 and 10): every field keeps what
is typed into it key by key, the window fits a 1000-px screen, and the train / calibrate pages'
details. pytest-qt, offscreen."""
import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QAbstractSpinBox, QApplication  # noqa: E402

from xscreen.gui.app import MainWindow  # noqa: E402


@pytest.fixture
def win(qtbot, tmp_path):
    w = MainWindow(settings_path=tmp_path / "gui.ini", audit_path=tmp_path / "audit.sqlite")
    qtbot.addWidget(w)
    w.sign_in("ana")
    w.show()
    qtbot.waitExposed(w)
    w.activateWindow()
    w.dispatch("tab.training")
    yield w
    w.tabs.widget(1).shutdown()
    w.runner.shutdown()


def _page(win, key):
    """Show wizard page ``key`` (its own start page: no gate in the way)."""
    wiz = win.tabs.widget(1)
    wiz.setStartId(list(wiz.pages).index(key))
    wiz.restart()
    return wiz.pages[key]


def _type(qtbot, widget, text: str) -> None:
    """Click into ``widget``, select what is there, then type ``text`` one key at a time into
    whatever has the focus - as a person at the keyboard does."""
    widget.setFocus(Qt.FocusReason.MouseFocusReason)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget or widget.isAncestorOf(QApplication.focusWidget()))
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    for ch in text:
        target = QApplication.focusWidget()
        if ch == "\n":
            qtbot.keyClick(target, Qt.Key.Key_Return)
        else:
            qtbot.keyClicks(target, ch)


def test_every_wizard_field_keeps_what_is_typed_in_the_main_window(qtbot, win, tmp_path):
    wiz = win.tabs.widget(1)
    data = _page(win, "data")
    _type(qtbot, data.threat, str(tmp_path) + "\n")
    assert data.threat.text() == str(tmp_path) and wiz.state.threat == tmp_path
    patches = _page(win, "patches")
    for box, text, value in ((patches.stride, "24", 24), (patches.air, "0.9", 0.9)):
        _type(qtbot, box, text)
        assert box.value() == pytest.approx(value), box
    assert wiz.state.patch.stride == 24 and wiz.state.patch.air_threshold == pytest.approx(0.9)
    model = _page(win, "model")
    model.advanced.setChecked(True)
    typed = {"epochs": ("7", 7), "batch": ("32", 32), "seed": ("123", 123), "ngf": ("12", 12), "ndf": ("14", 14),
             "w_adv": ("2", 2.0), "w_con": ("40", 40.0), "w_lat": ("3", 3.0), "lam": ("0.9", 0.9),
             "input_mask": ("0.25", 0.25), "window": ("16", 16), "density": ("0.5", 0.5), "d_every": ("2", 2)}
    for name, (text, value) in typed.items():
        box = getattr(model, name)
        assert isinstance(box, QAbstractSpinBox)
        _type(qtbot, box, text)
        assert box.value() == pytest.approx(value), name
    t = wiz.state.train
    assert (t.epochs, t.batch_size, t.seed, wiz.state.net.ngf, wiz.state.net.ndf) == (7, 32, 123, 12, 14)
    assert (t.w_con, t.lam, t.recon_window, t.d_every) == (40.0, pytest.approx(0.9), 16, 2)
    calibrate = _page(win, "calibrate")
    for box, text in ((calibrate.patch_far, "0.02"), (calibrate.scan_far, "0.1")):
        _type(qtbot, box, text)
    assert (wiz.state.train.patch_far, wiz.state.train.scan_far) == (pytest.approx(0.02), pytest.approx(0.1))
    save = _page(win, "save")
    _type(qtbot, save.name, "wizard-csu small")
    _type(qtbot, save.description, "first model\nfor the csu lane")
    assert save.name.text() == "wizard-csu small" and wiz.state.name == "wizard-csu small"
    assert save.description.toPlainText() == "first model\nfor the csu lane" == wiz.state.description
    assert QApplication.focusWidget() is save.description  # the focus never left for the tab bar
