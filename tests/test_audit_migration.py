"""The one versioned audit migration (schema 1: row kind, 'unreadable', live threshold, TIP rows):
databases written before it verify bit for bit, readers read them untouched, a writer migrates once."""
import sqlite3

import pytest

from xscreen import audit_schema
from xscreen.audit import SCHEMA_VERSION, AuditError, AuditLog, Decision, TipEvent

# The schema every database had before schema 1 (the machine columns were added by ALTER TABLE).
LEGACY = ["""CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL, operator TEXT NOT NULL, scan_id TEXT NOT NULL, file_sha256 TEXT NOT NULL,
    model_id TEXT NOT NULL, threshold REAL NOT NULL, regions_shown TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('clear', 'suspect', 'unresolved')),
    decision_seconds REAL NOT NULL, prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL,
    amends INTEGER)""",
          "CREATE TRIGGER decisions_no_update BEFORE UPDATE ON decisions "
          "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END",
          "CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions "
          "BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END"]
MACHINE_COLUMNS = ["threshold_version TEXT", "bag_score REAL", "bag_area REAL", "machine_alarm INTEGER",
                   "cascade REAL"]
# Rows as the previous release wrote them, with the hashes IT computed (pinned: the new hashing must
# reproduce them bit for bit). (time, operator, scan_id, sha, decision, seconds, regions, amends, machine)
ROWS = [("2026-01-01T00:00:00.000+00:00", "ann", "bag-1", "a" * 64, "clear", 1.25, "[1, 2]", None, None,
         "6ffa9faca8888dfd2a3ea0185461c02b73ef87e4f693f153abce36809bdfec78"),
        ("2026-01-01T00:01:00.000+00:00", "bob", "bag-1", "a" * 64, "suspect", 2.5, "[]", 1, None,
         "4ed4f0c6d02b3add809ea94c72adf330c22d43cf3eba787040e3fae2411c48ee"),
        ("2026-01-01T00:02:00.000+00:00", "ann", "bag-2", "b" * 64, "clear", 3.0, "[]", None,
         ("sid.v1", 0.25, 4096.0, 0, 0.0),
         "266831bc01fb940099b94f8c286cd1e3e2bbc24501b08c0c0b2377e08f4a013f")]
HASHES = [r[-1] for r in ROWS]


def legacy_db(path, n=3, machine=True, issued=None):
    db = sqlite3.connect(path)
    for sql in LEGACY + ([f"ALTER TABLE decisions ADD COLUMN {c}" for c in MACHINE_COLUMNS] if machine else []):
        db.execute(sql)
    prev = "0" * 64
    for i, (time, op, sid, sha, dec, secs, regions, amends, mach, h) in enumerate(ROWS[:n], 1):
        cols = "id,time,operator,scan_id,file_sha256,model_id,threshold,regions_shown,decision," \
               "decision_seconds,amends,prev_hash,row_hash"
        vals = [i, time, op, sid, sha, "m-1", 0.5, regions, dec, secs, amends, prev, h]
        if mach:
            cols += ",threshold_version,bag_score,bag_area,machine_alarm,cascade"
            vals += list(mach)
        db.execute(f"INSERT INTO decisions ({cols}) VALUES ({','.join('?' * len(vals))})", vals)
        prev = h
    if issued:
        db.execute("UPDATE sqlite_sequence SET seq=? WHERE name='decisions'", (issued,))
    db.commit()
    db.close()
    return path


