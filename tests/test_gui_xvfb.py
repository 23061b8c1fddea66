"""GUI smoke test on a real X server: Xvfb through ``xvfb-run``, Qt's xcb platform plugin (not the
offscreen one the pytest-qt suite uses). Skips where xvfb-run is not installed
(Debian: ``apt-get install xvfb xauth``) or the xcb plugin's libraries are missing.

The child process opens the main window on a 1280x800 screen, signs in, screens the two test bags
with the tiny model, and checks: the platform is xcb, the window is exposed and fits the screen, the
screen capture from the X server is a real picture, and a decision key writes one audit row.
"""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.test_gui_app import bag_dir, tiny_model  # noqa: F401  (shared fixtures)
from xscreen.gui import display_check

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import numpy as np
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication
    from xscreen.audit import AuditLog
    from xscreen.gui.app import MainWindow

    model, bags, work = sys.argv[1:4]
    app = QApplication(sys.argv[:1])
    assert app.platformName() == "xcb", app.platformName()

    def wait(cond, s=240):
        t0 = time.monotonic()
        while not cond():
            app.processEvents()
            time.sleep(0.02)
            assert time.monotonic() - t0 < s, "timed out"

    win = MainWindow(settings_path=Path(work) / "gui.ini", audit_path=Path(work) / "audit.sqlite")
    win.min_view_seconds = 0
    win.show()
    wait(lambda: win.windowHandle() is not None and win.windowHandle().isExposed())
    win.sign_in("xvfb")
    win.set_model(model)
    win.open_path(bags)
    wait(lambda: win.tab.screening is not None and win.runner.running is None)
    win.activateWindow()
    wait(lambda: app.focusWindow() is not None, 10)
    screen = app.primaryScreen().availableGeometry()
    frame = win.frameGeometry()
    assert frame.width() <= screen.width() and frame.height() <= screen.height(), (frame, screen)
    shot = app.primaryScreen().grabWindow(0).toImage()
    px = np.array([shot.pixelColor(x, y).lightness() for x in range(0, shot.width(), 7)
                   for y in range(0, shot.height(), 7)])
    assert px.std() > 20, px.std()
    QTest.keyClick(win.windowHandle(), Qt.Key.Key_S)
    wait(lambda: len(AuditLog(Path(work) / "audit.sqlite").rows()) == 1, 20)
    print("SMOKE OK", app.platformName(), frame.width(), frame.height())
    win.close()
""")


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="xvfb-run not installed")
def test_gui_starts_and_screens_under_xvfb(tmp_path, bag_dir, tiny_model):  # noqa: F811
    env = {k: v for k, v in os.environ.items() if k not in {"QT_QPA_PLATFORM", "WAYLAND_DISPLAY"}}
    problem = display_check.display_problem(env=env)
    if problem:
        pytest.skip(problem)
    env.update(QT_QPA_PLATFORM="xcb", OMP_NUM_THREADS="1", XDG_RUNTIME_DIR=str(tmp_path))
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-c", CHILD,
           str(tiny_model), str(bag_dir), str(tmp_path)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0 and "SMOKE OK xcb" in res.stdout, res.stdout + res.stderr
