"""Untrusted scans are decoded in a reader process, so one file cannot take the batch or the GUI down
(issue 16 item 3): a bit flip that segfaults libhdf5, a decoder that hangs, a decode that runs out of
memory ends or stops only the reader, and that one file is reported as failed (ScanError).

One reader per parent process, started on first use (~0.5 s: Python and the decoders) and kept, so
a batch pays the start once and each file one copy of its pixels through a pipe. The reader's
address space is capped (RLIMIT_AS = its size after start-up + the memory budget), each file gets
``ReadLimits.seconds``, and a reader that crashed or was stopped is replaced on the next file.
The parent never unpickles what the reader sends (a JSON header, then raw pixel bytes): a decoder
exploited by a crafted file gains no way into the parent. Requests are serialised (the GUI loads
from worker threads; reading is I/O and single-core decoding anyway); readers are started from one
long-lived thread (_launcher.py), never from the worker thread that happens to ask.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

import numpy as np

from xscreen.scan._checks import json_default
from xscreen.scan._launcher import on_launch_thread
from xscreen.scan._limits import ReadLimits
from xscreen.scan._types import Scan, ScanError

ReadFn = Callable[[Path, ReadLimits], Scan]
_PR_SET_PDEATHSIG = 1
_M_ARENA_MAX = -8


class ReaderUnavailable(RuntimeError):
    """The reader process cannot be started here: not the file's fault (load_scan reads in process)."""


class ReaderProcess:
    """A reader process running ``read`` (a module-level function, so spawn can pickle it)."""

    def __init__(self, read: ReadFn, spawn: bool | None = None):
        self._read = read
        self._spawn = bool(getattr(sys, "frozen", False)) if spawn is None else spawn
        self._lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None
        self.owner = os.getpid()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def load(self, path: Path, limits: ReadLimits) -> Scan:
        with self._lock:
            if self._proc is None or not self._proc.alive():
                self._start()  # first use, or the reader died between files (not this file's fault)
            request = (_cwd(), str(path), limits)  # relative paths resolve where the caller stands
            try:
                self._conn.send(request)
            except OSError:
                self._start()
                self._conn.send(request)
            try:
                return self._reply(path, time.monotonic() + limits.seconds, limits.seconds)
            except ScanError:
                raise
            except BaseException:  # e.g. Ctrl-C mid-reply: an unread reply would answer the next file
                self._stop()
                raise

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _start(self) -> None:
        self._stop()
        try:
            # never from the caller's thread: the reader dies with the thread that forked it
            self._proc, self._conn = on_launch_thread(lambda: _launch(self._read, self._spawn))
        except (OSError, ValueError) as exc:  # no interpreter to start, no fd passing (Windows)...
            raise ReaderUnavailable(f"cannot start the scan reader process ({type(exc).__name__}: {exc})") from exc

    def _stop(self) -> int | None:
        """Kill and reap the reader; its exit code (negative: the signal), None when none ran."""
        if self._proc is None:
            return None
        proc, self._proc = self._proc, None
        self._conn.close()
        return proc.end()

    def _reply(self, path: Path, deadline: float, seconds: float) -> Scan:
        head = self._receive(path, deadline, seconds, self._conn.recv_bytes)
        try:
            return self._assemble(path, deadline, seconds, json.loads(head))
        except (KeyError, TypeError, ValueError, AttributeError, MemoryError) as exc:
            self._stop()
            raise ScanError(path, "the reader process sent a malformed reply; refused") from exc

    def _assemble(self, path: Path, deadline: float, seconds: float, head: dict) -> Scan:
        if head["error"] is not None:
            raise ScanError(str(head["error"][0]), str(head["error"][1]))
        channels = np.empty(head["shape"], np.dtype(head["dtype"]))
        flat = channels.reshape(-1).view(np.uint8)
        if self._receive(path, deadline, seconds, lambda: self._conn.recv_bytes_into(flat)) != flat.size:
            raise ValueError("pixel bytes do not match the header")
        scan = head["scan"]
        return Scan(scan["scan_id"], scan["kind"], channels, float(scan["i0"]), Path(scan["path"]),
                    scan["pixel_pitch_mm"], scan["metadata"])

    def _receive(self, path: Path, deadline: float, seconds: float, get: Callable[[], Any]) -> Any:
        if not self._conn.poll(max(0.0, deadline - time.monotonic())):
            self._stop()
            raise ScanError(path, f"reading took longer than {seconds:g} s; the reader was stopped "
                                  f"(XSCREEN_READ_TIMEOUT)")
        try:
            return get()
        except (EOFError, OSError, multiprocessing.BufferTooShort) as exc:
            code = self._stop()
            raise ScanError(path, f"the reader process crashed on this file ({_describe(code)}); "
                                  f"the file is refused") from exc


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the caller's folder was deleted: only absolute paths can work anyway
        return ""


