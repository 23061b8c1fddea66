"""The audit database's schema, its one versioned migration, and how readers open it.

``PRAGMA user_version`` numbers the schema. 0 is every database written before this release (the
table with or without the later ``amends`` and machine columns); 1 adds the row ``kind`` ('bag' or
'tip': a TIP event, issue 30), the disposition 'unreadable' (issue 31 item 6), the ``live_threshold``
the operator had on screen (issue 31 item 2) and a TIP event's JSON ``tip``. SQLite cannot alter a
CHECK, so a writer rebuilds the table once, in one transaction: rows are copied with their ids and
hashes (the new fields are unset on them, so they hash bit for bit as before), the AUTOINCREMENT
counter is carried over (it is what shows rows cut from the end) and the append-only triggers are
re-created. Readers never migrate: they read any version up to theirs, missing columns as NULL.

Readers create nothing beside the file (issue 32 item 10): with no -wal, -shm or -journal there,
no writer has the database open and the main file holds every decision, so it is opened
``immutable`` (no lock files); a file that changes while open is re-opened ``mode=ro``.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

from xscreen.audit_chain import CONTENT, EXTENDED, MACHINE, read_only_uri

SCHEMA_VERSION = 1
COLUMNS = CONTENT + ("amends",) + MACHINE + EXTENDED + ("prev_hash", "row_hash")
ADDED_LATER = ("amends",) + MACHINE + EXTENDED  # a version-0 database may lack these

_TABLE = """CREATE TABLE {name} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL, operator TEXT NOT NULL, scan_id TEXT NOT NULL, file_sha256 TEXT NOT NULL,
    model_id TEXT NOT NULL, threshold REAL NOT NULL, regions_shown TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('clear', 'suspect', 'unresolved', 'unreadable', 'tip')),
    decision_seconds REAL NOT NULL, prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL,
    amends INTEGER, threshold_version TEXT, bag_score REAL, bag_area REAL, machine_alarm INTEGER,
    cascade REAL, kind TEXT NOT NULL DEFAULT 'bag' CHECK (kind IN ('bag', 'tip')),
    live_threshold REAL, tip TEXT,
    CHECK ((kind = 'tip') = (decision = 'tip') AND (kind = 'tip') = (tip IS NOT NULL)))"""
# Guard rails against accidental edits; verify() is what catches deliberate ones.
_TRIGGERS = tuple(f"CREATE TRIGGER IF NOT EXISTS decisions_no_{op.lower()} BEFORE {op} ON decisions "
                  "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END" for op in ("UPDATE", "DELETE"))


class SchemaError(Exception):
    """Not an xscreen audit database, or one this version cannot use (audit.py names the file)."""


def table_columns(db: sqlite3.Connection) -> set[str]:
    return {r[1] for r in db.execute("PRAGMA table_info(decisions)")}


def check(db: sqlite3.Connection) -> set[str]:
    """The decisions table's columns; SchemaError for a file that is not ours (0 rows is not 'OK')."""
    have = table_columns(db)
    missing = [c for c in COLUMNS if c not in have and c not in ADDED_LATER]
    if missing:
        what = "no 'decisions' table" if not have else f"'decisions' lacks {', '.join(missing)}"
        raise SchemaError(f"not an xscreen audit database ({what}): truncated, dropped or a foreign file")
    sql = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='decisions'").fetchone()[0]
    counter = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='sqlite_sequence'").fetchone()
    if counter is None or "AUTOINCREMENT" not in str(sql).upper():
        # our table always has AUTOINCREMENT, whose counter is what shows rows cut from the end
        raise SchemaError("not an xscreen audit database ('decisions' has no AUTOINCREMENT counter, "
                          "sqlite_sequence): a foreign file")
    version = version_of(db)
    if version > SCHEMA_VERSION:
        raise SchemaError(f"audit schema version {version} is newer than this xscreen reads "
                          f"({SCHEMA_VERSION}); use a newer xscreen")
    return have


def version_of(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def create(db: sqlite3.Connection) -> None:
    """A new database's schema at SCHEMA_VERSION, in one transaction."""
    with _transaction(db):
        if not table_columns(db):
            db.execute(_TABLE.format(name="decisions"))
        for trigger in _TRIGGERS:
            db.execute(trigger)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def migrate(db: sqlite3.Connection) -> None:
    """Bring a checked database to SCHEMA_VERSION (once; a second writer finds it done) and restore
    dropped guard triggers. One transaction: a crash leaves the old schema whole. A current
    database is only read (no write lock: the GUI opens the log for every look-up)."""
    triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    if version_of(db) == SCHEMA_VERSION and {"decisions_no_update", "decisions_no_delete"} <= triggers:
        return
    with _transaction(db):
        have = check(db)  # again, under the write lock: another writer may have migrated meanwhile
        if version_of(db) < SCHEMA_VERSION:
            _rebuild(db, have)
        for trigger in _TRIGGERS:
            db.execute(trigger)


def _rebuild(db: sqlite3.Connection, have: set[str]) -> None:
    cols = [c for c in COLUMNS if c != "kind"]
    select = ",".join(c if c in have else "NULL" for c in cols)
    seq = db.execute("SELECT seq FROM sqlite_sequence WHERE name='decisions'").fetchone()
    db.execute(_TABLE.format(name="decisions_v1"))
    db.execute(f"INSERT INTO decisions_v1 ({','.join(cols)}, kind) SELECT {select}, 'bag' "
               "FROM decisions ORDER BY id")
    db.execute("DROP TABLE decisions")  # its triggers go with it (DROP fires no delete trigger)
    db.execute("ALTER TABLE decisions_v1 RENAME TO decisions")
    issued = max(seq[0] if seq else 0, db.execute("SELECT COALESCE(MAX(id), 0) FROM decisions").fetchone()[0])
    db.execute("DELETE FROM sqlite_sequence WHERE name IN ('decisions', 'decisions_v1')")
    if issued:
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('decisions', ?)", (issued,))
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error (statements one by one: executescript
    would commit a pending transaction first)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        if kind is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:
            self.db.execute("ROLLBACK")


def has_companions(path: Path) -> bool:
    """Whether SQLite files beside the database show a writer has it (or had it and crashed)."""
    return any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm", "-journal"))


def stamp(path: Path) -> tuple:
    """What changes when a writer touches the database (its size and time, and companions)."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns, has_companions(path)


def open_reader(path: Path) -> tuple[sqlite3.Connection, bool]:
    """(read-only connection, immutable?). Immutable only when nothing beside the file shows a
    writer: then it creates no -wal/-shm; otherwise plain ``mode=ro`` (a writer made them already)."""
    immutable = not has_companions(path)
    db = sqlite3.connect(read_only_uri(path, immutable), uri=True, timeout=10.0, isolation_level=None,
                         check_same_thread=False)
    return db, immutable
