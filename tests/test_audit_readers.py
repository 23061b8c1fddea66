"""Issue 32: the audit keeps a decision whatever its text (item 2), and its readers create nothing
beside the database and refuse a foreign file that merely looks like ours (item 10)."""
import sqlite3

import pytest

from xscreen.audit import AuditError, AuditLog, Decision, TipEvent
from xscreen.audit_backup import backup
from xscreen.cli import main as cli_main


def _decision(scan_id="bag-1", operator="ana", sha="a" * 64, **kw) -> Decision:
    return Decision(operator, scan_id, sha, "m-1", 0.5, "clear", 1.0, **kw)


def test_a_lone_surrogate_in_any_text_is_recorded_escaped(tmp_path):
    """A scan id from a TIFF/PNG JSON header can hold a lone surrogate: it raised UnicodeEncodeError
    and the operator's decision was lost."""
    with AuditLog(tmp_path / "a.sqlite") as log:
        assert log.record(_decision("bad\ud800id"), exclusive=True) == 1
        assert log.record(_decision("x", operator="an\udcffa", sha="b" * 64, threshold_version="v\ud800",
                                    regions_shown=["r\ud800"])) == 2
        assert log.record_tip(TipEvent("ana", "bad\ud800id", "a" * 64, "m-1", "fti\ud800", "knife",
                                       {"note": "p\ud800"}, "clear", 1.0)) == 3
        rows = log.rows()
        assert rows[0]["scan_id"] == "bad\\ud800id" and rows[1]["operator"] == "an\\udcffa"
        assert rows[1]["threshold_version"] == "v\\ud800" and rows[2]["tip"]["fti_id"] == "fti\\ud800"
        assert log.latest("a" * 64).scan_id == "bad\\ud800id" and log.verify().ok
        with pytest.raises(Exception) as err:  # the escaped id names the same bag: a repeat is refused
            log.record(_decision("bad\ud800id"), exclusive=True)
        assert type(err.value).__name__ == "AlreadyDecided"
    with AuditLog(tmp_path / "a.sqlite", create=False) as log:
        assert log.verify().ok and log.export_csv(tmp_path / "e.csv") == 3
    assert "bad\\ud800id" in (tmp_path / "e.csv").read_text(encoding="utf-8")


def _closed_db(path, n=2):
    with AuditLog(path) as log:
        for i in range(n):
            log.record(_decision(f"bag{i}", sha=f"{i:064x}"))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # the writer left no -wal/-shm
    return path


def test_readers_create_nothing_beside_the_database(tmp_path, capsys):
    path = _closed_db(tmp_path / "a.sqlite")
    (tmp_path / "x").mkdir()
    before = path.read_bytes()
    for action in (["verify"], ["stats"], ["anchor"], ["export", "--out", str(tmp_path / "x" / "e.csv")],
                   ["backup", "--out", str(tmp_path / "x" / "b.sqlite")]):
        assert cli_main(["audit", *action, str(path)]) == 0, capsys.readouterr().err
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite", "x"], action
    with AuditLog(path, create=False) as log:
        assert len(log.rows()) == 2 and log.latest(f"{1:064x}").scan_id == "bag1" and log.stats()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.sqlite", "x"] and path.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["b.sqlite", "e.csv"]


def test_an_immutable_reader_sees_what_a_writer_adds_meanwhile(tmp_path):
    path = _closed_db(tmp_path / "a.sqlite")
    reader = AuditLog(path, create=False)
    assert len(reader.rows()) == 2
    with AuditLog(path) as writer:
        writer.record(_decision("late", sha="c" * 64))
        assert [r["scan_id"] for r in reader.rows()][-1] == "late"
        assert reader.verify().ok and reader.verify().n_rows == 3
        writer.record(_decision("later", sha="d" * 64))  # the reader went live: it follows the WAL
        assert reader.verify().n_rows == 4
    reader.close()
    assert backup(path, tmp_path / "b.sqlite").n_rows == 4


def _foreign(path, with_counter: bool):
    """Someone else's SQLite file whose 'decisions' table has every column of ours."""
    db = sqlite3.connect(path)
    key = "INTEGER PRIMARY KEY AUTOINCREMENT" if with_counter else "INTEGER PRIMARY KEY"
    db.execute(f"CREATE TABLE decisions (id {key}, time TEXT, operator TEXT, scan_id TEXT, file_sha256 TEXT, "
               "model_id TEXT, threshold REAL, regions_shown TEXT, decision TEXT, decision_seconds REAL, "
               "prev_hash TEXT, row_hash TEXT, amends INTEGER)")
    db.execute("INSERT INTO decisions (id, time, operator, decision) VALUES (1, 't', 'x', 'clear')")
    db.commit()
    db.close()
    return path


def test_a_foreign_look_alike_without_the_counter_is_refused(tmp_path, capsys):
    """It crashed verify with OperationalError (no sqlite_sequence) and stats said 'no decisions
    recorded', exit 0."""
    path = _foreign(tmp_path / "f.sqlite", with_counter=False)
    before = path.read_bytes()
    for action in ("verify", "stats", "anchor", "export"):
        extra = ["--out", str(tmp_path / "e.csv")] if action == "export" else []
        assert cli_main(["audit", action, *extra, str(path)]) == 2
        err = capsys.readouterr().err
        assert "not an xscreen audit database" in err and "foreign" in err and "Traceback" not in err
    for create in (True, False):
        with pytest.raises(AuditError, match="no AUTOINCREMENT counter"):
            AuditLog(path, create=create)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["f.sqlite"]


def test_a_look_alike_with_the_counter_but_its_own_rows_fails_verify(tmp_path, capsys):
    path = _foreign(tmp_path / "f.sqlite", with_counter=True)
    assert cli_main(["audit", "verify", str(path)]) == 1
    assert "chain broken at row 1" in capsys.readouterr().err
