"""Machine-readable outputs: patches.csv, the batch summary CSV and report.json.

report.json follows the shape of a DICOS Threat Detection Report (TDR): report type MACHINE /
OPERATOR, alarm decision, potential threat objects (PTOs) with category ANOMALY, an assessment
probability and a bounding box; xscreen extras (scan, model, score grid, timings) sit beside it.
Schema: ``xscreen/schemas/report.schema.json``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from xscreen.csvtext import csv_text
from xscreen.report.context import ReportContext, assessment_probability
from xscreen.report.summary import (SUMMARY_COLUMNS, SummaryRow, batch_summary_csv, failure_row,  # noqa: F401
                                    summary_row, x_alarm)

FORMAT = "xscreen-threat-detection-report"
# 2: every region number is score ÷ the bag's alarm threshold ('_x_alarm'); v1 divided by the
# review level ('_over_threshold'). report/load.py reads both.
FORMAT_VERSION = 2
PATCH_COLUMNS = ("scan_id", "file", "sha256", "patch_row", "patch_col", "x", "y", "w", "h",
                 "score", "score_x_alarm", "rank", "region_id", "level", "machine_decision",
                 "decision", "operator", "decision_time", "time", "model_id")


def patches_csv(ctx: ReportContext) -> str:
    s, d = ctx.screening, ctx.decision
    levels = {r.region_id: r.level for r in s.regions}
    rows = [{"scan_id": s.scan_id, "file": str(s.path or ""), "sha256": s.sha256,
             "patch_row": p.row, "patch_col": p.col, "x": p.x, "y": p.y, "w": p.w, "h": p.h,
             "score": p.score, "score_x_alarm": p.x_alarm, "rank": p.rank,
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
                "time": d.time, "amends": d.amends,
                "amended_from": [{"name": h.operator, "decision": h.decision, "time": h.time}
                                 for h in ctx.history]},
            "ptos": [_pto(r, s.scan_threshold) for r in sorted(s.regions, key=lambda r: r.rank)],
        },
        "scan": {"scan_id": str(s.scan_id), "file": str(s.path or ""), "sha256": s.sha256 or "",
                 "kind": s.kind, "width": int(s.width), "height": int(s.height)},
        "model": {"model_id": s.model_id, "checksum": s.model_checksum,
                  "patch_threshold": _num(s.threshold), "patch_false_alarm_rate": _num(s.threshold_far),
                  "scan_threshold": _num(s.scan_threshold), "review_level_x_alarm": _num(ctx.review_x_alarm), "patch_size": int(s.patch_size),
                  "stride": int(s.stride), "alarm_rule": str(getattr(s, "alarm_rule", "")),
                  "threshold_version": str(getattr(s, "threshold_version", "")),
                  "scored_area_px2": _num(getattr(s, "area", None))},
        "screening": {"scan_score": _num(s.scan_score), "alarm": bool(s.alarm),
                      "scan_score_x_alarm": _num(x_alarm(s.scan_score, s)),
                      "n_flagged_patches": len(ctx.patches), "score_grid": score_grid_json(s),
                      "sections": int(getattr(s, "sections", 1)),
                      "notices": [str(n) for n in getattr(s, "notices", None) or []],
                      "timings": timings},
        "app": {"name": ctx.app.name, "version": ctx.app.version, "generated": ctx.app.generated,
                "extra": ctx.app.extra},
    }


def _pto(r: Any, alarm_threshold: float) -> dict[str, Any]:
    """An alarm region is a THREAT; an attention region is listed as NO_THREAT, so a NO_ALARM
    report never holds a THREAT object (issue 13). Scores: raw, and ÷ the bag's alarm threshold."""
    xa = r.max_score / alarm_threshold if alarm_threshold else float("nan")
    return {
        "pto_id": int(r.rank), "region_id": int(r.region_id), "threat_category": "ANOMALY",
        "assessment": {"flag": "THREAT" if r.level == "alarm" else "NO_THREAT",
                       "probability": round(assessment_probability(xa), 6),
                       "score": _num(r.max_score), "score_x_alarm": _num(xa),
                       "mean_score": _num(r.mean_score),
                       "mean_score_x_alarm": _num(r.mean_score / alarm_threshold) if alarm_threshold else None},
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
