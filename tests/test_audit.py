"""audit.py: durable, hash-chained decision log; tampering is caught at the right row."""
import csv
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from xscreen.audit import GENESIS, AuditError, AuditLog, Decision
from xscreen.cli import main as cli_main


def _decision(i: int, operator: str = "ana", decision: str = "clear", secs: float = 2.0) -> Decision:
    return Decision(operator=operator, scan_id=f"bag{i:03d}", file_sha256=f"{i:064x}",
                    model_id="tiny-0123456789ab", threshold=0.125, decision=decision,
                    decision_seconds=secs, regions_shown=[1, 2] if decision == "suspect" else [])


def _filled(path, n=5) -> AuditLog:
    log = AuditLog(path)
    for i in range(1, n + 1):
        assert log.record(_decision(i, decision="suspect" if i % 2 else "clear")) == i
    return log


def _tamper(path, *sql: str) -> None:
    """What someone with sqlite3 and intent would do: drop the guard triggers, then edit."""
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("DROP TRIGGER decisions_no_delete")
    for s in sql:
        db.execute(s)
    db.commit()
    db.close()


def test_records_chain_and_verify_ok(tmp_path):
    log = _filled(tmp_path / "a.sqlite")
    res = log.verify()
    assert (res.ok, res.n_rows, res.first_bad_row) == (True, 5, None)
    rows = log.rows()
    assert rows[0]["prev_hash"] == GENESIS
    assert [r["prev_hash"] for r in rows[1:]] == [r["row_hash"] for r in rows[:-1]]
    assert res.head_hash == rows[-1]["row_hash"]
    assert rows[0]["time"].endswith("+00:00")  # filled in UTC when not given
    assert log._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_accidental_update_and_delete_are_refused(tmp_path):
    path = tmp_path / "a.sqlite"
    _filled(path, 2).close()
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE decisions SET decision='clear' WHERE id=1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM decisions WHERE id=2")


@pytest.mark.parametrize("sql, bad_row, words", [
    (["UPDATE decisions SET decision='clear' WHERE id=3"], 3, "edited"),
    (["UPDATE decisions SET decision_seconds=1.5 WHERE id=1"], 1, "edited"),
    (["DELETE FROM decisions WHERE id=2"], 3, "deleted"),
    (["DELETE FROM decisions WHERE id=5"], 5, "missing at the end"),
    # swap rows 3 and 4 (ids exchanged, so id order now shows 4's content before 3's)
    (["UPDATE decisions SET id=100 WHERE id=3", "UPDATE decisions SET id=3 WHERE id=4",
      "UPDATE decisions SET id=4 WHERE id=100"], 3, "previous row"),
])
def test_tampering_is_caught_at_first_bad_row(tmp_path, sql, bad_row, words):
    path = tmp_path / "a.sqlite"
    _filled(path).close()
    _tamper(path, *sql)
    res = AuditLog(path).verify()
    assert not res.ok
    assert res.first_bad_row == bad_row
    assert words in res.reason


