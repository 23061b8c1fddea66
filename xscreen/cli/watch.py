"""``xscreen watch DIR --out OUT [--model M ...]``: a lane without a screen.

Takes complete bags from the inbox DIR in arrival order (intake/rules.py says when a file is
complete), screens each through the same generator as ``xscreen screen``, writes
``<out>/<key16>.json`` and ``.png`` (named by the bag's content hash, so a bag screened again after a
crash rewrites its own files) and moves the bag to the done folder. One line per bag on stdout.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from xscreen.config import ScreenConfig


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("watch", help="screen bags as they arrive in an inbox folder (headless lane)",
                       description="Watch DIR; screen every complete bag in arrival order into --out; "
                       "move it to the done folder. One consumer per inbox (a lock file).")
    p.add_argument("inbox", metavar="DIR", help="inbox folder (created if missing)")
    p.add_argument("--out", required=True, help="output folder: <key>.json, <key>.png, reports")
    p.add_argument("--model", action="append", default=[],
                   help="model file (.xsm), once per input kind; default: the shipped model(s)")
    p.add_argument("--done", help="done folder (default DIR/done)")
    p.add_argument("--settle", type=float, default=2.0,
                   help="seconds a file's size and mtime must stay unchanged (default 2; 0 when the "
                   "sender renames finished files into place)")
    p.add_argument("--retention-days", type=float, default=30.0,
                   help="days done files and records are kept (0: forever; default 30)")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between polls (default 0.5)")
    p.add_argument("--stride", type=int, default=32, help="patch stride in pixels (default 32)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--report", default="", help="also write reports: comma list of html,pdf,csv,json")
    p.add_argument("--exit-when-idle", action="store_true",
                   help="stop once the inbox holds nothing complete or settling (batch use, tests)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xscreen.checkpoint import ModelError
    from xscreen.intake import Inbox, IntakeError, Rules, load_scorers

    try:
        rules = Rules(settle=args.settle)
        inbox = Inbox(args.inbox, args.done, rules, retention=args.retention_days * 86400.0)
        inbox.open()  # first: a second consumer is refused before any model is loaded
    except (IntakeError, ValueError) as exc:
        print(f"error: {exc}" if isinstance(exc, IntakeError) else f"error: {args.inbox}: {exc}", file=sys.stderr)
        return 2
    try:
        scorers = load_scorers(args.model or None, device=args.device, precision=args.precision)
        cfg = ScreenConfig(stride=args.stride, device=args.device, precision=args.precision, maps=bool(args.report))
    except ModelError as exc:
        inbox.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        inbox.close()
        print(f"error: {', '.join(args.model) or 'model'}: {exc}", file=sys.stderr)
        return 2
    if not scorers:
        print("warning: no model loaded: bags are stored unscreened", file=sys.stderr)
    kinds = ", ".join(f"{k}: {s.model_id}" for k, s in scorers.items()) or "none"
    print(f"watching {inbox.folder} (models {kinds}); done: {inbox.done}", file=sys.stderr, flush=True)
    try:
        return _loop(inbox, scorers, cfg, args)
    finally:
        inbox.close()


def _loop(inbox, scorers, cfg, args) -> int:
    from xscreen.intake import IntakeIdle, run_lane

    out = Path(args.out)
    failed = 0
    for item in run_lane(inbox, scorers, cfg, poll=args.poll, on_result=lambda a, r: write_outputs(a, r, out, args)):
        if isinstance(item, IntakeIdle):
            if args.exit_when_idle and item.waiting == 0:
                break
            continue
        rec = item.record
        failed += rec.status == "failed"
        verdict = ("ALARM" if rec.alarm else "clear") if rec.status == "screened" else rec.status
        line = f"{time.strftime('%H:%M:%S')} {verdict:7s} {' + '.join(rec.names)} -> {item.done_path.name}"
        if rec.status == "screened":
            line += f"  score {rec.scan_rel:.2f}x  {rec.output}.json"
        print(line + (f"  ({rec.message})" if rec.message else ""), flush=True)
        if rec.status == "failed":
            print(f"error: {rec.message}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def write_outputs(arrival, result, out: Path, args) -> str:
    """``<out>/<key16>.json`` (summary, grid, the names it arrived under) and the overlay PNG."""
    import cv2

    from xscreen.atomic import atomic_write_bytes, atomic_write_text
    from xscreen.cli.screen import render_rgb, write_reports_hook
    from xscreen.heatmap import overlay

    stem, s = arrival.key[:16], result.screening
    doc = {**s.to_summary(include_grid=True), "arrived_as": [f.name for f in arrival.files],
           "content_key": arrival.key}
    atomic_write_text(out / f"{stem}.json", json.dumps(doc))
    img = overlay(render_rgb(result.scan), s.heat, "fill", regions=s.regions)
    ok, png = cv2.imencode(".png", img[..., ::-1])
    if ok:
        atomic_write_bytes(out / f"{stem}.png", png.tobytes())
    if args.report:
        write_reports_hook(s, result.scan, out / stem, args.report)
    return stem
