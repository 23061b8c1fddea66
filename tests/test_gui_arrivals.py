"""The GUI at a lane (pytest-qt, offscreen): bags written into the inbox appear in the arrivals queue
in arrival order, the backlog follows the operator's decisions, the next bag opens on a decision, and
a DICOS object stored over loopback arrives screened in the queue. With XSCREEN_SCREENSHOTS=DIR the
arrivals screenshot is written there (resources/readme/screenshot_arrivals.png; the README's uses
XSCREEN_SCREENSHOT_MODEL=models/default.xsm, the shipped model, instead of the tiny untrained one):

    XSCREEN_SCREENSHOTS=resources/readme QT_QPA_PLATFORM=offscreen pytest tests/test_gui_arrivals.py
"""
import os
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from tests.test_gui_app import TIMEOUT, bag_dir, tiny_model  # noqa: E402,F401  (shared fixtures)
from xscreen.gui.app import MainWindow  # noqa: E402
from xscreen.gui.arrivals_dock import attach_inbox  # noqa: E402


@pytest.fixture
def lane_window(qtbot, tmp_path):
    win = MainWindow(settings_path=tmp_path / "gui.ini", audit_path=tmp_path / "audit.sqlite")
    qtbot.addWidget(win)
    win.resize(1500, 900)
    win.sign_in("ana")
    win.min_view_seconds = 0
    win.show()
    qtbot.waitExposed(win)
    hooks = []
    yield win, hooks
    for h in hooks:
        h.stop()
    win.runner.shutdown()


def _drop(src: Path, inbox: Path, name: str, mtime: float) -> None:
    """Write like a renaming sender (.part, then the final name), with a chosen mtime."""
    part = inbox / f"{name}.part"
    shutil.copy(src, part)
    os.utime(part, (mtime, mtime))
    part.rename(inbox / name)


