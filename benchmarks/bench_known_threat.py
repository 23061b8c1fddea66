"""Known-threat score vs the anomaly score alone (issue 29 Part 2), measured honestly.

The head (xscreen/known_threat) is trained on benign synth bags and TIP images of them made with a
TIP library drawn by ``synth.threats`` (tip.build_library); the fusion's benign tails are fitted on
other benign bags; thresholds are set on a third set of benign bags (5 % bag alarm rate, bag score =
its highest patch at stride 32: a constant-threshold stand-in for the area-adjusted alarm rule), and
everything is measured on a fourth set and TIP images of it. Tests:
 (a) a second, independently written threat family (benchmarks/_threat_family2.py) the library
     never saw; (a') synth's own threats (the library's generator: NOT held out, shown for contrast);
 (b) one category left out of the library (head retrained without it), measured on that category
     (FTIs from another library seed).
Per test and score: patch AUC, scan AUC, and the share of threats with a threat patch at or above the
bag threshold (= inside an alarm region of an alarmed bag under a constant rule).

    python benchmarks/bench_known_threat.py --out /tmp/kt   [--smoke]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _threat_family2 import FAMILY2, family2_fti  # noqa: E402

from xscreen.evaluate.truth import patch_coverage  # noqa: E402
from xscreen.known_threat.fuse import Fusion, TailMap  # noqa: E402
from xscreen.known_threat.head import HeadConfig, head_logits, scan_patches, tip_patch_set, train_head  # noqa: E402
from xscreen.metrics import roc_auc  # noqa: E402
from xscreen.scoring import Scorer  # noqa: E402
from xscreen.synth import synth_bag  # noqa: E402
from xscreen.synth.bags import bag_seed  # noqa: E402
from xscreen.tip import Library, build_library, project, schedule  # noqa: E402
from xscreen.tip.fti import TipError  # noqa: E402

STRIDE, COVER = 32, 0.1


def bags(seed: int, n: int, width: int):
    return [synth_bag(bag_seed(seed, "benign", i), width=width).scan for i in range(n)]


def score_bag(scan, scorer: Scorer, heads: dict, mask=None):
    """Per-patch anomaly scores, per-head logits, and threat flags (coverage >= COVER) when ``mask``."""
    x, origins, _ = scan_patches(scan, scorer.preprocess, scorer.patch_size, STRIDE, 0.95)
    a = scorer.score(x, keep_reconstructions=False).scores.float().cpu().numpy()
    k = {name: head_logits(h, x).numpy() for name, h in heads.items()}
    thr = None if mask is None else patch_coverage(mask, origins, scorer.patch_size) >= COVER * scorer.patch_size ** 2
    return a, k, thr


def tip_set(scans, ftis, rng_seed: int):
    """One TIP image per (bag, FTI) pair drawn round-robin: (scan, mask, category)."""
    out = []
    for i, scan in enumerate(scans):
        for j in range(2):
            f = ftis[(2 * i + j) % len(ftis)]
            rng = np.random.default_rng([rng_seed, i, j])
            try:
                p = project(scan, f, schedule(scan, f, rng), rng=rng)
            except TipError:
                continue
            out.append((p.scan, p.mask, f.category))
    return out


def measure(benign, threats, fusion: Fusion | None, head: str | None, bag_thr: dict):
    """benign/threats: lists of score_bag outputs -> {score: {patch_auc, scan_auc, found, n}}."""
    res = {}
    for name in ("anomaly", "head", "fused"):
        if name != "anomaly" and head is None:
            continue

        def s(a, k):
            return a if name == "anomaly" else k[head] if name == "head" else fusion.fuse(a, k[head])
        neg_p = np.concatenate([s(a, k) for a, k, _ in benign])
        pos_p = np.concatenate([s(a, k)[t] for a, k, t in threats if t.any()])
        neg_b = np.array([s(a, k).max() for a, k, _ in benign])
        pos_b = np.array([s(a, k).max() for a, k, _ in threats])
        found = [bool(t.any() and (s(a, k)[t] >= bag_thr[name]).any()) for a, k, t in threats]
        res[name] = {"patch_auc": roc_auc(np.r_[np.zeros(neg_p.size), np.ones(pos_p.size)], np.r_[neg_p, pos_p]),
                     "scan_auc": roc_auc(np.r_[np.zeros(neg_b.size), np.ones(pos_b.size)], np.r_[neg_b, pos_b]),
                     "found": int(sum(found)), "n": len(found),
                     "benign_alarm": float(np.mean(neg_b >= bag_thr[name]))}
    return res


def thresholds(cal, fusion, head):
    """5 % benign bag alarm rate on the calibration bags' maxima, per score."""
    q = lambda v: float(np.quantile(v, 0.95))  # noqa: E731
    out = {"anomaly": q([a.max() for a, _, _ in cal])}
    if head is not None:
        out["head"] = q([k[head].max() for _, k, _ in cal])
        out["fused"] = q([fusion.fuse(a, k[head]).max() for a, k, _ in cal])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/default.xsm")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--train-bags", type=int, default=16)
    ap.add_argument("--tail-bags", type=int, default=10)
    ap.add_argument("--cal-bags", type=int, default=20)
    ap.add_argument("--test-bags", type=int, default=20)
    ap.add_argument("--per-category", type=int, default=8)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--leave-out", default="knife,ied")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness, not the science")
    args = ap.parse_args(argv)
    if args.smoke:
        args.train_bags, args.tail_bags, args.cal_bags, args.test_bags = 2, 2, 3, 2
        args.per_category, args.width, args.steps, args.leave_out = 1, 256, 5, "knife"
    t0 = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    scorer = Scorer(args.model, device="cpu", precision="fp32")
    lib = build_library(args.out / "libA", per_category=args.per_category, seed=21)
    heldout = build_library(args.out / "libB", per_category=max(2, args.per_category // 2), seed=22)
    train, tail = bags(7007, args.train_bags, args.width), bags(7008, args.tail_bags, args.width)
    cal, test = bags(7009, args.cal_bags, args.width), bags(7010, args.test_bags, args.width)
    pre, size = scorer.preprocess, scorer.patch_size
    hcfg = HeadConfig(steps=args.steps)
    variants = {"all": lib.ftis}
    for c in args.leave_out.split(","):
        variants[f"no_{c}"] = [f for f in lib.ftis if f.category != c]
    heads, manifests = {}, {}
    for name, ftis in variants.items():
        data = tip_patch_set(train, Library(lib.path, ftis), pre, size, hcfg)
        heads[name] = train_head(data, size, pre.channels, hcfg)
        manifests[name] = sorted(data.fti_ids)
        print(f"head {name}: {int(data.y.sum())} positive / {int((data.y == 0).sum())} benign patches, "
              f"{len(data.fti_ids)} FTIs, {time.time() - t0:.0f} s", flush=True)
    tails = [score_bag(s, scorer, heads) for s in tail]
    ta = TailMap.fit(np.concatenate([a for a, _, _ in tails]))
    fusions = {n: Fusion(ta, TailMap.fit(np.concatenate([k[n] for _, k, _ in tails]))) for n in heads}
    cal_s = [score_bag(s, scorer, heads) for s in cal]
    ben_s = [score_bag(s, scorer, heads) for s in test]
    rng = np.random.default_rng(5)
    fam2 = [family2_fti(c, rng) for c in FAMILY2 for _ in range(max(2, args.per_category // 2))]
    tests = {"a_family2": ("all", tip_set(test, fam2, 1)),
             "a'_synth_same_generator": ("all", [(b.scan, b.mask, "synth") for b in
                                                 (synth_bag(bag_seed(7011, "threat", i), threat=True, width=args.width)
                                                  for i in range(args.test_bags))])}
    for c in args.leave_out.split(","):
        tests[f"b_left_out_{c}"] = (f"no_{c}", tip_set(test, [f for f in heldout.ftis if f.category == c], 2))
        tests[f"b_left_out_{c}_family2"] = (f"no_{c}", tip_set(test, [f for f in fam2 if f.category == c], 3))
    results = {}
    for tname, (head, items) in tests.items():
        thr = thresholds(cal_s, fusions[head], head)
        th_s = [score_bag(s, scorer, heads, (m > 0)) for s, m, _ in items]
        results[tname] = {"head": head, "n_threat_images": len(items),
                          "by_score": measure(ben_s, th_s, fusions[head], head, thr)}
        print(tname, json.dumps(results[tname]), flush=True)
    doc = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "seconds": time.time() - t0, "manifests": manifests, "results": results,
           "torch_threads": torch.get_num_threads()}
    (args.out / "bench_known_threat.json").write_text(json.dumps(doc, indent=1))
    print(f"done in {time.time() - t0:.0f} s -> {args.out / 'bench_known_threat.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
