"""Is a model file's calibration one that a real calibration could have produced?

Range and finiteness checks (``model_checks.LIMITS``) let through values that are finite yet
absurd, and each of these loaded and *cleared* a handgun bag (issue 32): ``alarm_loc`` 1000, a
legacy ``scan_threshold`` 1e308, ``ref_area`` 1e-300, ``scan_far`` 1e-300 - every one a threshold
that no bag can reach. So after the field ranges: fields are checked against each other, and the
thresholds that screening will apply are computed here, as screening computes them, and must sit
inside the benign score distribution that the calibration records (its patch-score quantiles). A
file that fails is refused on load, with the fields named; screening never sees it.

The alarm rule's level formula lives here (the lowest layer that needs it); ``alarm.py`` uses it.
"""
from __future__ import annotations

import math
from typing import Any

# The score powers the area fit chooses among (alarm.fit_area_model); 0 is the log score.
POWERS = (0.0, 0.5, 1.0, 2.0, 3.0)
# What a calibration can target: a bag rate below 1e-4 needs > 20 000 benign bags for a usable
# interval (metrics.min_bags), one above 0.5 alarms on most benign bags; patch rates the same way.
SCAN_FAR_RANGE = (1e-4, 0.5)
PATCH_FAR_RANGE = (1e-6, 0.5)
MAX_AREA = 1e10  # px^2: 50x the largest scan the readers accept by default (200 Mpx)
# A bag's alarm threshold is a high quantile of its patches' maxima: above the benign patch median,
# and measured at most a few times the recorded 99.9th percentile (default model 1.08x). Ten times
# leaves room for heavy tails while refusing every level that only a tampered file would hold.
SPREAD = 10.0


def area_threshold(power: float, loc: float, scale: float, ref_area: float, far: float, area: float) -> float:
    """t(a) = inverse_power(loc + scale * (ln(a / ref_area) - ln(-ln(1 - far)))): the raw score that
    a benign bag of ``area`` px^2 reaches with probability ``far`` (alarm.py's rule). Returns inf
    where the level overflows, nan where it is undefined; never raises."""
    try:
        y = loc + scale * (math.log(area / ref_area) - math.log(-math.log1p(-far)))
        if power == 0:
            return math.exp(y)
        if power == 1:
            return y
        return max(y, 0.0) ** (1.0 / power)
    except OverflowError:
        return math.inf
    except (ValueError, ZeroDivisionError):
        return math.nan


def legacy_area_params(cal: Any, stride: int) -> tuple[float, float, float] | None:
    """(loc, scale, ref_area) of the area rule derived from a legacy calibration (power 1), or None
    when it cannot be derived: an exponential patch tail between the 99th and 99.9th percentiles
    gives the Gumbel scale; the old scan threshold anchors the level at the old bags' mean area."""
    q99, q999 = cal.quantiles.get("0.99"), cal.quantiles.get("0.999")
    if not (cal.scan_aggregation == "max" and cal.n_scans > 0 and cal.n_patches > 0 and q99 and q999
            and q999 > q99):
        return None
    scale = (q999 - q99) / math.log(10.0)
    ref = cal.n_patches / cal.n_scans * (cal.stride or stride) ** 2
    loc = cal.scan_threshold + scale * math.log(-math.log1p(-cal.scan_far))
    return loc, scale, ref


def score_ceiling(train: Any) -> float:
    """The highest score the model can give a patch, inf where it is unbounded: R is a mean of
    |x - x_hat| (<= 2) or its square (<= 4) in [-1, 1]; L (weight 1 - λ) has no bound; the density
    prior adds at most its weight times its scale."""
    if train.lam < 1.0:
        return math.inf
    return (2.0 if train.recon == "l1" else 4.0) + train.density * train.density_scale


def check_calibration(cal: Any, patch_size: int, stride: int, ceiling: float = math.inf) -> None:
    """ValueError naming the field(s) of Calibration ``cal`` that no real calibration produces.
    ``patch_size``/``stride``: the model's; ``ceiling``: score_ceiling of its scoring config."""
    _check_rates(cal)
    lo, hi = _benign_span(cal.quantiles)
    if cal.alarm_rule == "area":
        _check_area_fields(cal, patch_size)
    elif cal.n_scans > 0 and cal.n_patches < cal.n_scans:  # each bag has at least one patch
        raise ValueError(f"calibration.n_patches {cal.n_patches} is fewer than calibration.n_scans "
                         f"{cal.n_scans}: a calibration scores at least one patch per bag")
    hi = min(hi, ceiling)
    _in_span("calibration.patch_threshold", cal.patch_threshold, lo, hi)
    for area, value, fields in _alarm_levels(cal, stride):
        _in_span(fields, value, lo, hi, f" (the alarm threshold for a bag of {area:.6g} px^2)" if area else "")


