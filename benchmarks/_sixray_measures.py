"""Scan-level and within-image measures for benchmarks/sixray.py (pure numpy; no model, no files).

Scan scores that grow with the number of patches (max, top-k mean) are flagged as size-biased;
``max@k`` (expected max over k random patches), a quantile and the mean do not grow with bag size.
Threats are among the darkest things in their bags, so a pooled within-image AUC partly measures
darkness; the darkness-matched AUC compares only inside/outside pairs of nearly equal darkness.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from _common import auc_ap

FAR = 0.05  # scan false-alarm rate the detection threshold is calibrated to

@dataclass
class Bag:
    name: str  # e.g. "positive/P00001.jpg"
    label: int  # 1 = threat
    width: int  # original pixels
    height: int
    patches: np.ndarray  # (K, 3, S, S) uint8
    origins: np.ndarray  # (K, 2) (y, x) in scaled pixels
    patch_dark: np.ndarray  # (K,) 1 - mean value of the patch
    patch_sat: np.ndarray  # (K,) mean HSV saturation of the patch
    brightness: float  # mean HSV value over non-air pixels
    saturation: float  # mean HSV saturation over non-air pixels


def aggregate(s: np.ndarray, how: str, k: int, rng: np.random.Generator, draws: int = 50) -> float:
    """Scan score from patch scores (K,). ``max``/``top5`` grow with K (size-biased); ``max@k`` is the
    expected max over k patches drawn without replacement (all K when K < k), ``q90``/``mean`` are
    count-free."""
    if len(s) == 0:
        return 0.0
    if how == "max":
        return float(s.max())
    if how == "top5":
        return float(np.sort(s)[-5:].mean())
    if how == "max@k":
        if len(s) <= k:
            return float(s.max())
        return float(np.mean([s[rng.choice(len(s), k, replace=False)].max() for _ in range(draws)]))
    if how == "q90":
        return float(np.quantile(s, 0.9))
    if how == "mean":
        return float(s.mean())
    raise ValueError(how)


AGGREGATIONS = ("max", "top5", "max@k", "q90", "mean")


def scan_rows(method: str, val_s: list[np.ndarray], ben_s: list[np.ndarray], thr_s: list[np.ndarray],
              k: int, seed: int) -> list[dict]:
    """Per aggregation: test AUC/AP, and detection at the threshold calibrated to 5 % scan FAR on
    the benign validation bags (with the false-alarm rate it actually gives on benign test bags)."""
    from xscreen.metrics import threshold_for_far

    rows = []
    for how in AGGREGATIONS:
        rng = np.random.default_rng(seed)
        v, b, t = ([aggregate(s, how, k, rng) for s in group] for group in (val_s, ben_s, thr_s))
        labels = np.r_[np.zeros(len(b)), np.ones(len(t))]
        auc, ap = auc_ap(labels, np.r_[b, t])
        thr = threshold_for_far(np.array(v), FAR)
        rows.append({"method": method, "score": how.replace("@k", f"@{k}"), "auc": auc, "ap": ap,
                     "detection_at_5pct_far": float(np.mean(np.array(t) >= thr)),
                     "test_far": float(np.mean(np.array(b) >= thr)), "size_independent": how not in ("max", "top5")})
    return rows


def trivial_rows(val: list[Bag], ben: list[Bag], thr: list[Bag]) -> list[dict]:
    """Scores that know nothing about threats. Oriented the way that separates (chosen on test: a
    trivial rule gets that for free), so AUC >= 0.5; the orientation is reported."""
    from xscreen.metrics import threshold_for_far

    feats = {"image area (px)": lambda b: b.width * b.height, "mean brightness (non-air)": lambda b: b.brightness,
             "mean saturation (non-air)": lambda b: b.saturation, "number of non-air patches": lambda b: len(b.patches)}
    rows = []
    for name, f in feats.items():
        v, b, t = (np.array([f(x) for x in g], float) for g in (val, ben, thr))
        labels = np.r_[np.zeros(len(b)), np.ones(len(t))]
        sign = 1.0 if auc_ap(labels, np.r_[b, t])[0] >= 0.5 else -1.0
        auc, ap = auc_ap(labels, sign * np.r_[b, t])
        cut = threshold_for_far(sign * v, FAR)
        rows.append({"method": "trivial", "score": f"{name}, {'higher' if sign > 0 else 'lower'} = threat",
                     "auc": auc, "ap": ap, "detection_at_5pct_far": float(np.mean(sign * t >= cut)),
                     "test_far": float(np.mean(sign * b >= cut)), "size_independent": "area" not in name
                     and "number" not in name})
    return rows


def box_masks(bag: Bag, boxes: list[dict], scale: float, size: int) -> np.ndarray:
    """(K,) fraction of each patch covered by the bag's threat boxes (scaled to the patch grid)."""
    h, w = round(bag.height * scale) + size, round(bag.width * scale) + size
    mask = np.zeros((h, w), bool)
    for b in boxes:
        x, y, bw, bh = (int(round(v * scale)) for v in b["box"])
        mask[y:y + bh, x:x + bw] = True
    return np.array([mask[y:y + size, x:x + size].mean() for y, x in bag.origins])


