"""TIP statistics per operator and per category: a pure function over audit rows (plain dicts).

Rows: ``kind='tip'`` with a ``tip`` field (a dict or its JSON text) {fti_id, category, placement,
response: suspect|clear|unresolved, detected: bool, overlap: bool|None}; ``kind='bag'`` (or no kind:
rows written before the TIP migration are real decisions) with ``decision`` clear|suspect|unresolved|
unreadable. Rows carry ``operator``; a bag row replaced by an amendment (another row's ``amends``
holds its id) no longer counts.

- Hit rate = TIP events detected / TIP events ('unresolved' counts as detected, as the operator
  was told). False-alarm rate = real bags called suspect or unresolved / real bags decided
  (unreadable ones are not decisions about the bag's content and are left out). Both with 95 %
  Wilson score intervals.
- d' = z(H) - z(F) with the log-linear correction (Hautus 1995): H = (hits + 0.5) / (events + 1),
  F = (alarms + 0.5) / (bags + 1), applied to every cell so 0 and 1 rates stay finite and cells stay
  comparable. A category's F is its operator's (real bags have no threat category).
- Fewer than ``min_events`` (100) TIP events: the row carries a warning (not yet a reliable measure:
  the published airport study needed about 100 per screener).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist
from typing import Any, Iterable, Mapping

Z95 = 1.959963984540054
ALL = "*"
ALARMS = ("suspect", "unresolved")
MIN_EVENTS = 100


@dataclass(frozen=True)
class Rate:
    k: int
    n: int
    rate: float  # NaN when n == 0
    lo: float
    hi: float


@dataclass(frozen=True)
class GroupStats:
    """One table row: ``operator`` and ``category`` are names or '*' (all)."""

    operator: str
    category: str
    events: int
    hit: Rate
    false_alarm: Rate
    d_prime: float
    warning: str = ""

    def flat(self) -> dict[str, Any]:
        d = {"operator": self.operator, "category": self.category, "events": self.events}
        for name, r in (("hit", self.hit), ("fa", self.false_alarm)):
            d.update({f"{name}s" if name == "hit" else "false_alarms": r.k,
                      "bags" if name == "fa" else "tip_events": r.n,
                      f"{name}_rate": r.rate, f"{name}_lo": r.lo, f"{name}_hi": r.hi})
        d.update({"d_prime": self.d_prime, "warning": self.warning})
        return d


COLUMNS = ("operator", "category", "events", "hits", "tip_events", "hit_rate", "hit_lo", "hit_hi",
           "false_alarms", "bags", "fa_rate", "fa_lo", "fa_hi", "d_prime", "warning")


@dataclass(frozen=True)
class TipStats:
    groups: list[GroupStats]
    skipped: int = 0  # rows that could not be read (malformed TIP field, unknown response)
    notes: list[str] = field(default_factory=list)


def wilson(k: int, n: int, z: float = Z95) -> Rate:
    """Rate k/n with its Wilson score interval (NaN rate and [0, 1] when n == 0)."""
    if n <= 0:
        return Rate(k, n, float("nan"), 0.0, 1.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return Rate(k, n, p, max(0.0, mid - half), min(1.0, mid + half))


def d_prime(hits: int, events: int, alarms: int, bags: int) -> float:
    """z(H) - z(F), log-linear corrected (module docstring); NaN without events or bags."""
    if events <= 0 or bags <= 0:
        return float("nan")
    z = NormalDist().inv_cdf
    return z((hits + 0.5) / (events + 1)) - z((alarms + 0.5) / (bags + 1))


def _tip_field(row: Mapping[str, Any]) -> dict | None:
    raw = row.get("tip")
    try:
        tip = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except (ValueError, TypeError):
        return None
    if not isinstance(tip, dict) or tip.get("response") not in ("suspect", "clear", "unresolved"):
        return None
    return tip


def _events(rows: list[Mapping[str, Any]]) -> tuple[list[tuple[str, str, bool]], list[tuple[str, bool]], int]:
    """(operator, category, detected) per TIP event; (operator, alarm) per real bag; rows skipped."""
    replaced = {r.get("amends") for r in rows if r.get("amends") is not None}
    tips, bags, skipped = [], [], 0
    for r in rows:
        op, kind = str(r.get("operator", "")), r.get("kind") or "bag"
        if kind == "tip":
            tip = _tip_field(r)
            if tip is None:
                skipped += 1
                continue
            # 'unresolved' counts as detected whatever the row's flag says (the rule)
            detected = tip["response"] in ALARMS
            tips.append((op, str(tip.get("category", "other")), detected))
        elif kind == "bag":
            if r.get("id") is not None and r.get("id") in replaced:
                continue  # amended: the amendment counts instead
            decision = r.get("decision")
            if decision in ("clear",) + ALARMS:
                bags.append((op, decision in ALARMS))
            elif decision != "unreadable":
                skipped += 1
        else:
            skipped += 1
    return tips, bags, skipped


def _group(op: str, cat: str, tips: list[tuple[str, str, bool]], bags: list[tuple[str, bool]],
           min_events: int) -> GroupStats:
    sel = [d for o, c, d in tips if op in (ALL, o) and cat in (ALL, c)]
    fa = [a for o, a in bags if op in (ALL, o)]
    hit, false_alarm = wilson(sum(sel), len(sel)), wilson(sum(fa), len(fa))
    warn = f"only {len(sel)} TIP events (< {min_events}): not yet a reliable measure" if len(sel) < min_events else ""
    return GroupStats(op, cat, len(sel), hit, false_alarm, d_prime(hit.k, hit.n, false_alarm.k, false_alarm.n), warn)


def tip_stats(rows: Iterable[Mapping[str, Any]], *, min_events: int = MIN_EVENTS) -> TipStats:
    """Per (operator, category) rows, with '*' rows for all categories / all operators (see module
    docstring). Order: each operator's '*' row then its categories; then the all-operator rows."""
    rows = list(rows)
    tips, bags, skipped = _events(rows)
    ops = sorted({o for o, _, _ in tips} | {o for o, _ in bags})
    cats = sorted({c for _, c, _ in tips})
    groups = []
    for op in ops + [ALL]:
        for cat in [ALL] + cats:
            g = _group(op, cat, tips, bags, min_events)
            if g.events or cat == ALL:
                groups.append(g)
    notes = ["d' uses the log-linear correction (Hautus 1995): H=(hits+0.5)/(events+1), F=(alarms+0.5)/(bags+1)",
             "'unresolved' counts as detected on TIP events and as an alarm on real bags; unreadable bags are left out"]
    if skipped:
        notes.append(f"{skipped} row(s) could not be read and were left out")
    return TipStats(groups, skipped, notes)


def to_rows(stats: TipStats) -> list[dict[str, Any]]:
    return [g.flat() for g in stats.groups]


def as_dict(stats: TipStats) -> dict[str, Any]:
    return {"groups": [asdict(g) for g in stats.groups], "skipped": stats.skipped, "notes": stats.notes}
