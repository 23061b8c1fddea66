"""The audit's row types: a bag decision (``Decision``) and a TIP event (``TipEvent``), and the
text rule both follow. ``audit.AuditLog`` writes them; import them from ``xscreen.audit``."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

DecisionKind = Literal["clear", "suspect", "unresolved", "unreadable"]
# 'unreadable' (issue 31 item 6): the file could not be screened -> re-scan / hand search. It is the
# bag's disposition, audited like the others, but never a judgement of what the bag holds.
DECISIONS: tuple[str, ...] = ("clear", "suspect", "unresolved", "unreadable")
TIP_RESPONSES: tuple[str, ...] = ("suspect", "clear", "unresolved")
ROW_KINDS: tuple[str, ...] = ("bag", "tip")


@dataclass(frozen=True)
class Decision:
    """One operator decision on one bag. ``time``: ISO 8601 UTC; empty = now, filled by ``record``.
    ``regions_shown``: region ids (or any JSON-able list) on screen when the decision was taken.
    ``threshold``: the bag's calibrated alarm threshold; ``live_threshold``: the one the operator
    had on screen (the threshold control moved), None when it was the calibrated one."""

    operator: str
    scan_id: str
    file_sha256: str
    model_id: str
    threshold: float
    decision: DecisionKind
    decision_seconds: float
    regions_shown: list[Any] = field(default_factory=list)
    time: str = ""
    amends: int | None = None  # id of the row this decision replaces (the bag's latest); None = first
    threshold_version: str | None = None  # Screening.threshold_version the bag was shown under
    bag_score: float | None = None  # Screening.scan_score (highest region score, raw)
    bag_area: float | None = None  # Screening.area (scored px^2)
    machine_alarm: bool | None = None  # Screening.alarm
    cascade: float | None = None  # Screening.cascade: 0 = every patch scored, F > 0 = fast screening
    kind: Literal["bag"] = "bag"  # rows read back as 'tip' are TipEvents (AuditLog.record_tip)
    live_threshold: float | None = None


@dataclass(frozen=True)
class TipEvent:
    """One operator response to a TIP image (a threat projected into a real bag, issue 30): a row
    of its own (kind 'tip') in the same chain, never the real bag's decision. ``scan_id`` and
    ``file_sha256`` name the real bag; ``placement``: the projection's placement (JSON-able dict).
    ``detected``: suspect or unresolved (None = derived from ``response``); ``overlap``: whether a
    region the operator selected overlaps the threat (None = no region selected)."""

    operator: str
    scan_id: str
    file_sha256: str
    model_id: str
    fti_id: str
    category: str
    placement: dict[str, Any]
    response: Literal["suspect", "clear", "unresolved"]
    decision_seconds: float
    detected: bool | None = None
    overlap: bool | None = None
    threshold: float = 0.0  # the calibrated alarm threshold the TIP image was screened under
    live_threshold: float | None = None
    regions_shown: list[Any] = field(default_factory=list)
    time: str = ""

    def tip_field(self) -> dict[str, Any]:
        """The row's ``tip`` column: {fti_id, category, placement, response, detected, overlap}."""
        if self.response not in TIP_RESPONSES:
            raise ValueError(f"TIP response must be one of {TIP_RESPONSES}, got {self.response!r}")
        detected = self.response in ("suspect", "unresolved")  # unresolved counts as detected (issue 30)
        if self.detected is not None and bool(self.detected) != detected:
            raise ValueError(f"TIP response {self.response!r} is {'' if detected else 'not '}a detection, "
                             f"but detected={self.detected!r}")
        return {"fti_id": text(self.fti_id), "category": text(self.category),
                "placement": json.loads(json.dumps(self.placement, default=plain)),
                "response": self.response, "detected": detected,
                "overlap": None if self.overlap is None else bool(self.overlap)}


def machine_fields(screening: Any) -> dict[str, Any]:
    """The Decision fields that record what the machine said about a bag (a pipeline.Screening)."""
    return {"threshold_version": str(screening.threshold_version) or None,
            "bag_score": float(screening.scan_score), "bag_area": float(screening.area),
            "machine_alarm": bool(screening.alarm), "cascade": float(screening.cascade)}


def text(v: Any) -> str:
    """Valid UTF-8 text: a lone surrogate (from a file's JSON header) is kept as its escape."""
    return "" if v is None else str(v).encode("utf-8", "backslashreplace").decode("utf-8")


def plain(o: Any) -> Any:
    """numpy scalars (region ids from a grid) -> Python numbers for JSON."""
    return o.item() if hasattr(o, "item") else str(o)