def test_inbox_bags_appear_in_order_and_backlog_follows(qtbot, lane_window, tmp_path, bag_dir, tiny_model):  # noqa: F811
    from xscreen.scan import save_scan
    from xscreen.synth import synth_bag

    win, hooks = lane_window
    win.set_model(os.environ.get("XSCREEN_SCREENSHOT_MODEL") or str(tiny_model))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    third = tmp_path / "c.h5"
    save_scan(synth_bag(5, threat=False, width=160).scan, third)
    now = time.time()
    # names sort the other way round from arrival: the queue must follow arrival (mtime), not names
    for i, (src, name) in enumerate([(bag_dir / "a_threat.h5", "spool-c.h5"), (bag_dir / "b_benign.h5", "spool-b.h5"),
                                     (third, "spool-a.h5")]):
        _drop(src, inbox, name, now - 30 + i)
    hooks.append(attach_inbox(win, inbox, settle=0.05, poll=0.05))
    panel = hooks[0].panel
    qtbot.waitUntil(lambda: panel.list.count() == 3, timeout=TIMEOUT)
    assert [e.name for e in panel.queue.entries] == ["spool-c.h5", "spool-b.h5", "spool-a.h5"]
    assert all(e.status == "screened" for e in panel.queue.entries)
    assert panel.list.currentRow() == 0
    assert panel.queue.backlog == 3 and panel.backlog.text().startswith("Backlog: 3 undecided")
    assert [str(p) for p in win.queue.paths] == [e.path for e in panel.queue.entries]
    assert str(win.queue.current) == panel.queue.entries[0].path  # the first arrival is on screen
    qtbot.waitUntil(lambda: win.tab.screening is not None and win.runner.running is None, timeout=TIMEOUT)
    win.dispatch("decide.clear")
    qtbot.waitUntil(lambda: panel.queue.backlog == 2, timeout=TIMEOUT)
    assert panel.queue.entries[0].decision == "clear" and "CLEAR" in panel.list.item(0).text()
    assert str(win.queue.current) == panel.queue.entries[1].path  # the decision opened the next bag
    assert panel.backlog.text().startswith("Backlog: 2 undecided")
    qtbot.waitUntil(lambda: panel.list.currentRow() == 1, timeout=TIMEOUT)  # the list follows the screen
    _drop(bag_dir / "a_threat.h5", inbox, "spool-d.h5", time.time())  # the same bytes again: the same bag
    with open(inbox / "spool-e.h5", "wb") as fh:
        fh.write(third.read_bytes()[:100])  # a sender still writing: never listed while incomplete
    qtbot.wait(500)
    assert panel.list.count() == 3
    qtbot.waitUntil(lambda: win.tab.screening is not None and win.runner.running is None, timeout=TIMEOUT)
    out = Path(os.environ.get("XSCREEN_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    assert win.grab().save(str(out / "screenshot_arrivals.png"))
    assert (out / "screenshot_arrivals.png").stat().st_size > 10_000


def test_loopback_dicos_store_is_screened_into_the_queue(qtbot, lane_window, tmp_path, realdata):
    pytest.importorskip("pynetdicom")
    import pydicom
    from pynetdicom import AE

    from xscreen.checkpoint import update_model_meta
    from xscreen.config import Calibration
    from xscreen.intake.receiver import Receiver, ReceiverConfig

    from screen_fixtures import save_tiny_model

    win, hooks = lane_window
    model = save_tiny_model(tmp_path / "gray.xsm", kind="gray")
    update_model_meta(model, calibration=Calibration(0.5, 0.01, 0.6, 0.05))
    win.set_model(str(model))
    receiver = Receiver(ReceiverConfig(inbox=tmp_path / "inbox", port=0, bind="127.0.0.1", pair_wait=0))
    receiver.start()
    try:
        hooks.append(attach_inbox(win, receiver.cfg.inbox, settle=0, poll=0.05))
        ds = pydicom.dcmread(realdata / "dicos_samples" / "SimpleProcessingDX.dcs")
        ae = AE(ae_title="SCANNER1")
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", receiver.port, ae_title="XSCREEN")
        assert int(assoc.send_c_store(ds).Status) == 0
        assoc.release()
    finally:
        receiver.stop()
    panel = hooks[0].panel
    qtbot.waitUntil(lambda: panel.list.count() == 1, timeout=TIMEOUT)
    entry = panel.queue.entries[0]
    assert entry.status == "screened" and entry.path.endswith(".dcs") and panel.queue.backlog == 1
    qtbot.waitUntil(lambda: win.tab.screening is not None, timeout=TIMEOUT)
    assert win.tab.screening.kind == "gray" and win.tab.screening.width == 256


def test_alarm_cue_is_switchable(qtbot):
    from xscreen.gui.arrivals import ArrivalsPanel
    from xscreen.intake.arrivals import ArrivalEntry

    panel = ArrivalsPanel()
    qtbot.addWidget(panel)
    panel.add(ArrivalEntry("/done/a.h5", "a.h5", time.time(), "screened", alarm=False, scan_rel=0.5))
    assert panel.notice.text() == "" and panel.backlog.styleSheet() == ""
    panel.add(ArrivalEntry("/done/b.h5", "b.h5", time.time(), "screened", alarm=True, scan_rel=1.4))
    assert panel.notice.text() == "ALARM arrival: b.h5" and "c62828" in panel.backlog.styleSheet()
    panel.cue.setChecked(False)
    panel.notice.setText("")
    panel.add(ArrivalEntry("/done/c.h5", "c.h5", time.time(), "screened", alarm=True, scan_rel=2.0))
    assert panel.notice.text() == ""
    assert panel.queue.backlog == 3 and panel.backlog.text().startswith("Backlog: 3 undecided")
    panel.set_decision("/done/b.h5", "suspect")
    assert panel.queue.backlog == 2 and panel.list.item(1).text().endswith("- SUSPECT")


def test_run_app_with_an_inbox_docks_the_arrivals_and_closes_cleanly(tmp_path):
    """run_app is a program's whole life (it runs QApplication.exec and leaves the process-wide state
    a program ends with), so it runs in a process of its own, not inside this test session."""
    import json
    import subprocess
    import sys

    script = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from xscreen.gui import app as gui_app
from xscreen.gui.app import MainWindow
app = QApplication(sys.argv[:1])  # run_app takes the existing one; the timer needs it first
seen = {}
def close_soon():
    win = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
    seen["dock"] = win.lane.dock.windowTitle()
    seen["queue"] = len(win.queue.paths)  # no sample bags opened at a lane
    win.close()  # stops the lane's thread before the window goes
    seen["running"] = win.lane.feed.isRunning()
    QApplication.instance().quit()
QTimer.singleShot(1500, close_soon)
seen["rc"] = gui_app.run_app(None, None, inbox=sys.argv[1], settle=0)
print(json.dumps(seen))
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XSCREEN_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "lane")], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen == {"dock": "Arrivals - lane", "queue": 0, "running": False, "rc": 0}
    assert (tmp_path / "lane" / "done").is_dir()
