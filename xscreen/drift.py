"""Drift watch: does the site still see the alarm rate the model was calibrated for?

Two rates are compared with the model's target bag false-alarm rate f (``Calibration.scan_far``):
- the **alarm rate**: bags that alarmed / bags screened. At a site where nearly every bag is benign
  it should sit near f; well above, the site's bags differ from the calibration bags (another
  scanner, another bag mix) and every operator pays in false alarms.
- the **cleared-alarm rate**: bags that alarmed *and* that operators cleared / bags decided. That is
  the false-alarm rate as the operators judged it, the number the threshold was set for.

"Beyond sampling error" means the target lies outside the exact (Clopper-Pearson) 99 % interval of
the observed count: with 60 bags and f = 5 %, 9 alarms (15 %) is flagged, 6 (10 %) is not. 99 %
rather than 95 %: the check is repeated after every decision, and a warning that cries wolf is ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from xscreen.metrics import RateInterval, clopper_pearson

CONFIDENCE = 0.99
RECALIBRATE = "recalibrate from the operators' cleared bags: xscreen model calibrate MODEL --from-audit AUDIT_DB"


@dataclass(frozen=True)
class DriftCheck:
    what: str  # "alarm rate" or "cleared-alarm rate"
    interval: RateInterval  # of the observed k / n
    target: float
    status: str  # "ok", "high", "low" or "none" (nothing counted yet)

    @property
    def drifted(self) -> bool:
        return self.status in ("high", "low")

    @property
    def message(self) -> str:
        ci, t = self.interval, self.target
        if self.status == "none":
            return f"{self.what}: no bags counted yet (target {t:.1%})"
        seen = (f"{self.what} {ci.rate:.1%} ({ci.k}/{ci.n} bags; {ci.confidence:.0%} interval "
                f"{ci.lo:.1%}-{ci.hi:.1%})")
        if self.status == "ok":
            return f"{seen} agrees with the target {t:.1%}"
        if self.status == "high":
            return (f"DRIFT: {seen} is above the target {t:.1%} beyond sampling error: this site's "
                    f"benign bags score higher than the calibration bags; {RECALIBRATE}")
        return (f"DRIFT: {seen} is below the target {t:.1%} beyond sampling error: the threshold is "
                f"stricter than calibrated for these bags, so it may also miss more; {RECALIBRATE}")


def check_rate(what: str, k: int, n: int, target: float, confidence: float = CONFIDENCE) -> DriftCheck:
    """Is k of n consistent with rate ``target``? (target inside the exact interval of k / n)."""
    ci = clopper_pearson(int(k), int(n), confidence)
    if n == 0:
        return DriftCheck(what, ci, target, "none")
    status = "high" if target < ci.lo else "low" if target > ci.hi else "ok"
    return DriftCheck(what, ci, target, status)


@dataclass(frozen=True)
class DriftReport:
    version: str  # threshold version counted ("" = every row that records the machine's alarm)
    checks: tuple[DriftCheck, ...]

    @property
    def drifted(self) -> bool:
        return any(c.drifted for c in self.checks)

    def lines(self) -> list[str]:
        head = f"drift watch (threshold version {self.version or 'any'}):"
        return [head] + [f"  {c.message}" for c in self.checks]

    def status_text(self) -> str:
        """One line for a status bar; empty when nothing has drifted."""
        bad = [c for c in self.checks if c.drifted]
        return "" if not bad else " | ".join(c.message.split(";")[0] for c in bad) + " - recalibrate"


def final_decisions(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Bag decisions grouped per bag (file hash, scan id), in id order; the last row is the standing
    one. TIP events (kind 'tip') are left out: a response to a projected threat is never a decision
    on the bag, nor evidence of what the site's bags score (issue 30)."""
    bags: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: r["id"]):
        if (r.get("kind") or "bag") == "bag":
            bags.setdefault((r["file_sha256"], r["scan_id"]), []).append(r)
    return bags


def audit_drift(rows: Iterable[dict[str, Any]], target: float, version: str = "") -> DriftReport:
    """Both checks over the bags whose standing decision records the machine's alarm (under
    ``version``, a threshold version or its scoring-id prefix, when given). TIP events and bags
    standing 'unreadable' (never screened: no alarm to count) are left out."""
    alarmed = cleared = n = 0
    for bag in final_decisions(rows).values():
        last = bag[-1]
        if last["decision"] == "unreadable" or last.get("machine_alarm") is None or not str(last.get("threshold_version") or "").startswith(version):
            continue
        n += 1
        alarmed += bool(last["machine_alarm"])
        cleared += bool(last["machine_alarm"]) and last["decision"] == "clear"
    return DriftReport(version, (check_rate("alarm rate", alarmed, n, target),
                                 check_rate("cleared-alarm rate", cleared, n, target)))


def screening_drift(audit_path: str | Path | None, screening: Any) -> str:
    """``drift_status`` for the threshold a screened bag was shown under ("" without a target)."""
    target = getattr(screening, "alarm_far", None)
    version = getattr(screening, "threshold_version", "")
    return drift_status(audit_path, version, target) if target and version else ""


def drift_status(audit_path: str | Path | None, threshold_version: str, target: float) -> str:
    """The GUI's one call: a status-bar line when the audit shows drift under this threshold
    version, else "" (also when the audit cannot be read: the decision path reports that)."""
    from xscreen.audit import AuditError, AuditLog

    try:
        with AuditLog(audit_path, create=False) as log:
            rows = log.rows()
    except (AuditError, OSError):
        return ""
    return audit_drift(rows, target, threshold_version).status_text()