def _check_rates(cal: Any) -> None:
    for name, (a, b) in (("scan_far", SCAN_FAR_RANGE), ("patch_far", PATCH_FAR_RANGE)):
        v = getattr(cal, name)
        if not a <= v <= b:
            raise ValueError(f"calibration.{name}: {v!r} is outside [{a:g}, {b:g}], the rates a calibration can target")
    if not cal.far_lo <= cal.far_hi:
        raise ValueError(f"calibration.far_lo {cal.far_lo:g} is above calibration.far_hi {cal.far_hi:g}")


def _check_area_fields(cal: Any, patch_size: int) -> None:
    if cal.alarm_power not in POWERS:
        raise ValueError(f"calibration.alarm_power: {cal.alarm_power!r} is not one of the fitted powers {POWERS}")
    if not patch_size ** 2 <= cal.ref_area <= MAX_AREA:
        raise ValueError(f"calibration.ref_area: {cal.ref_area!r} px^2 is not a bag's area (a median benign bag "
                         f"covers from one {patch_size}-px patch to {MAX_AREA:g} px^2)")
    if not cal.area_max <= MAX_AREA:
        raise ValueError(f"calibration.area_max: {cal.area_max!r} px^2 is above {MAX_AREA:g} px^2")
    if cal.n_scans < 3:  # calibrate_bags needs 3 bags to count each one left out of its own fit
        raise ValueError(f"calibration.n_scans: {cal.n_scans} bags cannot fit the area rule (at least 3)")
    if cal.n_alarmed > cal.n_scans:
        raise ValueError(f"calibration.n_alarmed {cal.n_alarmed} exceeds calibration.n_scans {cal.n_scans}")
    if not cal.quantiles:
        raise ValueError("calibration.quantiles: an area-rule calibration records its benign patch quantiles")


def _benign_span(quantiles: dict[str, float]) -> tuple[float, float]:
    """[lowest recorded benign quantile, SPREAD x the highest]; (0, inf) when none is recorded."""
    if not quantiles:
        return 0.0, math.inf
    try:
        pairs = sorted((float(k), v) for k, v in quantiles.items())
    except ValueError:
        raise ValueError(f"calibration.quantiles: keys {sorted(quantiles)} are not probabilities") from None
    values = [v for _, v in pairs]
    if not all(0.0 < p < 1.0 for p, _ in pairs) or min(values) < 0 or values != sorted(values):
        raise ValueError(f"calibration.quantiles: {dict(pairs)} is not a distribution of scores (probabilities "
                         "in (0, 1), scores >= 0 and rising with the probability)")
    return values[0], SPREAD * values[-1]


def _alarm_levels(cal: Any, stride: int) -> list[tuple[float, float, str]]:
    """(area, threshold, fields it comes from) at a quarter, 1x and 4x the reference area - the
    levels `model info` quotes - or the constant bag threshold (area 0)."""
    if cal.alarm_rule == "area":
        params = (cal.alarm_power, cal.alarm_loc, cal.alarm_scale, cal.ref_area)
        fields = (f"calibration.alarm_loc {cal.alarm_loc:.6g}, alarm_scale {cal.alarm_scale:.6g}, alarm_power "
                  f"{cal.alarm_power:g}, ref_area {cal.ref_area:.6g}, scan_far {cal.scan_far:g}")
    else:
        derived = legacy_area_params(cal, stride)
        if derived is None:
            return [(0.0, cal.scan_threshold, "calibration.scan_threshold")]
        params = (1.0, *derived[:2], derived[2])
        fields = "calibration.scan_threshold (with the quantiles, n_patches and n_scans the rule is derived from)"
    ref = params[3]
    return [(a, area_threshold(*params, cal.scan_far, a), fields) for a in (ref / 4, ref, ref * 4)]


def _in_span(fields: str, value: float, lo: float, hi: float, what: str = "") -> None:
    if not (math.isfinite(value) and value > 0 and lo <= value <= hi):
        span = (f"outside the benign scores the calibration records ({lo:.6g} to {hi:.6g}: its lowest quantile "
                f"to {SPREAD:g}x its highest, and no more than the model can score)" if lo > 0 else
                f"outside (0, {hi:.6g}], the scores the model can give")
        raise ValueError(f"{fields}: gives {value:.6g}{what}, {span}: a real calibration cannot produce it")
