"""The bag alarm rule, and a calibration whose benign alarm rate does not grow with bag size.

Rule (DESIGN.md 'Decision'): a bag alarms if and only if one of its regions scores at or above the
alarm threshold for that bag. Regions are found at a lower review level; those below the alarm
threshold are "attention", never THREAT.

Why the threshold depends on the bag's area: with one fixed threshold on the highest patch, a bag
with 4x the patches has about 4x the chances of a benign excursion (issue 13: on SIXray the larger
benign bags out-scored the threat bags). Model: benign excursions above a high level y occur as a
Poisson process in scanned area, at rate exp(-(y - loc) / scale) / ref_area per px^2 (an
exponential tail, in the raw score or in its log). A bag of area a then has a Gumbel maximum with
location loc + scale * ln(a / ref_area) and scale ``scale``; both are fitted by maximum likelihood
to the maxima of benign bags of different sizes, and each bag is held to the level that a benign
bag of *its* area exceeds with the target probability f:

    t(a) = loc + scale * (ln(a / ref_area) - ln(-ln(1 - f)))

Fitting maxima rather than counting patches absorbs the clumping of overlapping patches (one
excursion lifts several neighbours). Which power of the score has the exponential tail (log, sqrt,
raw, square, cube: a Gaussian tail is exponential in the square) is chosen by likelihood in score
units, each power paying its Jacobian. The achieved rate is counted with each bag left out
of its own fit, so it is an out-of-sample number, reported with its Clopper-Pearson interval.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np

from xscreen.config import Calibration
from xscreen.metrics import QUANTILES, RateInterval, clopper_pearson, min_bags, threshold_for_far
# the level formula and the powers live with the load-time checks, which recompute the levels
from xscreen.model_checks.calibration import (PATCH_FAR_RANGE, POWERS, SCAN_FAR_RANGE, area_threshold,
                                              legacy_area_params)

# Power 2 makes a Gaussian tail exponential, 1 an exponential one; 0 is the log score (POWERS).
# The area law is verified from 1x to 4x the reference area (tests/test_alarm.py); a calibration
# whose own bags reached further records how far (Calibration.area_max).
AREA_SPAN = 4.0
LOO_MAX_BAGS = 2000  # above this, leaving each bag out costs more than it tells; in-sample count


@dataclass(frozen=True)
class AreaFit:
    """Gumbel fit of benign bag maxima with a log-area location shift, in score ** power units."""

    power: float  # the score enters as score ** power (log score for 0)
    loc: float
    scale: float
    ref_area: float  # px^2
    loglik: float  # in raw score units (Jacobian included), to compare transforms


@dataclass(frozen=True)
class AlarmRule:
    """What decides one bag: ``threshold(area)``. ``constant`` set: the same threshold for every
    area (an override, or a legacy calibration that cannot be upgraded); ``note`` says which."""

    far: float
    fit: AreaFit | None = None
    constant: float | None = None
    note: str = ""
    area_max: float = 0.0  # the largest calibration bag's area, px^2 (0: not recorded)

    def threshold(self, area: float) -> float:
        if self.fit is None:
            return float(self.constant)  # type: ignore[arg-type]
        return threshold_at(self.fit, self.far, area)

    @property
    def kind(self) -> str:
        return "area" if self.fit is not None else "constant"

    @property
    def area_hi(self) -> float:
        """Top of the calibrated range of bag areas (inf for a constant rule): beyond it a scan is
        screened as bag-sized sections (thresholds.bag_level), not by an extrapolated level."""
        if self.fit is None:
            return math.inf
        return max(self.area_max, AREA_SPAN * self.fit.ref_area)


def _forward(x: np.ndarray, power: float) -> np.ndarray:
    return np.log(x) if power == 0 else x ** power


def _log_jacobian(m: np.ndarray, power: float) -> float:
    """ln |dy/dm| summed: the density of m is the density of y times |dy/dm|."""
    if power == 1:
        return 0.0
    if power == 0:
        return -float(np.sum(np.log(m)))
    return float(np.sum(math.log(power) + (power - 1.0) * np.log(m)))


def _fit_one(y: np.ndarray, c: np.ndarray) -> tuple[float, float, float]:
    """(loc, scale, loglik) of y_i ~ Gumbel(loc + scale * c_i, scale). For a fixed scale the best
    loc is closed-form, so only the scale is searched (on a log grid, then refined)."""
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    spread = float(np.std(y))
    if not spread > 1e-9 * float(np.max(np.abs(y))):  # equal up to rounding
        raise ValueError("benign bag maxima are all equal: nothing to fit a threshold to")

    def profile(log_scale: float) -> tuple[float, float]:
        s = math.exp(log_scale)
        w = y / s - c
        loc_over_s = -(float(logsumexp(-w)) - math.log(y.size))
        z = w - loc_over_s
        return loc_over_s * s, float(np.sum(-math.log(s) - z - np.exp(-z)))

    lo, hi = math.log(spread * 1e-3), math.log(spread * 10.0)
    res = minimize_scalar(lambda v: -profile(v)[1], bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-6})
    loc, ll = profile(float(res.x))
    return loc, math.exp(float(res.x)), ll


def fit_area_model(bag_max: np.ndarray, areas: np.ndarray, ref_area: float | None = None) -> AreaFit:
    """bag_max (M,) benign bag maxima (raw scores), areas (M,) their scored areas in px^2 -> the
    best fit over the powers in POWERS. ``ref_area`` defaults to the median area."""
    m, a = np.asarray(bag_max, np.float64).ravel(), np.asarray(areas, np.float64).ravel()
    if m.shape != a.shape or m.size < 2:
        raise ValueError(f"need >= 2 bags with one area each, got {m.size} maxima and {a.size} areas")
    if not (np.all(np.isfinite(m)) and np.all(a > 0) and np.all(np.isfinite(a))):
        raise ValueError("bag maxima must be finite and areas positive")
    ref = float(np.median(a)) if ref_area is None else float(ref_area)
    c = np.log(a / ref)
    best = None
    for power in POWERS if np.all(m > 0) else (1.0,):
        try:
            loc, scale, ll = _fit_one(_forward(m, power), c)
        except ValueError:
            continue
        ll += _log_jacobian(m, power)
        if best is None or ll > best.loglik:
            best = AreaFit(power, loc, scale, ref, ll)
    if best is None:
        raise ValueError("benign bag maxima are all equal: nothing to fit a threshold to")
    return best


def covered_area(scored: np.ndarray, size: int, stride: int, height: int, width: int) -> float:
    """px^2 of the scan under the union of the scored patches, scored (rows, cols) bool.

    Why not n_scored * stride^2: a benign excursion is in the pixels and lifts every patch over it,
    so the chances grow with the pixels the patches see. An r x c block of 64-px patches at stride 32
    sees (r + 1)(c + 1) stride cells, not r * c; counting patches overstates how much bigger a large
    bag is than a small one (measured: 4x the patches alarmed at 3.2 % against 4.9 %)."""
    g = math.gcd(int(size), int(stride))
    k, s = size // g, stride // g  # patch side and step in g x g cells
    rows, cols = scored.shape
    cover = np.zeros(((rows - 1) * s + k, (cols - 1) * s + k), bool)
    r, c = np.nonzero(scored)
    for dr in range(k):
        for dc in range(k):
            cover[r * s + dr, c * s + dc] = True
    # padding past the scan's edge is not scan: cells are clipped to it (at most g - 1 px over)
    return float(cover[:-(-height // g), :-(-width // g)].sum() * g * g)


def threshold_at(fit: AreaFit, far: float, area: float) -> float:
    """The raw region score that a benign bag of ``area`` px^2 reaches with probability ``far``."""
    area = max(float(area), 1.0)  # an all-air bag has no region (thresholds.bag_level screens it as empty)
    t = area_threshold(fit.power, fit.loc, fit.scale, fit.ref_area, far, area)
    # a model file is untrusted: a level that could never alarm (inf) or always would (<= 0) is
    # refused for the bag, never applied (DESIGN.md: thresholds finite and positive)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"alarm threshold {t} for a bag of {area:.0f} px^2 is not a positive finite "
                         "number: the model's calibration is broken")
    return t


def alarm_probability(fit: AreaFit, score: float, area: float) -> float:
    """P(a benign bag of ``area`` has a region >= ``score``) under the fit."""
    y = float(_forward(np.float64(score), fit.power))
    z = (y - fit.loc) / fit.scale - math.log(max(area, 1.0) / fit.ref_area)
    return float(-math.expm1(-math.exp(-z)))


def loo_alarms(bag_max: np.ndarray, areas: np.ndarray, far: float, ref_area: float) -> int:
    """How many calibration bags alarm at the threshold fitted without them."""
    m, a = np.asarray(bag_max, np.float64), np.asarray(areas, np.float64)
    if m.size > LOO_MAX_BAGS or m.size < 3:
        fit = fit_area_model(m, a, ref_area)
        return int(sum(mi >= threshold_at(fit, far, ai) for mi, ai in zip(m, a)))
    keep = np.ones(m.size, bool)
    count = 0
    for i in range(m.size):
        keep[i] = False
        fit = fit_area_model(m[keep], a[keep], ref_area)
        count += int(m[i] >= threshold_at(fit, far, a[i]))
        keep[i] = True
    return count


def calibrate_bags(patch_scores: np.ndarray, bag_max: np.ndarray, areas: np.ndarray, *,
                   patch_far: float = 0.01, scan_far: float = 0.05, stride: int = 32, version: int = 1,
                   source: str = "benign scans") -> Calibration:
    """Area-rule Calibration from held-out benign bags: all their non-air patch scores (N,), each
    bag's highest score (M,) and scored area in px^2 (M,). ``scan_threshold`` holds the alarm
    threshold at the reference (median) area, for display; the review level is the patch quantile."""
    p = np.asarray(patch_scores, np.float64).ravel()
    for name, v, (lo, hi) in (("scan", scan_far, SCAN_FAR_RANGE), ("patch", patch_far, PATCH_FAR_RANGE)):
        if not lo <= v <= hi:  # the model file's check would refuse the result on load
            raise ValueError(f"{name} false-alarm rate {v:g} is outside [{lo:g}, {hi:g}]")
    fit = fit_area_model(bag_max, areas)
    k = loo_alarms(bag_max, areas, scan_far, fit.ref_area)
    ci = clopper_pearson(k, int(np.size(bag_max)))
    return Calibration(
        patch_threshold=threshold_for_far(p, patch_far), patch_far=float(patch_far),
        scan_threshold=threshold_at(fit, scan_far, fit.ref_area), scan_far=float(scan_far),
        scan_aggregation="max", quantiles={str(q): float(np.quantile(p, q)) for q in QUANTILES},
        n_patches=int(p.size), n_scans=ci.n, alarm_rule="area", alarm_power=fit.power,
        alarm_loc=fit.loc, alarm_scale=fit.scale, ref_area=fit.ref_area, stride=int(stride),
        version=int(version), n_alarmed=k, far_lo=ci.lo, far_hi=ci.hi, source=source,
        area_max=float(np.max(areas)))


def rule_for(cal: Calibration, stride: int) -> AlarmRule:
    """The rule a calibration stands for. A legacy calibration (written before the area rule) is
    upgraded where it can be, and the note says how; ``stride`` is the screening stride."""
    if cal.alarm_rule == "area":
        fit = AreaFit(cal.alarm_power, cal.alarm_loc, cal.alarm_scale, cal.ref_area, 0.0)
        return AlarmRule(cal.scan_far, fit=fit, note="area-adjusted", area_max=cal.area_max)
    derived = legacy_area_params(cal, stride)
    if derived is not None:
        loc, scale, ref = derived
        return AlarmRule(cal.scan_far, fit=AreaFit(1.0, loc, scale, ref, 0.0),
                         note="derived from a legacy calibration (tail of its patch quantiles, old scan "
                              "threshold at the mean bag area): recalibrate with `xscreen model calibrate`")
    return AlarmRule(cal.scan_far, constant=cal.scan_threshold,
                     note="legacy constant bag threshold (this calibration cannot be upgraded): larger "
                          "bags alarm more often; recalibrate with `xscreen model calibrate`")


def calibration_lines(cal: Calibration | None, stride: int = 32) -> list[str]:
    """What the model card says about the alarm: rule, levels, achieved rate and its interval."""
    if cal is None:
        return ["alarm      not calibrated: pass a threshold to screen"]
    rule = rule_for(cal, stride)
    lines = [f"alarm      a bag alarms iff a region reaches the alarm threshold; target {cal.scan_far:.1%} "
             f"of benign bags, {rule.note}"]
    if rule.fit is not None:
        f = rule.fit
        lines.append(f"           threshold {threshold_at(f, cal.scan_far, f.ref_area):.6g} at "
                     f"{f.ref_area:.0f} px^2, {threshold_at(f, cal.scan_far, f.ref_area / 4):.6g} at a "
                     f"quarter, {threshold_at(f, cal.scan_far, f.ref_area * 4):.6g} at 4x "
                     f"(Gumbel in {_power_name(f.power)}, scale {f.scale:.4g})")
        lines.append(f"           a scan over {rule.area_hi:.0f} px^2 (the calibrated range) is screened as "
                     "consecutive sections of at most that area, each under this rule")
    else:
        lines.append(f"           threshold {rule.constant:.6g} at every bag size")
    lines.append(f"review     regions from {cal.patch_threshold:.6g} (patch FAR {cal.patch_far:g}) "
                 "below the alarm threshold are 'attention'")
    if cal.alarm_rule == "area":
        lines.append("achieved   " + achieved_text(cal))
        warn = count_warning(cal.n_scans, cal.scan_far)
        if warn:
            lines.append("warning    " + warn)
    return lines


def _power_name(power: float) -> str:
    return "log score" if power == 0 else "score" if power == 1 else f"score^{power:g}"


def achieved(cal: Calibration) -> RateInterval:
    return RateInterval(cal.n_alarmed, cal.n_scans, cal.far_lo, cal.far_hi, 0.95)


def achieved_text(cal: Calibration) -> str:
    ci = achieved(cal)
    return (f"{ci.k}/{ci.n} benign bags alarmed ({ci.rate:.1%}, each left out of its own fit; 95 % "
            f"interval {ci.lo:.1%}-{ci.hi:.1%}); threshold version {cal.version}"
            + (f", from {cal.source}" if cal.source else ""))


def count_warning(n_bags: int, far: float) -> str:
    need = min_bags(far)
    if n_bags >= need:
        return ""
    return (f"only {n_bags} benign bags: a {far:.0%} bag rate needs at least {need} for a usable "
            "interval; calibrate on more")
