"""``xscreen audit stats|export|verify [DB]``: supervisors' view of the decision store."""
from __future__ import annotations

import argparse
import sys

from xscreen.audit import AuditError, AuditLog, default_db_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="operator decision log: statistics, CSV export, chain check",
                       description="Read the hash-chained audit database of operator decisions "
                       f"(default: {default_db_path()}).")
    actions = p.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    v = actions.add_parser("verify", help="check the hash chain; non-zero exit names the first bad row")
    s = actions.add_parser("stats", help="per-operator bags, suspect rate, median decision time")
    s.add_argument("--since", help="only decisions at or after this ISO time (e.g. 2026-01-31)")
    e = actions.add_parser("export", help="write every row (hashes included) to CSV")
    e.add_argument("--out", required=True, help="CSV file to write")
    for q in (v, s, e):
        q.add_argument("db", nargs="?", default=None, metavar="DB",
                       help="audit database (default: the user's audit.sqlite)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        log = AuditLog(args.db, create=False)
    except AuditError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with log:
        try:
            return _ACTIONS[args.audit_action](log, args)
        except (AuditError, OSError) as exc:
            print(f"error: {log.path}: {exc}", file=sys.stderr)
            return 2


def _verify(log: AuditLog, args: argparse.Namespace) -> int:
    res = log.verify()
    if res.ok:
        print(f"{log.path}: OK, {res.n_rows} rows, chain intact; head hash {res.head_hash}")
        return 0
    print(f"error: {log.path}: chain broken at row {res.first_bad_row} "
          f"(of {res.n_rows}): {res.reason}", file=sys.stderr)
    return 1


def _stats(log: AuditLog, args: argparse.Namespace) -> int:
    rows = log.stats(since=args.since)
    if not rows:
        print("no decisions recorded")
        return 0
    width = max(8, *(len(r.operator) for r in rows))
    print(f"{'operator':<{width}}  {'bags':>6}  {'suspect':>8}  {'median s':>8}")
    for r in rows:
        print(f"{r.operator:<{width}}  {r.bags:>6d}  {r.suspect_rate:>8.1%}  "
              f"{r.median_decision_seconds:>8.1f}")
    return 0


def _export(log: AuditLog, args: argparse.Namespace) -> int:
    n = log.export_csv(args.out)
    print(f"wrote {n} rows to {args.out}")
    return 0


_ACTIONS = {"verify": _verify, "stats": _stats, "export": _export}
