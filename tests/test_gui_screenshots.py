"""Screenshots of the screening tab, offscreen. With XSCREEN_SCREENSHOTS=DIR they are written there
(the README's resources/readme/screenshot_*.png); otherwise to a temp dir and only checked.

    XSCREEN_SCREENSHOTS=resources/readme QT_QPA_PLATFORM=offscreen pytest tests/test_gui_screenshots.py

XSCREEN_SCREENSHOT_MODEL / XSCREEN_SCREENSHOT_SCANS replace the tiny untrained model and the two
small bags (the README pictures use a trained model on a folder of synthetic threat bags).
"""
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtGui import QImage  # noqa: E402

from tests.test_gui_app import TIMEOUT, bag_dir, tiny_model  # noqa: E402,F401  (shared fixtures)
from xscreen.gui.app import MainWindow  # noqa: E402


def _pixels(path: Path) -> np.ndarray:
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB888)
    ptr = img.constBits()
    return np.frombuffer(ptr, np.uint8, img.sizeInBytes()).reshape(img.height(), img.bytesPerLine())


def test_screenshots(qtbot, tmp_path, bag_dir, tiny_model):  # noqa: F811
    out = Path(os.environ.get("XSCREEN_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    win = MainWindow(settings_path=tmp_path / "gui.ini", audit_path=tmp_path / "audit.sqlite")
    qtbot.addWidget(win)
    win.resize(1500, 900)
    win.show()
    qtbot.waitExposed(win)
    win.sign_in("ana")
    win.set_model(os.environ.get("XSCREEN_SCREENSHOT_MODEL") or str(tiny_model))
    win.open_path(os.environ.get("XSCREEN_SCREENSHOT_SCANS") or bag_dir)
    qtbot.waitUntil(lambda: win.tab.screening is not None and win.runner.running is None, timeout=TIMEOUT)
    win.dispatch("region.next")
    win.dispatch("nav.fit")
    qtbot.wait(200)
    shots = {"screenshot_screening.png": None, "screenshot_residual.png": "layer.residual"}
    for name, action in shots.items():
        if action:
            win.dispatch(action)
            qtbot.wait(200)
        assert win.grab().save(str(out / name))
        px = _pixels(out / name)
        assert px.shape[0] >= 600 and px.std() > 20  # a real picture, not a blank window
    win.close()
