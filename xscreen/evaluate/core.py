"""``evaluate_model``: screen labelled benign and threat scans with ``pipeline.screen`` (the same path
as the product) and measure patch-, scan- and pixel-level ranking quality and detection at the
calibrated thresholds.

Patch level: threat patches (mask overlap, see ``truth.threat_patches``) of threat bags against all
non-air patches of benign bags; patches of threat bags away from the threat are left out, since
their label is uncertain (bags share clutter). Scan level: a scan's score is the max or the top-k
mean of its non-air patch scores. Pixel level: per-pixel heat vs mask over pixels covered by a
non-air patch (air would inflate the AUC for free), subsampled per scan to bound memory.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from xscreen.config import ScreenConfig
from xscreen.evaluate import truth
from xscreen.evaluate.annotations import Annotations, TruthMatch, discover, load_annotations
from xscreen.evaluate.result import EvalResult, LevelResult, TypeResult
from xscreen.metrics import average_precision, roc_auc, roc_curve, scan_score
from xscreen.pipeline import ScreenFailure, Screening, collect_paths, resolve_thresholds, screen_paths
from xscreen.scan import ScanError
from xscreen.scoring import Scorer


@dataclass(frozen=True)
class EvalConfig:
    screen: ScreenConfig = ScreenConfig()
    overlap: float = 0.1  # share of a patch the threat must cover for a threat patch
    top_k: int = 5  # for the top-k mean scan score
    pixels_per_scan: int = 20_000  # pixel-level AUC subsample per scan
    labels_csv: Path | None = None  # None: <threat_dir>/../labels.csv where present
    boxes_dir: Path | None = None  # a folder or one file; None: <threat_dir>/../boxes where present
    box_format: str = "xywh"  # of box lists that do not say (COCO is xywh, VOC/YOLO say by format)
    seed: int = 0


@dataclass(frozen=True)
class EvalProgress:
    done: int
    total: int
    path: str
    split: str  # "benign" | "threat"
    ok: bool
    fault: str = ""


@dataclass
class _Acc:
    """Everything gathered scan by scan; lists of small per-scan arrays."""

    patch: dict[int, list[np.ndarray]] = field(default_factory=lambda: {0: [], 1: []})
    # label, max, topk, alarm, the alarm rule's own statistic (max / this bag's alarm threshold)
    scans: list[tuple[int, float, float, bool, float]] = field(default_factory=list)
    pix_scores: list[np.ndarray] = field(default_factory=list)
    pix_labels: list[np.ndarray] = field(default_factory=list)
    instances: list[tuple[str, bool, bool]] = field(default_factory=list)  # type, review level, in alarm region
    scan_types: list[tuple[list[str], bool]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    masked_threat_scans: int = 0
    boxes_outside: int = 0


def _origins(s: Screening) -> np.ndarray:
    rows, cols = s.score_grid.shape
    return np.array([(r * s.stride, c * s.stride) for r in range(rows) for c in range(cols)], np.int64)


def _object_pixels(s: Screening) -> np.ndarray:
    """(H, W) bool: pixels covered by at least one non-air patch."""
    rows, cols = s.air_grid.shape
    p = s.patch_size
    cover = np.zeros((rows * s.stride + p, cols * s.stride + p), bool)
    for r, c in zip(*np.nonzero(~s.air_grid)):
        cover[r * s.stride:r * s.stride + p, c * s.stride:c * s.stride + p] = True
    return cover[:s.height, :s.width]


def _add_pixels(acc: _Acc, s: Screening, mask: np.ndarray | None, n: int, seed: int) -> None:
    idx = np.flatnonzero(_object_pixels(s))
    if idx.size > n:
        idx = np.random.default_rng(seed).choice(idx, n, replace=False)
    acc.pix_scores.append(s.heat.ravel()[idx])
    acc.pix_labels.append(np.zeros(idx.size, np.int8) if mask is None else (mask.ravel()[idx] > 0).astype(np.int8))


def _add_scan(acc: _Acc, s: Screening, label: int, mask: np.ndarray | None, types: list[str],
              cfg: EvalConfig, n: int, pixels: bool) -> None:
    """Fold one screened scan into ``acc``; ``pixels``: pixel masks are in use (boxes are too coarse
    for a pixel-level measure), so collect pixel scores."""
    scores = s.score_grid.ravel()
    non_air = ~s.air_grid.ravel()
    live = scores[non_air]
    acc.scans.append((label, scan_score(live, "max"), scan_score(live, "topk", cfg.top_k), bool(s.alarm),
                      float(s.scan_rel) if live.size else 0.0))
    if label == 0:
        acc.patch[0].append(live)
        if pixels:
            _add_pixels(acc, s, None, cfg.pixels_per_scan, cfg.seed + n)
        return
    acc.scan_types.append((types, bool(s.alarm)))
    if mask is None:
        return
    acc.masked_threat_scans += 1
    origins = _origins(s)
    acc.patch[1].append(scores[truth.threat_patches(mask, origins, s.patch_size, cfg.overlap) & non_air])
    alarm_cells = _alarm_cells(s)
    for inst in truth.instances(mask, types):
        seen = truth.instance_patches(mask, inst, origins, s.patch_size, cfg.overlap) & non_air
        acc.instances.append((inst.type, bool((scores[seen] >= s.threshold).any()),
                              bool((alarm_cells & seen).any())))
    if pixels:
        _add_pixels(acc, s, mask, cfg.pixels_per_scan, cfg.seed + n)


def _alarm_cells(s: Screening) -> np.ndarray:
    """(rows * cols,) bool: the cells of the bag's alarm regions - what the operator is shown as a
    threat (issue 29's "flagged"); none when the bag does not alarm."""
    out = np.zeros(s.score_grid.shape, bool)
    if s.alarm:
        for region in s.regions:
            if region.level == "alarm":
                for r, c in region.patches:
                    out[r, c] = True
    return out.ravel()


def _scorer_and_cfg(model: Any, cfg: ScreenConfig) -> tuple[Scorer, ScreenConfig, bool]:
    scorer = model if isinstance(model, Scorer) else Scorer(model, cfg.device, cfg.precision, cfg.batch_size)
    cfg = replace(cfg, gate=0.0)  # evaluation reads every patch score: the exact score everywhere
    calibrated = scorer.threshold is not None or cfg.threshold is not None
    # rankings (AUC, AP) need no threshold; screen() does, so an uncalibrated model gets a stand-in
    return scorer, cfg if calibrated else replace(cfg, threshold=1.0), calibrated


def evaluate_model(model: Any, benign_dir: str | Path, threat_dir: str | Path,
                   masks_dir: str | Path | None = None, cfg: EvalConfig = EvalConfig(),
                   annotations: Annotations | None = None) -> Iterator[EvalProgress | EvalResult]:
    """Yield an EvalProgress per scan, then the EvalResult. ``model``: file, LoadedModel or Scorer.
    ``annotations``: the ground truth, already loaded (the CLI loads it first to report what matches);
    None: ``masks_dir`` plus the boxes and labels.csv found next to ``threat_dir`` (or in ``cfg``).
    Unreadable scans are reported in the progress and the result, and skipped."""
    t0 = time.perf_counter()
    scorer, screen_cfg, calibrated = _scorer_and_cfg(model, cfg.screen)
    if annotations is None:
        boxes, labels = discover(Path(threat_dir), cfg.boxes_dir, cfg.labels_csv)
        annotations = load_annotations(None if masks_dir is None else Path(masks_dir), boxes, labels,
                                       cfg.box_format)  # type: ignore[arg-type]
    sets = [(0, collect_paths([benign_dir])), (1, collect_paths([threat_dir]))]
    total, acc, n = sum(len(p) for _, p in sets), _Acc(), 0
    if not sets[0][1] or not sets[1][1]:
        raise ValueError(f"need benign and threat scans: found {len(sets[0][1])} in {benign_dir}, "
                         f"{len(sets[1][1])} in {threat_dir}")
    for label, paths in sets:
        for item in screen_paths(paths, scorer, screen_cfg):
            n += 1
            fault = item.fault if isinstance(item, ScreenFailure) else ""
            if not fault:
                try:
                    s = item.screening
                    got = annotations.truth(item.path, s.height, s.width, s.scan_id)
                    acc.boxes_outside += got.boxes_outside
                    _add_scan(acc, s, label, got.mask, got.types, cfg, n, annotations.has_masks)
                except ScanError as exc:
                    fault = str(exc)
            if fault:
                acc.failures.append(fault)
            yield EvalProgress(n, total, str(item.path), ("benign", "threat")[label], not fault, fault)
    result = _result(acc, scorer, screen_cfg, calibrated, cfg, time.perf_counter() - t0)
    result.settings = _settings(benign_dir, threat_dir, annotations, annotations.match(sets[1][1]), screen_cfg,
                                cfg, scorer)
    result.settings["boxes_outside_scan"] = acc.boxes_outside
    yield result


def _settings(benign_dir, threat_dir, ann: Annotations, match: TruthMatch, screen_cfg: ScreenConfig,
              cfg: EvalConfig, scorer: Scorer) -> dict[str, Any]:
    src = ann.sources
    return {"benign": str(benign_dir), "threat": str(threat_dir), "masks": src.get("masks"),
            "boxes": src.get("boxes"), "labels": src.get("labels"),
            "truth": "masks" if ann.has_masks else "boxes" if "boxes" in src else "none",
            "matched": {k: v for k, v in asdict(match).items() if k != "unmatched"},
            "annotation_problems": list(ann.problems),
            "stride": screen_cfg.stride, "overlap": cfg.overlap, "top_k": cfg.top_k,
            "pixels_per_scan": cfg.pixels_per_scan, "device": str(scorer.device),
            "precision": scorer.precision.name}


def _level(name: str, neg: np.ndarray, pos: np.ndarray, note: str = "") -> tuple[LevelResult, Any]:
    if neg.size == 0 or pos.size == 0:
        return LevelResult(name, None, None, int(pos.size), int(neg.size), note or "needs both classes"), None
    y = np.r_[np.zeros(neg.size, np.int8), np.ones(pos.size, np.int8)]
    s = np.r_[neg, pos]
    return LevelResult(name, roc_auc(y, s), average_precision(y, s), int(pos.size), int(neg.size), note), \
        roc_curve(y, s)


def _types(acc: _Acc) -> list[TypeResult]:
    names = sorted({t for t, _, _ in acc.instances} | {t for ts, _ in acc.scan_types for t in ts})
    return [TypeResult(t, sum(1 for k, _, _ in acc.instances if k == t),
                       sum(1 for k, d, _ in acc.instances if k == t and d),
                       sum(1 for ts, _ in acc.scan_types if t in ts),
                       sum(1 for ts, a in acc.scan_types if t in ts and a),
                       sum(1 for k, _, f in acc.instances if k == t and f)) for t in names]


def _result(acc: _Acc, scorer: Scorer, scfg: ScreenConfig, calibrated: bool, cfg: EvalConfig,
            seconds: float) -> EvalResult:
    benign_p, threat_p = _cat(acc.patch[0]), _cat(acc.patch[1])
    sc = np.array([s[:3] + s[4:] for s in acc.scans], dtype=np.float64).reshape(-1, 4)
    neg, pos = sc[:, 0] == 0, sc[:, 0] == 1
    pix_s, pix_y = _cat(acc.pix_scores), _cat(acc.pix_labels)
    no_mask = "" if acc.masked_threat_scans else "no threat masks or boxes"
    levels = [_level("patch", benign_p, threat_p, no_mask), _level("scan_max", sc[neg, 1], sc[pos, 1]),
              _level(f"scan_top{cfg.top_k}", sc[neg, 2], sc[pos, 2]),
              _level("pixel", pix_s[pix_y == 0], pix_s[pix_y == 1], "" if pix_y.size else "needs masks"),
              # the statistic the alarm rule thresholds: a bag's highest score over its own (area-adjusted)
              # alarm threshold - what decides, where scan_max is the raw score the rule adjusts
              _level("scan_alarm_rule", sc[neg, 3], sc[pos, 3], "max / the bag's alarm threshold")]
    alarms = np.array([s[3] for s in acc.scans], bool)
    th = resolve_thresholds(scorer, scfg)
    cal = scorer.calibration if scfg.threshold is None else None  # an override has no target rate
    return EvalResult(
        model_id=scorer.model_id, calibrated=calibrated, threshold=th.patch, scan_threshold=th.scan,
        aggregation=th.aggregation, target_patch_far=cal.patch_far if cal else None,
        target_scan_far=cal.scan_far if cal else None,
        n_benign_scans=int(neg.sum()), n_threat_scans=int(pos.sum()),
        n_masked_threat_scans=acc.masked_threat_scans,
        levels=[lv for lv, _ in levels], types=_types(acc) if calibrated else [],
        benign_patch_far=_rate(benign_p >= th.patch, calibrated),
        threat_patch_detection=_rate(threat_p >= th.patch, calibrated),
        benign_scan_far=_rate(alarms[neg], calibrated), threat_scan_detection=_rate(alarms[pos], calibrated),
        failures=acc.failures, seconds=seconds,
        curves={lv.level: c for lv, c in levels if c is not None},
        benign_patch_scores=benign_p, threat_patch_scores=threat_p)


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _rate(flags: np.ndarray, calibrated: bool) -> float | None:
    return float(flags.mean()) if flags.size and calibrated else None
