"""Pixel AUC of per-pixel maps other than the patch-score heat map (issue 12, pixel goal).

``xscreen evaluate`` reads pixel AUC from the heat map — each pixel the weighted mean of the scores
of the patches covering it — which cannot tell a threat's pixels from the benign pixels that share
its patches. Screening with maps on also stitches the per-pixel residual |x − x̂| (what the GUI's
residual view shows). This check reads the pixel AUC of that residual, Gaussian-smoothed at several
widths, and of the heat map weighted by it, on the same object pixels (a sample of ``--pixels`` per
bag, the same sample for every map), threat-mask pixels against all others.

    python benchmarks/checks/pixel_maps.py --test /tmp/xs_synth/test --models models/default.xsm
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from xscreen.config import ScreenConfig
from xscreen.evaluate import truth
from xscreen.evaluate.core import _object_pixels
from xscreen.pipeline import screen
from xscreen.scan import list_scans, load_scan
from xscreen.scoring import Scorer
from xscreen.train.selection import anomaly_auc

SIGMAS = (0, 2, 4, 8, 16)


def maps_of(s, sigmas=SIGMAS) -> dict[str, np.ndarray]:
    """The per-pixel maps compared, by name."""
    out = {"heat": s.heat}
    for sg in sigmas:
        r = s.residual if sg == 0 else cv2.GaussianBlur(s.residual, (0, 0), sg, borderType=cv2.BORDER_REFLECT)
        out[f"residual_s{sg}"] = r
        out[f"heat_x_residual_s{sg}"] = s.heat * r
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--models", type=Path, nargs="+", default=[Path("models/default.xsm")])
    ap.add_argument("--stride", type=int, default=32)
    ap.add_argument("--pixels", type=int, default=50_000, help="object pixels sampled per bag")
    ap.add_argument("--out", type=Path, default=Path("/tmp/pixel_maps.json"))
    args = ap.parse_args()
    rows = []
    for model in args.models:
        scorer = Scorer(model, device="cpu")
        scores: dict[str, list] = {}
        labels = []
        for k, path in enumerate(list_scans(args.test / "benign") + list_scans(args.test / "threat")):
            scan = load_scan(path)
            s = screen(scan, scorer, ScreenConfig(stride=args.stride, maps=True))
            idx = np.flatnonzero(_object_pixels(s))
            if idx.size > args.pixels:
                idx = np.random.default_rng(k).choice(idx, args.pixels, replace=False)
            mask_file = args.test / "masks" / f"{path.stem}.png"
            if path.parent.name == "threat":
                mask = truth.read_mask(mask_file, (scan.height, scan.width))
                labels.append(mask.ravel()[idx] > 0)
            else:
                labels.append(np.zeros(idx.size, bool))
            for name, m in maps_of(s).items():
                scores.setdefault(name, []).append(m.ravel()[idx])
        y = np.concatenate(labels)
        row = {"model": model.name, "threat_pixels": int(y.sum()), "pixels": int(y.size)}
        for name, v in scores.items():
            v = np.concatenate(v)
            row[name] = round(anomaly_auc(v[~y], v[y]), 4)
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
