"""Architecture options against the paper's networks: training step and scoring cost, side by side.

UNet against UNet++ (``NetConfig.generator``), and the discriminator options (spectral norm,
self-attention), timed round-robin in one run (one step or batch of each per round, so a busy
machine slows them alike): the product's bf16 ``train_step`` (channels_last) and the eval-mode
scoring forward G + D(x) + D(x̂) in fp32 and bf16. The ratio of medians to the first variant's is
the number.

    python benchmarks/checks/generator_speed.py --size 64 --ngf 32 [--rounds 5] [--variants unet unetpp anchor2 att]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_train import _models, timed  # noqa: E402

from xscreen.config import NetConfig  # noqa: E402
from xscreen.runtime import precision_for  # noqa: E402
from xscreen.train.step import GanPair, train_step  # noqa: E402

# NetConfig fields of each variant ("unet": the paper's networks, the baseline)
VARIANTS = {"unet": {}, "unetpp": {"generator": "unetpp"}, "att": {"d_attention": True},
            "sn": {"d_spectral_norm": True},
            "anchor2": {"generator": "unetpp", "d_spectral_norm": True, "d_attention": True}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=["unet", "unetpp"],
                    help="the first is the baseline of the ratios")
    args = ap.parse_args()
    x = torch.rand(args.batch, 2, args.size, args.size) * 2 - 1
    xc = x.contiguous(memory_format=torch.channels_last)
    bf16, fp32 = precision_for("cpu", "bf16"), precision_for("cpu", "fp32")
    tasks = {}
    for gen in args.variants:
        net = NetConfig(size=args.size, channels=2, ngf=args.ngf, ndf=args.ngf, **VARIANTS[gen])
        g, d, og, od = _models(net, channels_last=True)
        pair = GanPair(g, d, og, od, torch.amp.GradScaler("cpu", enabled=False))
        tasks[f"{gen} train step bf16"] = lambda x, pair=pair: train_step(pair, x, bf16, channels_last=True)
        ge, de = _models(net, channels_last=True)[:2]
        ge.eval()
        de.eval()

        def score(x, p, ge=ge, de=de):
            with torch.inference_mode(), p.autocast():
                x_hat = ge(x)
                de(x)
                de(x_hat)
        tasks[f"{gen} scoring fp32"] = lambda x, score=score: score(x, fp32)
        tasks[f"{gen} scoring bf16"] = lambda x, score=score: score(x, bf16)
    times = timed(tasks, xc, args.rounds, warmup=1)  # round-robin, one call of each per round
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"size {args.size}, ngf {args.ngf}, batch {args.batch}, {args.rounds} rounds, "
          f"{torch.get_num_threads()} thread(s)")
    base = args.variants[0]
    for kind in ("train step bf16", "scoring fp32", "scoring bf16"):
        a = med[f"{base} {kind}"]
        line = f"  {kind:16s} {base} {args.batch / a:8.1f} patches/s"
        for v in args.variants[1:]:
            b = med[f"{v} {kind}"]
            line += f"   {v} {args.batch / b:8.1f} patches/s (x{b / a:.2f})"
        print(line, flush=True)


if __name__ == "__main__":
    main()
