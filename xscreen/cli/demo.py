"""``xscreen demo``: screen the shipped sample bags with the shipped default model, write reports."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xscreen import paths


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="screen the sample bags with the default model (no display needed)")
    p.add_argument("--out", default="xscreen-demo", help="folder for reports (default: ./xscreen-demo)")
    p.add_argument("--model", default=None, help="model file (default: the shipped default model)")
    p.add_argument("--samples", default=None, help="folder of scans (default: the shipped samples)")
    p.add_argument("--device", default="auto")
    p.add_argument("--formats", default="html,pdf,csv,json", help="report formats, comma-separated")
    p.set_defaults(func=run)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from xscreen.config import ScreenConfig
    from xscreen.pipeline import ScreenFailure, screen_paths
    from xscreen.report import write_batch_summary, write_reports
    from xscreen.scan import list_scans
    from xscreen.scoring import Scorer

    model = Path(args.model) if args.model else paths.default_model()
    samples = Path(args.samples) if args.samples else paths.samples_dir()
    if model is None:
        print(f"error: {paths.models_dir()}: no model file found", file=sys.stderr)
        return 2
    if not model.is_file():
        print(f"error: {model}: no model file there", file=sys.stderr)
        return 2
    if not samples.is_dir():
        print(f"error: {samples}: sample folder not found", file=sys.stderr)
        return 2
    out = Path(args.out)
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    scorer = Scorer(model, device=args.device)
    cfg = ScreenConfig(device=args.device)
    print(f"model   {scorer.model_id}  (review level {scorer.threshold:.4g}; a bag alarms iff a region "
          f"reaches the alarm threshold for its area, {scorer.scan_threshold:.4g} at the reference area; "
          f"device {scorer.device})")
    print(f"samples {samples}\nreports {out.resolve()}\n")
    rows = [("scan", "kind", "size", "regions alarm+attention", "alarm thr", "top region / alarm thr",
             "alarm", "ms")]
    summaries, failed, folders, taken = [], 0, {}, set()
    # top level only: resources/samples/rgb holds a pseudo-colour export for rgb models
    for item in screen_paths(list_scans(samples), scorer, cfg):
        if isinstance(item, ScreenFailure):
            print(f"error: {item.fault}", file=sys.stderr)
            failed += 1
            continue
        s = item.screening
        folders[id(s)] = out / paths.output_stem(s.scan_id, taken)  # the id is data, never a path
        write_reports(s, item.scan, folders[id(s)], formats=formats)
        summaries.append(s)
        rows.append((s.scan_id, s.kind, f"{s.width}x{s.height}",
                     f"{s.n_alarm_regions}+{len(s.regions) - s.n_alarm_regions}", f"{s.scan_threshold:.4g}",
                     f"{s.scan_rel:.2f}", "ALARM" if s.alarm else "clear", f"{s.timings.total * 1000:.0f}"))
    if summaries:
        write_batch_summary(summaries, out / "summary.csv")
    print(_table(rows))
    print(f"\n{len(summaries)} scans screened, {failed} failed")
    if summaries:
        top = max(summaries, key=lambda s: s.scan_score)
        print(f"highest-scoring bag: open {folders[id(top)] / 'report.html'}")
    return 1 if failed else 0
