"""Calibration on held-out benign scans screened at the operating stride (xscreen model calibrate)."""
import subprocess
import sys

import numpy as np
import pytest

from screen_fixtures import dual_scan, save_tiny_model
from xscreen.alarm import fit_area_model, loo_alarms, threshold_at
from xscreen.checkpoint import read_meta
from xscreen.config import ScreenConfig
from xscreen.evaluate.recalibrate import ScanCalibration, calibrate_on_scans, write_calibration
from xscreen.pipeline import screen
from xscreen.scan import load_scan, save_h5
from xscreen.scoring import Scorer


@pytest.fixture
def setup(tmp_path):
    model = save_tiny_model(tmp_path / "m.xsm")
    folder = tmp_path / "benign"
    folder.mkdir()
    for i in range(6):
        save_h5(dual_scan(96, 128, seed=i, box=(8 + 4 * i, 10, 60, 50), scan_id=f"b{i}"), folder / f"b{i}.h5")
    return model, folder


def test_thresholds_are_quantiles_of_the_screened_scores(setup):
    model, folder = setup
    result = [r for r in calibrate_on_scans(model, [folder], patch_far=0.1, scan_far=0.2, stride=16)][-1]
    assert isinstance(result, ScanCalibration) and result.failures == ()
    scorer = Scorer(model)
    grids = [screen(load_scan(p), scorer, ScreenConfig(stride=16, threshold=1.0)) for p in sorted(folder.glob("*.h5"))]
    patches = np.concatenate([g.score_grid[~g.air_grid] for g in grids])
    scans = np.array([g.score_grid[~g.air_grid].max() for g in grids])
    areas = np.array([g.area for g in grids])
    c = result.calibration
    assert c.n_scans == 6 and c.n_patches == patches.size
    assert c.patch_threshold == pytest.approx(np.quantile(patches, 0.9), rel=1e-5)
    # the alarm threshold is the area fit of the bag maxima, shown at the median area
    fit = fit_area_model(scans, areas)
    assert c.alarm_rule == "area" and c.ref_area == np.median(areas) and c.stride == 16
    assert c.scan_threshold == pytest.approx(threshold_at(fit, 0.2, fit.ref_area), rel=1e-5)
    assert c.version == 1 and c.n_alarmed == loo_alarms(scans, areas, 0.2, fit.ref_area)


def test_written_calibration_and_lambda_are_what_scoring_uses(setup):
    model, folder = setup
    result = list(calibrate_on_scans(model, [folder], stride=32, lam=1.0))[-1]
    write_calibration(model, result)
    meta, _ = read_meta(model)
    assert meta.train.lam == 1.0 and meta.calibration == result.calibration
    assert meta.card.evaluation["scan_calibration"]["stride"] == 32
    assert Scorer(model).lam == 1.0 and Scorer(model).threshold == pytest.approx(result.calibration.patch_threshold)


