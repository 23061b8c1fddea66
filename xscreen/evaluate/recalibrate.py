"""Calibrate a model's alarm threshold on held-out benign *bags*, screened as operators screen them,
or on the bags operators cleared (``--from-audit``).

Training calibrates on the validation patch store, tiled at the training stride. Screening tiles at
its own stride (default 32): a max over ~4x more patches is larger, so a scan threshold taken from
stride-64 patches under-states the bag false-alarm rate (measured on the default model: 13 % of
benign test bags alarmed against a 5 % target). Screening the benign scans through
``pipeline.screen`` at the operating stride removes that mismatch, and lets a site calibrate a
shipped model on its own benign bags. The alarm rule and its area-aware fit are ``alarm.py``'s.

From the audit: each decision row records the bag's highest region score, its scored area and the
threshold version (whose scoring id says which weights, λ and stride made the score). A bag counts
when its standing decision is *clear* and no decision on it was ever *suspect*, and its score was
made by this model as it scores now; its patches were not stored, so the review level is kept.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from xscreen.alarm import calibrate_bags
from xscreen.config import DENSITY_MAX, Calibration, ScreenConfig
from xscreen.pipeline import ScreenFailure, collect_paths, screen_paths
from xscreen.scoring import Scorer


@dataclass(frozen=True)
class CalibrationProgress:
    done: int
    total: int
    path: str
    fault: str = ""


@dataclass(frozen=True)
class ScanCalibration:
    calibration: Calibration
    lam: float
    stride: int
    failures: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # audit bags not used, with the reason
    density: tuple[float, float] | None = None  # (weight, scale) of the density prior to store; None: keep


def _next_version(model: Path) -> int:
    from xscreen.checkpoint import read_meta

    cal = read_meta(model)[0].calibration
    return (cal.version if cal is not None else 0) + 1


def calibrate_on_scans(model: Path, benign: Iterable[str | Path], *, patch_far: float = 0.01,
                       scan_far: float = 0.05, stride: int = 32, lam: float | None = None,
                       aggregation: str = "max", top_k: int = 5, device: str = "auto",
                       density: float | None = None) -> Iterator[CalibrationProgress | ScanCalibration]:
    """Screen every benign scan; yield progress, then the ScanCalibration (not yet written).
    ``aggregation``/``top_k`` are accepted for old callers; the rule's bag score is the max.
    ``density``: the density prior's weight to store (0 = off; None = keep the model's); its scale
    is measured on these same benign scans first (``benign_density_scale``)."""
    scorer = Scorer(model, device=device)
    if lam is not None:
        scorer.lam = float(lam)
    paths = collect_paths(benign)  # once: ``benign`` may be a one-shot iterator
    prior = None
    if density is not None:
        if not (math.isfinite(density) and 0.0 <= density <= DENSITY_MAX):
            raise ValueError(f"density weight {density} out of range [0, {DENSITY_MAX:g}]")
        scorer.density = 0.0
        scale = benign_density_scale(scorer, paths) if density > 0 else 0.0
        scorer.density, prior = density * scale, (float(density), scale)
    # the thresholds only shape regions, which calibration ignores; any positive value will do
    cfg = ScreenConfig(stride=stride, threshold=1.0, scan_threshold=1.0, device=device)
    patch_scores, bag_max, areas, failures = [], [], [], []
    for i, item in enumerate(screen_paths(paths, scorer, cfg)):
        if isinstance(item, ScreenFailure):
            failures.append(item.fault)
            yield CalibrationProgress(i + 1, len(paths), str(item.path), item.fault)
            continue
        s = item.screening
        if s.n_scored:  # an all-air bag has no region, so it can never alarm: it says nothing
            patch_scores.append(s.score_grid[~s.air_grid].astype(np.float64))
            bag_max.append(s.scan_score)
            areas.append(s.area)
        yield CalibrationProgress(i + 1, len(paths), str(item.path))
    if len(bag_max) < 3:
        raise ValueError(f"calibration needs at least 3 readable benign scans, got {len(bag_max)}")
    cal = calibrate_bags(np.concatenate(patch_scores), np.array(bag_max), np.array(areas),
                         patch_far=patch_far, scan_far=scan_far, stride=stride,
                         version=_next_version(Path(model)), source=f"{len(bag_max)} benign scans")
    yield ScanCalibration(cal, scorer.lam, stride, tuple(failures), density=prior)


def benign_density_scale(scorer: Scorer, paths: list[Path], per_bag: int = 256, seed: int = 0) -> float:
    """TrainConfig.density_scale measured on benign scans: up to ``per_bag`` random non-air patches of
    each (a stride-``size`` grid, the screening air rule), scored without the prior, against their
    mean density (loss.density_scale). Unreadable scans are left out (the screening pass names them)."""
    import torch

    from xscreen.loss import density_scale, patch_density
    from xscreen.patches import air_mask, air_value, tile
    from xscreen.preprocess import model_input
    from xscreen.scan import ScanError, load_scan

    rng = np.random.default_rng(seed)
    size, pre, air_t = scorer.patch_size, scorer.preprocess, ScreenConfig().air_threshold
    base, dens = [], []
    for path in paths:
        try:
            scan = load_scan(path)
            x = torch.from_numpy(model_input(scan, pre))
        except (ScanError, ValueError, OSError):
            continue
        t = tile(x, size, size, pad_value=air_value(pre))
        live = (~air_mask(t, air_t, pre)).flatten().nonzero()[:, 0].numpy()
        pick = np.sort(rng.permutation(live)[:per_bag])
        if not pick.size:
            continue
        p = t.view.reshape(-1, *t.view.shape[2:])[torch.from_numpy(pick)].contiguous()
        base.append(scorer.score(p, keep_reconstructions=False).scores.double().numpy())
        dens.append(patch_density(p, pre.kind).double().numpy())
    if not base:
        raise ValueError("the density prior's scale needs at least one readable benign scan with non-air patches")
    return density_scale(np.concatenate(base), np.concatenate(dens))


def cleared_bags(rows: Iterable[dict[str, Any]], scoring: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(scores (M,), areas (M,), reasons bags were left out) of the bags operators cleared whose
    score this scoring id made. A bag ever marked suspect is never used, even if later cleared;
    TIP events are not decisions (drift.final_decisions leaves them out) and a bag standing
    'unreadable' was never screened."""
    from xscreen.drift import final_decisions

    scores, areas, skipped = [], [], []
    for (_, scan_id), bag in final_decisions(rows).items():
        if any(r["decision"] == "suspect" for r in bag):
            continue  # possibly a threat: not benign evidence, whatever came after
        last = bag[-1]
        if last["decision"] != "clear":
            continue
        scored = [r for r in bag if r.get("bag_score") is not None and r.get("bag_area")]
        if not scored:
            skipped.append(f"{scan_id}: decision predates recorded scores")
        elif not str(scored[-1].get("threshold_version") or "").startswith(scoring + "."):
            skipped.append(f"{scan_id}: scored by another model, λ or stride")
        elif float(scored[-1].get("cascade") or 0.0) > 0.0:
            # coarse-to-fine screening scores only patches near hot ones exactly; a cleared bag's
            # highest score can be a coarse stand-in, which would bias the fit of the benign scores
            skipped.append(f"{scan_id}: screened with fast screening (bag score not exact)")
        else:
            scores.append(float(scored[-1]["bag_score"]))
            areas.append(float(scored[-1]["bag_area"]))
    return np.array(scores), np.array(areas), skipped


