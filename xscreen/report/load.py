"""Rebuild a ``Screening`` from a saved per-scan JSON, so reports can be re-rendered later.

Two inputs are understood:
- ``report.json`` written by ``write_reports``: carries the score grid (air = null), so the flagged
  patches and the heat map (mean rel score of covering patches, the pipeline's definition) are
  recomputed exactly; the reconstruction and residual are not stored.
- the per-scan ``<scan>.json`` of ``xscreen screen`` (``Screening.to_summary()``): scalars and
  regions; if it has no score grid, flagged patches are those of the regions with their scores
  unknown, and there is no heat map. Rescoring (``xscreen report --model``) restores everything.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from xscreen.audit import Decision
from xscreen.heatmap import Region
from xscreen.pipeline import Screening, Timings
from xscreen.report.tables import FORMAT


class ReportInputError(ValueError):
    """A saved screening JSON that cannot be used; ``str(err)`` is '<file>: <fault>'."""


def load_screening_json(path: str | Path) -> tuple[Screening, Decision | None]:
    """-> (screening with grids and regions; maps None where not stored, operator decision or None)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportInputError(f"{path}: cannot read screening JSON ({exc})") from None
    try:
        if isinstance(doc, dict) and doc.get("format") == FORMAT:
            return _from_report(doc), _decision(doc)
        if isinstance(doc, dict) and {"scan_id", "regions", "threshold"} <= doc.keys():
            return _from_summary(doc), None
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportInputError(f"{path}: malformed screening JSON ({type(exc).__name__}: {exc})") from None
    raise ReportInputError(f"{path}: not an xscreen report.json or screening summary JSON")


def _grid(rows: list[list[float | None]]) -> tuple[np.ndarray, np.ndarray]:
    """JSON grid (null = air) -> (scores (rows, cols) float32 with 0 for air, air (rows, cols) bool)."""
    arr = np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float32)
    if arr.ndim != 2:
        raise ValueError("score_grid is not a rectangular 2-D array")
    air = np.isnan(arr)
    return np.where(air, 0.0, arr).astype(np.float32), air


def heat_from_grid(grid: np.ndarray, threshold: float, size: int, stride: int, h: int, w: int) -> np.ndarray:
    """(rows, cols) raw scores -> (H, W) rel score per pixel, stitched exactly as the pipeline
    stitches it (``patches.grid_to_pixels``: the tapered-window weighted mean of covering patches).
    A flat mean here drew a blocky patch grid where the screened report was smooth (issue 31)."""
    import torch

    from xscreen.patches import grid_extent, grid_to_pixels, tile_padded

    rows, cols = grid.shape
    hp, wp = grid_extent(h, size, stride)[1], grid_extent(w, size, stride)[1]
    # geometry only: a one-element tensor expanded to the padded size holds no pixels
    tiling = tile_padded(torch.zeros(1).expand(1, hp, wp), size, stride, h, w)
    if tiling.grid != (rows, cols):
        raise ValueError(f"score_grid is {rows}x{cols}, but a {w}x{h} scan at patch {size} / stride "
                         f"{stride} has {tiling.grid[0]}x{tiling.grid[1]} patches")
    return grid_to_pixels(torch.from_numpy(np.asarray(grid, np.float32) / threshold), tiling).numpy()


