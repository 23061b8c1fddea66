"""Drift watch (xscreen/drift.py): alarm and cleared-alarm rates against the model's target."""
import subprocess
import sys

import pytest

from xscreen.audit import AuditLog, Decision
from xscreen.drift import audit_drift, check_rate, drift_status


@pytest.mark.parametrize("k, n, status", [(3, 60, "ok"), (8, 60, "ok"), (9, 60, "high"), (0, 200, "low"),
                                          (0, 20, "ok"), (0, 0, "none")])
def test_a_rate_drifts_only_beyond_sampling_error(k, n, status):
    c = check_rate("alarm rate", k, n, 0.05)
    assert c.status == status and c.drifted == (status in ("high", "low"))
    if c.drifted:
        assert "DRIFT" in c.message and "--from-audit" in c.message
    elif n:
        assert "agrees with the target 5.0%" in c.message


def _log(db, bags, version="abc123abc123.v1"):
    """bags: (machine_alarm, decisions joined by '>') per bag; each amendment links its predecessor."""
    with AuditLog(db) as log:
        for i, (alarm, decisions) in enumerate(bags):
            for step, dec in enumerate(decisions.split(">")):
                log.record(Decision("op", f"bag{i}", f"{i:064x}", "m", 0.1, dec, 1.0,
                                    amends=log.rows()[-1]["id"] if step else None,
                                    threshold_version=version, bag_score=0.1, bag_area=1e5,
                                    machine_alarm=alarm))
        return log.rows()


def test_audit_counts_each_bag_once_by_its_standing_decision(tmp_path):
    # 40 bags: 10 alarmed (25 %), 8 of them cleared in the end; one amended clear -> suspect
    bags = [(True, "clear")] * 7 + [(True, "suspect>clear"), (True, "suspect"), (True, "clear>suspect")]
    bags += [(False, "clear")] * 30
    rows = _log(tmp_path / "a.sqlite", bags)
    report = audit_drift(rows, 0.05, "abc123abc123")
    alarm, cleared = report.checks
    assert (alarm.interval.k, alarm.interval.n, alarm.status) == (10, 40, "high")
    assert (cleared.interval.k, cleared.interval.n, cleared.status) == (8, 40, "high")
    assert report.drifted and "alarm rate 25.0% (10/40 bags" in "\n".join(report.lines())
    # rows under another threshold version (e.g. before a recalibration) are not counted
    assert audit_drift(rows, 0.05, "ffffffffffff").checks[0].status == "none"


def test_status_line_is_empty_when_the_rates_agree(tmp_path):
    db = tmp_path / "b.sqlite"
    _log(db, [(True, "clear")] * 2 + [(False, "clear")] * 38)
    assert drift_status(db, "abc123abc123.v1", 0.05) == ""
    assert drift_status(tmp_path / "missing.sqlite", "abc123abc123.v1", 0.05) == ""
    db2 = tmp_path / "c.sqlite"
    _log(db2, [(True, "clear")] * 12 + [(False, "clear")] * 28)
    line = drift_status(db2, "abc123abc123.v1", 0.05)
    assert line.startswith("DRIFT: alarm rate 30.0%") and "recalibrate" in line


def test_rows_written_before_the_machine_columns_are_ignored(tmp_path):
    db = tmp_path / "old.sqlite"
    with AuditLog(db) as log:
        log.record(Decision("op", "bag", "a" * 64, "m", 0.1, "clear", 1.0))
        rows = log.rows()
        assert log.verify().ok
    assert audit_drift(rows, 0.05).checks[0].status == "none"


def test_cli_prints_the_drift_and_exits_1(tmp_path):
    from screen_fixtures import save_tiny_model
    from xscreen.checkpoint import load_model, update_model_meta
    from xscreen.config import Calibration
    from xscreen.pipeline import scoring_id

    model = save_tiny_model(tmp_path / "m.xsm")
    update_model_meta(model, calibration=Calibration(0.1, 0.01, 0.2, 0.05, stride=32, version=1))
    m = load_model(model)
    sid = scoring_id(m.weights_id, m.meta.train, m.meta.preprocess, 32)
    db = tmp_path / "a.sqlite"
    _log(db, [(True, "clear")] * 12 + [(False, "clear")] * 28, version=f"{sid}.v1")
    res = subprocess.run([sys.executable, "-m", "xscreen", "model", "drift", str(model), "--audit", str(db)],
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    assert f"threshold version {sid}.v1" in res.stdout and "DRIFT: alarm rate 30.0% (12/40" in res.stdout
    _log(tmp_path / "ok.sqlite", [(True, "clear")] * 2 + [(False, "clear")] * 38, version=f"{sid}.v1")
    res = subprocess.run([sys.executable, "-m", "xscreen", "model", "drift", str(model), "--audit",
                          str(tmp_path / "ok.sqlite")], capture_output=True, text=True)
    assert res.returncode == 0 and "agrees with the target" in res.stdout
