"""``xscreen report INPUT --out DIR``: reports for one bag.

INPUT is either a saved screening JSON (``report.json`` from a report, or the per-scan
``<scan>.json`` of ``xscreen screen``) to re-render, or a scan file to screen and report with
``--model``. Given a JSON and ``--model``, the scan is rescored so the reconstruction and residual
crops come back. ``--audit`` adds the standing operator decision on that file from the audit log,
and the earlier decisions it amends (from what, by whom, when).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xscreen.audit import AuditError, AuditLog, Decision, default_db_path
from xscreen.text import printable


class _Fail(Exception):
    """A fault already phrased as '<file>: <fault>'."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write HTML/PDF/CSV/JSON reports for one bag",
                       description="Re-render reports from a saved screening JSON, or screen a scan "
                       "with --model and report it.")
    p.add_argument("input", metavar="INPUT", help="report.json / <scan>.json from xscreen screen, or a scan file")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--formats", default="all", help="comma list of html,pdf,csv,json (default all)")
    p.add_argument("--scan", help="the scan file (default: the path recorded in the JSON)")
    p.add_argument("--model", help="model file: (re)screen the scan for full reports")
    p.add_argument("--stride", type=int, help="patch stride when screening (default: the JSON's, else 32)")
    p.add_argument("--threshold", type=float, help="raw patch threshold override when screening")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ... (when screening)")
    p.add_argument("--audit", nargs="?", const=str(default_db_path()), metavar="DB",
                   help="include the latest operator decision on this file from the audit database")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xscreen.report import parse_formats, write_reports

    try:
        formats = parse_formats(args.formats)
        screening, scan, decision = _inputs(args, formats)
        history: list[Decision] = []
        if args.audit:
            found = _audit_decisions(args.audit, screening)
            if found:
                *history, decision = found
        paths = write_reports(screening, scan, args.out, formats, decision, history=history)
    except _Fail as exc:
        print(f"error: {printable(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {printable(args.input)}: {printable(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {printable(args.out)}: cannot write reports ({printable(exc.strerror or exc)})", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


def _inputs(args: argparse.Namespace, formats: tuple[str, ...]):
    """-> (screening, scan or None, decision or None) from a JSON or a scan file."""
    from xscreen.report.load import ReportInputError, load_screening_json

    source = Path(args.input)
    if source.suffix.lower() != ".json":
        if not args.model:
            raise _Fail(f"{source}: screening a scan needs --model (or give a saved screening JSON)")
        scan = _load_scan(source)
        return _screen(scan, args, None), scan, None
    try:
        saved, decision = load_screening_json(source)
    except ReportInputError as exc:
        raise _Fail(str(exc)) from None
    scan_path = args.scan or saved.path
    needs_scan = bool({"html", "pdf"} & set(formats)) or args.model
    if not needs_scan:
        return saved, None, decision
    if not scan_path:
        raise _Fail(f"{source}: no scan path recorded; give --scan for HTML/PDF")
    scan = _load_scan(Path(scan_path))
    _check_same_file(scan, saved, source)
    return (_screen(scan, args, saved.stride) if args.model else saved), scan, decision


def _load_scan(path: Path):
    from xscreen.scan import ScanError, load_scan

    try:
        return load_scan(path)
    except ScanError as exc:
        raise _Fail(str(exc)) from None


def _check_same_file(scan, saved, source: Path) -> None:
    """The image must be the one that was screened: a different file would put boxes on the
    wrong bag."""
    from xscreen.scan import file_sha256

    if saved.sha256 and scan.path is not None and Path(scan.path).is_file():
        if file_sha256(scan.path) != saved.sha256:
            raise _Fail(f"{scan.path}: SHA-256 differs from the one recorded in {source}: "
                        "not the screened file")
    if (scan.width, scan.height) != (saved.width, saved.height):
        raise _Fail(f"{scan.path}: size {scan.width}x{scan.height} differs from the screened "
                    f"{saved.width}x{saved.height}")


def _screen(scan, args: argparse.Namespace, stride: int | None):
    from xscreen.checkpoint import ModelError
    from xscreen.config import ScreenConfig
    from xscreen.pipeline import screen
    from xscreen.scoring import Scorer

    try:
        scorer = Scorer(args.model, device=args.device)
    except ModelError as exc:
        raise _Fail(str(exc)) from None
    except OSError as exc:
        raise _Fail(f"{args.model}: cannot read model ({exc.strerror or exc})") from None
    cfg = ScreenConfig(stride=args.stride or stride or 32, threshold=args.threshold, device=args.device)
    return screen(scan, scorer, cfg)


def _audit_decisions(db: str, screening) -> list[Decision]:
    """Every decision on this file, oldest first: the last one stands, the others are what it
    amends (a report showing only the last hid that it was amended, from what and by whom)."""
    if not screening.sha256:
        raise _Fail(f"{screening.path or screening.scan_id}: no file hash to look up in the audit log")
    try:
        with AuditLog(db, create=False) as log:
            rows = log.rows_for(screening.sha256)
    except AuditError as exc:
        raise _Fail(str(exc)) from None
    return [_decision(r) for r in rows]


def _decision(r: dict) -> Decision:
    import json

    return Decision(r["operator"], r["scan_id"], r["file_sha256"], r["model_id"], r["threshold"], r["decision"],
                    r["decision_seconds"], json.loads(r["regions_shown"] or "[]"), r["time"], r["amends"])
