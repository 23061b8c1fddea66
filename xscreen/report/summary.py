"""The one ``summary.csv`` schema: ``xscreen screen``, ``xscreen demo`` and the session report.

One row per bag per run. Every region number is on one scale, **score ÷ the bag's alarm
threshold** ("× alarm"; 1.00 = alarms), with the review level as a line on that scale:

run_time              ISO 8601 UTC start of the run that wrote the row (rows are appended, never replaced)
status                ok | error (unreadable, failed, or an output could not be written) | skipped
                      (a file of a kind the model does not take, e.g. an rgb image for a dual model)
file, scan_id, sha256 the input file, the id read from inside it (data, never a path), its SHA-256
output                the output name in --out (``<output>.json``, ``<output>.png``, ``<output>/``)
kind, width, height   scan kind (dual / rgb / gray) and size in pixels
model_id, threshold_version   the model and its calibration version ('<scoring id>.v<n>')
alarm                 ALARM | NO_ALARM: the calibrated rule (a region reaches the alarm threshold)
alarm_threshold       this bag's alarm threshold, raw score (area-adjusted by the calibration)
review_level          the raw score from which regions are drawn ("attention" below the alarm)
review_level_x_alarm  review_level ÷ alarm_threshold (the review line on the × alarm scale)
scan_score            the highest non-air patch score, raw
top_region_x_alarm    the highest region's score ÷ alarm_threshold (>= 1.00 exactly when ALARM);
                      empty when no region reached the review level
n_regions, n_alarm_regions, n_flagged_patches, area (px², scored), alarm_rule (area | constant)
n_patches, n_scored, n_evaluated, seconds   grid cells, non-air cells, cells the model ran, wall time
decision, operator, decision_seconds, decision_time   the operator's decision (session reports)
error                 what went wrong (status error) or why the file was skipped
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from xscreen.atomic import atomic_write_text
from xscreen.audit import Decision
from xscreen.csvtext import csv_text


@dataclass(frozen=True)
class SummaryRow:
    """One bag in a summary; ``status`` error/skipped rows leave the numbers empty."""

    file: str
    run_time: str = ""
    status: str = "ok"
    scan_id: str = ""
    sha256: str = ""
    output: str = ""
    kind: str = ""
    width: int | None = None
    height: int | None = None
    model_id: str = ""
    threshold_version: str = ""
    alarm: str = ""
    alarm_threshold: float | None = None
    review_level: float | None = None
    review_level_x_alarm: float | None = None
    scan_score: float | None = None
    top_region_x_alarm: float | None = None
    n_regions: int | None = None
    n_alarm_regions: int | None = None
    n_flagged_patches: int | None = None
    area: float | None = None
    alarm_rule: str = ""
    n_patches: int | None = None
    n_scored: int | None = None
    n_evaluated: int | None = None
    seconds: float | None = None
    decision: str = ""
    operator: str = ""
    decision_seconds: float | None = None
    decision_time: str = ""
    error: str = ""


SUMMARY_COLUMNS = ("run_time", "status", "file", "scan_id", "sha256", "output", "kind", "width", "height",
                   "model_id", "threshold_version", "alarm", "alarm_threshold", "review_level",
                   "review_level_x_alarm", "scan_score", "top_region_x_alarm", "n_regions", "n_alarm_regions",
                   "n_flagged_patches", "area", "alarm_rule", "n_patches", "n_scored", "n_evaluated",
                   "seconds", "decision", "operator", "decision_seconds", "decision_time", "error")
assert set(SUMMARY_COLUMNS) == {f.name for f in dataclasses.fields(SummaryRow)}


def x_alarm(score: float | None, s: Any) -> float | None:
    """A raw score on the one scale: ÷ the bag's alarm threshold (None when either is unknown)."""
    t = getattr(s, "scan_threshold", None)
    return None if score is None or not t else float(score) / float(t)


def summary_row(screening: Any, decision: Decision | None = None, *, output: str = "",
                run_time: str = "") -> SummaryRow:
    from xscreen.report.context import flagged_patches

    s, d = screening, decision
    top = max((r.max_score for r in s.regions), default=None)
    timings = getattr(s, "timings", None)
    return SummaryRow(
        file=str(s.path or ""), run_time=run_time, scan_id=str(s.scan_id), sha256=s.sha256 or "", output=output,
        kind=s.kind, width=s.width, height=s.height, model_id=s.model_id,
        threshold_version=str(getattr(s, "threshold_version", "")),
        alarm="ALARM" if s.alarm else "NO_ALARM", alarm_threshold=s.scan_threshold, review_level=s.threshold,
        review_level_x_alarm=x_alarm(s.threshold, s), scan_score=s.scan_score, top_region_x_alarm=x_alarm(top, s),
        n_regions=len(s.regions), n_alarm_regions=sum(r.level == "alarm" for r in s.regions),
        n_flagged_patches=len(flagged_patches(s)), area=getattr(s, "area", None),
        alarm_rule=str(getattr(s, "alarm_rule", "")),
        n_patches=getattr(s, "n_patches", None), n_scored=getattr(s, "n_scored", None),
        n_evaluated=getattr(s, "n_evaluated", None), seconds=getattr(timings, "total", None),
        decision=d.decision if d else "", operator=d.operator if d else "",
        decision_seconds=d.decision_seconds if d else None, decision_time=d.time if d else "")


def failure_row(path: str | Path, error: str, *, run_time: str = "", status: str = "error") -> SummaryRow:
    """A bag that could not be screened (``status`` 'error') or was not for this model ('skipped')."""
    return SummaryRow(file=str(path), run_time=run_time, status=status, error=error)


def batch_summary_csv(rows: Iterable[SummaryRow | Any], header: bool = True) -> str:
    """CSV text, one line per bag; Screening objects are summarised on the way."""
    items = [r if isinstance(r, SummaryRow) else summary_row(r) for r in rows]
    text = csv_text(SUMMARY_COLUMNS, [dataclasses.asdict(r) for r in items])
    return text if header else text.split("\r\n", 1)[1]


def append_summary(rows: Iterable[SummaryRow | Any], path: str | Path) -> Path:
    """Append rows to ``path`` (created with its header when absent), atomically and under a lock,
    so a rerun or a second folder screened into the same --out adds its rows with its own
    run_time instead of replacing the earlier run's. A file with another header (an older schema)
    is kept beside as ``<name>.old-<n>.csv`` and a new one started."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        old = path.read_bytes().decode("utf-8", "replace") if path.is_file() else ""
        if old and _header(old) != list(SUMMARY_COLUMNS):
            os.replace(path, _free_name(path))
            old = ""
        if old and not old.endswith("\n"):
            old += "\r\n"
        atomic_write_text(path, old + batch_summary_csv(rows, header=not old))
    return path


def _header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text, newline="")), [])


def _free_name(path: Path) -> Path:
    k = 1
    while (path.with_name(f"{path.stem}.old-{k}{path.suffix}")).exists():
        k += 1
    return path.with_name(f"{path.stem}.old-{k}{path.suffix}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on a hidden sidecar file: two runs appending at once both keep their rows.
    Where there is no fcntl (Windows) the append is still atomic, only not serialised."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path.with_name(f".{path.name}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
