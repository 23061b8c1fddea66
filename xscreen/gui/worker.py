"""Run a core generator off the GUI thread (DESIGN.md: long jobs are generators).

Cancel = stop pulling: the flag is checked between yields, so a job stops at its next report and
nothing is half-written. Signals are emitted from the worker thread and, because this QThread
object lives in the GUI thread, reach their slots queued on the GUI thread - only the GUI thread
touches widgets.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal


class JobThread(QThread):
    """Pull ``job()`` to the end; every item is reported, the last one is the result."""

    item = Signal(str, object)  # key, progress item
    done = Signal(str, object)  # key, final item
    failed = Signal(str, str)  # key, message (ScanError/ModelError text names the file)
    cancelled = Signal(str)

    def __init__(self, key: str, job: Callable[[], Iterator[Any]], parent: QObject | None = None):
        super().__init__(parent)
        self.key = key
        self._job = job
        self._cancel = False

    def cancel(self) -> None:
        self._cancel = True

    def run(self) -> None:  # worker thread
        last: Any = None
        try:
            for last in self._job():
                if self._cancel:
                    self.cancelled.emit(self.key)
                    return
                self.item.emit(self.key, last)
        except Exception as exc:  # any failure of a core job is shown, never crashes the app
            self.failed.emit(self.key, str(exc) or type(exc).__name__)
            return
        if self._cancel:
            self.cancelled.emit(self.key)
        else:
            self.done.emit(self.key, last)


class JobRunner(QObject):
    """At most one job at a time; ``start`` while busy cancels the running one first."""

    item = Signal(str, object)
    done = Signal(str, object)
    failed = Signal(str, str)
    cancelled = Signal(str)
    idle = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: JobThread | None = None
        self._next: tuple[str, Callable[[], Iterator[Any]]] | None = None
        self._closed = False

    @property
    def running(self) -> str | None:
        return self._thread.key if self._thread is not None else None

    def start(self, key: str, job: Callable[[], Iterator[Any]]) -> None:
        if self._closed:
            return
        if self._thread is not None:
            self._next = (key, job)  # started as soon as the running job has stopped
            self._thread.cancel()
            return
        thread = JobThread(key, job, self)
        thread.item.connect(self.item)
        thread.done.connect(self.done)
        thread.failed.connect(self.failed)
        thread.cancelled.connect(self.cancelled)
        thread.finished.connect(self._on_thread_finished)
        self._thread = thread
        thread.start()

    def cancel(self) -> None:
        self._next = None
        if self._thread is not None:
            self._thread.cancel()

    def wait(self, ms: int = 30000) -> bool:
        """Block until idle (shutdown and tests only)."""
        self._next = None
        thread = self._thread
        return thread.wait(ms) if thread is not None else True

    def shutdown(self, ms: int = 30000) -> bool:
        """Cancel, wait, and start nothing ever again (the owner is closing). Without it, the queued
        ``finished`` of the cancelled job arrives after the close, emits ``idle``, and a new job (the
        next bag's pre-scoring) starts in a window about to be destroyed: Qt aborts the whole process
        when a QThread is destroyed while it runs (seen in the GUI tests under load)."""
        self._closed = True
        self.cancel()
        return self.wait(ms)

    def _on_thread_finished(self) -> None:
        if self._thread is not None:
            self._thread.deleteLater()
        self._thread = None
        if self._closed:
            return
        if self._next is not None:
            key, job = self._next
            self._next = None
            self.start(key, job)
        else:
            self.idle.emit()
