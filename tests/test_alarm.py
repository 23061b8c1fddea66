"""The one alarm rule and its area-aware calibration (xscreen/alarm.py), on cheap synthetic score
maps: no network, so thousands of bags take well under a second."""
import math

import numpy as np
import pytest

from xscreen.alarm import (AreaFit, alarm_probability, calibrate_bags, calibration_lines, covered_area,
                           fit_area_model, loo_alarms, rule_for, threshold_at)
from xscreen.config import Calibration
from xscreen.metrics import clopper_pearson, min_bags

STRIDE = 32
TARGET = 0.05


def score_maps(rng, n, rows, cols, tail="exponential"):
    """(n, rows, cols) benign patch scores: an exponential (or Gaussian) tail, clumped like overlapping
    patches (each cell is the max of a 2x2 block of a finer field, so neighbours share excursions)."""
    fine = rng.exponential(0.01, (n, rows + 1, cols + 1)) if tail == "exponential" else \
        np.abs(rng.normal(0.0, 0.01, (n, rows + 1, cols + 1)))
    cells = np.maximum.reduce([fine[:, :-1, :-1], fine[:, 1:, :-1], fine[:, :-1, 1:], fine[:, 1:, 1:]])
    return 0.05 + cells


def bag_max_and_area(maps):
    """Highest score and covered area, as the pipeline measures them (64-px patches at stride 32)."""
    n, rows, cols = maps.shape
    area = covered_area(np.ones((rows, cols), bool), 2 * STRIDE, STRIDE, 10 ** 6, 10 ** 6)
    return maps.reshape(n, -1).max(axis=1), np.full(n, area)


def calibration_set(rng, tail, per_size=200):
    """Benign bags from 1x to 4x the area of an 8x8-patch bag, as a site's handbags to suitcases."""
    parts = [bag_max_and_area(score_maps(rng, per_size, r, c, tail))
             for r, c in ((8, 8), (8, 12), (10, 12), (12, 12), (12, 16), (17, 17))]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def two_proportion_z(k1, n1, k2, n2):
    p = (k1 + k2) / (n1 + n2)
    return (k2 / n2 - k1 / n1) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))


@pytest.mark.parametrize("tail", ["exponential", "gaussian"])
def test_benign_bags_of_1x_and_4x_area_alarm_at_the_same_rate(tail):
    rng = np.random.default_rng(13)
    fit = fit_area_model(*calibration_set(rng, tail))
    n = 4000
    small_max, small_area = bag_max_and_area(score_maps(rng, n, 8, 8, tail))  # sees 9 x 9 stride cells
    large_max, large_area = bag_max_and_area(score_maps(rng, n, 17, 17, tail))  # 18 x 18: 4x the area
    assert large_area[0] == 4 * small_area[0]
    k_small = int(np.sum(small_max >= threshold_at(fit, TARGET, small_area[0])))
    k_large = int(np.sum(large_max >= threshold_at(fit, TARGET, large_area[0])))
    assert abs(two_proportion_z(k_small, n, k_large, n)) < 3.0, (k_small, k_large)
    for k in (k_small, k_large):  # and both near the target (the fit's own error included)
        assert 0.025 < k / n < 0.09, (k_small, k_large)
    # the same test catches the old rule: one threshold for every size alarms 4x bags far more often
    const = float(np.quantile(calibration_set(np.random.default_rng(1), tail)[0], 1 - TARGET))
    z_const = two_proportion_z(int(np.sum(small_max >= const)), n, int(np.sum(large_max >= const)), n)
    assert z_const > 6.0


