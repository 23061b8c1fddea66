"""Stitching seams: seam energy of the reconstruction, residual and heatmap, flat mean vs tapered
blend, side by side on the same scores (xscreen.patches.seam_energy; issue 14 item 7).

Every bag is scored once with the shipped model; the same per-patch reconstructions and scores
are stitched twice, with ``floor=1`` (the flat mean used before) and with the default taper.
Seam energy = mean squared step between neighbouring pixels across the patch-grid lines over the
same mean elsewhere: ~1 means no grid structure, > 1 means seams. The flat-mean heatmap is constant
inside each stride x stride cell, so its ratio is infinite; for the heatmap the largest step between
neighbouring pixels (in units of the patch threshold) is printed as well.

    python benchmarks/bench_seams.py [--samples resources/samples] [--model models/default.xsm]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from xscreen import paths
from xscreen.patches import (TAPER_FLOOR, StitchAccumulator, air_mask, air_value, grid_to_pixels,
                             seam_energy, tile)
from xscreen.pipeline import resolve_thresholds
from xscreen.config import ScreenConfig
from xscreen.preprocess import model_input
from xscreen.scan import load_scan
from xscreen.scoring import Scorer


def bag_maps(path: Path, scorer: Scorer, cfg: ScreenConfig, floor: float) -> dict[str, np.ndarray]:
    """-> {'reconstruction' (C, H, W), 'residual' (H, W), 'heat' (H, W)} stitched with ``floor``."""
    scan = load_scan(path)
    x = torch.from_numpy(model_input(scan, scorer.preprocess)).to(scorer.device)
    t = tile(x, scorer.patch_size, cfg.stride, air_value(scorer.preprocess))
    todo = torch.nonzero(~air_mask(t, cfg.air_threshold, scorer.preprocess).reshape(-1)).reshape(-1)
    acc = StitchAccumulator(t, floor=floor)
    scores = torch.zeros(t.n_patches)
    torch.manual_seed(0)
    for chunk in todo.split(256):
        batch = t.gather(chunk)
        ps = scorer.score(batch)
        scores[chunk] = ps.scores.float().cpu()
        acc.add(chunk, batch, ps.reconstructions)
    recon, resid = acc.result()
    heat = grid_to_pixels(scores.reshape(t.grid) / resolve_thresholds(scorer, cfg).patch, t, floor)
    return {"reconstruction": recon.cpu().numpy(), "residual": resid.cpu().numpy(),
            "heat": heat.cpu().numpy()}


def max_step(m: np.ndarray) -> float:
    return float(max(np.abs(np.diff(m, axis=0)).max(), np.abs(np.diff(m, axis=1)).max()))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=Path, default=paths.samples_dir())
    ap.add_argument("--model", type=Path, default=paths.default_model())
    args = ap.parse_args()
    scorer = Scorer(str(args.model), device="cpu", precision="fp32")
    cfg = ScreenConfig()
    rows = []
    for path in sorted(args.samples.glob("*.h5")):
        flat = bag_maps(path, scorer, cfg, 1.0)
        tapered = bag_maps(path, scorer, cfg, TAPER_FLOOR)
        rows.append([path.stem] + [seam_energy(m[k], cfg.stride) for m in (flat, tapered)
                                   for k in ("reconstruction", "residual", "heat")]
                    + [max_step(m["heat"]) for m in (flat, tapered)])
    print(f"model {args.model.name}, stride {cfg.stride}, patch {scorer.patch_size}, "
          f"taper floor {TAPER_FLOOR}\n")
    print("| bag | recon flat | residual flat | heat flat | recon tapered | residual tapered "
          "| heat tapered | heat max step flat | heat max step tapered |\n|" + "---|" * 9)
    for r in rows + [["mean"] + list(np.mean([r[1:] for r in rows], axis=0))]:
        print("| " + " | ".join([r[0]] + [f"{v:.2f}" for v in r[1:]]) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
