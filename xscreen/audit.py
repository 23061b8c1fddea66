"""The decision store: an embedded SQLite database of operator decisions, hash-chained.

Every row carries ``row_hash = SHA-256(prev_hash + canonical row content)``, the content including
the row id, so editing, deleting or reordering any row breaks the chain at that row. Deleting
the *last* row leaves a shorter but valid chain; the AUTOINCREMENT counter in ``sqlite_sequence``
still remembers the highest id ever issued, which ``verify`` compares. An attacker who rewrites
every later hash (and the counter) is not detectable from the file alone: ``verify`` reports the
anchor (row count and head hash) to keep elsewhere and checks the chain against anchors kept earlier
(audit_chain.py, which holds the hashing and the walk). Readers open the file read-only and refuse
one without the decisions table (truncated, dropped, foreign) rather than calling it an empty log.

A later decision on a bag already decided is an *amendment*: its ``amends`` column holds the id of
the row it replaces (the bag's latest), and it is hashed with the row, so a link cannot be added,
dropped or redirected unnoticed. ``record(..., exclusive=True)`` (what the GUI uses) refuses a second
plain decision on the same file with ``AlreadyDecided``, so a repeated key never writes a second,
unlinked row. Databases written before ``amends`` existed gain the column on open; their rows hash
exactly as before (the field enters the hash only when set).

Durability: WAL mode with ``synchronous=FULL`` and one ``BEGIN IMMEDIATE`` transaction per
decision, so a decision is on disk when ``record`` returns and a second writer (GUI + CLI) can
never fork the chain by reading the same previous hash; each decision is then checkpointed into the
main file, and ``audit_backup.backup`` copies a live database safely.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Literal

from xscreen.atomic import atomic_write_text
# the chain itself (hashing, walking, anchors) lives in audit_chain; re-exported for callers
from xscreen.audit_chain import (CONTENT, GENESIS, MACHINE, Anchor, VerifyResult, read_only_uri,  # noqa: F401
                                 row_hash, verify_rows)
from xscreen.csvtext import csv_text
from xscreen.paths import user_data_dir

DecisionKind = Literal["clear", "suspect", "unresolved"]
DECISIONS: tuple[str, ...] = ("clear", "suspect", "unresolved")
COLUMNS = CONTENT + ("amends",) + MACHINE + ("prev_hash", "row_hash")
_MACHINE_TYPES = {"threshold_version": "TEXT", "bag_score": "REAL", "bag_area": "REAL", "machine_alarm": "INTEGER",
                  "cascade": "REAL"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL, operator TEXT NOT NULL, scan_id TEXT NOT NULL, file_sha256 TEXT NOT NULL,
    model_id TEXT NOT NULL, threshold REAL NOT NULL, regions_shown TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('clear', 'suspect', 'unresolved')),
    decision_seconds REAL NOT NULL, prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL,
    amends INTEGER);
-- Guard rails against accidental edits; verify() is what catches deliberate ones.
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
"""


class AuditError(Exception):
    """An audit database that cannot be opened or written. ``str(err)`` names the file."""


class AlreadyDecided(AuditError):
    """The bag has a decision already and this one is not an amendment of its latest row
    (``current``), e.g. a key pressed twice, or another console deciding the same bag meanwhile."""

    def __init__(self, message: str, current: int):
        super().__init__(message)
        self.current = current


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
    amends: int | None = None  # id of the row this decision replaces (the bag's latest); None = first
    threshold_version: str | None = None  # Screening.threshold_version the bag was shown under
    bag_score: float | None = None  # Screening.scan_score (highest region score, raw)
    bag_area: float | None = None  # Screening.area (scored px^2)
    machine_alarm: bool | None = None  # Screening.alarm
    cascade: float | None = None  # Screening.cascade: 0 = every patch scored, F > 0 = fast screening


def machine_fields(screening: Any) -> dict[str, Any]:
    """The Decision fields that record what the machine said about a bag (a pipeline.Screening)."""
    return {"threshold_version": str(screening.threshold_version) or None,
            "bag_score": float(screening.scan_score), "bag_area": float(screening.area),
            "machine_alarm": bool(screening.alarm), "cascade": float(screening.cascade)}


@dataclass(frozen=True)
class OperatorStats:
    operator: str
    bags: int  # decisions recorded
    suspect_rate: float  # share of decisions that were "suspect"
    median_decision_seconds: float
    amendments: int = 0  # decisions of this operator that amend an earlier one


