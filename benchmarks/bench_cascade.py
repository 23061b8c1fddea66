"""Coarse-to-fine screening (xscreen/cascade.py) against the full grid, side by side in one run.

For every bag: screen with the full grid, then with each cascade fraction (same Scorer, fp32 -
what CPUs without native bf16 run); count the patches the model scored, the seconds, and the bags
whose region set (boxes, levels, member cells, max scores) or alarm differs from the full grid's.

    python benchmarks/bench_cascade.py DIR [DIR ...] --stride 32 --fractions 0.5 0.6 0.7 [--avx2] \
        [--coarse-max 0.5]

``--coarse-max F`` adds rows with the first seed rule (every cell overlapping a coarse patch >= F
of the review level) for models whose score the residual estimate would otherwise serve.

``--gates R ...`` (issue 29): for a model with an inpainted score, the inpaint_gate ratios against the
full inpainted grid at the model's calibrated levels: also the bags whose bag score differs, and
the bags whose own check fell back to the full grid.

``--avx2`` re-runs the script with ATen and oneDNN held to AVX2 kernels (ATEN_CPU_CAPABILITY=avx2,
ONEDNN_MAX_CPU_ISA=AVX2): the kernels of a CPU without AVX-512, on this one.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    ap.add_argument("--stride", type=int, default=32)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.5, 0.6, 0.7])
    ap.add_argument("--limit", type=int, default=0, help="at most this many bags (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--avx2", action="store_true", help="hold torch to AVX2 kernels (see module doc)")
    ap.add_argument("--coarse-max", type=float, nargs="*", default=[],
                    help="also these fractions with the coarse-maximum seed rule")
    ap.add_argument("--gates", type=float, nargs="*", default=[],
                    help="inpainted models (issue 29): compare these inpaint_gate ratios with the full grid "
                    "instead of cascade fractions (0.1 is the default 'auto')")
    ap.add_argument("--precision", default="fp32", choices=("auto", "fp32", "bf16"))
    args = ap.parse_args()
    if args.avx2 and os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        env = dict(os.environ, ATEN_CPU_CAPABILITY="avx2", ONEDNN_MAX_CPU_ISA="AVX2")
        return subprocess.call([sys.executable, *sys.argv], env=env)
    import torch

    from xscreen import cascade
    from xscreen.config import ScreenConfig
    from xscreen.paths import default_model
    from xscreen.pipeline import screen
    from xscreen.scan import list_scans, load_scan
    from xscreen.scoring import Scorer

    torch.set_num_threads(args.threads)
    scorer = Scorer(args.model or default_model(), device="cpu", precision=args.precision)
    files = [p for d in args.dirs for p in list_scans(d, recursive=False)]
    files = files[: args.limit] if args.limit else files
    print(f"kernels: {torch.backends.cpu.get_cpu_capability()}, threads {args.threads}, "
          f"{len(files)} bags, stride {args.stride}", flush=True)
    settings = [0.0, *args.gates] if args.gates else [0.0, *args.fractions, *(-f for f in args.coarse_max)]
    estimate = cascade.ResidualBlocks.__dict__["usable"]  # the staticmethod itself
    patches = dict.fromkeys(settings, 0)
    seconds = dict.fromkeys(settings, 0.0)
    region_diff = dict.fromkeys(settings, 0)
    alarm_diff = dict.fromkeys(settings, 0)
    score_diff, fallbacks = dict.fromkeys(settings, 0), dict.fromkeys(settings, 0)
    for path in files:
        scan = load_scan(path)
        ref = None
        for f in settings:  # full grid first, then each fraction: one bag, side by side
            cascade.ResidualBlocks.usable = estimate if f >= 0 else staticmethod(lambda *a: False)
            t0 = time.perf_counter()
            cfg = ScreenConfig(stride=args.stride, gate=f, maps=False) if args.gates else \
                ScreenConfig(stride=args.stride, cascade=abs(f), gate=0.0, maps=False)
            s = screen(scan, scorer, cfg)
            seconds[f] += time.perf_counter() - t0
            patches[f] += s.n_evaluated
            key = [(r.x, r.y, r.w, r.h, r.level, round(r.max_score, 5), sorted(r.patches)) for r in s.regions]
            if ref is None:
                ref = (key, s.alarm, s.scan_score)
            region_diff[f] += key != ref[0]
            alarm_diff[f] += s.alarm != ref[1]
            score_diff[f] += abs(s.scan_score - ref[2]) > 1e-6
            fallbacks[f] += s.gate_fallback
    cascade.ResidualBlocks.usable = estimate
    what = "gate ratio" if args.gates else "cascade fraction"
    print(f"\n| {what} | patches scored | seconds | speed-up | bags with other regions | bags with another alarm "
          "| bags with another bag score | fallbacks |")
    print("|---|---|---|---|---|---|---|---|")
    for f in settings:
        name = "off (full grid)" if f == 0 else f"{f:g}" if f > 0 else f"{-f:g}, coarse-maximum seeds"
        print(f"| {name} | {patches[f]} | {seconds[f]:.1f} | {seconds[0.0] / seconds[f]:.2f}× "
              f"| {region_diff[f]} / {len(files)} | {alarm_diff[f]} / {len(files)} | {score_diff[f]} / {len(files)} "
              f"| {fallbacks[f]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