def test_cli_reports_bad_scans_and_exits_nonzero(setup):
    model, folder = setup
    (folder / "broken.h5").write_bytes(b"junk")
    res = subprocess.run([sys.executable, "-m", "xscreen", "model", "calibrate", str(model), str(folder)],
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stderr[-1500:]
    assert "broken.h5" in res.stderr and "6 scans" in res.stdout
    # the achieved rate with its exact interval, and a warning: 6 bags cannot pin down 5 %
    assert "benign bags alarmed" in res.stdout and "95 % interval" in res.stdout
    assert "warning: only 6 benign bags" in res.stderr and "at least 40" in res.stderr
    assert read_meta(model)[0].calibration.n_scans == 6


def test_cli_refuses_a_foreign_model_file(tmp_path, setup):
    _, folder = setup
    bad = tmp_path / "bad.xsm"
    bad.write_bytes(b"not a model")
    res = subprocess.run([sys.executable, "-m", "xscreen", "model", "calibrate", str(bad), str(folder)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "bad.xsm" in res.stderr


def test_writing_bumps_the_version_and_keeps_the_history(setup, tmp_path):
    model, folder = setup
    write_calibration(model, list(calibrate_on_scans(model, [folder], stride=16))[-1])
    second = list(calibrate_on_scans(model, [folder], stride=16, scan_far=0.1))[-1]
    assert second.calibration.version == 2
    write_calibration(model, second, out=tmp_path / "v2.xsm")
    assert read_meta(model)[0].calibration.version == 1  # --out leaves the original alone
    meta, _ = read_meta(tmp_path / "v2.xsm")
    hist = meta.card.calibration_history
    assert [h["version"] for h in hist] == [1, 2] and hist[1]["target"] == 0.1
    assert hist[1]["n_bags"] == 6 and hist[1]["source"] == "6 benign scans"


def _audit_from_screenings(db, screenings, decisions):
    from xscreen.audit import AuditLog, Decision, machine_fields

    with AuditLog(db) as log:
        for i, (s, d) in enumerate(zip(screenings, decisions)):
            for step, dec in enumerate(d.split(">")):  # "suspect>clear": marked suspect, then amended
                amends = log.rows()[-1]["id"] if step else None
                log.record(Decision("op", s.scan_id, f"{i:064x}", s.model_id, s.threshold, dec, 1.0,
                                    amends=amends, **machine_fields(s)))


def test_from_audit_uses_only_cleared_bags_scored_by_this_model(setup, tmp_path):
    from xscreen.evaluate.recalibrate import calibrate_from_audit

    model, folder = setup
    write_calibration(model, list(calibrate_on_scans(model, [folder], stride=16))[-1])
    scorer = Scorer(model)
    grids = [screen(load_scan(p), scorer, ScreenConfig(stride=16)) for p in sorted(folder.glob("*.h5"))]
    db = tmp_path / "audit.sqlite"
    _audit_from_screenings(db, grids, ["clear", "clear", "suspect", "suspect>clear", "clear", "unresolved"])
    result = calibrate_from_audit(model, db, scan_far=0.2)
    used = [0, 1, 4]  # cleared and never suspect
    fit = fit_area_model(np.array([grids[i].scan_score for i in used]), np.array([grids[i].area for i in used]))
    c = result.calibration
    assert c.n_scans == 3 and c.version == 2 and c.source == "audit: 3 cleared bags"
    assert c.scan_threshold == pytest.approx(threshold_at(fit, 0.2, fit.ref_area), rel=1e-6)
    assert c.patch_threshold == scorer.threshold  # no patch scores in the audit: review level kept
    # a bag scored at another stride (another scoring id) is left out, and said why
    other = [screen(load_scan(p), scorer, ScreenConfig(stride=32)) for p in sorted(folder.glob("*.h5"))]
    _audit_from_screenings(tmp_path / "other.sqlite", other, ["clear"] * 6)
    with pytest.raises(ValueError, match="0 usable cleared bags"):
        calibrate_from_audit(model, tmp_path / "other.sqlite")


def test_from_audit_leaves_out_bags_screened_coarse_to_fine(setup, tmp_path):
    """Fast screening scores only the patches near hot ones exactly, so a cleared bag's highest score
    may be a coarse stand-in: the audit records the mode and the refit leaves those bags out."""
    from xscreen.audit import AuditLog
    from xscreen.evaluate.recalibrate import calibrate_from_audit, cleared_bags

    model, folder = setup
    write_calibration(model, list(calibrate_on_scans(model, [folder], stride=16))[-1])
    scorer = Scorer(model)
    paths = sorted(folder.glob("*.h5"))
    full = [screen(load_scan(p), scorer, ScreenConfig(stride=16)) for p in paths[:3]]
    fast = [screen(load_scan(p), scorer, ScreenConfig(stride=16, cascade=0.5)) for p in paths[3:]]
    db = tmp_path / "audit.sqlite"
    _audit_from_screenings(db, full + fast, ["clear"] * 6)
    with AuditLog(db, create=False) as log:
        rows = log.rows()
        assert [r["cascade"] for r in rows] == [0.0] * 3 + [0.5] * 3
        assert log.verify().ok
        result = calibrate_from_audit(model, db, scan_far=0.2)
        scoring_id = rows[0]["threshold_version"].rsplit(".", 1)[0]  # "<scoring id>.<version>"
        _, _, skipped = cleared_bags(rows, scoring_id)
    assert result.calibration.n_scans == 3 and result.calibration.source == "audit: 3 cleared bags"
    assert len(skipped) == 3 and all("fast screening" in why for why in skipped)


def test_cli_from_audit_writes_a_new_version(setup, tmp_path):
    model, folder = setup
    write_calibration(model, list(calibrate_on_scans(model, [folder], stride=16))[-1])
    scorer = Scorer(model)
    grids = [screen(load_scan(p), scorer, ScreenConfig(stride=16)) for p in sorted(folder.glob("*.h5"))]
    db = tmp_path / "audit.sqlite"
    _audit_from_screenings(db, grids, ["clear"] * 6)
    out = tmp_path / "site.xsm"
    res = subprocess.run([sys.executable, "-m", "xscreen", "model", "calibrate", str(model), "--from-audit",
                          str(db), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-1500:]
    assert "from audit: 6 cleared bags" in res.stdout and "warning: only 6" in res.stderr
    meta, _ = read_meta(out)
    assert meta.calibration.version == 2 and len(meta.card.calibration_history) == 2
    info = subprocess.run([sys.executable, "-m", "xscreen", "model", "info", str(out)],
                          capture_output=True, text=True).stdout
    assert "history    v1" in info and "history    v2" in info and "achieved" in info
    res = subprocess.run([sys.executable, "-m", "xscreen", "model", "calibrate", str(model)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "--from-audit" in res.stderr
