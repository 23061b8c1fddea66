import itertools

import numpy as np
import pytest

from xscreen import metrics
from xscreen.config import Calibration


def brute_auc(y, s):
    pos, neg = s[y == 1], s[y == 0]
    total = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return total / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auc_matches_pairwise_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    y[:2] = [0, 1]
    s = rng.integers(0, 6, 60).astype(float) + y * 0.7  # many ties
    assert metrics.roc_auc(y, s) == pytest.approx(brute_auc(y, s), abs=1e-12)


def test_auc_known_values():
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert metrics.roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert metrics.roc_auc([0, 1], [0.5, 0.5]) == 0.5


def test_roc_curve_area_equals_auc():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = rng.normal(size=300) + y + rng.integers(0, 3, 300)  # ties via rounding below
    s = np.round(s, 1)
    c = metrics.roc_curve(y, s)
    assert c.fpr[0] == 0 and c.tpr[0] == 0 and c.fpr[-1] == 1 and c.tpr[-1] == 1
    assert np.all(np.diff(c.fpr) >= 0) and np.all(np.diff(c.tpr) >= 0)
    trapz = float(np.sum(np.diff(c.fpr) * (c.tpr[1:] + c.tpr[:-1]) / 2))
    assert trapz == pytest.approx(metrics.roc_auc(y, s), abs=1e-12)
    # each threshold reproduces its point
    i = len(c.thresholds) // 2
    flagged = s >= c.thresholds[i]
    assert flagged[y == 1].mean() == pytest.approx(c.tpr[i])
    assert flagged[y == 0].mean() == pytest.approx(c.fpr[i])


def test_average_precision_known_and_brute():
    # sklearn's documented example: AP = 0.8333
    assert metrics.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.8333333, abs=1e-6)
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    y[:2] = [0, 1]
    s = rng.normal(size=80) + y  # continuous: no ties
    order = np.argsort(-s)
    hits = np.cumsum(y[order])
    brute = np.sum(hits[y[order] == 1] / (np.flatnonzero(y[order] == 1) + 1)) / y.sum()
    assert metrics.average_precision(y, s) == pytest.approx(brute)
    assert metrics.average_precision([0, 1, 1], [0.0, 1.0, 2.0]) == 1.0


@pytest.mark.parametrize("fn", [metrics.roc_auc, metrics.average_precision, metrics.roc_curve])
def test_one_class_is_a_clear_error(fn):
    with pytest.raises(ValueError, match="both benign"):
        fn([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only threat"):
        fn([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="labels"):
        fn([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="2 labels but 3"):
        fn([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        fn([0, 1], [0.1, np.nan])


def test_scan_score_aggregations():
    s = np.array([1.0, 5.0, 3.0, 4.0, 2.0])
    assert metrics.scan_score(s, "max") == 5.0
    assert metrics.scan_score(s, "topk", top_k=2) == 4.5
    assert metrics.scan_score(s, "topk", top_k=50) == 3.0
    assert metrics.scan_score(np.array([]), "max") == 0.0
    with pytest.raises(ValueError, match="aggregation"):
        metrics.scan_score(s, "median")
    idx = np.array([2, 2, 0, 0, 0])
    np.testing.assert_allclose(metrics.scan_scores_by_index(s, idx, "max"), [4.0, 5.0])


def _flag_rate_within_3_sigma(rate, far, n):
    sigma = np.sqrt(far * (1 - far) / n)
    # calibration sample's own quantile error adds about as much again as the test sample's
    assert abs(rate - far) <= 3 * np.sqrt(2) * sigma, (rate, far, sigma)


@pytest.mark.parametrize("seed", range(3))
def test_calibration_hits_target_far_on_held_out_data(seed):
    rng = np.random.default_rng(seed)
    calib_patches = rng.gamma(2.0, 1.0, 20000)
    calib_bags = rng.gamma(2.0, 1.0, (400, 50))
    calib_scans = np.array([metrics.scan_score(b, "topk", 5) for b in calib_bags])
    cal = metrics.calibrate(calib_patches, calib_scans, 0.01, 0.05, aggregation="topk", top_k=5)
    assert isinstance(cal, Calibration)
    assert cal.n_patches == 20000 and cal.n_scans == 400 and cal.scan_aggregation == "topk"
    assert set(cal.quantiles) == {"0.5", "0.9", "0.95", "0.99", "0.999"}
    assert cal.quantiles["0.99"] == pytest.approx(cal.patch_threshold)
    # the analytic 99% quantile of Gamma(2, 1) is 6.638
    assert cal.patch_threshold == pytest.approx(6.638, rel=0.05)

    test_patches = rng.gamma(2.0, 1.0, 20000)
    _flag_rate_within_3_sigma(metrics.rate_at(test_patches, cal.patch_threshold), 0.01, 20000)
    test_scans = np.array([metrics.scan_score(b, "topk", 5) for b in rng.gamma(2.0, 1.0, (2000, 50))])
    _flag_rate_within_3_sigma(metrics.rate_at(test_scans, cal.scan_threshold), 0.05, 2000)


def test_calibrate_rejects_bad_input():
    with pytest.raises(ValueError, match="no scores"):
        metrics.calibrate([], [1.0])
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        metrics.calibrate([1.0, 2.0], [1.0], patch_far=0.0)
    with pytest.raises(ValueError, match="NaN"):
        metrics.calibrate([1.0, np.nan], [1.0])
