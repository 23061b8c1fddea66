"""Reader processes are started from one long-lived thread (issue 31 item 1).

The reader asks the kernel to kill it when its parent dies (PR_SET_PDEATHSIG), so a hung decode
never outlives the program. But Linux takes the *thread* that forked the reader as its parent: a
reader started from a GUI worker thread was killed with SIGKILL as soon as that worker ended, even
while another thread's read of a good bag was running, and the bag was refused as "reader process
crashed". Starting every reader from this one thread, which lives as long as the process, makes the
signal mean what it should: the program is gone.
"""
from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import Future
from typing import Callable, TypeVar

T = TypeVar("T")


class LaunchThread:
    """One daemon thread that runs the calls handed to it, one at a time, and never ends."""

    def __init__(self) -> None:
        self.owner = os.getpid()
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="xscreen-reader-launcher", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()`` run on the launch thread; its result, or its exception raised here."""
        done: Future = Future()
        self._jobs.put((fn, done))
        return done.result()

    def _run(self) -> None:
        while True:
            fn, done = self._jobs.get()
            try:
                done.set_result(fn())
            except BaseException as exc:  # handed back to the caller, never ends this thread
                done.set_exception(exc)


_LAUNCHER: LaunchThread | None = None
_LOCK = threading.Lock()


def on_launch_thread(fn: Callable[[], T]) -> T:
    """``fn()`` on this process's launch thread (a forked child gets its own: threads do not fork)."""
    global _LAUNCHER
    with _LOCK:
        if _LAUNCHER is None or _LAUNCHER.owner != os.getpid():
            _LAUNCHER = LaunchThread()
        launcher = _LAUNCHER
    return launcher.call(fn)
