"""Which thresholds a screening applies: the review level and the bag alarm rule (``alarm.py``),
from the model's calibration or the screening's overrides, and the version string they carry."""
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
