import gc
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Keep user settings, models and audit databases out of the real home."""
    home = tmp_path_factory.mktemp("xscreen_home")
    monkeypatch.setenv("XSCREEN_HOME", str(home))
    yield


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip("../shared/realdata is absent")
    return REALDATA


@pytest.fixture(autouse=True, scope="session")
def _precision_cache(tmp_path_factory):
    """precision='auto' measures fp32 against bf16 once per workload and caches the choice; one cache
    for the whole test session (the per-test XSCREEN_HOME would measure again in every test)."""
    path = tmp_path_factory.mktemp("cache") / "precision.json"
    old = os.environ.get("XSCREEN_PRECISION_CACHE")
    os.environ["XSCREEN_PRECISION_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("XSCREEN_PRECISION_CACHE", None)
    else:
        os.environ["XSCREEN_PRECISION_CACHE"] = old


@pytest.fixture(autouse=True)
def _qt_garbage_on_the_main_thread():
    """Widgets a GUI test leaves in reference cycles are collected here, on the main (GUI) thread.
    Left to the cycle collector, they can die in a later test's worker thread (training, scoring):
    a QWidget destroyed off the GUI thread deadlocked the suite inside torch.save."""
    yield
    if "PySide6.QtWidgets" in sys.modules:
        gc.collect()
