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
unlinked row. Later fields enter a row's hash only when set, so older rows hash exactly as before.

Rows have a kind (schema 1, audit_schema.py: one versioned migration a writer runs once): 'bag'
for decisions on bags (clear, suspect, unresolved, and 'unreadable': the file could not be screened,
re-scan / hand search), 'tip' for an operator's response to a TIP image (``record_tip``). A TIP row
is never a decision on its bag: ``rows_for``, ``latest`` and ``AlreadyDecided`` see bag rows only,
and statistics, the drift watch and ``calibrate --from-audit`` leave TIP and unreadable rows out.

Durability: WAL mode with ``synchronous=FULL`` and one ``BEGIN IMMEDIATE`` transaction per
decision, so a decision is on disk when ``record`` returns and a second writer (GUI + CLI) can
never fork the chain by reading the same previous hash; each decision is then checkpointed into the
main file, and ``audit_backup.backup`` copies a live database safely.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from xscreen.atomic import atomic_write_text
# the chain itself (hashing, walking, anchors) lives in audit_chain; re-exported for callers
from xscreen.audit_chain import (CONTENT, EXTENDED, GENESIS, MACHINE, Anchor, VerifyResult,  # noqa: F401
                                 read_only_uri, row_hash, verify_rows)
from xscreen import audit_schema as schema
from xscreen.audit_schema import COLUMNS, SCHEMA_VERSION  # noqa: F401
from xscreen.audit_stats import OperatorStats, operator_stats
# the row types live in audit_types; re-exported: callers import them from here
from xscreen.audit_types import (DECISIONS, ROW_KINDS, TIP_RESPONSES, Decision, DecisionKind,  # noqa: F401
                                 TipEvent, machine_fields, plain as _plain, text as _text)
from xscreen.csvtext import csv_text
from xscreen.paths import user_data_dir


class AuditError(Exception):
    """An audit database that cannot be opened or written. ``str(err)`` names the file."""


class AlreadyDecided(AuditError):
    """The bag has a decision already and this one is not an amendment of its latest row
    (``current``), e.g. a key pressed twice, or another console deciding the same bag meanwhile."""

    def __init__(self, message: str, current: int):
        super().__init__(message)
        self.current = current