def calibrate_from_audit(model: Path, audit_db: str | Path, *, scan_far: float = 0.05,
                         stride: int | None = None) -> ScanCalibration:
    """Refit the alarm threshold on the cleared bags in ``audit_db`` (not yet written)."""
    from xscreen.audit import AuditLog
    from xscreen.checkpoint import load_model
    from xscreen.pipeline import scoring_id

    loaded = load_model(model)
    meta, old = loaded.meta, loaded.meta.calibration
    if old is None:
        raise ValueError(f"{model}: not calibrated; calibrate on benign scans first (the audit "
                         "holds no patch scores for the review level)")
    stride = int(stride or old.stride or 32)
    sid = scoring_id(loaded.weights_id, meta.train, meta.preprocess, stride)
    with AuditLog(audit_db, create=False) as log:
        scores, areas, skipped = cleared_bags(log.rows(), sid)
    if scores.size < 3:
        raise ValueError(f"{audit_db}: {scores.size} usable cleared bags for this model at stride {stride} "
                         f"(scoring id {sid}); need at least 3 ({len(skipped)} left out)")
    fresh = calibrate_bags(np.array([old.patch_threshold]), scores, areas, patch_far=old.patch_far,
                           scan_far=scan_far, stride=stride, version=old.version + 1,
                           source=f"audit: {scores.size} cleared bags")
    keep = {k: getattr(old, k) for k in ("patch_threshold", "quantiles", "n_patches")}
    return ScanCalibration(dataclasses.replace(fresh, **keep), float(meta.train.lam), stride, (),
                           tuple(skipped))


def history_entry(cal: Calibration) -> dict[str, Any]:
    from xscreen.alarm import rule_for
    from xscreen.checkpoint import utc_now

    rule = rule_for(cal, cal.stride or 32)
    ref = rule.fit.ref_area if rule.fit else 0.0
    legacy = cal.alarm_rule == "legacy"  # no achieved rate was recorded before the area rule
    return {"version": cal.version, "time": utc_now(), "source": cal.source or "training / legacy",
            "rule": cal.alarm_rule, "target": cal.scan_far, "n_bags": cal.n_scans,
            "n_alarmed": None if legacy else cal.n_alarmed,
            "interval_95": None if legacy else [cal.far_lo, cal.far_hi],
            "threshold_at_ref_area": rule.threshold(ref), "ref_area": ref, "stride": cal.stride}


def write_calibration(model: Path, result: ScanCalibration, out: Path | None = None) -> str:
    """Store the calibration (and the λ it was made for) in the model file, or in a copy at ``out``;
    the card's calibration history gains an entry (the old calibration's too, if it had none).
    Returns the new checksum."""
    from xscreen.checkpoint import read_meta, update_model_meta

    meta, _ = read_meta(model)
    history = list(meta.card.calibration_history)
    if not history and meta.calibration is not None:
        history.append({**history_entry(meta.calibration), "time": meta.card.created})
    history.append(history_entry(result.calibration))
    if out is not None and Path(out).resolve() != Path(model).resolve():
        shutil.copyfile(model, out)
        model = Path(out)
    train = dataclasses.replace(meta.train, lam=result.lam)
    if result.density is not None:
        train = dataclasses.replace(train, density=result.density[0], density_scale=result.density[1])
    c = result.calibration
    note = {"scan_calibration": {"stride": result.stride, "lam": result.lam, "density": train.density,
                                 "density_scale": train.density_scale, "n_scans": c.n_scans,
                                 "n_patches": c.n_patches, "version": c.version, "source": c.source}}
    return update_model_meta(model, calibration=c, train=train, evaluation=note,
                             calibration_history=history)
