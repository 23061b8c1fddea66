"""What every report format says, computed once: labelled facts, per-region rows, flagged patches.

The HTML, PDF, CSV and JSON writers only lay this out, so the formats cannot disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import numpy as np

from xscreen import __version__
from xscreen.audit import Decision

APP_NAME = "xscreen"
# unreadable: the operator could not judge the image (re-scan / hand search): no verdict on it
OPERATOR_ALARM = {"suspect": "ALARM", "clear": "NO_ALARM", "unresolved": "UNKNOWN", "unreadable": "UNKNOWN"}


@dataclass(frozen=True)
class AppMeta:
    """Who produced the report, and when (ISO 8601 UTC; empty = now)."""

    name: str = APP_NAME
    version: str = __version__
    generated: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlaggedPatch:
    """One grid cell at or above the threshold; (x, y, w, h) in scan pixels, clipped to the scan."""

    row: int
    col: int
    x: int
    y: int
    w: int
    h: int
    score: float
    rel: float  # score / review level (regions are drawn from 1)
    x_alarm: float  # score / the bag's alarm threshold: the one scale every output shows
    rank: int | None  # of its region; None if the cell is in no region (e.g. min_region_patches)
    region_id: int | None


@dataclass(frozen=True)
class ReportContext:
    screening: Any  # pipeline.Screening
    decision: Decision | None
    app: AppMeta
    patches: list[FlaggedPatch]
    history: tuple[Decision, ...] = ()  # earlier decisions on the bag, oldest first (amended ones)

    @property
    def machine_alarm(self) -> str:
        return "ALARM" if self.screening.alarm else "NO_ALARM"

    @property
    def final_alarm(self) -> str:
        """The operator's call when there is one (suspect -> ALARM, clear -> NO_ALARM,
        unresolved -> UNKNOWN), else the machine's."""
        return OPERATOR_ALARM.get(self.decision.decision, "UNKNOWN") if self.decision else self.machine_alarm

    @property
    def report_type(self) -> str:
        return "OPERATOR" if self.decision else "MACHINE"

    def facts(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """Sections of (label, value) text for the header of HTML and PDF. Every number about a
        region or the bag is on one scale: score ÷ this bag's alarm threshold ("× alarm")."""
        s = self.screening
        n_alarm = sum(r.level == "alarm" for r in s.regions)
        result = [("Machine decision", self.machine_alarm),
                  ("Rule", "ALARM iff a region reaches 1.00 × alarm (the bag's alarm threshold)"),
                  ("Alarm threshold", _alarm_text(s)),
                  ("Review level", f"{_xa(s.threshold, s)} × alarm (score {s.threshold:.5g}; regions are "
                                   f"drawn from here; patch false-alarm rate {_far(s.threshold_far)})"),
                  ("Highest patch", f"{_xa(s.scan_score, s)} × alarm (score {s.scan_score:.5g})"),
                  ("Regions", f"{n_alarm} alarm, {len(s.regions) - n_alarm} attention (below the "
                              "alarm threshold, not threats)"),
                  ("Flagged patches", f"{len(self.patches)} (at or above the review level)")]
        result += [("Notice", str(n)) for n in getattr(s, "notices", None) or []]  # e.g. sections, empty tray
        return [
            ("Scan", [("Scan id", str(s.scan_id)), ("File", str(s.path or "-")), ("SHA-256", s.sha256 or "-"),
                      ("Kind", str(s.kind)), ("Size", f"{s.width} x {s.height} px")]),
            ("Result", result),
            ("Operator", self._operator_facts()),
            ("Model", [("Model id", str(s.model_id)), ("Checksum", str(s.model_checksum)),
                       ("Patch size / stride", f"{s.patch_size} / {s.stride} px")]),
            ("Report", [("Application", f"{self.app.name} {self.app.version}"),
                        ("Generated", self.app.generated), ("Report type", self.report_type)]),
        ]

    def _operator_facts(self) -> list[tuple[str, str]]:
        """The standing decision, and when it amends earlier ones: from what, by whom, when."""
        d = self.decision
        if d is None:
            return [("Operator decision", "none recorded")]
        facts = [("Operator decision", d.decision.upper() + (" (amended)" if self.amended else "")),
                 ("Operator", d.operator), ("Decided at", d.time or "-"),
                 ("Decision time", f"{d.decision_seconds:.1f} s")]
        for k, old in enumerate(reversed(self.history), 1):
            facts.append((f"Amends ({k})" if len(self.history) > 1 else "Amends",
                          f"{old.decision.upper()} by {old.operator} at {old.time or '-'}"))
        if self.amended and not self.history:
            facts.append(("Amends", f"audit row {d.amends} (earlier decision not included)"))
        return facts

    @property
    def amended(self) -> bool:
        return bool(self.history) or (self.decision is not None and self.decision.amends is not None)

    def region_rows(self) -> list[dict[str, Any]]:
        """One dict per region, in rank order; ``x_alarm`` = max score ÷ the bag's alarm threshold."""
        s = self.screening
        nan = float("nan")
        return [{"rank": r.rank, "region_id": r.region_id, "box": (r.x, r.y, r.w, r.h),
                 "level": getattr(r, "level", "alarm").upper(),
                 "x_alarm": r.max_score / s.scan_threshold if s.scan_threshold else nan,
                 "mean_x_alarm": r.mean_score / s.scan_threshold if s.scan_threshold else nan,
                 "max_score": r.max_score, "mean_score": r.mean_score, "n_patches": len(r.patches),
                 "probability": assessment_probability(r.max_score / s.scan_threshold
                                                       if s.scan_threshold else nan)}
                for r in sorted(self.screening.regions, key=lambda r: r.rank)]

    @property
    def review_x_alarm(self) -> float:
        s = self.screening
        return s.threshold / s.scan_threshold if s.scan_threshold else float("nan")


FOOTNOTE = ("Region numbers are score ÷ this bag's alarm threshold (× alarm; 1.00 alarms); the assessment "
            "probability is p = r²/(1+r²) of r = × alarm (0.5 at the alarm threshold), not a calibrated "
            "threat probability.")


def heat_caption(ctx: "ReportContext") -> str:
    """What the heat map's colours mean, naming the threshold they are divided by."""
    from xscreen.heatmap import HEAT_MAX

    s = ctx.screening
    return (f"Colour: score ÷ this bag's alarm threshold (score {s.scan_threshold:.5g}): transparent below "
            f"0.50 × alarm, full colour from 1.00 × alarm (alarms), red at {HEAT_MAX:.2f} × alarm and above; "
            f"the review level (regions drawn from here) is {ctx.review_x_alarm:.2f} × alarm.")


def assessment_probability(rel: float) -> float:
    """Map score ÷ alarm threshold (rel >= 0) to [0, 1) for the DICOS 'assessment probability' field.

    p = rel**2 / (1 + rel**2): the odds are the squared threshold ratio, so p = 0.5 exactly at the
    bag's alarm threshold (p >= 0.5 iff the region is flagged THREAT), 0.8 at twice it, 0.9 at three times, 0.2 at half. Monotone, so ranking by
    p equals ranking by score. It is NOT a calibrated probability that a threat is present: the model
    only knows how unlike benign training data a patch is.
    """
    rel = max(0.0, float(rel)) if np.isfinite(rel) else 0.0
    return rel * rel / (1.0 + rel * rel)


def build_context(screening: Any, decision: Decision | None = None,
                  app_meta: AppMeta | dict[str, Any] | None = None,
                  history: Iterable[Decision] = ()) -> ReportContext:
    if isinstance(app_meta, dict):
        known = {k: app_meta[k] for k in ("name", "version", "generated") if k in app_meta}
        rest = {k: v for k, v in app_meta.items() if k not in known}
        app_meta = AppMeta(**known, extra=rest)
    app = app_meta or AppMeta()
    if not app.generated:
        app = AppMeta(app.name, app.version, utc_now(), app.extra)
    return ReportContext(screening, decision, app, flagged_patches(screening), tuple(history))


def flagged_patches(s: Any) -> list[FlaggedPatch]:
    """Every non-air cell of ``s.score_grid`` with score >= ``s.threshold``, in (row, col) order.
    Without a stored grid (a re-rendered summary): the regions' cells, scores unknown (NaN)."""
    owner = {(int(r), int(c)): reg for reg in s.regions for r, c in reg.patches}
    if s.score_grid is None:
        cells = sorted(owner)
        grid = np.full((max((r for r, _ in cells), default=0) + 1,
                        max((c for _, c in cells), default=0) + 1), np.nan)
    else:
        grid = np.asarray(s.score_grid, dtype=np.float64)
        flagged = grid >= s.threshold
        if getattr(s, "air_grid", None) is not None:
            flagged &= ~np.asarray(s.air_grid, dtype=bool)
        cells = list(zip(*np.nonzero(flagged)))
    out = []
    for r, c in cells:
        x, y = int(c) * s.stride, int(r) * s.stride
        reg = owner.get((int(r), int(c)))
        out.append(FlaggedPatch(int(r), int(c), x, y, min(s.patch_size, s.width - x),
                                min(s.patch_size, s.height - y), float(grid[r, c]),
                                float(grid[r, c] / s.threshold),
                                float(grid[r, c] / s.scan_threshold) if s.scan_threshold else float("nan"),
                                reg.rank if reg else None,
                                reg.region_id if reg else None))
    return out


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _alarm_text(s: Any) -> str:
    """This bag's alarm threshold and where it came from (area rule, override, legacy model)."""
    how = {"area": f"for this bag's scored area {getattr(s, 'area', 0.0):.0f} px^2",
           "constant": "the same for every bag size"}.get(getattr(s, "alarm_rule", ""), "")
    version = getattr(s, "threshold_version", "")
    far = getattr(s, "alarm_far", None)
    return (f"score {s.scan_threshold:.5g} = 1.00 × alarm" + (f" ({how})" if how else "")
            + (f", set for {far:.1%} of benign bags" if far else "") + (f", version {version}" if version else ""))


def _xa(score: float, s: Any) -> str:
    return f"{score / s.scan_threshold:.2f}" if s.scan_threshold else "-"


def _far(far: float | None) -> str:
    return "n/a" if far is None else f"{100.0 * far:.3g} % of benign patches"
