"""Wake the inbox loop when the folder changes: inotify (or the platform's native watcher) through
``watchdog`` where available, plain polling otherwise. Events only shorten the wait; every decision
is made by re-reading the folder, so a missed or duplicated event changes nothing."""
from __future__ import annotations

import threading
from pathlib import Path


class Waker:
    """``wait(timeout)`` returns early when something in ``folder`` changed. ``native`` is False
    when falling back to polling (no watchdog, or the platform refused a watch)."""

    def __init__(self, folder: str | Path, use_native: bool = True):
        self.folder = Path(folder)
        self._event = threading.Event()
        self._observer = None
        self.native = False
        if use_native:
            self._start()

    def _start(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            return
        event = self._event

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, _e) -> None:  # watchdog's thread: only set a flag
                event.set()

        try:
            observer = Observer()
            observer.schedule(_Handler(), str(self.folder), recursive=False)
            observer.daemon = True
            observer.start()
        except (OSError, RuntimeError):  # inotify watch limit, unsupported file system (NFS, SMB)
            return
        self._observer, self.native = observer, True

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, less when the folder changes; True when it did."""
        hit = self._event.wait(max(0.0, timeout))
        self._event.clear()
        return hit

    def poke(self) -> None:
        """Wake the waiter now (stop requests, tests)."""
        self._event.set()

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
