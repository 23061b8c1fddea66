"""An operator's session without Qt: who is signed in, the bag queue and each bag's decision,
recent files, decision timing, what to score, whether a key records, repeats or amends.

The main window holds one of each and only forwards events to them, so everything an operator
does to the queue or a decision is tested headless.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

DECISIONS = {"decide.clear": "clear", "decide.suspect": "suspect", "decide.unresolved": "unresolved",
             "decide.unreadable": "unreadable"}  # unreadable: the file could not be screened (issue 31 item 6)
# A decision key within this long of a bag appearing is ignored: after a decision the next bag (often
# pre-scored) appears at once, and a double press must not decide a bag nobody has looked at.
MIN_VIEW_SECONDS = 0.5
MAX_RECENT = 10


@dataclass(frozen=True)
class BagDecision:
    """The decision now standing on a bag: its latest audit row (an amendment when ``amends``)."""

    row: int
    decision: str
    operator: str
    time: str
    amends: int | None = None
    model_id: str = ""  # the model the bag was shown under when it was decided
    machine_alarm: bool | None = None  # what that model said (None: not recorded)

    def label(self) -> str:
        return self.decision.upper() + (" (amended)" if self.amends is not None else "")

    def describe(self) -> str:
        hhmm = self.time[11:19] if len(self.time) >= 19 else self.time
        link = f", amends #{self.amends}" if self.amends is not None else ""
        model = f" under model {self.model_id}" if self.model_id else ""
        return f"{self.label()} by {self.operator} at {hhmm} UTC{model} (audit #{self.row}{link})"


def bag_decision(rows: list[dict[str, Any]], scan_id: str | None = None) -> BagDecision | None:
    """The standing decision from a bag's audit rows (``AuditLog.rows_for``), None if undecided;
    ``scan_id`` None: any scan of the file (the queue is looked up before its bags are read)."""
    mine = [r for r in rows if scan_id is None or r["scan_id"] == scan_id]
    if not mine:
        return None
    r = mine[-1]
    alarm = r.get("machine_alarm")
    return BagDecision(int(r["id"]), r["decision"], r["operator"], r["time"], r.get("amends"),
                       str(r.get("model_id") or ""), None if alarm is None else bool(alarm))


def disagreement(decision: BagDecision | None, screening: Any | None) -> str:
    """'' unless the bag on screen was decided under another model and the current one says
    otherwise (a bag cleared under model A that model B now alarms on must be looked at again)."""
    if decision is None or screening is None or not decision.model_id or decision.model_id == screening.model_id:
        return ""
    now = "ALARMS" if screening.alarm else "does not alarm"
    then = {True: "alarmed", False: "did not alarm", None: "verdict not recorded"}[decision.machine_alarm]
    if decision.machine_alarm is not None and decision.machine_alarm == bool(screening.alarm):
        return ""
    return (f"the current model {screening.model_id} {now} on this bag; the decision was taken under "
            f"{decision.model_id} ({then}) - look again")


def queue_decisions(paths: list[Path], audit_path: Any) -> Iterator[tuple[str, BagDecision | None]]:
    """(path, standing decision) for every bag of a queue, from the audit log, without reading the
    scans (by file hash): the queue shows what is decided as soon as it opens. Unhashable files
    are skipped (the scoring job reports them)."""
    from xscreen.audit import AuditError, AuditLog
    from xscreen.scan import file_sha256

    try:
        log = AuditLog(audit_path, create=False)  # read-only: this thread never writes the chain
    except AuditError:  # no audit database yet: nothing is decided
        return
    with log:
        for p in paths:
            try:
                sha = file_sha256(p)
            except Exception:  # ScanError / OSError: the bag's own job names the fault
                continue
            yield str(p), bag_decision(log.rows_for(sha))


def plan_decision(action: str, current: BagDecision | None) -> str:
    """What a decision key does: ``record`` (bag undecided), ``same`` (it already stands: write
    nothing, so a key pressed four times is one row) or ``amend`` (ask, then write a row linked
    to ``current.row``)."""
    if current is None:
        return "record"
    return "same" if DECISIONS[action] == current.decision else "amend"


@dataclass
class BagQueue:
    """Scans to review in order; ``index`` is the bag on screen (-1 before the first);
    ``decided`` the standing decision of each bag seen or decided (by path)."""

    paths: list[Path] = field(default_factory=list)
    index: int = -1
    decided: dict[str, BagDecision] = field(default_factory=dict)

    @classmethod
    def from_folder(cls, folder: Path, lister: Callable[[Path], list[Path]] | None = None) -> "BagQueue":
        """Queue of the scans in ``folder`` (``scan.list_scans`` by default), positioned on the first."""
        if lister is None:
            from xscreen.scan import list_scans as lister  # type: ignore[no-redef]
        paths = [Path(p) for p in lister(Path(folder))]
        return cls(paths, 0 if paths else -1)

    @property
    def current(self) -> Path | None:
        return self.paths[self.index] if 0 <= self.index < len(self.paths) else None

    def peek_next(self) -> Path | None:
        return self.paths[self.index + 1] if self.index + 1 < len(self.paths) else None

    def step(self, delta: int) -> Path | None:
        """Move by ``delta`` bags; stays put (returns None) at either end."""
        new = self.index + delta
        if not 0 <= new < len(self.paths):
            return None
        self.index = new
        return self.paths[new]

    def next_undecided(self) -> int | None:
        """Index of the first bag without a standing decision after the one on screen, wrapping
        round to the start; None when every other bag is decided."""
        n = len(self.paths)
        for k in range(1, n):
            i = (self.index + k) % n
            if str(self.paths[i]) not in self.decided:
                return i
        return None

    def position(self) -> str:
        return f"{self.index + 1}/{len(self.paths)}" if self.paths else "-"

    def go(self, index: int) -> Path | None:
        """Jump to bag ``index`` (a click in the queue list); None when out of range."""
        return self.step(index - self.index)

    def mark(self, path: Path | str, decision: BagDecision | None) -> None:
        if decision is None:
            self.decided.pop(str(path), None)
        else:
            self.decided[str(path)] = decision

    def decision(self, path: Path | str | None) -> BagDecision | None:
        return None if path is None else self.decided.get(str(path))


class OperatorSession:
    """Who is at the console. Nothing here is stored, so every launch starts signed out and no
    decision is credited to the previous operator. ``idle_seconds`` <= 0: never lock."""

    def __init__(self, idle_seconds: float, clock: Callable[[], float] = time.monotonic):
        self.idle_seconds = float(idle_seconds)
        self._clock = clock
        self._last = clock()
        self.name = ""

    @property
    def signed_in(self) -> bool:
        return bool(self.name)

    def sign_in(self, name: str) -> str:
        name = " ".join(name.split())
        if not name:
            raise ValueError("an operator name is required to sign in")
        self.name = name
        self.touch()
        return name

    def sign_out(self) -> None:
        self.name = ""

    def touch(self) -> None:
        self._last = self._clock()

    def idle_expired(self) -> bool:
        return self.signed_in and self.idle_seconds > 0 and self._clock() - self._last >= self.idle_seconds


def add_recent(recent: list[str], path: str | Path, limit: int = MAX_RECENT) -> list[str]:
    """Most-recent-first list with ``path`` on top, no duplicates, at most ``limit`` entries."""
    p = str(Path(path))
    return ([p] + [r for r in recent if r != p])[:limit]


class DecisionTimer:
    """Seconds from the bag being shown to the operator's decision (a monotonic clock, so a
    wall-clock change mid-bag cannot produce a negative or inflated time)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._shown_at: float | None = None
        self.scan_key: str | None = None

    def start(self, scan_key: str) -> None:
        self._shown_at = self._clock()
        self.scan_key = scan_key

    def elapsed(self) -> float | None:
        return None if self._shown_at is None else max(0.0, self._clock() - self._shown_at)


