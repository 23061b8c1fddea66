"""Scoring speed: onnxruntime (``xscreen screen --backend onnx``) against torch, side by side.

Real patches from the shipped sample bags, the shipped model; every engine scores the same batch once
per round, round-robin, so a busy machine slows them alike; the ratio of medians is the number to read.

    python benchmarks/bench_onnx.py [--patches 512] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from xscreen import paths
from xscreen.export import OnnxScorer
from xscreen.patches import tile
from xscreen.preprocess import model_input
from xscreen.scan import load_scan
from xscreen.scoring import Scorer


def sample_patches(scorer: Scorer, n: int) -> torch.Tensor:
    parts = []
    for bag in sorted(paths.samples_dir().glob("*.h5")):
        x = torch.from_numpy(model_input(load_scan(bag), scorer.preprocess))
        s = scorer.patch_size
        parts.append(tile(x, s, s // 2, pad_value=-1.0).view.reshape(-1, x.shape[0], s, s))
    return torch.cat(parts)[:n].contiguous()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patches", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    model = paths.default_model()
    engines = {"torch fp32": Scorer(model, device="cpu", precision="fp32"),
               "torch auto": Scorer(model, device="cpu", precision="auto"),
               "onnxruntime fp32": OnnxScorer(model)}
    x = sample_patches(engines["torch fp32"], args.patches)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {len(x)} patches, "
          f"torch auto = {engines['torch auto'].precision.name}, load {os.getloadavg()[0]:.1f}")
    times: dict[str, list[float]] = {k: [] for k in engines}
    for r in range(args.rounds + 1):
        for name, scorer in engines.items():
            t0 = time.perf_counter()
            scorer.score(x, keep_reconstructions=False)
            if r:  # round 0 warms up
                times[name].append(time.perf_counter() - t0)
    base = statistics.median(times["torch fp32"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:18s} {len(x) / med:8.1f} patches/s  x{base / med:.2f} vs torch fp32")


if __name__ == "__main__":
    main()