def _from_report(doc: dict[str, Any]) -> Screening:
    scan, model, scr = doc["scan"], doc["model"], doc["screening"]
    grid, air = _grid(scr["score_grid"])
    threshold = float(model["patch_threshold"])
    regions = [Region(rank=p["pto_id"], region_id=p["region_id"], x=p["bounding_box"]["x"],
                      y=p["bounding_box"]["y"], w=p["bounding_box"]["width"],
                      h=p["bounding_box"]["height"], max_score=p["assessment"]["score"],
                      mean_score=p["assessment"]["mean_score"],
                      max_rel=p["assessment"]["score"] / threshold,
                      mean_rel=p["assessment"]["mean_score"] / threshold,
                      patches=[tuple(rc) for rc in p["patches"]],
                      level="alarm" if p["assessment"]["flag"] == "THREAT" else "attention")
               for p in doc["tdr"]["ptos"]]
    heat = heat_from_grid(grid, threshold, model["patch_size"], model["stride"], scan["height"], scan["width"])
    return _with_notices(_screening(scan | {"path": scan["file"]}, model["model_id"], model["checksum"], threshold,
                                    model["patch_false_alarm_rate"], model["scan_threshold"], model["stride"],
                                    model["patch_size"], grid, air, heat, regions, scr["scan_score"], scr["alarm"],
                                    scr.get("timings"), model), scr)


def _from_summary(doc: dict[str, Any]) -> Screening:
    alarm_at = float(doc.get("scan_threshold") or doc["threshold"])
    # summaries written before region levels: a region is an alarm one iff it reaches the bag threshold
    regions = [Region(**{"level": "alarm" if r["max_score"] >= alarm_at else "attention", **r,
                         "patches": [tuple(rc) for rc in r.get("patches", [])]}) for r in doc["regions"]]
    if doc.get("score_grid") is not None:
        grid, air = _grid(doc["score_grid"])
        heat = heat_from_grid(grid, doc["threshold"], doc["patch_size"], doc["stride"],
                              doc["height"], doc["width"])
    else:
        grid, air, heat = None, None, None
    return _with_notices(_screening(doc, doc["model_id"], doc["model_checksum"], doc["threshold"],
                                    doc.get("threshold_far"), doc.get("scan_threshold"), doc["stride"],
                                    doc["patch_size"], grid, air, heat, regions, doc["scan_score"], doc["alarm"],
                                    doc.get("timings"), {**doc, "scored_area_px2": doc.get("area")}), doc)


def _with_notices(s: Screening, doc: dict[str, Any]) -> Screening:
    """Sections and notices (what the operator was told) survive a re-render."""
    from dataclasses import replace

    if not hasattr(s, "notices"):  # an older pipeline without them
        return s
    return replace(s, sections=int(doc.get("sections", 1)), notices=[str(n) for n in doc.get("notices") or []])


def _screening(scan: dict[str, Any], model_id, checksum, threshold, far, scan_threshold, stride,
               patch_size, grid, air, heat, regions, scan_score, alarm, timings, rule) -> Screening:
    if not float(threshold) > 0:
        raise ValueError(f"patch threshold must be positive, got {threshold}")
    return Screening(
        scan_id=str(scan["scan_id"]), path=scan.get("path") or None, sha256=scan.get("sha256") or None,
        kind=scan["kind"], width=int(scan["width"]), height=int(scan["height"]), model_id=model_id,
        model_checksum=checksum, threshold=float(threshold), threshold_far=far,
        scan_threshold=float(scan_threshold if scan_threshold is not None else threshold),
        scan_aggregation=str(scan.get("scan_aggregation", "max")), stride=int(stride),
        patch_size=int(patch_size), score_grid=grid, recon_grid=None, latent_grid=None, air_grid=air,
        heat=heat, residual=None, reconstruction=None, regions=regions,
        scan_score=float(scan_score), alarm=bool(alarm),
        timings=Timings(**timings) if isinstance(timings, dict) else Timings(),
        area=float(rule.get("scored_area_px2") or 0.0), alarm_rule=str(rule.get("alarm_rule", "")),
        threshold_version=str(rule.get("threshold_version", "")))


def _decision(doc: dict[str, Any]) -> Decision | None:
    op = doc["tdr"].get("operator")
    if not op:
        return None
    return Decision(op["name"], doc["scan"]["scan_id"], doc["scan"]["sha256"], doc["model"]["model_id"],
                    doc["model"]["patch_threshold"], op["decision"], op["decision_seconds"],
                    [p["pto_id"] for p in doc["tdr"]["ptos"]], op["time"], amends=op.get("amends"))