def make_decision(action: str, *, operator: str, scan_id: str, file_sha256: str, model_id: str,
                  threshold: float, regions_shown: list[Any], seconds: float, amends: int | None = None,
                  live_threshold: float | None = None) -> Any:
    """``audit.Decision`` for a decide.* action; ValueError for a missing operator or action.
    ``threshold``: the bag's calibrated alarm threshold; ``live_threshold``: the raw threshold the
    regions on screen were drawn from when the operator had moved it (None: the calibrated review
    level). The time stamp is left for ``AuditLog.record`` to fill at the moment of commit."""
    from xscreen.audit import Decision

    if action not in DECISIONS:
        raise ValueError(f"not a decision action: {action!r}")
    if not operator.strip():
        raise ValueError("an operator name is required to record a decision")
    return Decision(operator=operator.strip(), scan_id=scan_id, file_sha256=file_sha256,
                    model_id=model_id, threshold=float(threshold), regions_shown=list(regions_shown),
                    decision=DECISIONS[action], decision_seconds=round(float(seconds), 3), amends=amends,
                    live_threshold=None if live_threshold is None else float(live_threshold))


class ResultCache:
    """The last few screenings by (path, model) so going back a bag or a pre-scored next bag
    shows at once. Small: a Screening of an 8000x3000 scan holds ~200 MB of float maps."""

    def __init__(self, size: int = 3):
        self.size = size
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def get(self, path: Path | str, model: str) -> Any | None:
        key = (str(path), model)
        if key in self._items:
            self._items.move_to_end(key)
        return self._items.get(key)

    def put(self, path: Path | str, model: str, value: Any) -> None:
        self._items[(str(path), model)] = value
        self._items.move_to_end((str(path), model))
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def plan_scoring(target: str, cached: bool, running: str | None) -> str:
    """What to do when the operator needs ``target`` scored.

    ``show`` (already cached), ``wait`` (the worker is already on it, e.g. pre-scoring),
    ``preempt`` (the worker is busy with another bag: cancel it, then start), ``start``.
    """
    if cached:
        return "show"
    if running == target:
        return "wait"
    return "preempt" if running is not None else "start"