def test_fit_recovers_a_known_area_law_and_its_probability_inverts_the_threshold():
    rng = np.random.default_rng(0)
    areas = rng.uniform(1e5, 4e5, 3000)
    # exact model: Gumbel(loc + scale ln(a / ref), scale) with loc 0.1, scale 0.01, ref 2e5
    m = 0.1 + 0.01 * np.log(areas / 2e5) + rng.gumbel(0.0, 0.01, areas.size)
    fit = fit_area_model(m, areas, ref_area=2e5)
    assert fit.power == pytest.approx(1.0) or abs(fit.loglik - fit_area_model(m, areas, 2e5).loglik) < 1e-9
    t = threshold_at(fit, TARGET, 3e5)
    assert t == pytest.approx(0.1 + 0.01 * (math.log(1.5) - math.log(-math.log(0.95))), rel=0.02)
    assert alarm_probability(fit, t, 3e5) == pytest.approx(TARGET, rel=1e-6)
    assert threshold_at(fit, TARGET, 4e5) > t > threshold_at(fit, TARGET, 1e5)


def test_degenerate_inputs_are_refused():
    with pytest.raises(ValueError, match="all equal"):
        fit_area_model(np.full(10, 0.3), np.full(10, 1e5))
    with pytest.raises(ValueError, match="areas positive"):
        fit_area_model(np.array([0.1, 0.2, 0.3]), np.array([1e5, 0.0, 1e5]))
    with pytest.raises(ValueError, match=">= 2 bags"):
        fit_area_model(np.array([0.1]), np.array([1e5]))


def test_calibration_reports_its_left_out_rate_with_an_exact_interval():
    rng = np.random.default_rng(3)
    m, a = calibration_set(rng, "exponential", per_size=20)
    patches = score_maps(rng, 50, 8, 8).ravel()
    cal = calibrate_bags(patches, m, a, patch_far=0.01, scan_far=TARGET, stride=STRIDE, version=4)
    assert cal.alarm_rule == "area" and cal.version == 4 and cal.n_scans == m.size == 120
    assert cal.n_alarmed == loo_alarms(m, a, TARGET, cal.ref_area)
    ci = clopper_pearson(cal.n_alarmed, cal.n_scans)
    assert (cal.far_lo, cal.far_hi) == pytest.approx((ci.lo, ci.hi))
    assert ci.lo <= TARGET <= ci.hi  # the left-out rate agrees with the target
    assert cal.patch_threshold == pytest.approx(np.quantile(patches, 0.99))
    assert cal.scan_threshold == pytest.approx(rule_for(cal, STRIDE).threshold(cal.ref_area))
    text = "\n".join(calibration_lines(cal))
    assert f"{cal.n_alarmed}/120 benign bags alarmed" in text and "warning" not in text


def test_clopper_pearson_matches_known_values_and_min_count_warns():
    ci = clopper_pearson(2, 40)
    assert (ci.lo, ci.hi) == pytest.approx((0.00611, 0.16920), abs=1e-5)
    assert clopper_pearson(0, 10).lo == 0.0 and clopper_pearson(10, 10).hi == 1.0
    assert min_bags(0.05) == 40 and min_bags(0.01) == 200
    rng = np.random.default_rng(5)
    m, a = calibration_set(rng, "exponential", per_size=4)  # 24 bags for a 5 % target
    cal = calibrate_bags(m, m, a, scan_far=TARGET)
    assert "warning    only 24 benign bags" in "\n".join(calibration_lines(cal))


def test_legacy_calibration_is_upgraded_from_its_patch_tail_or_held_constant():
    q = {"0.99": 0.07, "0.999": 0.09}
    old = Calibration(0.07, 0.01, 0.11, 0.05, "max", 5, q, n_patches=13300, n_scans=40)
    rule = rule_for(old, 32)
    assert rule.fit is not None and "legacy" in rule.note
    ref = 13300 / 40 * 32 ** 2  # the old bags' mean scored area
    assert rule.threshold(ref) == pytest.approx(0.11)  # the old threshold, at the old bags' size
    assert rule.threshold(4 * ref) > 0.11 > rule.threshold(ref / 4)
    assert rule.fit.scale == pytest.approx(0.02 / math.log(10))
    topk = Calibration(0.07, 0.01, 0.11, 0.05, "topk", 5, q, n_patches=13300, n_scans=40)
    assert rule_for(topk, 32).fit is None and rule_for(topk, 32).threshold(1e9) == 0.11
    assert "legacy constant" in "\n".join(calibration_lines(topk))


