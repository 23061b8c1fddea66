"""Which part of a synthetic IED does a flagged patch land on? (issue 12)

The test set's masks label an IED as one instance. Here each IED test bag is rendered again from its
seed with the drawing primitives wrapped so that every component gets its own mask label: the
explosive block (with its tape), the battery, the detonator, the wires and the timer board. The
re-rendered image must equal the stored scan bit for bit (checked), so the labels belong to the bag
that was scored. Per component and model: the share of components with a flagged patch at the
benign 1 % patch threshold (the evaluation's rule: a patch sees a part if >= 10 % of it is that part
or it holds >= INSTANCE_SHARE of the part), and the patch AUC of the part's patches vs every benign
test patch.

    python benchmarks/checks/ied_components.py --test /tmp/xs_synth/test --seed 2002 \
        --calib /tmp/xs_synth/calib/benign --models models/default.xsm [more.xsm ...]
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from xscreen.config import ScreenConfig
from xscreen.evaluate import truth
from xscreen.metrics import threshold_for_far
from xscreen.pipeline import screen
from xscreen.scan import list_scans, load_scan
from xscreen.scoring import Scorer
from xscreen.train.selection import anomaly_auc
from xscreen.synth import bags, threats

# the order of ied()'s drawing calls, per primitive (threats.ied): rect 0-1 block and tape, 2-4
# battery case, cells, snap; 5-6 timer board; line 0-1 detonator tube and charge, 2-5 wires
PARTS = ("block", "battery", "detonator", "wires", "timer")
_RECT = (0, 0, 1, 1, 1, 4, 4)
_LINE = (2, 2, 3, 3, 3, 3)


def render_parts(seed: int) -> bags.SynthBag:
    """synth_bag(seed, threat=True) with every IED's mask split by component: label 10 k + 1 + part
    index for IED number k (other threats keep label k)."""
    state = {"k": 0, "rect": 0, "line": 0}
    orig_rect, orig_line, orig_ied = threats.rect, threats.line, threats.THREATS["ied"]

    def counted(fn, kind, table):
        def wrapped(cv, *a, **kw):
            if state["k"]:
                cv.tag = 10 * state["k"] + 1 + table[state[kind]]
                state[kind] += 1
            return fn(cv, *a, **kw)
        return wrapped

    def ied(cv, p, rng):
        state.update(k=cv.tag, rect=0, line=0)
        try:
            orig_ied(cv, p, rng)
        finally:
            state["k"] = 0

    threats.rect, threats.line = counted(orig_rect, "rect", _RECT), counted(orig_line, "line", _LINE)
    bags.THREATS["ied"] = ied
    try:
        return bags.synth_bag(seed, threat=True)
    finally:
        threats.rect, threats.line, bags.THREATS["ied"] = orig_rect, orig_line, orig_ied


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--seed", type=int, required=True, help="the test set's dataset seed")
    ap.add_argument("--calib", type=Path, required=True)
    ap.add_argument("--models", type=Path, nargs="+", required=True)
    ap.add_argument("--stride", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ied_components.json"))
    args = ap.parse_args()
    cfg = ScreenConfig(stride=args.stride, maps=False)
    scorers = [Scorer(m, device="cpu") for m in args.models]
    size = scorers[0].patch_size
    th = []
    for s in scorers:
        calib = [screen(load_scan(p), s, cfg) for p in list_scans(args.calib)]
        th.append(threshold_for_far(np.concatenate([r.score_grid.ravel()[~r.air_grid.ravel()] for r in calib]), 0.01))
    benign = [[screen(load_scan(p), s, cfg) for s in scorers] for p in list_scans(args.test / "benign")]
    b_scores = [np.concatenate([runs[i].score_grid.ravel()[~runs[i].air_grid.ravel()] for runs in benign])
                for i in range(len(scorers))]
    labels = list(csv.DictReader(open(args.test / "labels.csv", newline="")))
    hits = [{p: [] for p in PARTS} for _ in scorers]
    part_scores = [{p: [] for p in PARTS} for _ in scorers]
    n_ied = 0
    for row in labels:
        if row["label"] != "threat" or "ied" not in row["threat_types"].split(";"):
            continue
        stem = row["stem"]
        bag = render_parts(bags.bag_seed(args.seed, "threat", int(stem.rsplit("_", 1)[1])))
        scan = load_scan(next(p for p in list_scans(args.test / "threat") if p.stem == stem))
        if not np.array_equal(bag.scan.channels, scan.channels):
            raise SystemExit(f"{stem}: re-rendered bag differs from the stored scan (wrong --seed or generator)")
        runs = [screen(scan, s, cfg) for s in scorers]
        rows, cols = runs[0].score_grid.shape
        origins = np.array([(r * args.stride, c * args.stride) for r in range(rows) for c in range(cols)])
        live = ~runs[0].air_grid.ravel()
        for k in np.unique(bag.mask[bag.mask > 10] // 10):
            n_ied += 1
            for j, part in enumerate(PARTS):
                inst = truth.Instance(int(10 * k + 1 + j), part, int((bag.mask == 10 * k + 1 + j).sum()))
                if inst.area == 0:
                    continue
                sel = truth.instance_patches(bag.mask, inst, origins, size, 0.1) & live
                for i, r in enumerate(runs):
                    s = r.score_grid.ravel()[sel]
                    hits[i][part].append(bool((s >= th[i]).any()))
                    part_scores[i][part].append(s)
    out = []
    for i, m in enumerate(args.models):
        res = {"model": m.name, "ieds": n_ied, "threshold": round(th[i], 5), "parts": {}}
        for part in PARTS:
            if not hits[i][part]:
                continue
            t = np.concatenate(part_scores[i][part])
            b = b_scores[i]
            res["parts"][part] = {"n": len(hits[i][part]), "hit": round(float(np.mean(hits[i][part])), 2),
                                  "patches": int(len(t)),
                                  "patch_auc": round(anomaly_auc(b, t), 3)}
        out.append(res)
        print(json.dumps(res), flush=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
