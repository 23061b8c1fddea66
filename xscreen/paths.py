"""Where shipped models, sample scans and user data live."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
# Device names that Windows opens instead of a file, whatever the extension
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_STEM = 100  # leaves room for a suffix and an extension under the usual 255-byte name limit


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
    shipped = sorted(p for p in models_dir().glob("*.xsm") if not p.name.startswith("."))  # not temporaries
    preferred = [p for p in shipped if p.name.startswith("default")]
    return (preferred or shipped or [None])[0]


def output_stem(name: str, taken: set[str]) -> str:
    """A file-name stem for outputs named after ``name`` (a scan id: data from inside a possibly
    hostile file, never a path). Only ASCII letters, digits, ``_`` and ``-`` survive, so no separator,
    ``..``, absolute path, dot (a stem ``a.json`` would clash with scan ``a``'s files) or control
    character reaches the file system; empty becomes ``scan``. A stem already in ``taken`` (compared
    case-folded: macOS and Windows file systems ignore case) gets -2, -3...; the result is added."""
    stem = _UNSAFE.sub("_", str(name)).strip("_-")[:MAX_STEM] or "scan"
    if stem.casefold() in _RESERVED:
        stem = f"_{stem}"
    base, k = stem, 1
    while stem.casefold() in taken:
        k += 1
        stem = f"{base}-{k}"
    taken.add(stem.casefold())
    return stem