def test_area_rule_without_scale_is_refused_on_load():
    from dataclasses import replace

    from screen_fixtures import tiny_meta
    from xscreen.model_checks import check_consistency

    q = {"0.5": 0.02, "0.99": 0.07, "0.999": 0.09}
    bad = Calibration(0.07, 0.01, 0.11, 0.05, quantiles=q, n_patches=4000, n_scans=40, alarm_rule="area",
                      alarm_loc=0.08, alarm_scale=0.0, ref_area=1e5)
    with pytest.raises(ValueError, match="alarm_scale"):
        check_consistency(replace(tiny_meta(), calibration=bad))
    check_consistency(replace(tiny_meta(), calibration=replace(bad, alarm_scale=0.01)))
    assert isinstance(rule_for(replace(bad, alarm_scale=0.01), 32).fit, AreaFit)


def test_covered_area_counts_the_pixels_under_the_scored_patches():
    full = np.ones((8, 8), bool)
    assert covered_area(full, 64, 32, 10 ** 4, 10 ** 4) == 9 * 9 * 32 ** 2  # not 8 * 8 patches
    one = np.zeros((8, 8), bool)
    one[3, 4] = True
    assert covered_area(one, 64, 32, 10 ** 4, 10 ** 4) == 64 * 64
    assert covered_area(full, 64, 32, 250, 10 ** 4) == 8 * 9 * 32 ** 2  # clipped to a 250-px scan
    assert covered_area(np.ones((3, 3), bool), 32, 24, 10 ** 4, 10 ** 4) == 80 * 80  # gcd 8 cells
    assert covered_area(np.zeros((4, 4), bool), 64, 32, 500, 500) == 0.0


@pytest.mark.parametrize("power, loc", [(0.0, 1e6), (1.0, -5.0), (2.0, -1.0)])
def test_a_calibration_giving_no_usable_threshold_fails_the_bag(power, loc):
    from screen_fixtures import dual_scan, tiny_model
    from dataclasses import replace

    from xscreen.config import ScreenConfig
    from xscreen.pipeline import screen
    from xscreen.scoring import Scorer

    cal = Calibration(1e-6, 0.01, 0.1, 0.05, alarm_rule="area", alarm_power=power, alarm_loc=loc,
                      alarm_scale=0.01, ref_area=1e5)
    model = tiny_model()
    scorer = Scorer(replace(model, meta=replace(model.meta, calibration=cal)), device="cpu")
    with pytest.raises(ValueError, match="not a positive finite number"):
        screen(dual_scan(), scorer, ScreenConfig(stride=16))


def test_model_metadata_written_before_the_rule_still_loads_as_legacy():
    import json
    from dataclasses import replace

    from screen_fixtures import tiny_meta
    from xscreen.checkpoint import ModelMeta
    from xscreen.model_checks import check_consistency, check_fields

    old = Calibration(0.07, 0.01, 0.11, 0.05, "max", 5, {"0.99": 0.07, "0.999": 0.09}, 13300, 40)
    raw = json.loads(replace(tiny_meta(), calibration=old).to_json())
    new_fields = ("alarm_rule", "alarm_power", "alarm_loc", "alarm_scale", "ref_area", "stride", "version",
                  "n_alarmed", "far_lo", "far_hi", "source")
    for key in new_fields:
        del raw["calibration"][key]
    del raw["card"]["calibration_history"]
    meta = ModelMeta.from_json(json.dumps(raw))
    check_fields(meta)
    check_consistency(meta)
    assert meta.calibration.alarm_rule == "legacy" and meta.card.calibration_history == []
    assert "derived from a legacy calibration" in "\n".join(calibration_lines(meta.calibration))