def _describe(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Child:
    """The reader's process handle, whichever way it was started."""

    def __init__(self, proc: Any):
        self._proc = proc
        self.pid = proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None if isinstance(self._proc, subprocess.Popen) else self._proc.is_alive()

    def end(self) -> int | None:
        """Kill if still running, reap, and return the exit code (negative: the signal)."""
        deadline = time.monotonic() + 0.5  # a reader that just closed its end may still be exiting:
        while self.alive() and time.monotonic() < deadline:  # its own exit code says why
            time.sleep(0.01)
        if self.alive():
            self._proc.kill()
        if isinstance(self._proc, subprocess.Popen):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            return self._proc.returncode
        self._proc.join(5)
        return self._proc.exitcode


def _launch(read: ReadFn, spawn: bool) -> tuple[_Child, Connection]:
    """A fresh interpreter (``python -c``) that imports only the readers: never a fork (a GUI's
    threads and CUDA state) and never a re-run of the caller's main script, which multiprocessing's
    spawn does (an unguarded script or stdin would break the reader). A frozen app has no
    ``python -c``; there multiprocessing's spawn runs it (the entry point calls freeze_support)."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        if spawn:
            ctx = multiprocessing.get_context("spawn")
            child_end = Connection(os.dup(theirs.fileno()))
            proc: Any = ctx.Process(target=_serve, args=(child_end, read), daemon=True,
                                    name="xscreen-scan-reader")
            proc.start()
            child_end.close()
        else:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            code = "import sys; from xscreen.scan._isolated import serve_fd; serve_fd(int(sys.argv[1]))"
            proc = subprocess.Popen([sys.executable, "-c", code, str(theirs.fileno())], env=env,
                                    pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        conn = Connection(os.dup(ours.fileno()))
    # only the reader holds its end now: its death is an EOF here
    if not spawn:
        conn.send(read)  # pickled by reference: the reader imports the module that defines it
    return _Child(proc), conn


def serve_fd(fd: int) -> None:
    """Entry point of a ``python -c`` reader: the socket on ``fd``, then the read function."""
    conn = Connection(fd)
    try:
        read = conn.recv()
    except (EOFError, OSError):
        return
    _serve(conn, read)


def _serve(conn: Any, read: ReadFn) -> None:
    """The reader's loop: one (cwd, path, limits) in, one JSON header (+ pixel bytes) out."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    logging.getLogger("tifffile").setLevel(logging.ERROR)  # its warnings repeat what ScanError says
    _harden()
    base = _address_space()
    while True:
        try:
            cwd, path, limits = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        _cap_memory(base, limits.memory_bytes)
        if cwd:
            with contextlib.suppress(OSError):
                os.chdir(cwd)
        header, channels = _answer(read, path, limits)
        conn.send_bytes(header)
        if channels is not None:
            conn.send_bytes(channels.reshape(-1).view(np.uint8))
        del header, channels  # not held until the next file: an idle reader keeps no scan
        _trim()


def _answer(read: ReadFn, path: str, limits: ReadLimits) -> tuple[bytes, np.ndarray | None]:
    """(JSON header, pixels or None) for one request; every failure becomes an error header, so
    the reader survives it and the parent's next request gets its own reply."""
    try:
        scan = read(Path(path), limits)
        channels = np.ascontiguousarray(scan.channels)
        header = json.dumps({"error": None, "scan": _fields(scan), "shape": list(channels.shape),
                             "dtype": channels.dtype.str}, default=json_default)
        return header.encode(), channels
    except ScanError as err:
        fault = [err.path, err.fault]
    except MemoryError:  # the address-space cap at work
        fault = [path, "not enough memory to load this scan within the memory budget (XSCREEN_MEMORY_BUDGET)"]
    except Exception as exc:  # a reader bug must not look like the file crashing the decoder
        fault = [path, f"reader error ({type(exc).__name__}: {str(exc)[:200]})"]
    return json.dumps({"error": fault}).encode(), None


def _fields(scan: Scan) -> dict[str, Any]:
    return {"scan_id": scan.scan_id, "kind": scan.kind, "i0": float(scan.i0),
            "path": str(scan.path), "pixel_pitch_mm": scan.pixel_pitch_mm, "metadata": scan.metadata}


def _harden() -> None:
    """Linux: die with the parent (the launch thread: see _launcher.py); one malloc arena per
    thread pool (each arena reserves 64 MiB of address space, which the cap counts). Best effort."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        pass


def _trim() -> None:
    """Hand freed heap back to the system (glibc keeps it for reuse otherwise); best effort."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _address_space() -> int | None:
    try:
        with open("/proc/self/status") as fh:
            line = next(l for l in fh if l.startswith("VmSize:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration, ValueError):
        return None  # not Linux: no cap (RLIMIT_AS is not enforced on macOS anyway)


def _cap_memory(base: int | None, budget: int) -> None:
    if base is None:
        return
    import resource

    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    soft = base + budget
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


_SHARED: ReaderProcess | None = None
_SHARED_LOCK = threading.Lock()


def shared_reader(read: ReadFn) -> ReaderProcess | None:
    """This process's reader; None in a daemonic process (which may not start children: it reads
    in-process, as DataLoader workers would)."""
    global _SHARED
    if multiprocessing.current_process().daemon:
        return None
    with _SHARED_LOCK:
        if _SHARED is None or _SHARED.owner != os.getpid():  # a forked child gets its own
            _SHARED = ReaderProcess(read)
            atexit.register(_SHARED.close)  # reap it rather than leave it to interpreter teardown
        return _SHARED
