"""An inbox folder consumed by one process: ready bags in arrival order, a done folder keyed by content.

Crash safety comes from the order of the steps, not from a journal: a bag is screened where it
lies, its record is written (atomically) into ``done/.records/<key>.json``, and only then are its
files renamed into ``done/`` as ``<key16><suffix>``. A crash before the record leaves the bag in
the inbox, so the next start screens it (nothing lost); a crash after it finds the record by the
bag's content key and only finishes the move (nothing repeated). Spool names repeat, contents do
not: an identical file sent again is the same bag, and is moved to done without a second result.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xscreen.atomic import atomic_write_text
from xscreen.intake.rules import Rules, SettleTracker, format_complete, in_progress_name

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the lock file's existence is the lock
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".xscreen-intake.lock"
RECORDS = ".records"


class IntakeError(Exception):
    """An inbox that cannot be consumed: '<folder>: <fault>'."""


@dataclass(frozen=True)
class Arrival:
    """One complete bag in the inbox: ``files`` (one file, or a TIFF pair's high and low), ``path``
    what the reader opens, ``key`` the SHA-256 over the files' bytes, ``seen`` the wall time it
    was first seen (arrival order), ``ready`` the wall time it was found complete."""

    path: Path
    files: tuple[Path, ...]
    key: str
    seen: float
    ready: float


@dataclass
class Record:
    """What happened to one bag (``done/.records/<key>.json``); ``status`` screened | failed | stored."""

    key: str
    names: list[str]
    seen: float
    finished: float
    status: str
    done_files: list[str] = field(default_factory=list)
    kind: str = ""
    alarm: bool | None = None
    scan_score: float | None = None
    scan_rel: float | None = None
    model_id: str = ""
    message: str = ""  # the fault (failed) or the notice (stored)
    output: str = ""


def lone_half(files: tuple[Path, ...]) -> bool:
    from xscreen.scan._tiff import pair_stem

    return len(files) == 1 and pair_stem(files[0]) is not None


def content_key(files: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")  # a pair's boundary is part of the content
    return digest.hexdigest()


class Inbox:
    """``folder``: where bags arrive (created); ``done``: default ``folder/done``; ``retention``:
    seconds done files and records are kept (0: forever). Use as a context manager: it takes the
    inbox's lock, so a second consumer fails with IntakeError instead of taking bags twice."""

    def __init__(self, folder: str | Path, done: str | Path | None = None, rules: Rules = Rules(),
                 retention: float = 30 * 86400.0):
        self.folder = Path(folder)
        self.done = Path(done) if done else self.folder / "done"
        self.rules = rules
        self.retention = float(retention)
        self.tracker = SettleTracker(rules)
        self._first_seen: dict[str, float] = {}
        self._lock_fd: int | None = None

    # --- the one-consumer lock ----------------------------------------------------------------
    def __enter__(self) -> "Inbox":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.done / RECORDS).mkdir(parents=True, exist_ok=True)
            fd = os.open(self.folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise IntakeError(f"{self.folder}: cannot open inbox ({exc.strerror or exc})") from None
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise IntakeError(f"{self.folder}: inbox is being consumed by another process "
                                  f"(lock {LOCK_NAME} held)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        self.prune()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # the flock dies with the descriptor (and with the process)
            self._lock_fd = None

    # --- finding complete bags ------------------------------------------------------------------
    def candidates(self) -> list[tuple[Path, tuple[Path, ...]]]:
        """(path to open, files) for every scan-like file at the top of the inbox; TIFF pairs grouped
        (a half whose twin is not there yet is listed alone: ``ready`` holds it back)."""
        from xscreen.scan import SCAN_SUFFIXES, pair_files
        from xscreen.scan._tiff import pair_stem

        out, stems = [], set()
        try:
            entries = sorted(os.scandir(self.folder), key=lambda e: e.name)
        except OSError as exc:
            raise IntakeError(f"{self.folder}: cannot list inbox ({exc.strerror or exc})") from None
        for e in entries:
            if in_progress_name(e.name) or Path(e.name).suffix.lower() not in SCAN_SUFFIXES \
                    or not e.is_file(follow_symlinks=False):
                continue
            stem = pair_stem(Path(e.path))
            if stem is None:
                out.append((Path(e.path), (Path(e.path),)))
            elif stem not in stems:
                stems.add(stem)
                high, low = pair_files(stem)
                halves = tuple(f for f in (high, low) if f is not None)
                if halves:
                    out.append((halves[0], halves))
        return out

    def ready(self) -> list[Arrival]:
        """The complete bags now in the inbox, in arrival order (first seen, then mtime, then name)."""
        now, found, present = time.time(), [], set()
        for path, files in self.candidates():
            present.update(str(f) for f in files)
            first = min(self._first_seen.setdefault(str(f), now) for f in files)
            if not all(self.tracker.settled(f) for f in files):
                continue
            if not all(format_complete(f) or self.tracker.overdue(f) for f in files):
                continue
            if lone_half(files) and not self.tracker.overdue(files[0]):
                continue  # its twin is on its way; after corrupt_after the reader names the missing half
            try:
                key = content_key(files)
                mtime = max(f.stat().st_mtime for f in files)
            except OSError:
                continue  # taken away meanwhile (by the sender): not ours
            found.append((first, mtime, path.name, Arrival(path, files, key, first, now)))
        self.tracker.prune(present)
        for gone in [k for k in self._first_seen if k not in present]:
            del self._first_seen[gone]
        return [a for *_, a in sorted(found, key=lambda t: t[:3])]

    # --- records and the done folder ---------------------------------------------------------------
    def record_path(self, key: str) -> Path:
        return self.done / RECORDS / f"{key}.json"

    def record_for(self, key: str) -> Record | None:
        try:
            data = json.loads(self.record_path(key).read_text())
            return Record(**{k: v for k, v in data.items() if k in Record.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return None

    def done_names(self, arrival: Arrival) -> list[Path]:
        """``done/<key16><suffix>`` (a pair keeps its _high/_low tags)."""
        from xscreen.scan._tiff import pair_stem

        short = arrival.key[:16]
        if len(arrival.files) == 2:
            return [self.done / f"{short}{f.name[len(pair_stem(f).name):]}" for f in arrival.files]
        return [self.done / f"{short}{arrival.files[0].suffix.lower()}"]

    def finish(self, arrival: Arrival, record: Record) -> Record:
        """Write the record, then move the bag's files into done. The record comes first: see the
        module docstring."""
        targets = self.done_names(arrival)
        record.done_files = [str(t) for t in targets]
        atomic_write_text(self.record_path(arrival.key), json.dumps(asdict(record), indent=1))
        self.move_done(arrival)
        return record

    def move_done(self, arrival: Arrival) -> None:
        for src, dst in zip(arrival.files, self.done_names(arrival)):
            try:
                os.replace(src, dst)  # same file system: atomic; a duplicate overwrites its identical twin
            except FileNotFoundError:
                pass  # moved by an earlier run that crashed before the other half
        self.tracker.forget(arrival.path)

    def prune(self, now: float | None = None) -> int:
        """Remove done files and records older than the retention; returns how many."""
        if self.retention <= 0:
            return 0
        cutoff, removed = (now or time.time()) - self.retention, 0
        for folder in (self.done, self.done / RECORDS):
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for e in entries:
                try:
                    if e.is_file(follow_symlinks=False) and e.stat().st_mtime < cutoff:
                        os.unlink(e.path)
                        removed += 1
                except OSError:
                    pass
        return removed
