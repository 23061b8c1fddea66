"""Calibration on held-out benign scans screened at the operating stride (xscreen model calibrate)."""
import subprocess
import sys

import numpy as np
import pytest

from screen_fixtures import dual_scan, save_tiny_model
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
    c = result.calibration
    assert c.n_scans == 6 and c.n_patches == patches.size
    assert c.patch_threshold == pytest.approx(np.quantile(patches, 0.9), rel=1e-5)
    assert c.scan_threshold == pytest.approx(np.quantile(scans, 0.8), rel=1e-5)


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
    assert read_meta(model)[0].calibration.n_scans == 6


def test_cli_refuses_a_foreign_model_file(tmp_path, setup):
    _, folder = setup
    bad = tmp_path / "bad.xsm"
    bad.write_bytes(b"not a model")
    res = subprocess.run([sys.executable, "-m", "xscreen", "model", "calibrate", str(bad), str(folder)],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "bad.xsm" in res.stderr
