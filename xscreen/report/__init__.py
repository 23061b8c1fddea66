"""Flagged-patch reports: HTML, PDF, CSV and JSON for one bag; a batch summary; a session report.

``write_reports(screening, scan, out_dir)`` writes into ``out_dir``:
    report.html  self-contained (images as base64 PNG), every text escaped
    report.pdf   the same content on A4 (reportlab)
    patches.csv  one row per flagged patch
    report.json  a DICOS-TDR-shaped document, schema ``xscreen/schemas/report.schema.json``
Every file is written atomically (temp + rename).
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from xscreen.atomic import atomic_write_bytes, atomic_write_text
from xscreen.audit import Decision
from xscreen.report.context import AppMeta, ReportContext, assessment_probability, build_context
from xscreen.report.summary import (SUMMARY_COLUMNS, SummaryRow, append_summary, batch_summary_csv,
                                    failure_row, summary_row)
from xscreen.report.tables import patches_csv, report_document
from xscreen.scan import Scan

FORMATS = ("html", "pdf", "csv", "json")
FILENAMES = {"html": "report.html", "pdf": "report.pdf", "csv": "patches.csv", "json": "report.json"}
MAX_DETAIL_REGIONS = 12  # regions with image crops in HTML/PDF; all regions are in tables/CSV/JSON

__all__ = ["AppMeta", "FORMATS", "ReportContext", "SUMMARY_COLUMNS", "SummaryRow", "append_summary",
           "assessment_probability", "failure_row", "load_schema", "parse_formats", "summary_row",
           "write_batch_summary", "write_reports", "write_session_report"]


def parse_formats(text: str | Iterable[str]) -> tuple[str, ...]:
    """'html,pdf' or an iterable -> validated tuple; 'all' = every format."""
    items = [t.strip().lower() for t in (text.split(",") if isinstance(text, str) else text)]
    items = list(FORMATS) if items == ["all"] else [t for t in items if t]
    bad = [t for t in items if t not in FORMATS]
    if bad or not items:
        raise ValueError(f"unknown report format(s) {', '.join(bad) or '(none)'}; "
                         f"choose from {', '.join(FORMATS)} or 'all'")
    return tuple(dict.fromkeys(items))


def write_reports(screening: Any, scan: Scan | None, out_dir: str | Path,
                  formats: Iterable[str] = FORMATS, decision: Decision | None = None,
                  app_meta: AppMeta | dict[str, Any] | None = None,
                  history: Sequence[Decision] = ()) -> list[Path]:
    """Write the chosen formats for one screened bag; returns the paths written, in format order.

    ``scan`` (the screened image) is needed for HTML/PDF only; CSV/JSON come from the screening.
    ``history``: the decisions on the bag before ``decision`` (oldest first), which it amends.
    """
    formats = parse_formats(formats)
    ctx = build_context(screening, decision, app_meta, history)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs = None
    if {"html", "pdf"} & set(formats):
        if scan is None:
            raise ValueError(f"{screening.scan_id}: HTML/PDF reports need the scan image")
        from xscreen.report.figures import make_figures

        figs = make_figures(screening, scan, MAX_DETAIL_REGIONS)
    written = []
    for fmt in formats:
        path = out / FILENAMES[fmt]
        if fmt == "html":
            from xscreen.report.html import render_html

            atomic_write_text(path, render_html(ctx, figs))
        elif fmt == "pdf":
            from xscreen.report.pdf import render_pdf

            atomic_write_bytes(path, render_pdf(ctx, figs))
        elif fmt == "csv":
            atomic_write_text(path, patches_csv(ctx))
        else:
            atomic_write_text(path, json.dumps(report_document(ctx), indent=1, allow_nan=False))
        written.append(path)
    return written


def write_batch_summary(rows: Iterable[SummaryRow | Any], path: str | Path) -> Path:
    """A CSV with one row per scan (Screening objects or ``SummaryRow``s, failures included)."""
    atomic_write_text(path, batch_summary_csv(rows))
    return Path(path)


def write_session_report(entries: Sequence[tuple[Any, Decision | None, Scan | None]],
                         out_dir: str | Path, *, title: str = "Screening session",
                         app_meta: AppMeta | dict[str, Any] | None = None) -> list[Path]:
    """Every bag reviewed in a session: ``session.html`` (summary, one row per bag with a
    thumbnail when the scan is given) and ``session.csv`` (the batch summary with decisions)."""
    from xscreen.report.session import session_html

    out = Path(out_dir)
    html_path, csv_path = out / "session.html", out / "session.csv"
    atomic_write_text(html_path, session_html(entries, title, build_context(
        entries[0][0], None, app_meta).app if entries else None))
    write_batch_summary([summary_row(s, d) for s, d, _ in entries], csv_path)
    return [html_path, csv_path]


def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of report.json, shipped as package data."""
    text = resources.files("xscreen").joinpath("schemas/report.schema.json").read_text("utf-8")
    return json.loads(text)