def test_cli_verify_names_bad_row_and_exits_nonzero(tmp_path, capsys):
    path = tmp_path / "a.sqlite"
    _filled(path).close()
    assert cli_main(["audit", "verify", str(path)]) == 0
    assert "OK, 5 rows" in capsys.readouterr().out
    _tamper(path, "UPDATE decisions SET operator='mallory' WHERE id=2")
    assert cli_main(["audit", "verify", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "row 2" in err


def test_cli_missing_or_foreign_db_is_a_clean_error(tmp_path, capsys):
    assert cli_main(["audit", "verify", str(tmp_path / "none.sqlite")]) == 2
    assert "no such audit database" in capsys.readouterr().err
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    assert cli_main(["audit", "stats", str(junk)]) == 2
    assert "not a usable audit database" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()


def test_decision_survives_sigkill_right_after_record(tmp_path):
    path = tmp_path / "crash.sqlite"
    code = textwrap.dedent(f"""
        import os, signal
        from xscreen.audit import AuditLog, Decision
        log = AuditLog({str(path)!r})
        rid = log.record(Decision("bob", "bagX", "ab" * 32, "m-1", 0.5, "suspect", 3.25, [7]))
        print(rid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no checkpoint, no atexit
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == -9, res.stderr
    assert res.stdout.strip() == "1"
    log = AuditLog(path)
    rows = log.rows()
    assert len(rows) == 1 and rows[0]["scan_id"] == "bagX" and rows[0]["decision"] == "suspect"
    assert log.verify().ok


def test_stats_and_export(tmp_path, capsys):
    log = AuditLog(tmp_path / "a.sqlite")
    for i, (d, s) in enumerate([("suspect", 4.0), ("clear", 2.0), ("clear", 9.0), ("clear", 1.0)]):
        log.record(_decision(i, "ana", d, s))
    log.record(_decision(9, "bo", "unresolved", 5.0))
    stats = {s.operator: s for s in log.stats()}
    assert stats["ana"].bags == 4 and stats["ana"].suspect_rate == 0.25
    assert stats["ana"].median_decision_seconds == 3.0
    assert (stats["bo"].bags, stats["bo"].suspect_rate) == (1, 0.0)
    out = tmp_path / "x" / "audit.csv"
    assert log.export_csv(out) == 5
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 5 and rows[4]["operator"] == "bo" and len(rows[4]["row_hash"]) == 64
    log.close()
    assert cli_main(["audit", "stats", str(tmp_path / "a.sqlite")]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["operator", "bags", "suspect", "median", "s", "unreadable", "TIP"]
    assert table[1].split() == ["ana", "4", "25.0%", "3.0", "0", "0"]
    assert cli_main(["audit", "export", "--out", str(tmp_path / "b.csv"), str(tmp_path / "a.sqlite")]) == 0
    assert len((tmp_path / "b.csv").read_text().splitlines()) == 6


def test_bad_decision_is_refused(tmp_path):
    log = AuditLog(tmp_path / "a.sqlite")
    with pytest.raises(ValueError, match="decision must be one of"):
        log.record(_decision(1, decision="maybe"))
    with pytest.raises(ValueError, match="operator"):
        log.record(_decision(1, operator="  "))
    assert log.rows() == []


def test_two_connections_gui_writer_and_cli_reader(tmp_path):
    """A GUI holding the log open and a CLI verifying/writing at the same time keep one chain."""
    path = tmp_path / "a.sqlite"
    gui, cli = AuditLog(path), AuditLog(path)
    for i in range(6):
        (gui if i % 2 else cli).record(_decision(i))
        assert cli.verify().ok and gui.verify().n_rows == i + 1
    assert AuditLog(path).verify().n_rows == 6


def test_default_path_is_under_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XSCREEN_HOME", str(tmp_path / "home"))
    log = AuditLog()
    assert log.path == tmp_path / "home" / "audit.sqlite"
    with pytest.raises(AuditError):
        AuditLog(tmp_path / "nope.sqlite", create=False)


def test_unknown_hash_and_numpy_ids_still_recorded(tmp_path):
    import numpy as np

    log = AuditLog(tmp_path / "a.sqlite")
    d = Decision("ana", "mem-scan", None, None, np.float32(0.5), "suspect", 1.0, [np.int64(3)])
    assert log.record(d) == 1
    row = log.rows()[0]
    assert (row["file_sha256"], row["model_id"], row["regions_shown"]) == ("", "", "[3]")
    assert log.latest("") .regions_shown == [3] and log.latest("ff" * 32) is None
    assert log.verify().ok


def test_locked_database_is_an_audit_error_not_a_crash(tmp_path):
    path = tmp_path / "a.sqlite"
    log = AuditLog(path)
    log._db.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # someone else holds the write lock
    with pytest.raises(AuditError, match="NOT recorded"):
        log.record(_decision(1))
    other.execute("ROLLBACK")
    assert log.record(_decision(1)) == 1 and log.verify().ok


def test_second_decision_is_an_explicit_amendment_linked_to_the_latest(tmp_path):
    from xscreen.audit import AlreadyDecided

    log = AuditLog(tmp_path / "a.sqlite")
    first = _decision(1, decision="suspect")
    assert log.record(first, exclusive=True) == 1
    for _ in range(3):  # the same key again: refused, nothing written
        with pytest.raises(AlreadyDecided, match="row 1") as err:
            log.record(first, exclusive=True)
        assert err.value.current == 1
    assert log.record(_decision(2), exclusive=True) == 2  # another bag is independent
    assert log.record(Decision(**{**first.__dict__, "decision": "clear", "amends": 1}), exclusive=True) == 3
    with pytest.raises(ValueError, match="latest decision is row 3"):  # amending a replaced row
        log.record(Decision(**{**first.__dict__, "amends": 1}))
    with pytest.raises(ValueError, match="latest decision is none"):  # a link to another bag
        log.record(Decision(**{**_decision(7).__dict__, "amends": 2}))
    rows = log.rows()
    assert [(r["id"], r["decision"], r["amends"]) for r in rows] == [(1, "suspect", None), (2, "clear", None),
                                                                      (3, "clear", 1)]
    assert [r["id"] for r in log.rows_for(first.file_sha256)] == [1, 3]
    assert log.latest(first.file_sha256).decision == "clear" and log.latest(first.file_sha256).amends == 1
    assert log.verify().ok and log.verify().n_rows == 3
    ana = log.stats()[0]
    assert (ana.bags, ana.suspect_rate, ana.amendments) == (2, 0.0, 1)  # row 1 was replaced by row 3


@pytest.mark.parametrize("sql, bad_row", [
    ("UPDATE decisions SET amends=NULL WHERE id=2", 2),  # link dropped
    ("UPDATE decisions SET amends=1 WHERE id=3", 3),  # link added to an independent row
])
def test_tampering_with_an_amendment_link_is_caught(tmp_path, sql, bad_row):
    path = tmp_path / "a.sqlite"
    log = AuditLog(path)
    log.record(_decision(1, decision="suspect"))
    log.record(Decision(**{**_decision(1).__dict__, "amends": 1}))
    log.record(_decision(2))
    log.close()
    _tamper(path, sql)
    res = AuditLog(path).verify()
    assert not res.ok and res.first_bad_row == bad_row and "edited" in res.reason


def test_database_from_before_amendments_opens_verifies_and_takes_amendments(tmp_path):
    from xscreen.audit import CONTENT, row_hash

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, "
               "operator TEXT NOT NULL, scan_id TEXT NOT NULL, file_sha256 TEXT NOT NULL, model_id TEXT NOT NULL, "
               "threshold REAL NOT NULL, regions_shown TEXT NOT NULL, decision TEXT NOT NULL, "
               "decision_seconds REAL NOT NULL, prev_hash TEXT NOT NULL, row_hash TEXT NOT NULL)")
    prev = GENESIS
    for i in (1, 2):  # rows hashed the way the old code hashed them: content fields only
        row = {"id": i, "time": "2026-01-01T00:00:00.000+00:00", "operator": "ana", "scan_id": "bag001",
               "file_sha256": "ab" * 32, "model_id": "m", "threshold": 0.5, "regions_shown": "[]",
               "decision": "suspect", "decision_seconds": 1.0}
        h = row_hash(prev, row)
        db.execute(f"INSERT INTO decisions ({','.join(CONTENT)}, prev_hash, row_hash) VALUES "
                   f"({','.join('?' * (len(CONTENT) + 2))})", [row[k] for k in CONTENT] + [prev, h])
        prev = h
    db.commit()
    db.close()
    log = AuditLog(path)
    assert log.verify().ok and log.verify().n_rows == 2
    assert log.record(Decision("bo", "bag001", "ab" * 32, "m", 0.5, "clear", 2.0, amends=2), exclusive=True) == 3
    assert log.verify().ok and log.rows()[-1]["amends"] == 2


# --- issue 16 item 7: truncation, dropped table, read-only verify, anchors, WAL copies ------------

def _tables(path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()


def test_database_truncated_to_zero_bytes_fails_verify_and_is_not_restarted(tmp_path, capsys):
    path = tmp_path / "a.sqlite"
    _filled(path).close()
    path.write_bytes(b"")
    assert cli_main(["audit", "verify", str(path)]) == 2
    assert "empty file (0 bytes)" in capsys.readouterr().err
    with pytest.raises(AuditError, match="Refusing to start a new chain"):
        AuditLog(path)
    assert path.stat().st_size == 0


def test_dropped_table_fails_verify(tmp_path, capsys):
    path = tmp_path / "a.sqlite"
    _filled(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE decisions")
    db.commit()
    db.close()
    assert cli_main(["audit", "verify", str(path)]) == 2
    assert "not an xscreen audit database (no 'decisions' table)" in capsys.readouterr().err


def test_verify_opens_read_only_and_never_creates_the_schema(tmp_path, capsys):
    foreign = tmp_path / "other.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE photos (id INTEGER)")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    for action in (["verify"], ["stats"], ["anchor"]):
        assert cli_main(["audit", *action, str(foreign)]) == 2
    assert "not an xscreen audit database" in capsys.readouterr().err
    assert foreign.read_bytes() == before and _tables(foreign) == {"photos"}
    with pytest.raises(AuditError, match="not an xscreen audit database"):
        AuditLog(foreign)  # the writer refuses it too, rather than adding a table to someone's file
    path = tmp_path / "a.sqlite"
    _filled(path).close()
    before = path.read_bytes()
    log = AuditLog(path, create=False)
    assert log.verify().ok
    with pytest.raises(AuditError, match="NOT recorded.*readonly"):
        log.record(_decision(9))
    log.close()
    assert path.read_bytes() == before


def test_anchor_detects_rows_cut_from_the_end(tmp_path, capsys):
    path, anchors = tmp_path / "a.sqlite", tmp_path / "anchors.txt"
    _filled(path).close()
    assert cli_main(["audit", "anchor", str(path), "--append", str(anchors)]) == 0
    line = capsys.readouterr().out.strip()
    head = AuditLog(path, create=False).verify().head_hash
    assert line.endswith(f" 5:{head}") and anchors.read_text().strip() == line
    # cut the last two rows and the counter: the shorter chain alone is valid
    _tamper(path, "DELETE FROM decisions WHERE id > 3", "UPDATE sqlite_sequence SET seq=3")
    assert cli_main(["audit", "verify", str(path)]) == 0
    assert "OK, 3 rows" in capsys.readouterr().out
    assert cli_main(["audit", "verify", str(path), "--anchors", str(anchors)]) == 1
    assert "recorded 5: rows deleted at the end" in capsys.readouterr().err
    assert cli_main(["audit", "verify", str(path), "--anchor", f"5:{head}"]) == 1


def test_export_prints_the_anchor(tmp_path, capsys):
    path = tmp_path / "a.sqlite"
    head = _filled(path, 2).verify().head_hash
    assert cli_main(["audit", "export", str(path), "--out", str(tmp_path / "x.csv")]) == 0
    assert f"wrote 2 rows to {tmp_path / 'x.csv'}; anchor 2:{head}; 2 bag rows (0 unreadable), 0 TIP events" \
        in capsys.readouterr().out


def test_anchor_detects_a_rewritten_chain_and_verify_prints_the_anchor(tmp_path, capsys):
    from xscreen.audit_chain import Anchor, check_anchor

    path = tmp_path / "a.sqlite"
    log = _filled(path)
    res = log.verify()
    assert cli_main(["audit", "verify", str(path), "--anchor", str(res.anchor)]) == 0
    assert f"anchor 5:{res.head_hash}" in capsys.readouterr().out
    rows = log.rows()
    rows[2] = {**rows[2], "row_hash": "f" * 64}  # what a full re-hash after an edit leaves behind
    assert "row 3 does not carry the anchor's hash" in check_anchor(rows, Anchor(3, log.rows()[2]["row_hash"]))
    assert check_anchor(log.rows(), Anchor(0, GENESIS)) is None
    assert cli_main(["audit", "verify", str(path), "--anchor", "5:nothex"]) == 2


def test_copying_only_the_main_file_keeps_every_decision(tmp_path):
    import shutil

    path = tmp_path / "a.sqlite"
    log = _filled(path, 3)  # still open: nothing closed or checkpointed on exit
    (tmp_path / "copy").mkdir()
    shutil.copy(path, tmp_path / "copy" / "a.sqlite")  # the -wal file left behind
    copy = AuditLog(tmp_path / "copy" / "a.sqlite", create=False)
    assert len(copy.rows()) == 3 and copy.verify().head_hash == log.verify().head_hash


def test_backup_copies_wal_content_while_a_reader_blocks_checkpoints(tmp_path, capsys):
    path, out = tmp_path / "a.sqlite", tmp_path / "b" / "backup.sqlite"
    log = _filled(path, 2)
    reader = sqlite3.connect(path)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM decisions").fetchone()  # pins the WAL: checkpoints stay partial
    log.record(_decision(3))
    assert cli_main(["audit", "backup", str(path), "--out", str(out)]) == 0
    head = log.verify().head_hash
    assert f"backed up 3 rows to {out}; anchor 3:{head}" in capsys.readouterr().out
    reader.close()
    assert not (tmp_path / "b" / "backup.sqlite-wal").exists()
    db = sqlite3.connect(out)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()
    assert AuditLog(out, create=False).verify().head_hash == head
