"""Machine-readable outputs: patches.csv, the batch summary CSV and report.json.

report.json follows the shape of a DICOS Threat Detection Report (TDR): report type MACHINE /
OPERATOR, alarm decision, potential threat objects (PTOs) with category ANOMALY, an assessment
probability and a bounding box; xscreen extras (scan, model, score grid, timings) sit beside it.
Schema: ``xscreen/schemas/report.schema.json``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from xscreen.audit import Decision
from xscreen.csvtext import csv_text
from xscreen.report.context import ReportContext, assessment_probability, flagged_patches

FORMAT = "xscreen-threat-detection-report"
FORMAT_VERSION = 1
PATCH_COLUMNS = ("scan_id", "file", "sha256", "patch_row", "patch_col", "x", "y", "w", "h",
                 "score", "score_over_threshold", "rank", "region_id", "level", "machine_decision",
                 "decision", "operator", "decision_time", "time", "model_id")


@dataclass(frozen=True)
class SummaryRow:
    """One scan in a batch summary; ``error`` set (and the numbers empty) when screening failed."""

    file: str
    scan_id: str = ""
    sha256: str = ""
    kind: str = ""
    width: int | None = None
    height: int | None = None
    model_id: str = ""
    threshold: float | None = None
    scan_score: float | None = None
    scan_threshold: float | None = None
    scan_score_over_threshold: float | None = None
    alarm: str = ""
    n_regions: int | None = None
    n_alarm_regions: int | None = None
    threshold_version: str = ""
    n_flagged_patches: int | None = None
    top_region_score_over_threshold: float | None = None
    decision: str = ""
    operator: str = ""
    decision_seconds: float | None = None
    decision_time: str = ""
    status: str = "ok"
    error: str = ""


SUMMARY_COLUMNS = tuple(f.name for f in dataclasses.fields(SummaryRow))


def summary_row(screening: Any, decision: Decision | None = None) -> SummaryRow:
    s, d = screening, decision
    n_flagged = len(flagged_patches(s))
    return SummaryRow(
        file=str(s.path or ""), scan_id=str(s.scan_id), sha256=s.sha256 or "", kind=s.kind, width=s.width,
        height=s.height, model_id=s.model_id, threshold=s.threshold, scan_score=s.scan_score,
        scan_threshold=s.scan_threshold,
        scan_score_over_threshold=s.scan_score / s.scan_threshold if s.scan_threshold else None,
        alarm="ALARM" if s.alarm else "NO_ALARM", n_regions=len(s.regions),
        n_alarm_regions=sum(r.level == "alarm" for r in s.regions),
        threshold_version=str(getattr(s, "threshold_version", "")),
        n_flagged_patches=n_flagged,
        top_region_score_over_threshold=max((r.max_rel for r in s.regions), default=None),
        decision=d.decision if d else "", operator=d.operator if d else "",
        decision_seconds=d.decision_seconds if d else None, decision_time=d.time if d else "")


def failure_row(path: str | Path, error: str) -> SummaryRow:
    return SummaryRow(file=str(path), status="failed", error=error)


def batch_summary_csv(rows: Iterable[SummaryRow | Any]) -> str:
    """CSV text, one line per scan; Screening objects are summarised on the way."""
    items = [r if isinstance(r, SummaryRow) else summary_row(r) for r in rows]
    return csv_text(SUMMARY_COLUMNS, [dataclasses.asdict(r) for r in items])


def patches_csv(ctx: ReportContext) -> str:
    s, d = ctx.screening, ctx.decision
    levels = {r.region_id: r.level for r in s.regions}
    rows = [{"scan_id": s.scan_id, "file": str(s.path or ""), "sha256": s.sha256,
             "patch_row": p.row, "patch_col": p.col, "x": p.x, "y": p.y, "w": p.w, "h": p.h,
             "score": p.score, "score_over_threshold": p.rel, "rank": p.rank,
             "region_id": p.region_id, "level": levels.get(p.region_id, ""),
             "machine_decision": ctx.machine_alarm,
             "decision": d.decision if d else "", "operator": d.operator if d else "",
             "decision_time": d.time if d else "", "time": ctx.app.generated, "model_id": s.model_id}
            for p in ctx.patches]
    return csv_text(PATCH_COLUMNS, rows)


def report_document(ctx: ReportContext) -> dict[str, Any]:
    """The report.json content (see the module docstring and the JSON Schema)."""
    s, d = ctx.screening, ctx.decision
    timings = getattr(s, "timings", None)
    timings = dataclasses.asdict(timings) if dataclasses.is_dataclass(timings) else None
    total = timings.get("total") if timings else None
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "tdr": {
            "report_type": ctx.report_type, "alarm_decision": ctx.final_alarm,
            "machine_alarm_decision": ctx.machine_alarm,
            "alarm_decision_time": d.time if d and d.time else ctx.app.generated,
            "number_of_alarm_objects": sum(r.level == "alarm" for r in s.regions),
            "total_processing_time_ms": None if total is None else round(1000.0 * total, 3),
            "operator": None if d is None else {
                "name": d.operator, "decision": d.decision, "decision_seconds": d.decision_seconds,
                "time": d.time},
            "ptos": [_pto(r, s.scan_threshold) for r in sorted(s.regions, key=lambda r: r.rank)],
        },
        "scan": {"scan_id": str(s.scan_id), "file": str(s.path or ""), "sha256": s.sha256 or "",
                 "kind": s.kind, "width": int(s.width), "height": int(s.height)},
        "model": {"model_id": s.model_id, "checksum": s.model_checksum,
                  "patch_threshold": _num(s.threshold), "patch_false_alarm_rate": _num(s.threshold_far),
                  "scan_threshold": _num(s.scan_threshold), "patch_size": int(s.patch_size),
                  "stride": int(s.stride), "alarm_rule": str(getattr(s, "alarm_rule", "")),
                  "threshold_version": str(getattr(s, "threshold_version", "")),
                  "scored_area_px2": _num(getattr(s, "area", None))},
        "screening": {"scan_score": _num(s.scan_score), "alarm": bool(s.alarm),
                      "scan_score_over_threshold": _num(s.scan_score / s.scan_threshold)
                      if s.scan_threshold else None,
                      "n_flagged_patches": len(ctx.patches), "score_grid": score_grid_json(s),
                      "timings": timings},
        "app": {"name": ctx.app.name, "version": ctx.app.version, "generated": ctx.app.generated,
                "extra": ctx.app.extra},
    }


def _pto(r: Any, alarm_threshold: float) -> dict[str, Any]:
    """An alarm region is a THREAT; an attention region is listed as NO_THREAT, so a NO_ALARM
    report never holds a THREAT object (issue 13)."""
    return {
        "pto_id": int(r.rank), "region_id": int(r.region_id), "threat_category": "ANOMALY",
        "assessment": {"flag": "THREAT" if r.level == "alarm" else "NO_THREAT",
                       "probability": round(assessment_probability(r.max_rel), 6),
                       "score": _num(r.max_score), "score_over_threshold": _num(r.max_rel),
                       "score_over_alarm_threshold": _num(r.max_score / alarm_threshold)
                       if alarm_threshold else None,
                       "mean_score": _num(r.mean_score), "mean_score_over_threshold": _num(r.mean_rel)},
        "bounding_box": {"x": int(r.x), "y": int(r.y), "width": int(r.w), "height": int(r.h),
                         "units": "pixel"},
        "patches": [[int(a), int(b)] for a, b in r.patches],
    }


def score_grid_json(s: Any) -> list[list[float | None]] | None:
    """(rows, cols) raw scores; ``null`` for air cells (not scored), 7 significant digits.
    None when the screening carries no grid (re-rendered from a summary)."""
    if s.score_grid is None:
        return None
    grid = np.asarray(s.score_grid, dtype=np.float64)
    air = np.asarray(s.air_grid, dtype=bool) if getattr(s, "air_grid", None) is not None else \
        np.zeros(grid.shape, bool)
    return [[None if a else float(f"{v:.7g}") for v, a in zip(row, arow)] for row, arow in zip(grid, air)]


def _num(v: Any) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)
