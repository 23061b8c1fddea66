"""Which thresholds a screening applies: the review level and the bag alarm rule (``alarm.py``),
from the model's calibration or the screening's overrides, and the version string they carry; and
the level one bag is held to (``bag_level``): its area's threshold inside the calibrated range of
areas, bag-sized sections beyond it, nothing to reach for an empty (all-air) tray."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from xscreen.alarm import AlarmRule, rule_for
from xscreen.config import ScreenConfig
from xscreen.scoring import Scorer


@dataclass(frozen=True)
class Thresholds:
    """The review level (regions, heat) and the bag alarm rule, as screening applies them."""

    patch: float
    patch_far: float | None
    rule: AlarmRule
    version: str  # calibration version ("v0" for an override or an uncalibrated model)

    @property
    def scan(self) -> float:
        """The alarm threshold at the calibration's reference area (the constant one otherwise)."""
        return self.rule.threshold(self.rule.fit.ref_area) if self.rule.fit else float(self.rule.constant)

    @property
    def aggregation(self) -> str:
        return "max"  # a region's score is its highest patch; the bag's is its highest region


@dataclass(frozen=True)
class BagLevel:
    """The alarm threshold one bag is held to, and how it was set."""

    threshold: float  # raw region score at which the bag alarms
    sections: int  # 1: the whole bag under the rule; n > 1: n bag-sized sections; 0: empty tray (all air)
    notice: str = ""  # what the operator is told when it is not the plain case


EMPTY_NOTICE = "empty tray: every patch is air, so nothing was screened and the bag cannot alarm"


def bag_level(th: Thresholds, area: float) -> BagLevel:
    """The level for a bag whose scored (non-air) patches cover ``area`` px^2.

    Why sections: the area rule's threshold grows with ln(area), and far beyond the areas it was
    calibrated on that extrapolation failed open (issue 32: a handgun bag tiled to 213x the reference
    area got 0.177 against its 0.157 and cleared). So a larger scan is held to what n consecutive
    bag-sized sections, each of area / n within the calibrated range, would each be held to: one
    threshold, as every section has the same share. The scan alarms if any section does, so its
    benign alarm rate is that of n bags, 1 - (1 - far)^n - and the notice says so."""
    rule = th.rule
    if area <= 0:  # no region can exist; the reference level is shown, never compared
        return BagLevel(th.scan, 0, EMPTY_NOTICE)
    if area <= rule.area_hi:
        return BagLevel(rule.threshold(area), 1)
    n = math.ceil(area / rule.area_hi)
    share = area / n
    t = rule.threshold(share)
    ref = rule.fit.ref_area  # type: ignore[union-attr]  (area_hi is finite only for a fitted rule)
    notice = (f"scan area {area:.4g} px^2 is {area / ref:.0f}x the calibration's reference bag, beyond its "
              f"calibrated range (up to {rule.area_hi:.4g} px^2): screened as {n} consecutive sections of "
              f"{share:.4g} px^2, each under the calibrated rule (alarm threshold {t:.4g}); the scan alarms if "
              f"a section does, so a benign scan this size alarms with about {1 - (1 - rule.far) ** n:.0%} "
              f"probability ({rule.far:.0%} per section)")
    return BagLevel(t, n, notice)


def resolve_thresholds(scorer: Scorer, cfg: ScreenConfig) -> Thresholds:
    """cfg overrides win; else the model's calibration (alarm.rule_for: per-area thresholds). An
    uncalibrated model needs a threshold; without a scan threshold the bag then alarms at it."""
    cal = scorer.calibration
    patch = cfg.threshold if cfg.threshold is not None else scorer.threshold
    if patch is None:
        raise ValueError(f"model {scorer.model_id} has no calibrated threshold: pass a positive threshold")
    far = cal.patch_far if (cal is not None and cfg.threshold is None) else None
    if cfg.scan_threshold is not None:
        rule = AlarmRule(0.0, constant=cfg.scan_threshold, note="override: no target rate")
    elif cal is not None and cfg.threshold is None:
        rule = rule_for(cal, cfg.stride)
    else:
        rule = AlarmRule(0.0, constant=patch, note="override: the bag alarms at the review level")
    for what, value in (("patch threshold", patch), ("scan threshold", 1.0 if rule.constant is None else rule.constant)):
        # a NaN or infinite threshold never alarms: it must stop the run, not clear every bag
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{what} {value} is not a positive finite number")
    version = cal.version if (cal is not None and cfg.threshold is None and cfg.scan_threshold is None) else 0
    return Thresholds(float(patch), far, rule, f"v{version}")


# Score options beyond λ and R's form (issue 12); each enters the id only when switched on, so a
# model's id does not change when a later version adds an option it does not use.
SCORE_OPTIONS = ("score_inpaint", "recon_window", "density", "density_scale")


def scoring_id(weights_id: str, train: Any, preprocess: Any, stride: int, lam: float | None = None) -> str:
    """12 hex digits over what a bag's score depends on (weights, λ, R's form and the other score
    options of ``train``, the input map, stride): recalibrating from the audit uses only scores that
    this model would give again. ``lam`` overrides train.lam (a Scorer's λ may be set apart)."""
    import hashlib
    import json

    options = {k: getattr(train, k) for k in SCORE_OPTIONS if getattr(train, k, 0)}
    key = [weights_id, float(train.lam if lam is None else lam), str(train.recon), asdict(preprocess), int(stride)]
    key += [options] if options else []
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]


def threshold_version(scorer: Scorer, stride: int, version: str) -> str:
    """'<scoring id>.<version>', e.g. '3f2a9c0d1b7e.v2' (audit rows carry it)."""
    loaded = scorer.loaded
    weights = getattr(loaded, "weights_id", "") or scorer.checksum
    return f"{scoring_id(weights, loaded.meta.train, scorer.preprocess, stride, lam=scorer.lam)}.{version}"
