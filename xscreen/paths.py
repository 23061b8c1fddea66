"""Where shipped models, sample scans and user data live."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def _roots() -> list[Path]:
    roots = []
    if getattr(sys, "_MEIPASS", None):  # PyInstaller bundle
        roots.append(Path(sys._MEIPASS))
    roots.append(Path(__file__).resolve().parent.parent)  # source / editable install
    return roots


def _first(sub: str) -> Path:
    for root in _roots():
        if (root / sub).is_dir():
            return root / sub
    return _roots()[-1] / sub


def user_data_dir() -> Path:
    base = os.environ.get("XSCREEN_HOME") or os.path.join(
        os.environ.get("XDG_DATA_HOME", os.path.expanduser("~/.local/share")), "xscreen")
    return Path(base)


def models_dir() -> Path:
    """Shipped models (read-only)."""
    return _first("models")


def user_models_dir() -> Path:
    """Where the wizard saves new models; listed alongside the shipped ones."""
    return user_data_dir() / "models"


def model_dirs() -> list[Path]:
    return [models_dir(), user_models_dir()]


def samples_dir() -> Path:
    return _first("resources/samples")


def default_model() -> Path | None:
    shipped = sorted(models_dir().glob("*.xsm"))
    preferred = [p for p in shipped if p.name.startswith("default")]
    return (preferred or shipped or [None])[0]
