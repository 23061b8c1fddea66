"""The audit hash chain: row hashes, the walk that verifies them, anchors, and a safe copy of the
database (issue 16 item 7). ``audit.AuditLog`` stores the rows; this module judges them.

An anchor is ``N:HASH``: the chain had N rows and its last row hash was HASH. The file alone cannot
show that its tail was cut (drop the last rows and the counter, and the shorter chain is valid);
an anchor kept elsewhere can: ``verify`` against it fails unless row N still carries HASH. Keep one
per day (``xscreen audit anchor --append FILE``, e.g. from cron, FILE on another machine or medium)
and in each report.

A plain copy of ``audit.sqlite`` can miss decisions still in its ``-wal`` file; ``backup`` copies
through SQLite's backup API (WAL included, consistent while the GUI writes) into a single
rollback-journal file, atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable


GENESIS = "0" * 64  # prev_hash of the first row
CONTENT = ("id", "time", "operator", "scan_id", "file_sha256", "model_id", "threshold",
           "regions_shown", "decision", "decision_seconds")
# What the machine said when the decision was taken (issue 13): the threshold version, the bag's
# highest region score and scored area (what `model calibrate --from-audit` refits on) and its alarm;
# and whether the bag was screened coarse-to-fine (issue 17: cascade fraction F, 0 = every patch).
MACHINE = ("threshold_version", "bag_score", "bag_area", "machine_alarm", "cascade")
# Schema version 1 (issues 30, 31): the row kind ('bag', or 'tip' for a TIP event), the threshold
# the operator had on screen beside the calibrated one, and a TIP event's JSON text.
EXTENDED = ("kind", "live_threshold", "tip")
_ANCHOR = re.compile(r"(?:^|\s)(\d+):([0-9a-f]{64})\s*$")


def row_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """SHA-256 hex over the previous hash and the canonical JSON of the row's content fields."""
    values = [content[k] for k in CONTENT]
    if content.get("amends") is not None:  # rows without a link hash as they did before the column
        values.append(int(content["amends"]))
    machine = {k: content[k] for k in MACHINE + EXTENDED if content.get(k) is not None}
    if machine.get("kind") == "bag":  # the default kind: rows from before the column hash unchanged
        del machine["kind"]
    if machine:  # likewise rows without the machine's view (or the later fields) hash as before
        values.append(machine)
    canon = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canon).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Anchor:
    n_rows: int
    head_hash: str  # row_hash of row n_rows ("0" * 64 for an empty chain)
    noted: str = ""  # when it was noted (anchor-file lines), for messages

    def __str__(self) -> str:
        return f"{self.n_rows}:{self.head_hash}"


def parse_anchor(text: str) -> Anchor:
    """'N:HASH' or an anchor-file line 'TIME N:HASH' -> Anchor; ValueError otherwise."""
    m = _ANCHOR.search(text.strip().lower())
    if not m:
        raise ValueError(f"not an audit anchor (expected N:HASH, 64 hex digits): {text.strip()[:80]!r}")
    noted = text.strip()[: m.start()].strip()
    return Anchor(int(m.group(1)), m.group(2), noted)


def read_anchor_file(path: str | Path) -> list[Anchor]:
    """Every anchor in a file written by ``append_anchor`` (blank and # lines skipped)."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [parse_anchor(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def append_anchor(path: str | Path, anchor: Anchor) -> str:
    """Append 'UTC-TIME N:HASH' to an anchor file (created if absent), durably; returns the line."""
    line = f"{datetime.now(timezone.utc).isoformat(timespec='seconds')} {anchor}"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return line


def check_anchor(rows: list[dict[str, Any]], anchor: Anchor) -> str | None:
    """Why the chain in ``rows`` does not extend ``anchor``, or None when it does."""
    when = f" (noted {anchor.noted})" if anchor.noted else ""
    if anchor.n_rows == 0:
        return None
    if len(rows) < anchor.n_rows:
        return (f"the chain has {len(rows)} rows but the anchor {anchor}{when} recorded "
                f"{anchor.n_rows}: rows deleted at the end")
    if rows[anchor.n_rows - 1]["row_hash"] != anchor.head_hash:
        return f"row {anchor.n_rows} does not carry the anchor's hash{when}: the chain was rewritten"
    return None


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    n_rows: int
    first_bad_row: int | None  # row id where the chain first fails
    reason: str
    head_hash: str  # row_hash of the last row (GENESIS when empty): note it elsewhere as an anchor

    @property
    def anchor(self) -> Anchor:
        """'N:HASH' to keep elsewhere (xscreen audit anchor): verify against it shows a cut tail."""
        return Anchor(self.n_rows, self.head_hash)


def verify_rows(rows: list[dict[str, Any]], issued: int, anchors: Iterable[Anchor] = ()) -> VerifyResult:
    """Walk the chain (``issued``: the highest id the database ever gave out); the first row whose
    link or hash fails is named. Each anchor must still be in the chain: that shows a cut tail."""
    result = _walk(rows, issued)
    for anchor in anchors if result.ok else ():
        reason = check_anchor(rows, anchor)
        if reason:
            return _bad(rows, min(anchor.n_rows, len(rows) + 1), reason)
    return result


def _walk(rows: list[dict[str, Any]], issued: int) -> VerifyResult:
    prev, expect_id = GENESIS, 1
    for r in rows:
        if r["id"] != expect_id:
            return _bad(rows, r["id"], f"row id {r['id']} follows {expect_id - 1}: "
                        f"row(s) deleted or reordered")
        if r["prev_hash"] != prev:
            return _bad(rows, r["id"], "prev_hash does not match the previous row: "
                        "a row before it was changed, deleted or reordered")
        if row_hash(prev, r) != r["row_hash"]:
            return _bad(rows, r["id"], "row content does not match its hash: row edited")
        if r["amends"] is not None and not 0 < r["amends"] < r["id"]:
            return _bad(rows, r["id"], f"amends row {r['amends']}, which is not an earlier row")
        prev, expect_id = r["row_hash"], expect_id + 1
    if issued > len(rows):
        return _bad(rows, len(rows) + 1, f"{issued - len(rows)} row(s) missing at the end "
                    f"(ids up to {issued} were issued)")
    return VerifyResult(True, len(rows), None, "chain intact", prev)



def _bad(rows: list[dict[str, Any]], row_id: int, reason: str) -> VerifyResult:
    head = rows[-1]["row_hash"] if rows else GENESIS
    return VerifyResult(False, len(rows), int(row_id), reason, head)


def read_only_uri(path: Path, immutable: bool = False) -> str:
    """``mode=ro``; ``immutable``: also no locking, no -wal/-shm files, only for a file no writer has
    open (audit_schema.open_reader decides)."""
    return "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro" + ("&immutable=1" if immutable else "")
