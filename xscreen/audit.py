"""The decision store: an embedded SQLite database of operator decisions, hash-chained.

Every row carries ``row_hash = SHA-256(prev_hash + canonical row content)``, the content including
the row id, so editing, deleting or reordering any row breaks the chain at that row. Deleting
the *last* row leaves a shorter but valid chain; the AUTOINCREMENT counter in ``sqlite_sequence``
still remembers the highest id ever issued, which ``verify`` compares. An attacker who rewrites
every later hash (and the counter) is not detectable from the file alone: ``verify`` reports the
head hash so a supervisor can note it elsewhere (the usual anchor for a hash chain).

Durability: WAL mode with ``synchronous=FULL`` and one ``BEGIN IMMEDIATE`` transaction per
decision, so a decision is on disk when ``record`` returns and a second writer (GUI + CLI) can
never fork the chain by reading the same previous hash.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import sqlite3
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from xscreen.atomic import atomic_write_text
from xscreen.paths import user_data_dir

DecisionKind = Literal["clear", "suspect", "unresolved"]
DECISIONS: tuple[str, ...] = ("clear", "suspect", "unresolved")
GENESIS = "0" * 64  # prev_hash of the first row
CONTENT = ("id", "time", "operator", "scan_id", "file_sha256", "model_id", "threshold",
           "regions_shown", "decision", "decision_seconds")
COLUMNS = CONTENT + ("prev_hash", "row_hash")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL, operator TEXT NOT NULL, scan_id TEXT NOT NULL, file_sha256 TEXT NOT NULL,
    model_id TEXT NOT NULL, threshold REAL NOT NULL, regions_shown TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('clear', 'suspect', 'unresolved')),
    decision_seconds REAL NOT NULL, prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL);
-- Guard rails against accidental edits; verify() is what catches deliberate ones.
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
"""


class AuditError(Exception):
    """An audit database that cannot be opened or written. ``str(err)`` names the file."""


@dataclass(frozen=True)
class Decision:
    """One operator decision on one bag. ``time``: ISO 8601 UTC; empty = now, filled by ``record``.
    ``regions_shown``: region ids (or any JSON-able list) on screen when the decision was taken."""

    operator: str
    scan_id: str
    file_sha256: str
    model_id: str
    threshold: float
    decision: DecisionKind
    decision_seconds: float
    regions_shown: list[Any] = field(default_factory=list)
    time: str = ""


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    n_rows: int
    first_bad_row: int | None  # row id where the chain first fails
    reason: str
    head_hash: str  # row_hash of the last row (GENESIS when empty): note it elsewhere as an anchor


@dataclass(frozen=True)
class OperatorStats:
    operator: str
    bags: int  # decisions recorded
    suspect_rate: float  # share of decisions that were "suspect"
    median_decision_seconds: float


def default_db_path() -> Path:
    return user_data_dir() / "audit.sqlite"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def row_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """SHA-256 hex over the previous hash and the canonical JSON of the row's content fields."""
    canon = json.dumps([content[k] for k in CONTENT], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canon).encode("utf-8")).hexdigest()


class AuditLog:
    """Append-only, hash-chained decision log in ``db_path`` (default: user data dir)."""

    def __init__(self, db_path: str | Path | None = None, *, create: bool = True):
        self.path = Path(db_path) if db_path is not None else default_db_path()
        if not create and not self.path.is_file():
            raise AuditError(f"{self.path}: no such audit database")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per decision.
            self._db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"{self.path}: not a usable audit database ({exc})") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, d: Decision) -> int:
        """Append one decision in its own durable transaction; returns the row id."""
        if d.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {d.decision!r}")
        if not d.operator.strip():
            raise ValueError("operator name is empty")
        # An unknown hash or model (in-memory scan) is recorded as "" rather than losing the decision.
        values = {"time": d.time or utc_now(), "operator": d.operator, "scan_id": str(d.scan_id),
                  "file_sha256": d.file_sha256 or "", "model_id": d.model_id or "",
                  "threshold": float(d.threshold), "regions_shown": json.dumps(d.regions_shown, default=_plain),
                  "decision": d.decision, "decision_seconds": float(d.decision_seconds)}
        try:
            return self._append(values)
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: decision NOT recorded ({exc})") from exc

    def _append(self, values: dict[str, Any]) -> int:
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")  # take the write lock before reading the chain head
        try:
            last = cur.execute("SELECT row_hash FROM decisions ORDER BY id DESC LIMIT 1").fetchone()
            seq = cur.execute("SELECT seq FROM sqlite_sequence WHERE name='decisions'").fetchone()
            values["id"] = (seq[0] if seq else 0) + 1
            prev = last[0] if last else GENESIS
            values["prev_hash"], values["row_hash"] = prev, row_hash(prev, values)
            cur.execute(f"INSERT INTO decisions ({','.join(COLUMNS)}) VALUES "
                        f"({','.join('?' * len(COLUMNS))})", [values[k] for k in COLUMNS])
            cur.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
                cur.execute("ROLLBACK")
            raise
        return int(values["id"])

    def rows(self) -> list[dict[str, Any]]:
        """All rows in id order, as stored (``regions_shown`` is the JSON text)."""
        cur = self._db.execute(f"SELECT {','.join(COLUMNS)} FROM decisions ORDER BY id")
        return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]

    def latest(self, file_sha256: str) -> Decision | None:
        """The most recent decision on the file with this hash (for reports), or None."""
        cur = self._db.execute(f"SELECT {','.join(COLUMNS)} FROM decisions WHERE file_sha256=? "
                               "ORDER BY id DESC LIMIT 1", (file_sha256,))
        row = cur.fetchone()
        if row is None:
            return None
        r = dict(zip(COLUMNS, row))
        return Decision(r["operator"], r["scan_id"], r["file_sha256"], r["model_id"], r["threshold"],
                        r["decision"], r["decision_seconds"], json.loads(r["regions_shown"]), r["time"])

    def verify(self) -> VerifyResult:
        """Walk the chain; the first row whose link or hash fails is named."""
        rows = self.rows()
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
            prev, expect_id = r["row_hash"], expect_id + 1
        seq = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='decisions'").fetchone()
        if seq and seq[0] > len(rows):
            return _bad(rows, len(rows) + 1, f"{seq[0] - len(rows)} row(s) missing at the end "
                        f"(ids up to {seq[0]} were issued)")
        return VerifyResult(True, len(rows), None, "chain intact", prev)

    def stats(self, since: str | None = None) -> list[OperatorStats]:
        """Per-operator totals, optionally only decisions at or after ISO time ``since``."""
        by_op: dict[str, list[tuple[str, float]]] = {}
        for r in self.rows():
            if since is None or r["time"] >= since:
                by_op.setdefault(r["operator"], []).append((r["decision"], r["decision_seconds"]))
        return [OperatorStats(op, len(ds), sum(d == "suspect" for d, _ in ds) / len(ds),
                              float(statistics.median(s for _, s in ds)))
                for op, ds in sorted(by_op.items())]

    def export_csv(self, path: str | Path) -> int:
        """Write every row (hashes included) to ``path`` atomically; returns the row count."""
        rows = self.rows()
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buf.getvalue())
        return len(rows)


def _plain(o: Any) -> Any:
    """numpy scalars (region ids from a grid) -> Python numbers for JSON."""
    return o.item() if hasattr(o, "item") else str(o)


def _bad(rows: list[dict[str, Any]], row_id: int, reason: str) -> VerifyResult:
    head = rows[-1]["row_hash"] if rows else GENESIS
    return VerifyResult(False, len(rows), int(row_id), reason, head)
