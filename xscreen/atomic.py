"""Atomic file writes: write beside the target, fsync, then rename - never a half-written file.

A process killed mid-write leaves its temporary file behind. Temporaries are hidden files named
``.{stem}.xstmp-XXXXXXXX{suffix}`` (so lists of models or scans never show them), held under a POSIX
record lock while written, and the next atomic write into the same folder removes the ones that are
ours and stale: unlocked (their writer is gone: locks die with the process) and unmodified for
``STALE_SECONDS``. Temporaries from before the marker (``.{stem}.XXXXXXXX{suffix}``) are removed only
for the exact target being written, since that name alone could be someone else's hidden file.
"""
from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: staleness by age alone
    fcntl = None  # type: ignore[assignment]

MARKER = ".xstmp-"
# Long writes (a patch store) keep their lock; the age rule covers a writer whose library closed
# the file (dropping the lock) just before the rename, and platforms without record locks.
STALE_SECONDS = 3600.0
_RANDOM = "[a-z0-9_]{8}"  # tempfile's name characters
_OURS = re.compile(rf"^\..*{re.escape(MARKER)}{_RANDOM}(\.[^.]*)?$")


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# read once at import: os.umask() is process-wide, so toggling it later could race other threads
_UMASK = _read_umask()


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is one of our temporary files (any target)."""
    return bool(_OURS.match(name))


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``target``.

    On any exception the temporary file is removed and ``target`` is left untouched.
    The suffix is kept so libraries that sniff the extension (h5py, PIL, reportlab) behave.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(target.parent, target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}{MARKER}", suffix=target.suffix, dir=target.parent)
    tmp_path = Path(tmp)
    fd = _lock(fd)  # held until the rename: tells a sweeper in another process the writer lives
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        # mkstemp makes 0600 files; a report or model must get the permissions a plain open() gives
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise
    finally:
        if fd is not None:
            os.close(fd)


def sweep_stale(folder: str | Path, target: str | Path | None = None,
                older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove our stale temporaries in ``folder`` (and old-style ones of ``target``); returns them."""
    legacy = None
    if target is not None:
        t = Path(target)
        legacy = re.compile(rf"^\.{re.escape(t.stem)}\.{_RANDOM}{re.escape(t.suffix)}$")
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not (is_temp_name(entry.name) or (legacy and legacy.match(entry.name))):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > older_than \
                    and _remove_if_unlocked(Path(entry.path)):
                removed.append(Path(entry.path))
    return removed


def _lock(fd: int) -> int | None:
    """The descriptor kept open under its lock; None (closed) where there are no record locks,
    since an open descriptor would block the rename on Windows."""
    if fcntl is None:
        os.close(fd)
        return None
    with contextlib.suppress(OSError):
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _remove_if_unlocked(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    try:
        if fcntl is not None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False  # a live writer holds it
        path.unlink()
        return True
    finally:
        if fd is not None:
            os.close(fd)


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str, encoding: str = "utf-8") -> None:
    atomic_write_bytes(target, text.encode(encoding))
