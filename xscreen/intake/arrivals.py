"""The arrivals queue at a lane, without Qt: bags in arrival order, which are undecided, the backlog
and the age of the oldest undecided bag, and which bag to open next. The GUI's arrivals panel
shows one of these and forwards events to it."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class ArrivalEntry:
    """One bag as the operator sees it arrive. ``status``: screened | failed | stored."""

    path: str  # what the window opens (the bag's done file)
    name: str  # the name it arrived under (a sender's spool name: may repeat)
    arrived: float  # wall time it was first seen in the inbox
    status: str
    alarm: bool | None = None
    scan_rel: float | None = None  # bag score / its alarm threshold
    message: str = ""
    decision: str = ""  # the standing decision ('' undecided)

    def label(self) -> str:
        when = time.strftime("%H:%M:%S", time.localtime(self.arrived))
        if self.status == "screened":
            verdict = f"{'ALARM' if self.alarm else 'clear'} {self.scan_rel:.2f}x"
        else:
            verdict = "not screened" if self.status == "stored" else "could not open"
        tail = f"  - {self.decision.upper()}" if self.decision else ""
        return f"{when}  {self.name}  {verdict}{tail}"


@dataclass
class ArrivalQueue:
    entries: list[ArrivalEntry] = field(default_factory=list)
    clock: Callable[[], float] = time.time

    def add(self, entry: ArrivalEntry) -> int:
        """Append (arrival order is the order the lane hands bags over); returns its index."""
        self.entries.append(entry)
        return len(self.entries) - 1

    def undecided(self) -> list[ArrivalEntry]:
        """Screened bags still waiting for the operator's decision. A bag that could not be read or
        was stored unscreened is listed (marked) but cannot be decided, so it is not backlog."""
        return [e for e in self.entries if e.status == "screened" and not e.decision]

    @property
    def backlog(self) -> int:
        return len(self.undecided())

    def oldest_age(self) -> float | None:
        waiting = self.undecided()
        return None if not waiting else max(0.0, self.clock() - min(e.arrived for e in waiting))

    def set_decision(self, path: str, decision: str) -> bool:
        """Record the standing decision of the bag at ``path``; True when something changed."""
        changed = False
        for e in self.entries:
            if e.path == path and e.decision != decision:
                e.decision, changed = decision, True
        return changed

    def next_undecided(self, after: int = -1) -> int | None:
        """Index of the first undecided bag after ``after`` (auto-advance), else None."""
        for i in range(after + 1, len(self.entries)):
            if self.entries[i].status == "screened" and not self.entries[i].decision:
                return i
        return None

    def status_text(self) -> str:
        age = self.oldest_age()
        if age is None:
            return f"Backlog: 0 undecided  ·  {len(self.entries)} arrived"
        m, s = divmod(int(age), 60)
        return f"Backlog: {self.backlog} undecided  ·  oldest {m}:{s:02d}  ·  {len(self.entries)} arrived"


def entry_from(result) -> ArrivalEntry:
    """An IntakeResult (lane.py) as a queue entry."""
    rec = result.record
    return ArrivalEntry(path=str(result.done_path), name=" + ".join(rec.names), arrived=rec.seen,
                        status=rec.status, alarm=rec.alarm, scan_rel=rec.scan_rel, message=rec.message)