def _version(path) -> int:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def test_a_writer_migrates_an_old_database_once_and_old_rows_verify_bit_for_bit(tmp_path):
    path = legacy_db(tmp_path / "old.sqlite")
    with AuditLog(path) as log:
        assert [r["row_hash"] for r in log.rows()] == HASHES and log.verify().ok
        assert [r["kind"] for r in log.rows()] == ["bag"] * 3
        assert log.record(Decision("cy", "bag-3", "c" * 64, "m-1", 0.5, "unreadable", 4.0)) == 4
        assert log.record_tip(TipEvent("cy", "bag-2", "b" * 64, "m-1", "fti-1", "knife", {"x": 1},
                                       "suspect", 3.0)) == 5
        assert log.verify().ok
    assert _version(path) == SCHEMA_VERSION == 1
    db = sqlite3.connect(path)
    table = db.execute("SELECT sql FROM sqlite_master WHERE name='decisions'").fetchone()[0]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the guard triggers came along
        db.execute("UPDATE decisions SET decision='clear' WHERE id=1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM decisions WHERE id=3")
    db.close()
    with AuditLog(path) as log:  # a second writer finds it migrated: nothing rebuilt, nothing lost
        assert log.verify().ok and log.verify().n_rows == 5
    db = sqlite3.connect(path)
    assert db.execute("SELECT sql FROM sqlite_master WHERE name='decisions'").fetchone()[0] == table
    db.close()


@pytest.mark.parametrize("machine, n", [(False, 2), (True, 3)])
def test_readers_read_older_versions_without_touching_them(tmp_path, machine, n):
    path = legacy_db(tmp_path / "old.sqlite", n=n, machine=machine)
    before = path.read_bytes()
    with AuditLog(path, create=False) as log:
        rows = log.rows()
        assert log.verify().ok and [r["row_hash"] for r in rows] == HASHES[:n]
        assert {r["kind"] for r in rows} == {"bag"} and {r["tip"] for r in rows} == {None}
        assert {r["live_threshold"] for r in rows} == {None}
        assert log.latest("a" * 64).decision == "suspect"
        assert [s.bags for s in log.stats()] == ([1, 1] if n == 3 else [0, 1])  # ann, bob
    assert path.read_bytes() == before and _version(path) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.sqlite"]


def test_the_migration_keeps_the_counter_that_shows_a_cut_tail(tmp_path):
    path = legacy_db(tmp_path / "old.sqlite", issued=5)  # rows 4 and 5 were deleted with their counter kept
    with AuditLog(path) as log:
        res = log.verify()
    assert not res.ok and res.first_bad_row == 4 and "2 row(s) missing at the end" in res.reason


def test_a_failed_migration_leaves_the_old_schema_whole(tmp_path, monkeypatch):
    path = legacy_db(tmp_path / "old.sqlite")
    rebuild = audit_schema._rebuild

    def crash_after(db, have):
        rebuild(db, have)
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setattr(audit_schema, "_rebuild", crash_after)
    with pytest.raises(AuditError, match="simulated"):
        AuditLog(path)
    assert _version(path) == 0
    with AuditLog(path, create=False) as log:
        assert [r["row_hash"] for r in log.rows()] == HASHES and log.verify().ok
    monkeypatch.undo()
    with AuditLog(path) as log:
        assert log.verify().ok and _version(path) == 1


def test_a_database_from_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    AuditLog(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    for create in (True, False):
        with pytest.raises(AuditError, match="schema version 2 is newer"):
            AuditLog(path, create=create)


def test_a_writer_restores_dropped_guard_triggers_and_a_current_database_is_left_alone(tmp_path):
    path = tmp_path / "a.sqlite"
    AuditLog(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER decisions_no_delete")
    db.commit()
    db.close()
    AuditLog(path).close()
    db = sqlite3.connect(path)
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    db.close()
    assert names == {"decisions_no_update", "decisions_no_delete"}
    before = path.read_bytes()
    AuditLog(path).close()  # current and whole: opening it writes nothing
    assert path.read_bytes() == before


def test_writers_opening_an_old_database_at_once_migrate_it_once(tmp_path):
    import threading

    path = legacy_db(tmp_path / "old.sqlite")
    errors, ids = [], []

    def write(k):
        try:
            with AuditLog(path) as log:
                ids.append(log.record(Decision("op", f"new{k}", f"{k:064x}", "m-1", 0.5, "clear", 1.0)))
        except Exception as exc:  # any error is the failure this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(ids) == [4, 5, 6, 7]
    with AuditLog(path, create=False) as log:
        res = log.verify()
        assert res.ok and res.n_rows == 7 and [r["row_hash"] for r in log.rows()[:3]] == HASHES
    assert _version(path) == 1
