"""The pixel AUC a perfect patch scorer reaches through the product's heat map (issue 12).

``xscreen evaluate``'s pixel AUC reads the heat map: each pixel the weighted mean of the scores of
the patches covering it (air patches 0). A patch score can only say "this 64-px window holds a
threat", so the heat spreads over the window's benign pixels and thins at a threat's edge. This
check replaces the model's patch scores by oracles made from the test masks themselves — the share
of threat pixels in the patch, and the evaluation's own 0/1 threat-patch rule — stitches them
exactly as the product does, and reads the pixel AUC with ``supervised_ceiling.pixel_auc`` (every
object pixel of every test bag). Nothing is trained; a bound for patch-level scoring at the
given stride, not a product score.

    python benchmarks/checks/pixel_oracle.py --test /tmp/xs_synth/test --model models/default.xsm --strides 32 16
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervised_ceiling import load_set, pixel_auc  # noqa: E402

from xscreen.evaluate import truth  # noqa: E402
from xscreen.scoring import Scorer  # noqa: E402


def add_oracles(e: dict, size: int, stride: int) -> None:
    """e["cover"]: each patch's share of threat pixels; e["rule"]: the evaluation's threat-patch rule
    (0/1); e["cover_rank"]: the share, with every threat patch lifted above every non-threat one."""
    rows, cols = e["grid"]
    if e["mask"] is None:
        e["cover"] = np.zeros(rows * cols)
    else:
        origins = np.array([(r * stride, c * stride) for r in range(rows) for c in range(cols)])
        e["cover"] = truth.patch_coverage(e["mask"] > 0, origins, size) / float(size * size)
    e["rule"] = e["tp"].astype(float)
    e["cover_rank"] = e["rule"] + e["cover"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=Path("models/default.xsm"), help="grid, air rule, reference heat")
    ap.add_argument("--strides", type=int, nargs="+", default=[32, 16])
    ap.add_argument("--out", type=Path, default=Path("/tmp/pixel_oracle.json"))
    args = ap.parse_args()
    scorer = Scorer(args.model, device="cpu")
    rows = []
    for stride in args.strides:
        tb, tt = load_set(args.test, scorer, stride, False)
        bags = tb + tt
        for e in bags:
            e.pop("x")  # the patches themselves are not needed here
            add_oracles(e, scorer.patch_size, stride)
        row = {"stride": stride, "model_heat": round(pixel_auc(bags, "model"), 4)}
        for key in ("cover", "rule", "cover_rank"):  # scores in [0, 2], stitched as they are
            row[f"oracle_{key}"] = round(pixel_auc(bags, key, sigmoid=False), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