def default_db_path() -> Path:
    return user_data_dir() / "audit.sqlite"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class AuditLog:
    """Append-only, hash-chained decision log in ``db_path`` (default: user data dir)."""

    def __init__(self, db_path: str | Path | None = None, *, create: bool = True):
        """``create=True``: the decision writer; a new file gets the schema, an existing one must
        be an audit database. ``create=False``: an existing audit database opened read-only (verify,
        stats, export, reports): nothing is created, migrated or written, whatever the file is."""
        self.path = Path(db_path) if db_path is not None else default_db_path()
        if not create and not self.path.is_file():
            raise AuditError(f"{self.path}: no such audit database")
        fresh = not self.path.exists()
        if not fresh and self.path.is_file() and self.path.stat().st_size == 0:
            # our writer never leaves 0 bytes behind: this file was truncated, not started
            raise AuditError(f"{self.path}: empty file (0 bytes), not an audit database: truncated? "
                             "Refusing to start a new chain in it")
        self.writable = create
        try:
            self._db = self._open(create)
            self._columns = self._check_schema(fresh and create)
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"{self.path}: not a usable audit database ({exc})") from exc

    def _open(self, create: bool) -> sqlite3.Connection:
        if not create:  # mode=ro: verify must never turn a foreign or damaged file into a fresh log
            return sqlite3.connect(read_only_uri(self.path), uri=True, timeout=10.0, isolation_level=None,
                                   check_same_thread=False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per decision.
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _check_schema(self, fresh: bool) -> str:
        """The SELECT list for COLUMNS; a file without our table is refused (0 rows is not 'OK')."""
        if fresh:
            self._db.executescript(_SCHEMA)
        have = {r[1] for r in self._db.execute("PRAGMA table_info(decisions)")}
        added_later = {"amends": "INTEGER", **_MACHINE_TYPES}  # older databases lack these
        missing = [c for c in COLUMNS if c not in have and c not in added_later]
        if missing:
            what = "no 'decisions' table" if not have else f"'decisions' lacks {', '.join(missing)}"
            raise AuditError(f"{self.path}: not an xscreen audit database ({what}): truncated, "
                             "dropped or a foreign file")
        if self.writable:
            self._db.executescript(_SCHEMA)  # a new file's schema; restores dropped guard triggers
            for name, kind in added_later.items():  # older databases gain the columns
                if name not in have:
                    self._db.execute(f"ALTER TABLE decisions ADD COLUMN {name} {kind}")
                    have.add(name)
        return ",".join(c if c in have else f"NULL AS {c}" for c in COLUMNS)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, d: Decision, *, exclusive: bool = False) -> int:
        """Append one decision in its own durable transaction; returns the row id.

        ``d.amends`` must name the latest row on the same bag (same file hash and scan id), else
        ValueError. ``exclusive``: a bag (non-empty file hash) already decided takes only such an
        amendment; a plain decision raises ``AlreadyDecided`` naming the row to amend."""
        if d.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {d.decision!r}")
        if not d.operator.strip():
            raise ValueError("operator name is empty")
        # An unknown hash or model (in-memory scan) is recorded as "" rather than losing the decision.
        values = {"time": d.time or utc_now(), "operator": d.operator, "scan_id": str(d.scan_id),
                  "file_sha256": d.file_sha256 or "", "model_id": d.model_id or "",
                  "threshold": float(d.threshold), "regions_shown": json.dumps(d.regions_shown, default=_plain),
                  "decision": d.decision, "decision_seconds": float(d.decision_seconds),
                  "amends": None if d.amends is None else int(d.amends),
                  "threshold_version": d.threshold_version or None,
                  "bag_score": _real(d.bag_score), "bag_area": _real(d.bag_area),
                  "machine_alarm": None if d.machine_alarm is None else int(bool(d.machine_alarm)),
                  "cascade": _real(d.cascade)}
        try:
            row_id = self._append(values, exclusive)
        except sqlite3.Error as exc:
            raise AuditError(f"{self.path}: decision NOT recorded ({exc})") from exc
        self._checkpoint()
        return row_id

    def _checkpoint(self) -> None:
        """Move the decision from the WAL into the main file, so a copy of audit.sqlite alone holds
        it (a human-paced write; one more fsync is free). A reader holding the WAL can make this
        partial: ``xscreen audit backup`` is the copy that never misses a decision."""
        with contextlib.suppress(sqlite3.Error):  # recorded already; a busy checkpoint is retried next time
            self._db.execute("PRAGMA wal_checkpoint(FULL)")

    def _append(self, values: dict[str, Any], exclusive: bool) -> int:
        cur = self._db.cursor()
        cur.execute("BEGIN IMMEDIATE")  # take the write lock before reading the chain head
        try:
            self._check_link(cur, values, exclusive)  # inside the lock: no second console can slip in
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

    def _check_link(self, cur: sqlite3.Cursor, values: dict[str, Any], exclusive: bool) -> None:
        bag = (values["file_sha256"], values["scan_id"])
        last = cur.execute("SELECT id, decision FROM decisions WHERE file_sha256=? AND scan_id=? "
                           "ORDER BY id DESC LIMIT 1", bag).fetchone()
        amends = values["amends"]
        if amends is not None and (last is None or last[0] != amends):
            raise ValueError(f"decision on {bag[1]} amends row {amends}, but the bag's latest decision "
                             f"is {'none' if last is None else f'row {last[0]}'}")
        if exclusive and amends is None and last is not None and bag[0]:
            raise AlreadyDecided(f"{bag[1]}: already decided ({last[1]}, row {last[0]}); "
                                 "a new decision must amend it", int(last[0]))

    def rows(self) -> list[dict[str, Any]]:
        """All rows in id order, as stored (``regions_shown`` is the JSON text)."""
        cur = self._db.execute(f"SELECT {self._columns} FROM decisions ORDER BY id")
        return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]

    def rows_for(self, file_sha256: str) -> list[dict[str, Any]]:
        """The rows on the file with this hash, in id order (its first decision and amendments)."""
        cur = self._db.execute(f"SELECT {self._columns} FROM decisions WHERE file_sha256=? "
                               "ORDER BY id", (file_sha256,))
        return [dict(zip(COLUMNS, r)) for r in cur.fetchall()]

    def latest(self, file_sha256: str) -> Decision | None:
        """The most recent decision on the file with this hash (for reports), or None."""
        rows = self.rows_for(file_sha256)
        if not rows:
            return None
        r = rows[-1]
        return Decision(r["operator"], r["scan_id"], r["file_sha256"], r["model_id"], r["threshold"],
                        r["decision"], r["decision_seconds"], json.loads(r["regions_shown"]), r["time"],
                        r["amends"], r["threshold_version"], r["bag_score"], r["bag_area"],
                        None if r["machine_alarm"] is None else bool(r["machine_alarm"]))

    def verify(self, anchors: Iterable[Anchor] = ()) -> VerifyResult:
        """Walk the chain; the first row whose link or hash fails is named. Each anchor (noted
        earlier, kept elsewhere) must still be in the chain: that is what shows a cut tail."""
        seq = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name='decisions'").fetchone()
        return verify_rows(self.rows(), seq[0] if seq else 0, anchors)

    def stats(self, since: str | None = None) -> list[OperatorStats]:
        """Per-operator totals, optionally only decisions at or after ISO time ``since``. A decision
        later amended no longer counts as a bag (the amendment does, for whoever made it)."""
        rows = self.rows()
        replaced = {r["amends"] for r in rows if r["amends"] is not None}
        by_op: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            if since is None or r["time"] >= since:
                by_op.setdefault(r["operator"], []).append(r)
        out = []
        for op, rs in sorted(by_op.items()):
            final = [r["decision"] for r in rs if r["id"] not in replaced]
            out.append(OperatorStats(op, len(final), final.count("suspect") / max(len(final), 1),
                                     float(statistics.median(r["decision_seconds"] for r in rs)),
                                     sum(r["amends"] is not None for r in rs)))
        return out

    def export_csv(self, path: str | Path) -> int:
        """Write every row (hashes included) to ``path`` atomically; returns the row count."""
        rows = self.rows()
        atomic_write_text(path, csv_text(COLUMNS, rows))  # operator/scan names are untrusted text
        return len(rows)


def _real(v: float | None) -> float | None:
    """A finite float or None: NaN has no canonical JSON, so it could not be hashed reproducibly."""
    import math

    return None if v is None or not math.isfinite(float(v)) else float(v)


def _plain(o: Any) -> Any:
    """numpy scalars (region ids from a grid) -> Python numbers for JSON."""
    return o.item() if hasattr(o, "item") else str(o)
