"""Bad files in a queue go to one non-modal list, long error text never widens the window past the
screen, and a file that cannot be opened leaves the recent-files menu (issue 14 items 6, 10)."""
import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication, QScrollArea  # noqa: E402

from tests.test_gui_app import TIMEOUT, bag_dir, tiny_model, window  # noqa: E402,F401
from xscreen.gui import dialogs  # noqa: E402
from xscreen.gui.notices import breakable, fit_size  # noqa: E402

LONG = "fault " + "x" * 3000 + " " + "/very/long/path/" * 100


def _bad(path, n=1):
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 50 * n)
    return path


SMALL_SCREEN = 1024  # the narrowest screen the console is laid out for (offscreen Qt reports 800)


def _within_screen(win, before):
    """Long text changed neither the window's width nor the width it insists on."""
    return (win.width(), win.minimumSizeHint().width()) == before and before[1] <= SMALL_SCREEN


def test_bad_files_in_a_queue_are_one_list_and_no_modal(qtbot, window, bag_dir, tiny_model, tmp_path):  # noqa: F811
    folder = tmp_path / "queue"
    folder.mkdir()
    for name in ("a_bad.h5", "b_bad.h5", "c_bad.h5"):
        _bad(folder / name)
    (folder / "d_good.h5").write_bytes((bag_dir / "b_benign.h5").read_bytes())
    window.set_model(str(tiny_model))
    window.open_path(folder)
    for step in range(3):
        qtbot.waitUntil(lambda: window.runner.running is None, timeout=TIMEOUT)
        window.dispatch("queue.next")
    qtbot.waitUntil(lambda: window.tab.screening is not None and window.runner.running is None, timeout=TIMEOUT)
    assert sorted(os.path.basename(p) for p in window.tab.errors.paths()) == ["a_bad.h5", "b_bad.h5", "c_bad.h5"]
    assert window.tab.errors.title() == "Could not open (3)"
    assert window.error is None and QApplication.activeModalWidget() is None
    window.dispatch("queue.prev")  # back to a bad bag: the banner says it is not cleared
    qtbot.waitUntil(lambda: window.runner.running is None and window.tab.banner.verdict.kind == "error",
                    timeout=TIMEOUT)
    assert window.tab.banner.headline.text() == "ERROR" and "not cleared" in window.tab.banner.detail.text()
    assert str(folder) not in window.tab.banner.detail.text()  # the title names the file once
    assert "c_bad.h5" in window.tab.title.text() and not window.tab.legend.materials.isVisible()
    assert not [w for w in QApplication.topLevelWidgets() if w.isVisible() and w is not window]
    window.tab.errors.clear()
    assert not window.tab.errors.isVisible()


def test_long_error_text_keeps_the_window_within_the_screen(qtbot, window):  # noqa: F811
    screen = QApplication.primaryScreen().availableGeometry()
    before = (window.width(), window.minimumSizeHint().width())
    window._on_job_failed(f"/q/{'n' * 400}.h5|m", LONG)
    window.target = f"/q/{'n' * 400}.h5|m"
    window._on_job_failed(window.target, LONG)
    qtbot.wait(50)
    assert len(window.tab.errors.paths()) == 1  # the same file again replaces its row
    assert _within_screen(window, before) and window.tab.title.minimumSizeHint().width() < 100
    assert "could not open" in window.tab.title.text() and window.tab.title.toolTip()
    box = dialogs.error_box(window, "Cannot open folder", LONG)
    qtbot.addWidget(box)
    qtbot.waitExposed(box)
    assert box.width() <= screen.width() and LONG in box.detailedText()
    box.close()
    assert _within_screen(window, before)


def test_break_points_and_first_size():
    text = breakable("see /a/b/" + "c" * 130 + ".h5 now")
    assert text.replace("\u200b", "") == "see /a/b/" + "c" * 130 + ".h5 now"
    assert max(len(part) for part in text.replace(" ", "\u200b").split("\u200b")) <= 60
    assert breakable("short/path.h5") == "short/path.h5"  # file names stay whole
    assert fit_size((1400, 860), (1280, 800)) == (1216, 760)
    assert fit_size((1400, 860), (2560, 1440)) == (1400, 860)


def test_a_file_that_cannot_be_opened_leaves_recent(qtbot, window, bag_dir, tmp_path):  # noqa: F811
    good, bad = bag_dir / "b_benign.h5", _bad(tmp_path / "corrupt.h5")
    window.open_path(good)
    qtbot.waitUntil(lambda: window.runner.running is None, timeout=TIMEOUT)
    window.open_path(bad)
    qtbot.waitUntil(lambda: window.tab.errors.paths() == [str(bad)], timeout=TIMEOUT)
    assert window.setting("files/recent") == [str(good)]
    assert [a.text() for a in window.recent_menu.actions()] == [str(good)]


def test_f1_sheet_shows_every_key_without_scrolling(qtbot, window):  # noqa: F811
    from xscreen.gui import shortcuts

    window.dispatch("help.keys")
    sheet = window.dialog
    qtbot.waitExposed(sheet)
    text = "".join(label.text() for label in sheet.group_labels)
    assert all(f"<b>{sc.keys}</b>" in text.replace("&gt;", ">") for sc in shortcuts.SHORTCUTS)
    assert not sheet.findChildren(QScrollArea) and len(sheet.group_labels) == 3
    # everything fits: each column's content is no taller than what the dialog gives it
    assert all(label.height() >= label.sizeHint().height() for label in sheet.group_labels)
    assert sheet.height() <= 720 and sheet.width() <= 1280


def test_ctrl_i_shows_the_full_card_not_the_side_panel_again(qtbot, window, tiny_model):  # noqa: F811
    window.set_model(str(tiny_model))
    window.dispatch("model.card")
    text = window.dialog.text.toPlainText()
    side = window.tab.models.card.text()
    assert text != side and "checksum:" in text and "== Training ==" in text
    assert "patch_threshold:" in text and "data_manifest_sha256" in text
    assert window.dialog.text.isReadOnly()
