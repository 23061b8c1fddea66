"""``xscreen audit stats|export|verify|anchor|backup [DB]``: supervisors' view of the decision store.
Every action opens the database read-only (a missing, truncated or foreign file is an error)."""
from __future__ import annotations

import argparse
import math
import sys

from xscreen.audit import AuditError, AuditLog, default_db_path
from xscreen.audit_backup import backup
from xscreen.audit_chain import append_anchor, parse_anchor, read_anchor_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="operator decision log: statistics, CSV export, chain check",
                       description="Read the hash-chained audit database of operator decisions "
                       f"(default: {default_db_path()}).")
    actions = p.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    v = actions.add_parser("verify", help="check the hash chain; non-zero exit names the first bad row")
    v.add_argument("--anchor", action="append", default=[], metavar="N:HASH",
                   help="an anchor noted earlier (xscreen audit anchor): the chain must still hold it, "
                   "which shows rows cut from the end; repeatable")
    v.add_argument("--anchors", metavar="FILE", help="check every anchor in this anchor file")
    a = actions.add_parser("anchor", help="print the chain's anchor N:HASH to keep elsewhere (verified first)")
    a.add_argument("--append", metavar="FILE", help="also append 'TIME N:HASH' to this anchor file "
                   "(run daily; keep FILE on another machine or medium)")
    b = actions.add_parser("backup", help="consistent single-file copy (SQLite backup API: decisions "
                           "still in the -wal file included); a plain file copy can miss them")
    b.add_argument("--out", required=True, help="file to write (atomically)")
    s = actions.add_parser("stats", help="per-operator bags, suspect rate, median decision time; "
                           "unreadable bags and TIP events counted apart (never as decisions)")
    s.add_argument("--since", help="only decisions at or after this ISO time (e.g. 2026-01-31)")
    e = actions.add_parser("export", help="write every row (hashes included; column 'kind': bag or tip) to CSV")
    e.add_argument("--out", required=True, help="CSV file to write")
    for q in (v, s, e, a, b):
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
    try:
        anchors = [parse_anchor(t) for t in args.anchor]
        anchors += read_anchor_file(args.anchors) if args.anchors else []
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    res = log.verify(anchors)
    if res.ok:
        held = f"; holds {len(anchors)} anchor(s)" if anchors else ""
        print(f"{log.path}: OK, {res.n_rows} rows, chain intact{held}; anchor {res.anchor} "
              "(keep it elsewhere: xscreen audit anchor)")
        return 0
    print(f"error: {log.path}: chain broken at row {res.first_bad_row} "
          f"(of {res.n_rows}): {res.reason}", file=sys.stderr)
    return 1


def _anchor(log: AuditLog, args: argparse.Namespace) -> int:
    res = log.verify()
    if not res.ok:  # an anchor of a broken chain would vouch for the damage
        print(f"error: {log.path}: chain broken at row {res.first_bad_row}: {res.reason}; no anchor",
              file=sys.stderr)
        return 1
    print(append_anchor(args.append, res.anchor) if args.append else str(res.anchor))
    return 0


def _backup(log: AuditLog, args: argparse.Namespace) -> int:
    res = backup(log.path, args.out)
    print(f"backed up {res.n_rows} rows to {args.out}; anchor {res.anchor}"
          + ("" if res.ok else f"; WARNING: the chain is broken at row {res.first_bad_row}: {res.reason}"))
    return 0 if res.ok else 1


def _stats(log: AuditLog, args: argparse.Namespace) -> int:
    rows = log.stats(since=args.since)
    if not rows:
        print("no decisions recorded")
        return 0
    width = max(8, *(len(r.operator) for r in rows))
    print(f"{'operator':<{width}}  {'bags':>6}  {'suspect':>8}  {'median s':>8}  {'unreadable':>10}  {'TIP':>5}")
    for r in rows:
        median = "-" if math.isnan(r.median_decision_seconds) else f"{r.median_decision_seconds:.1f}"
        suspect = f"{r.suspect_rate:.1%}" if r.bags else "-"
        print(f"{r.operator:<{width}}  {r.bags:>6d}  {suspect:>8}  {median:>8}  {r.unreadable:>10d}  {r.tip_events:>5d}")
    print("bags: standing clear/suspect/unresolved decisions; unreadable (re-scan / hand search) and TIP "
          "events are not decisions (TIP hit rates: xscreen tip stats)")
    return 0


def _export(log: AuditLog, args: argparse.Namespace) -> int:
    n = log.export_csv(args.out)
    res = log.verify()  # the export's anchor, to keep with it or elsewhere
    kinds = [(r["kind"], r["decision"]) for r in log.rows()]
    bags, tips = sum(k == "bag" for k, _ in kinds), sum(k == "tip" for k, _ in kinds)
    print(f"wrote {n} rows to {args.out}; anchor {res.anchor}; {bags} bag rows "
          f"({kinds.count(('bag', 'unreadable'))} unreadable), {tips} TIP events"
          + ("" if res.ok else f"; WARNING: the chain is broken at row {res.first_bad_row}: {res.reason}"))
    return 0


_ACTIONS = {"verify": _verify, "stats": _stats, "export": _export, "anchor": _anchor, "backup": _backup}
