"""Rows of kind 'tip' (issue 30) and the 'unreadable' disposition (issue 31 item 6) in the audit:
both are in the chain, neither is ever a decision on a bag - not for the standing decision, the
AlreadyDecided rule, statistics, the drift watch nor calibrate --from-audit."""
import csv
import sqlite3

import pytest

from xscreen.audit import AlreadyDecided, AuditLog, Decision, TipEvent
from xscreen.cli import main as cli_main
from xscreen.drift import audit_drift
from xscreen.evaluate.recalibrate import cleared_bags

SHA = "a" * 64
VERSION = "sid123.v1"


def bag(decision="clear", operator="ana", sha=SHA, scan_id="bag-1", **kw) -> Decision:
    return Decision(operator, scan_id, sha, "m-1", 0.5, decision, 2.0, **kw)


def scored(decision="clear", alarm=False, **kw) -> Decision:
    return bag(decision, threshold_version=VERSION, bag_score=0.3, bag_area=4096.0, machine_alarm=alarm, **kw)


def tip(response="suspect", operator="ana", sha=SHA, **kw) -> TipEvent:
    return TipEvent(operator, "bag-1", sha, "m-1", "fti-0007", "knife", {"x": 10, "y": 20, "angle": 90.0},
                    response, 1.5, **kw)


def test_a_tip_event_is_a_row_of_its_own_in_the_chain(tmp_path):
    with AuditLog(tmp_path / "a.sqlite") as log:
        t = log.record_tip(tip("unresolved", overlap=True, threshold=0.5, live_threshold=0.4))
        d = log.record(bag("clear"), exclusive=True)  # the TIP response is no decision on the bag
        rows = log.rows()
        assert (t, d) == (1, 2) and [r["kind"] for r in rows] == ["tip", "bag"]
        assert rows[0]["tip"] == {"fti_id": "fti-0007", "category": "knife", "response": "unresolved",
                                  "detected": True, "overlap": True,
                                  "placement": {"x": 10, "y": 20, "angle": 90.0}}
        assert rows[0]["decision"] == "tip" and rows[0]["live_threshold"] == 0.4 and rows[1]["tip"] is None
        assert log.latest(SHA).decision == "clear" and [r["id"] for r in log.rows_for(SHA)] == [2]
        log.record_tip(tip("clear"))  # after the real decision: still not its amendment
        assert log.latest(SHA).decision == "clear"
        with pytest.raises(AlreadyDecided) as err:
            log.record(bag("suspect"), exclusive=True)
        assert err.value.current == 2  # the bag's decision, never the TIP row 3
        assert log.record(bag("suspect", amends=2), exclusive=True) == 4 and log.verify().ok


def test_an_edited_tip_row_breaks_the_chain(tmp_path):
    path = tmp_path / "a.sqlite"
    with AuditLog(path) as log:
        log.record_tip(tip("clear"))
        log.record(bag())
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("""UPDATE decisions SET tip=replace(tip, '"clear"', '"suspect"') WHERE id=1""")
    db.commit()
    db.close()
    with AuditLog(path, create=False) as log:
        res = log.verify()
    assert not res.ok and res.first_bad_row == 1 and "edited" in res.reason


def test_tip_events_are_checked(tmp_path):
    with AuditLog(tmp_path / "a.sqlite") as log:
        with pytest.raises(ValueError, match="TIP response must be one of"):
            log.record_tip(tip("unreadable"))
        with pytest.raises(ValueError, match="'clear' is not a detection"):
            log.record_tip(tip("clear", detected=True))
        with pytest.raises(ValueError, match="record_tip"):
            log.record(bag(kind="tip"))
        assert log.rows() == []


def test_an_unreadable_bag_is_dispositioned_and_can_be_amended(tmp_path):
    with AuditLog(tmp_path / "a.sqlite") as log:
        assert log.record(bag("unreadable"), exclusive=True) == 1
        assert log.latest(SHA).decision == "unreadable"
        with pytest.raises(AlreadyDecided):
            log.record(bag("clear"), exclusive=True)
        assert log.record(bag("clear", amends=1), exclusive=True) == 2 and log.verify().ok


def test_the_live_threshold_is_recorded_beside_the_calibrated_one(tmp_path):
    path = tmp_path / "a.sqlite"
    with AuditLog(path) as log:
        log.record(bag(live_threshold=0.34, regions_shown=[3]))
        assert log.latest(SHA).threshold == 0.5 and log.latest(SHA).live_threshold == 0.34
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER decisions_no_update")
    db.execute("UPDATE decisions SET live_threshold=0.5")  # the hash covers it
    db.commit()
    db.close()
    with AuditLog(path, create=False) as log:
        assert log.verify().first_bad_row == 1


def test_statistics_count_tip_and_unreadable_apart(tmp_path, capsys):
    path = tmp_path / "a.sqlite"
    with AuditLog(path) as log:
        log.record(bag("suspect", sha="1" * 64))
        log.record(bag("clear", sha="2" * 64))
        log.record(bag("unreadable", sha="3" * 64))
        for response in ("suspect", "suspect", "suspect", "clear"):  # TIP responses: never decisions
            log.record_tip(tip(response))
        log.record_tip(tip("clear", operator="tipper"))
        ana, tipper = log.stats()
    assert (ana.bags, ana.suspect_rate, ana.unreadable, ana.tip_events) == (2, 0.5, 1, 4)
    assert ana.median_decision_seconds == 2.0 and (tipper.bags, tipper.tip_events) == (0, 1)
    assert cli_main(["audit", "stats", str(path)]) == 0
    out = capsys.readouterr().out
    assert "unreadable" in out and "TIP" in out
    line = next(l for l in out.splitlines() if l.startswith("ana"))
    assert line.split()[1:] == ["2", "50.0%", "2.0", "1", "4"]
    assert cli_main(["audit", "export", "--out", str(tmp_path / "e.csv"), str(path)]) == 0
    assert "; 3 bag rows (1 unreadable), 5 TIP events" in capsys.readouterr().out
    kinds = [r["kind"] for r in csv.DictReader(open(tmp_path / "e.csv", encoding="utf-8"))]
    assert kinds == ["bag"] * 3 + ["tip"] * 5


def test_the_drift_watch_ignores_tip_and_unreadable_rows(tmp_path):
    with AuditLog(tmp_path / "a.sqlite") as log:
        for i in range(20):
            log.record(scored("clear", alarm=i < 2, sha=f"{i:064x}"))
        plain = audit_drift(log.rows(), 0.1, "sid123")
        for i in range(20):  # a TIP event on every bag, answered suspect (a hit), after its decision
            log.record_tip(tip("suspect", sha=f"{i:064x}"))
        for i in range(20, 30):  # bags never screened
            log.record(bag("unreadable", sha=f"{i:064x}"))
        report = audit_drift(log.rows(), 0.1, "sid123")
    assert [(c.interval.k, c.interval.n) for c in report.checks] == [(2, 20), (2, 20)]
    assert report == plain


def test_calibrate_from_audit_uses_neither_tip_nor_unreadable_rows(tmp_path):
    with AuditLog(tmp_path / "a.sqlite") as log:
        log.record(scored("clear", sha="1" * 64))
        log.record_tip(tip("suspect", sha="1" * 64))  # a hit on a TIP image projected into bag 1
        log.record(scored("clear", sha="2" * 64))
        log.record_tip(tip("clear", sha="2" * 64))
        log.record(scored("unreadable", sha="3" * 64))
        scores, areas, skipped = cleared_bags(log.rows(), "sid123")
    assert scores.tolist() == [0.3, 0.3] and areas.tolist() == [4096.0] * 2 and skipped == []
