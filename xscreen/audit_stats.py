"""Per-operator statistics from audit rows (``AuditLog.stats``, ``xscreen audit stats``, the GUI).

Decision statistics count real decisions only: a TIP event (kind 'tip', issue 30) is the operator's
response to a projected threat, never a decision on a bag, and an 'unreadable' disposition (issue 31
item 6) says the file could not be screened, not what the bag holds. Both are counted apart.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class OperatorStats:
    operator: str
    bags: int  # standing decisions clear / suspect / unresolved (not unreadable, not TIP)
    suspect_rate: float  # share of those that were "suspect"
    median_decision_seconds: float  # over this operator's decision rows; NaN when there are none
    amendments: int = 0  # decisions of this operator that amend an earlier one
    unreadable: int = 0  # standing 'unreadable' dispositions (re-scan / hand search)
    tip_events: int = 0  # TIP responses (see xscreen tip stats for hit rates)


def operator_stats(rows: Iterable[dict[str, Any]], since: str | None = None) -> list[OperatorStats]:
    """Per-operator totals, optionally only rows at or after ISO time ``since``. A decision later
    amended no longer counts as a bag (the amendment does, for whoever made it)."""
    rows = list(rows)
    replaced = {r["amends"] for r in rows if r.get("amends") is not None}
    by_op: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if since is None or r["time"] >= since:
            by_op.setdefault(r["operator"], []).append(r)
    return [_one(op, rs, replaced) for op, rs in sorted(by_op.items())]


def _one(op: str, rs: list[dict[str, Any]], replaced: set[int]) -> OperatorStats:
    bag = [r for r in rs if (r.get("kind") or "bag") == "bag"]
    final = [r["decision"] for r in bag if r["id"] not in replaced]
    decided = [d for d in final if d != "unreadable"]
    timed = [float(r["decision_seconds"]) for r in bag if r["decision"] != "unreadable"]
    return OperatorStats(op, len(decided), decided.count("suspect") / max(len(decided), 1),
                         float(statistics.median(timed)) if timed else math.nan,
                         sum(r.get("amends") is not None for r in bag), final.count("unreadable"),
                         len(rs) - len(bag))
