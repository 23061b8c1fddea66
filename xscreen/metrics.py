"""Threshold calibration and ranking metrics; pure numpy, so ``train`` can use it without the pipeline.

Conventions: a score is "more anomalous" when larger; a sample is flagged when score >= threshold
(DESIGN.md: score / threshold >= 1 => flagged). Labels are 0 = benign (negative), 1 = threat.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from xscreen.config import Calibration

Aggregation = Literal["max", "topk"]
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)


@dataclass(frozen=True)
class RocCurve:
    """Points of the ROC curve, from (0, 0) to (1, 1); ``thresholds[i]`` gives (fpr[i], tpr[i])
    when flagging score >= threshold (thresholds[0] = +inf)."""

    fpr: np.ndarray  # (K,)
    tpr: np.ndarray  # (K,)
    thresholds: np.ndarray  # (K,)


@dataclass(frozen=True)
class PrCurve:
    """Precision-recall points, one per distinct score, in order of decreasing threshold."""

    precision: np.ndarray  # (K,)
    recall: np.ndarray  # (K,)
    thresholds: np.ndarray  # (K,)


def _scores(x: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError(f"{what}: no scores given")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: scores contain NaN or infinity")
    return a


def _far(value: float, what: str) -> float:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{what} must be in (0, 1), got {value}")
    return float(value)


def threshold_for_far(scores: np.ndarray, far: float) -> float:
    """The (1 - far) quantile of benign ``scores`` (N,): a fresh benign sample from the same
    distribution is flagged (score >= threshold) with probability ~= far."""
    s = _scores(scores, "benign scores")
    return float(np.quantile(s, 1.0 - _far(far, "false-alarm rate")))


def scan_score(patch_scores: np.ndarray, aggregation: Aggregation = "max", top_k: int = 5) -> float:
    """One scan's score from its non-air patch scores (N,): the max, or the mean of the top-k
    (less sensitive to one noisy patch). A scan with no scored patch (all air) scores 0."""
    s = np.asarray(patch_scores, dtype=np.float64).ravel()
    if s.size == 0:
        return 0.0
    if aggregation == "max":
        return float(s.max())
    if aggregation == "topk":
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        k = min(top_k, s.size)
        return float(np.partition(s, s.size - k)[s.size - k:].mean())
    raise ValueError(f"unknown aggregation {aggregation!r} (use 'max' or 'topk')")


def scan_scores_by_index(patch_scores: np.ndarray, scan_index: np.ndarray,
                         aggregation: Aggregation = "max", top_k: int = 5) -> np.ndarray:
    """Aggregate patch scores (N,) to one score per scan, grouped by ``scan_index`` (N,) int.
    Returns (M,) in order of increasing scan index (only scans that have patches)."""
    s = np.asarray(patch_scores, dtype=np.float64).ravel()
    idx = np.asarray(scan_index).ravel()
    if s.shape != idx.shape:
        raise ValueError(f"{s.size} patch scores but {idx.size} scan indices")
    return np.array([scan_score(s[idx == i], aggregation, top_k) for i in np.unique(idx)])


def calibrate(patch_scores: np.ndarray, scan_scores: np.ndarray, patch_far: float = 0.01,
              scan_far: float = 0.05, *, aggregation: Aggregation = "max", top_k: int = 5) -> Calibration:
    """Thresholds from held-out *benign* scores: patch scores (N,) and per-scan aggregated scores (M,)
    (aggregated with ``aggregation``/``top_k``, recorded so screening aggregates the same way)."""
    p = _scores(patch_scores, "benign patch scores")
    s = _scores(scan_scores, "benign scan scores")
    quantiles = {str(q): float(np.quantile(p, q)) for q in QUANTILES}
    return Calibration(
        patch_threshold=threshold_for_far(p, patch_far), patch_far=float(patch_far),
        scan_threshold=threshold_for_far(s, scan_far), scan_far=float(scan_far),
        scan_aggregation=aggregation, top_k=int(top_k), quantiles=quantiles,
        n_patches=int(p.size), n_scans=int(s.size))


def _binary(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).ravel()
    s = _scores(scores, "scores")
    if y.shape != s.shape:
        raise ValueError(f"{y.size} labels but {s.size} scores")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (benign) or 1 (threat)")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise ValueError("need both benign (0) and threat (1) samples; got only "
                         + ("threat" if y.all() else "benign"))
    return y, s


def _ranks(s: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    avg = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(s.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Exact area under the ROC curve (Mann-Whitney U; a tie counts one half)."""
    y, s = _binary(labels, scores)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    u = _ranks(s)[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (true positives, false positives) at each distinct threshold, descending."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    last = np.r_[np.flatnonzero(s_sorted[1:] != s_sorted[:-1]), s.size - 1]  # end of each tie group
    tp = np.cumsum(y_sorted)[last].astype(np.float64)
    fp = (last + 1) - tp
    return tp, fp, s_sorted[last]


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> RocCurve:
    y, s = _binary(labels, scores)
    tp, fp, thr = _counts(y, s)
    return RocCurve(fpr=np.r_[0.0, fp / fp[-1]], tpr=np.r_[0.0, tp / tp[-1]], thresholds=np.r_[np.inf, thr])


def pr_curve(labels: np.ndarray, scores: np.ndarray) -> PrCurve:
    y, s = _binary(labels, scores)
    tp, fp, thr = _counts(y, s)
    return PrCurve(precision=tp / (tp + fp), recall=tp / tp[-1], thresholds=thr)


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """AP = sum over thresholds of (R_n - R_(n-1)) * P_n, ties grouped (no interpolation)."""
    pr = pr_curve(labels, scores)
    return float(np.sum(np.diff(np.r_[0.0, pr.recall]) * pr.precision))


def rate_at(scores: np.ndarray, threshold: float) -> float:
    """Fraction of ``scores`` (N,) flagged at ``threshold`` (score >= threshold)."""
    s = _scores(scores, "scores")
    return float(np.mean(s >= threshold))


@dataclass(frozen=True)
class RateInterval:
    """k events in n trials: the rate k / n and its exact (Clopper-Pearson) two-sided interval."""

    k: int
    n: int
    lo: float
    hi: float
    confidence: float

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else float("nan")

    def __contains__(self, p: float) -> bool:
        return self.lo <= p <= self.hi


def clopper_pearson(k: int, n: int, confidence: float = 0.95) -> RateInterval:
    """Exact binomial interval for k of n: it never under-covers, which matters at the few alarms a
    benign calibration set yields (2 of 40 -> [0.6 %, 17 %]). n = 0 gives the vacuous [0, 1]."""
    from scipy.stats import beta  # scipy comes with scikit-image; imported here to keep metrics light

    if not (0 <= k <= n):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    a = (1.0 - _far(confidence, "confidence")) / 2.0
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1.0 - a, k + 1, n - k))
    return RateInterval(int(k), int(n), lo, hi, float(confidence))


def min_bags(far: float) -> int:
    """Benign bags a bag-level rate ``far`` needs before its threshold means much: about two
    expected alarms (the wizard's rule; 40 bags for 5 %)."""
    return int(np.ceil(2.0 / _far(far, "false-alarm rate")))
