"""SIXray: the raw-pixel nearest-neighbour score (baselines.KnnBaseline) fused with the model's
inpainted score, and every score's darkness-matched AUC as the "inside a box" rule tightens.

A box is loose: a patch with 25 % of its area inside a threat's box may show none of the threat.
Reading the same scores with inside = coverage >= 0.5 / 0.75 / 1.0 says how much of the gap to a
perfect ranking is label noise of the protocol rather than the detector. Same arguments as
sixray_fusion.py (whose loading and scoring it uses):

  python benchmarks/checks/sixray_knn_fusion.py --seed 0 --state /tmp/xs_study/fixD_skipoff2/work/state.pt \
      --set outer_skips_off=2
  (×0.5 / 64 px: add --scale 0.5 --patch 64; the inpainted score is then read with its 16-px window)
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import ArrayPatches  # noqa: E402
from baselines import KnnBaseline  # noqa: E402
from detection_study import within_image  # noqa: E402
from sixray_fusion import scored_state  # noqa: E402


def main():
    d, val, thr = scored_state()
    knn = KnnBaseline(k=1).fit(ArrayPatches(d["train"]))
    val["kNN"] = knn.score(ArrayPatches(d["val"]))
    for t, p in zip(thr, d["threat"]):
        t["kNN"] = knn.score(ArrayPatches(p))
    if "Rin_l1_max16" in val:  # a 64-px patch: the window with the same share of the patch as 8 of 32
        for f in (val, *thr):
            f["Rin_l1_max8"] = f["Rin_l1_max16"]
    q = {k: np.quantile(val[k], 0.99) for k in ("Rin_l1_max8", "kNN", "darkness", "R_l1")}
    forms = {k: [t[k] for t in thr] for k in ("darkness", "R_l1", "Rin_l1_max8", "kNN")}
    forms["inpainted + kNN"] = [t["Rin_l1_max8"] / q["Rin_l1_max8"] + t["kNN"] / q["kNN"] for t in thr]
    forms["inpainted + darkness"] = [t["Rin_l1_max8"] / q["Rin_l1_max8"] + t["darkness"] / q["darkness"] for t in thr]
    forms["inpainted + kNN + darkness"] = [t["Rin_l1_max8"] / q["Rin_l1_max8"] + t["kNN"] / q["kNN"]
                                          + t["darkness"] / q["darkness"] for t in thr]
    outside = [c == 0 for c in d["cover"]]
    print(f"{'score':30s} " + " ".join(f"{'cov>=' + str(c):>22s}" for c in (0.25, 0.5, 0.75, 1.0)))
    for name, scores in forms.items():
        cells = []
        for c in (0.25, 0.5, 0.75, 1.0):
            inside = [cv >= c for cv in d["cover"]]
            r = within_image(scores, d["dark"], inside, outside)
            cells.append(f"{r['pooled']:.3f}/{r['matched']:.3f} ({int(sum(i.sum() for i in inside))})")
        print(f"{name:30s} " + " ".join(f"{c:>22s}" for c in cells), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