def darkness_matched_auc(scores: list[np.ndarray], dark: list[np.ndarray], inside: list[np.ndarray],
                         outside: list[np.ndarray], tol: float = 0.02) -> tuple[float, int]:
    """Share of (inside, outside) pairs of one image, |darkness difference| <= tol, that ``scores``
    rank inside-first (ties 1/2); and the number of pairs. Lists are per image."""
    good, n = 0.0, 0
    for s, d, i, o in zip(scores, dark, inside, outside):
        si, so, di, do = s[i], s[o], d[i], d[o]
        close = np.abs(di[:, None] - do[None, :]) <= tol
        if not close.any():
            continue
        cmp = (si[:, None] > so[None, :]) + 0.5 * (si[:, None] == so[None, :])
        good += float(cmp[close].sum())
        n += int(close.sum())
    return (good / n if n else float("nan")), n


def box_rows(named_scores: dict[str, list[np.ndarray]], thr: list[Bag], boxes: dict, scale: float,
             size: int, inside_min: float) -> list[dict]:
    """AUC of patches inside threat boxes (coverage >= inside_min) against patches with no box
    overlap, in the same boxed images; pooled, and the mean of per-image AUCs."""
    cover = {i: box_masks(b, boxes[b.name], scale, size) for i, b in enumerate(thr) if b.name in boxes}
    named = dict(named_scores)
    named["patch darkness (trivial)"] = [b.patch_dark for b in thr]
    named["patch saturation (trivial)"] = [b.patch_sat for b in thr]
    rows = []
    for name, scores in named.items():
        ys, ss, per_img = [], [], []
        for i, c in cover.items():
            keep = (c >= inside_min) | (c == 0)
            y, s = (c[keep] >= inside_min).astype(int), scores[i][keep]
            ys.append(y), ss.append(s)
            if 0 < y.sum() < len(y):
                per_img.append(auc_ap(y, s)[0])
        y, s = np.concatenate(ys), np.concatenate(ss)
        idx = list(cover)
        matched, pairs = darkness_matched_auc([scores[i] for i in idx], [thr[i].patch_dark for i in idx],
                                              [cover[i] >= inside_min for i in idx], [cover[i] == 0 for i in idx])
        rows.append({"method": name, "pooled_auc": auc_ap(y, s)[0], "pooled_ap": auc_ap(y, s)[1],
                     "darkness_matched_auc": matched, "matched_pairs": pairs,
                     "mean_image_auc": float(np.mean(per_img)), "n_images": len(per_img),
                     "n_inside": int(y.sum()), "n_outside": int((y == 0).sum())})
    return rows
