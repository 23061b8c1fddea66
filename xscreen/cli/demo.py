"""``xscreen demo``: screen the shipped sample bags with the shipped default model, write reports."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xscreen import paths
from xscreen.text import printable, shorten


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="screen the sample bags with the default model (no display needed)")
    p.add_argument("--out", default="xscreen-demo", help="folder for reports (default: ./xscreen-demo)")
    p.add_argument("--model", default=None, help="model file (default: the shipped default model)")
    p.add_argument("--samples", default=None, help="folder of scans (default: the shipped samples)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ... "
                   "(default: auto)")
    p.add_argument("--formats", default="html,pdf,csv,json",
                   help="report formats, comma-separated, from html,pdf,csv,json (default: html,pdf,csv,json)")
    p.set_defaults(func=run)


HEADER = ("scan", "kind", "size", "regions alarm+attention", "top region × alarm", "review × alarm",
          "alarm", "ms")


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _line(row) -> tuple[str, ...]:
    """A summary row (report.summary) as a table line: the same numbers as summary.csv."""
    top = "-" if row.top_region_x_alarm is None else f"{row.top_region_x_alarm:.2f}"
    return (printable(shorten(row.scan_id, 60)), row.kind, f"{row.width}x{row.height}",
            f"{row.n_alarm_regions}+{row.n_regions - row.n_alarm_regions}", top,
            f"{row.review_level_x_alarm:.2f}", row.alarm, f"{(row.seconds or 0.0) * 1000:.0f}")


def run(args: argparse.Namespace) -> int:
    from xscreen.config import ScreenConfig
    from xscreen.report import parse_formats

    model = Path(args.model) if args.model else paths.default_model()
    samples = Path(args.samples) if args.samples else paths.samples_dir()
    if model is None:
        print(f"error: {printable(paths.models_dir())}: no model file found", file=sys.stderr)
        return 2
    if not model.is_file():
        print(f"error: {printable(model)}: no model file there", file=sys.stderr)
        return 2
    if not samples.is_dir():
        print(f"error: {printable(samples)}: sample folder not found", file=sys.stderr)
        return 2
    try:
        formats = parse_formats(args.formats)
    except ValueError as exc:
        print(f"error: --formats: {exc}", file=sys.stderr)
        return 2
    from xscreen.scoring import Scorer

    scorer = Scorer(model, device=args.device)
    print(f"model   {scorer.model_id}  (device {scorer.device}; a bag alarms iff a region reaches 1.00 × alarm, "
          f"its alarm threshold for its area: {scorer.scan_threshold:.4g} at the reference area)")
    print(f"samples {samples}\nreports {Path(args.out).resolve()}\n")
    return _screen(scorer, ScreenConfig(device=args.device), samples, Path(args.out), formats)


def _screen(scorer, cfg, samples: Path, out: Path, formats: tuple[str, ...]) -> int:
    from xscreen.pipeline import ScreenFailure, screen_paths
    from xscreen.report import append_summary, failure_row, summary_row, write_reports
    from xscreen.report.context import utc_now
    from xscreen.scan import list_scans

    run_time, taken = utc_now(), set()
    rows, lines, folders = [], [HEADER], {}
    # top level only: resources/samples/rgb holds a pseudo-colour export for rgb models
    for item in screen_paths(list_scans(samples), scorer, cfg):
        if isinstance(item, ScreenFailure):
            print(f"error: {printable(item.fault)}", file=sys.stderr)
            rows.append(failure_row(item.path, item.fault, run_time=run_time))
            continue
        s = item.screening
        stem = paths.output_stem(s.scan_id, taken)  # the id is data, never a path
        try:
            write_reports(s, item.scan, out / stem, formats=formats)
            rows.append(summary_row(s, output=stem, run_time=run_time))
        except Exception as exc:  # noqa: BLE001 - a report that cannot be written fails this bag only
            print(f"error: {printable(s.path)}: report not written ({type(exc).__name__}: {exc})", file=sys.stderr)
            rows.append(failure_row(item.path, f"{item.path}: report not written ({exc})", run_time=run_time))
            continue
        folders[stem] = s.scan_score / s.scan_threshold if s.scan_threshold else 0.0
        lines.append(_line(rows[-1]))
    if rows:
        append_summary(rows, out / "summary.csv")
    print(_table(lines))
    failed = sum(r.status != "ok" for r in rows)
    print(f"\n{len(rows) - failed} scans screened, {failed} failed; every number is score ÷ the bag's alarm "
          f"threshold (1.00 alarms); summary: {out / 'summary.csv'}")
    if folders:
        print(f"highest-scoring bag: open {out / max(folders, key=folders.get) / 'report.html'}")
    return 1 if failed else 0