def default_db_path() -> Path:
    return user_data_dir() / "audit.sqlite"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class AuditLog:
    """Append-only, hash-chained decision log in ``db_path`` (default: user data dir)."""

    def __init__(self, db_path: str | Path | None = None, *, create: bool = True):
        """``create=True``: the decision writer; a new file gets the schema, an existing one must
        be an audit database, migrated once to SCHEMA_VERSION. ``create=False``: an existing audit
        database opened read-only (verify, stats, export, reports): nothing is created, migrated or
        written, whatever the file is, and no file appears beside it."""
        self.path = Path(db_path) if db_path is not None else default_db_path()
        if not create and not self.path.is_file():
            raise AuditError(f"{self.path}: no such audit database")
        fresh = not self.path.exists()
        if not fresh and self.path.is_file() and self.path.stat().st_size == 0:
            # our writer never leaves 0 bytes behind: this file was truncated, not started
            raise AuditError(f"{self.path}: empty file (0 bytes), not an audit database: truncated? "
                             "Refusing to start a new chain in it")
        self.writable, self._immutable = create, False
        try:
            self._db = self._open_writer(fresh) if create else self._open_reader()
            self._columns = self._select_list()
        except schema.SchemaError as exc:
            raise AuditError(f"{self.path}: {exc}") from exc
        except sqlite3.DatabaseError as exc:
            raise AuditError(f"{self.path}: not a usable audit database ({exc})") from exc

    def _open_writer(self, fresh: bool) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per decision.
        db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        try:
            if not fresh:
                schema.check(db)  # before anything is written: a foreign file stays untouched
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            schema.create(db) if fresh else schema.migrate(db)
        except BaseException:
            db.close()
            raise
        return db

    def _open_reader(self) -> sqlite3.Connection:
        self._stamp = schema.stamp(self.path)  # before the first page is read
        db, self._immutable = schema.open_reader(self.path)
        try:
            schema.check(db)
        except BaseException:
            db.close()
            raise
        return db

    def _select_list(self) -> str:
        """The SELECT list for COLUMNS: an older database's missing columns read as NULL."""
        have = self._read(schema.table_columns)
        return ",".join(c if c in have else f"NULL AS {c}" for c in COLUMNS)

    def _read(self, query: Callable[[sqlite3.Connection], Any]) -> Any:
        """``query(connection)``; an immutable reader whose file changed since it opened (a writer
        came) re-opens ``mode=ro`` and asks again: immutable pages may be stale."""
        try:
            out = query(self._db)
        except sqlite3.DatabaseError:
            if not self._immutable:
                raise
            out = None
        if self._immutable and (out is None or schema.stamp(self.path) != self._stamp):
            self._db.close()
            self._db = sqlite3.connect(read_only_uri(self.path), uri=True, timeout=10.0,
                                       isolation_level=None, check_same_thread=False)
            self._immutable = False
            out = query(self._db)
        return out

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "AuditLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record(self, d: Decision, *, exclusive: bool = False) -> int:
        """Append one decision in its own durable transaction; returns the row id.

        ``d.amends`` must name the latest decision on the same bag (same file hash and scan id),
        else ValueError. ``exclusive``: a bag (non-empty file hash) already decided takes only such
        an amendment; a plain decision raises ``AlreadyDecided`` naming the row to amend."""
        if d.kind != "bag":
            raise ValueError(f"a Decision is a bag decision (kind 'bag'), got {d.kind!r}: "
                             "TIP events are recorded with record_tip")
        if d.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {DECISIONS}, got {d.decision!r}")
        values = {**self._common(d), "decision": d.decision, "kind": "bag", "tip": None,
                  "amends": None if d.amends is None else int(d.amends),
                  "threshold_version": _text(d.threshold_version) or None,
                  "bag_score": _real(d.bag_score), "bag_area": _real(d.bag_area),
                  "machine_alarm": None if d.machine_alarm is None else int(bool(d.machine_alarm)),
                  "cascade": _real(d.cascade)}
        return self._write(values, exclusive)

    def record_tip(self, t: TipEvent) -> int:
        """Append one TIP event (kind 'tip', decision column 'tip') in its own durable transaction;
        returns the row id. It links to nothing and never answers for the real bag."""
        tip = json.dumps(t.tip_field(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        values = {**self._common(t), "decision": "tip", "kind": "tip", "tip": tip, "amends": None,
                  **{k: None for k in MACHINE}}
        return self._write(values, False)

    def _common(self, d: Decision | TipEvent) -> dict[str, Any]:
        """The fields every row has. Text is made valid UTF-8 here (issue 32 item 2: a lone
        surrogate from a file's header is kept as its escape, never loses the decision); an unknown
        hash or model (in-memory scan) is recorded as "" rather than losing the decision."""
        if not str(d.operator).strip():
            raise ValueError("operator name is empty")
        return {"time": _text(d.time) or utc_now(), "operator": _text(d.operator), "scan_id": _text(d.scan_id),
                "file_sha256": _text(d.file_sha256 or ""), "model_id": _text(d.model_id or ""),
                "threshold": float(d.threshold), "regions_shown": json.dumps(d.regions_shown, default=_plain),
                "decision_seconds": float(d.decision_seconds), "live_threshold": _real(d.live_threshold)}

    def _write(self, values: dict[str, Any], exclusive: bool) -> int:
        if not self.writable:
            raise AuditError(f"{self.path}: decision NOT recorded (opened readonly, create=False)")
        try:
            row_id = self._append(values, exclusive)
        except (sqlite3.Error, UnicodeError, OverflowError) as exc:
            raise AuditError(f"{self.path}: decision NOT recorded ({type(exc).__name__}: {exc})") from exc
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
            if values["kind"] == "bag":  # inside the lock: no second console can slip in
                self._check_link(cur, values, exclusive)
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
        last = cur.execute("SELECT id, decision FROM decisions WHERE file_sha256=? AND scan_id=? AND kind='bag' "
                           "ORDER BY id DESC LIMIT 1", bag).fetchone()
        amends = values["amends"]
        if amends is not None and (last is None or last[0] != amends):
            raise ValueError(f"decision on {bag[1]} amends row {amends}, but the bag's latest decision "
                             f"is {'none' if last is None else f'row {last[0]}'}")
        if exclusive and amends is None and last is not None and bag[0]:
            raise AlreadyDecided(f"{bag[1]}: already decided ({last[1]}, row {last[0]}); "
                                 "a new decision must amend it", int(last[0]))

    def _raw_rows(self, where: str = "", args: tuple = ()) -> list[dict[str, Any]]:
        sql = f"SELECT {self._columns} FROM decisions {where} ORDER BY id"
        return [dict(zip(COLUMNS, r)) for r in self._read(lambda db: db.execute(sql, args).fetchall())]

    def rows(self) -> list[dict[str, Any]]:
        """All rows in id order: bag decisions and TIP events. ``kind`` is 'bag' or 'tip' (rows of an
        older database: 'bag'); ``tip`` the parsed TIP dict (None on bag rows); ``regions_shown``
        the JSON text as stored."""
        return [_parsed(r) for r in self._raw_rows()]

    def rows_for(self, file_sha256: str) -> list[dict[str, Any]]:
        """The bag decisions on the file with this hash, in id order (its first decision and its
        amendments; never its TIP events, which are not decisions on the bag)."""
        return [_parsed(r) for r in self._raw_rows("WHERE file_sha256=?", (file_sha256,))
                if (r["kind"] or "bag") == "bag"]

    def latest(self, file_sha256: str) -> Decision | None:
        """The standing decision on the file with this hash (for reports), or None."""
        rows = self.rows_for(file_sha256)
        if not rows:
            return None
        r = rows[-1]
        return Decision(r["operator"], r["scan_id"], r["file_sha256"], r["model_id"], r["threshold"],
                        r["decision"], r["decision_seconds"], json.loads(r["regions_shown"]), r["time"],
                        r["amends"], r["threshold_version"], r["bag_score"], r["bag_area"],
                        None if r["machine_alarm"] is None else bool(r["machine_alarm"]), r["cascade"],
                        "bag", r["live_threshold"])

    def verify(self, anchors: Iterable[Anchor] = ()) -> VerifyResult:
        """Walk the chain; the first row whose link or hash fails is named. Each anchor (noted
        earlier, kept elsewhere) must still be in the chain: that is what shows a cut tail."""
        sql = f"SELECT {self._columns} FROM decisions ORDER BY id"

        def snapshot(db: sqlite3.Connection) -> tuple[list, int]:
            db.execute("BEGIN")  # rows and counter from one snapshot
            try:
                rows = db.execute(sql).fetchall()
                seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name='decisions'").fetchone()
            finally:
                db.execute("COMMIT")
            return rows, seq[0] if seq else 0

        rows, issued = self._read(snapshot)
        return verify_rows([dict(zip(COLUMNS, r)) for r in rows], issued, anchors)

    def stats(self, since: str | None = None) -> list[OperatorStats]:
        """Per-operator totals (audit_stats.operator_stats): TIP events and unreadable bags are
        counted apart, never as decisions."""
        return operator_stats(self.rows(), since)

    def export_csv(self, path: str | Path) -> int:
        """Write every row as stored (hashes included, so the CSV can be re-verified; ``kind``
        tells TIP events from bag decisions) to ``path`` atomically; returns the row count."""
        rows = self._raw_rows()
        atomic_write_text(path, csv_text(COLUMNS, rows))  # operator/scan names are untrusted text
        return len(rows)


def _parsed(r: dict[str, Any]) -> dict[str, Any]:
    kind = r["kind"] or "bag"
    try:
        tip = json.loads(r["tip"]) if r["tip"] is not None else None
    except (TypeError, ValueError):  # a damaged TIP row: verify names it; readers see no event
        tip = None
    return {**r, "kind": kind, "tip": tip}


def _real(v: float | None) -> float | None:
    """A finite float or None: NaN has no canonical JSON, so it could not be hashed reproducibly."""
    import math

    return None if v is None or not math.isfinite(float(v)) else float(v)
