"""Training throughput: our ``train_step`` against a reference-style loop, side by side in one run.

The reference-style loop is the Skip-GANomaly reference code's step, re-expressed so it runs on
current PyTorch: fp32, NCHW, forward G, D(x), D(x̂) with sigmoid outputs and ``BCELoss``; G's loss
back-propagated with ``retain_graph`` (filling D's weight gradients too, which are then zeroed); G
steps; D runs a third time on ``x̂.detach()``; D steps. (The reference also added its generator
latent term to D's loss, which back-propagates through G's already-stepped weights and raises the
in-place error; that term is dropped so the loop runs.)

Variants are timed round-robin, one step each per round, so a busy shared machine slows them alike;
the ratio of medians is the number to read.

    python benchmarks/bench_train.py            # ngf 64, 64×64, 2 channels, batch 64, 4 rounds
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import torch
import torch.nn.functional as F

from xscreen.config import NetConfig
from xscreen.network import Discriminator, build_generator, init_weights
from xscreen.runtime import cpu_supports_bf16, precision_for
from xscreen.train.step import GanPair, d_update_due, train_step


def _models(net: NetConfig, channels_last: bool, seed: int = 0):
    torch.manual_seed(seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g, d = build_generator(net).to(memory_format=fmt), Discriminator(net).to(memory_format=fmt)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return g, d, opt_g, opt_d


def reference_step(g, d, opt_g, opt_d, x: torch.Tensor) -> float:
    """One step in the reference code's order (see module docstring). x (N, C, S, S) NCHW fp32."""
    fake = g(x)
    pred_real, feat_real = d(x)
    pred_fake, feat_fake = d(fake)
    ones, zeros = torch.ones_like(pred_real), torch.zeros_like(pred_real)
    opt_g.zero_grad()
    err_g = (F.binary_cross_entropy(pred_fake, ones) + 50.0 * F.l1_loss(fake, x)
             + F.mse_loss(feat_real, feat_fake))
    err_g.backward(retain_graph=True)
    opt_g.step()
    opt_d.zero_grad()
    pred_fake_d, _ = d(fake.detach())
    err_d = F.binary_cross_entropy(pred_real, ones) + F.binary_cross_entropy(pred_fake_d, zeros)
    err_d.backward()
    opt_d.step()
    if err_d.item() < 1e-5:
        init_weights(d)
    return err_g.item()


def make_variants(net: NetConfig, with_reference: bool = True, bf16: bool = True) -> dict:
    """name -> step(x) closure; each variant owns its own freshly initialised models."""
    variants = {}
    if with_reference:
        g, d, og, od = _models(net, channels_last=False)
        variants["reference fp32 NCHW"] = lambda x, m=(g, d, og, od): reference_step(*m, x)
    # (name, precision, channels_last, joint D batch, D stepped every N-th step)
    ours = [("ours fp32 channels_last", "fp32", True, False, 1), ("ours fp32 NCHW", "fp32", False, False, 1),
            ("ours fp32 joint D batch", "fp32", True, True, 1)]
    if bf16:
        ours += [("ours bf16 channels_last", "bf16", True, False, 1), ("ours bf16 joint D batch", "bf16", True, True, 1),
                 ("ours bf16 D every 2nd step", "bf16", True, False, 2),
                 ("ours bf16 D every 4th step", "bf16", True, False, 4)]
    for name, prec, cl, joint, every in ours:
        g, d, og, od = _models(net, channels_last=cl)
        pair = GanPair(g, d, og, od, torch.amp.GradScaler("cpu", enabled=False))
        p = precision_for("cpu", prec)
        if prec == "bf16":  # what precision="auto" trains this network in here (measured, cached)
            from xscreen.config import TrainConfig
            from xscreen.train.session import train_precision

            auto = train_precision(net, TrainConfig(device="cpu", precision="auto"))
            print(f"precision=auto picks {auto.name} for training this network here", flush=True)
        def step(x, pair=pair, p=p, cl=cl, j=joint, every=every):
            """One call = one cycle of ``every`` steps, D stepped on its first; ``timed`` reports per step."""
            for k in range(every):
                train_step(pair, x, p, channels_last=cl, d_joint=j, d_update=d_update_due(k, every))
        step.steps = every
        variants[name] = step
    return variants


def timed(variants: dict, x: torch.Tensor, steps: int, warmup: int) -> dict[str, list[float]]:
    """Round-robin: one step of every variant per round; seconds per timed step."""
    times: dict[str, list[float]] = {k: [] for k in variants}
    for r in range(warmup + steps):
        for name, step in variants.items():
            t0 = time.perf_counter()
            step(x)
            if r >= warmup:
                times[name].append((time.perf_counter() - t0) / getattr(step, "steps", 1))
    return times


def report(title: str, times: dict[str, list[float]], batch: int, base: str) -> None:
    print(title)
    ref = statistics.median(times[base])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:26s} median {med:8.3f} s/step {batch / med:8.1f} patches/s  x{ref / med:.2f} vs {base}"
              f"  (min {min(ts):.3f}, max {max(ts):.3f})", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=4, help="timed rounds")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--bf16-ngf", type=int, default=16, help="width of the bf16-vs-fp32 comparison [2]")
    ap.add_argument("--only", choices=("all", "main", "bf16"), default="all", help="which comparison(s) to run")
    ap.add_argument("--bf16-full", action="store_true",
                    help="also time bf16 at full size on a CPU without native bf16 (very slow there)")
    args = ap.parse_args()
    native = cpu_supports_bf16()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, native bf16: {native}, "
          f"load avg at start {os.getloadavg()[0]:.1f}", flush=True)
    net = NetConfig(size=args.size, channels=args.channels, ngf=args.ngf, ndf=args.ngf)
    x = torch.rand(args.batch, args.channels, args.size, args.size) * 2 - 1
    if args.only in ("all", "main"):
        times = timed(make_variants(net, bf16=native or args.bf16_full), x, args.steps, args.warmup)
        report(f"[1] ngf=ndf={args.ngf}, {args.size}x{args.size}, {args.channels} ch, batch {args.batch}, "
               f"{args.steps} timed rounds (+{args.warmup} warm-up), round-robin", times, args.batch,
               "reference fp32 NCHW")
    if args.only in ("all", "bf16"):
        # bf16 vs fp32 at a smaller width: without AVX-512 BF16 / AMX, oneDNN falls back to slow
        # reference kernels and a full-size bf16 step takes minutes
        small = dataclasses.replace(net, ngf=args.bf16_ngf, ndf=args.bf16_ngf)
        xs = x[: args.batch // 2]
        times = timed(make_variants(small, with_reference=False, bf16=True), xs, args.steps, args.warmup)
        report(f"[2] bf16 vs fp32, ngf=ndf={args.bf16_ngf}, {args.size}x{args.size}, batch {xs.shape[0]}", times,
               xs.shape[0], "ours fp32 channels_last")
    print(f"load avg at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
