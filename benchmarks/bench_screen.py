"""Screening throughput: our pipeline vs a naive reference pipeline, side by side in one process.

The reference mimics the paper's code path: fp32, NCHW, numpy-loop tiling, batch 64, D run
separately on x and x_hat, numpy-loop stitching - but with BatchNorm in eval mode (the reference
code's train-mode BN is a defect, not a speed choice). Both score the same synthetic bags with the
same full-size model (ngf 64, 64x64, 2 channels; a trained dual model from models/ when one exists,
else random init - speed does not depend on the weights).

Prints: tiles/s (grid cells covered per second, air included) and scored patches/s for both and
their ratios; the model's GFLOP/s during the forward passes and that as a share of torch.mm
throughput measured here in fp32 and bf16; the share of our pipeline time outside the forward
passes; Spearman rank correlation of bf16 vs fp32 scores; with --memory, peak RSS of screening
scans of growing size in fresh processes (tiny ngf-8 model: memory is about maps, not the model).

    python benchmarks/bench_screen.py [--scans 2] [--width 640] [--batch 64] [--no-compile]
                                      [--rank-patches 32] [--memory] [--device cpu|cuda]
    python benchmarks/bench_screen.py --model M.xsm [--bags DIR ...] --threads 1   # score forms (issue 29)
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from xscreen.config import Calibration, NetConfig, PatchConfig, Preprocess, ScreenConfig, TrainConfig
from xscreen.patches import air_value, grid_extent
from xscreen.pipeline import screen
from xscreen.preprocess import model_input
from xscreen.scoring import Scorer

ROOT = Path(__file__).resolve().parents[1]


def full_model(ngf: int = 64, size: int = 64, trained: bool = True):
    """A trained dual 64x64 model from models/ if present, else random init (ngf, size)."""
    from xscreen.checkpoint import LoadedModel, ModelCard, ModelMeta, load_model
    from xscreen.network import Discriminator, build_generator

    if trained:
        for path in sorted((ROOT / "models").glob("*.xsm")):
            m = load_model(path)
            if m.meta.preprocess.kind == "dual" and m.meta.net.size == size and m.meta.net.ngf == ngf:
                return m, f"trained {path.name}"
    torch.manual_seed(0)
    net = NetConfig(size=size, channels=2, ngf=ngf, ndf=ngf, nz=100)
    cal = Calibration(patch_threshold=1.0, patch_far=0.01, scan_threshold=1.0, scan_far=0.05)
    meta = ModelMeta(net, Preprocess("dual"), PatchConfig(size=size), TrainConfig(), cal,
                     ModelCard(name="bench"))
    g, d = build_generator(net).eval(), Discriminator(net).eval()
    return LoadedModel(g, d, meta, "bench-random", "0" * 64, Path("bench.xsm")), "random init"


def bench_scans(n: int, width: int):
    from xscreen.synth import synth_bag

    return [synth_bag(1000 + i, width=width).scan for i in range(n)]


class Timed(torch.nn.Module):
    """Wraps a network to add up the seconds spent inside its forward calls."""

    def __init__(self, net, device):
        super().__init__()
        self.net, self.device, self.seconds, self.cpu = net, device, 0.0, 0.0

    def forward(self, x):
        t, c = time.perf_counter(), time.process_time()
        out = self.net(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - t
        self.cpu += time.process_time() - c
        return out


def flops_per_patch(loaded) -> float:
    """Forward FLOPs of G(x) + D([x; x_hat]) per patch (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    net = loaded.meta.net
    x = torch.zeros(1, net.channels, net.size, net.size)
    g, d = copy.deepcopy(loaded.generator).cpu(), copy.deepcopy(loaded.discriminator).cpu()
    with FlopCounterMode(display=False) as fc, torch.inference_mode():
        d(torch.cat([x, g(x)]))
    return float(fc.get_total_flops())


def matmul_gflops(dtype: torch.dtype, device: torch.device, n: int, min_seconds: float = 2.0) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or reps < 1:
        torch.mm(a, b)
        reps += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
    return 2.0 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def run_ours(scans, scorer: Scorer, cfg: ScreenConfig) -> dict:
    g, d = Timed(scorer.generator, scorer.device), Timed(scorer.discriminator, scorer.device)
    scorer.generator, scorer.discriminator = g, d
    t0, c0, tiles, scored, stages = time.perf_counter(), time.process_time(), 0, 0, {}
    for scan in scans:
        s = screen(scan, scorer, cfg)
        tiles, scored = tiles + s.n_patches, scored + s.n_scored
        for k, v in vars(s.timings).items():
            stages[k] = stages.get(k, 0.0) + v
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    scorer.generator, scorer.discriminator = g.net, d.net
    return dict(seconds=seconds, cpu=cpu, tiles=tiles, scored=scored, forward=g.seconds + d.seconds,
                forward_cpu=g.cpu + d.cpu, stages=stages)


def run_reference(scans, loaded, stride: int, batch: int = 64) -> dict:
    """The paper's code path: NCHW fp32, python loops for tiling and stitching, D twice."""
    g, d = copy.deepcopy(loaded.generator).cpu().eval(), copy.deepcopy(loaded.discriminator).cpu().eval()
    size, pre, lam = loaded.meta.net.size, loaded.meta.preprocess, loaded.meta.train.lam
    t0, c0, fwd, fwd_cpu, tiles = time.perf_counter(), time.process_time(), 0.0, 0.0, 0
    for scan in scans:
        x = model_input(scan, pre)
        rows, hp = grid_extent(scan.height, size, stride)
        cols, wp = grid_extent(scan.width, size, stride)
        xp = np.full((x.shape[0], hp, wp), air_value(pre), np.float32)
        xp[:, : scan.height, : scan.width] = x
        origins = [(r * stride, c * stride) for r in range(rows) for c in range(cols)]
        heat, count = np.zeros((hp, wp), np.float32), np.zeros((hp, wp), np.float32)
        for i in range(0, len(origins), batch):
            chunk = origins[i: i + batch]
            xb = torch.from_numpy(np.stack([xp[:, y: y + size, c: c + size] for y, c in chunk]))
            tf, cf = time.perf_counter(), time.process_time()
            with torch.no_grad():
                x_hat = g(xb)
                _, f_real = d(xb)
                _, f_fake = d(x_hat)
            fwd, fwd_cpu = fwd + time.perf_counter() - tf, fwd_cpu + time.process_time() - cf
            rec = (xb - x_hat).abs().flatten(1).mean(1)
            lat = (f_real - f_fake).flatten(1).pow(2).mean(1)
            scores = (lam * rec + (1 - lam) * lat).numpy()
            for (y, c), s in zip(chunk, scores):
                heat[y: y + size, c: c + size] += s
                count[y: y + size, c: c + size] += 1
        tiles += len(origins)
        _ = heat / count
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return dict(seconds=seconds, cpu=cpu, tiles=tiles, scored=tiles, forward=fwd, forward_cpu=fwd_cpu,
                stages={})


def merge(total: dict | None, part: dict) -> dict:
    """Sum two run records (numbers and per-stage seconds)."""
    if total is None:
        return part
    out = {k: total[k] + part[k] for k in total if k != "stages"}
    out["stages"] = {k: total["stages"].get(k, 0.0) + v for k, v in part["stages"].items()}
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def rank_check(scans, loaded, device: str, n: int, cfg: ScreenConfig):
    """bf16 (fp16 on GPUs without bf16) vs fp32 on n non-air patches of the first scan:
    (Spearman of scores, Spearman of the latent term, max relative score difference, dtype)."""
    from xscreen.patches import air_mask, tile

    fp32 = Scorer(loaded, device=device, precision="fp32", batch_size=16)
    half = "bf16" if device == "cpu" or torch.cuda.is_bf16_supported() else "fp16"
    low = Scorer(loaded, device=device, precision=half, batch_size=16)
    x = torch.from_numpy(model_input(scans[0], fp32.preprocess)).to(fp32.device)
    t = tile(x, fp32.patch_size, cfg.stride, air_value(fp32.preprocess))
    idx = torch.nonzero(~air_mask(t, cfg.air_threshold, fp32.preprocess).reshape(-1)).reshape(-1)
    idx = idx[torch.linspace(0, len(idx) - 1, min(n, len(idx))).long()]
    patches = t.gather(idx)
    a, b = fp32.score(patches), low.score(patches)
    sa, sb = a.scores.cpu().numpy(), b.scores.cpu().numpy()
    return (spearman(sa, sb), spearman(a.latent_error.cpu().numpy(), b.latent_error.cpu().numpy()),
            float(np.max(np.abs(sa - sb) / np.abs(sa))), half)


# --- memory: fresh processes, scans of growing size ----------------------------------------------
def memory_scan(height: int, width: int):
    """A (2, height, width) dual scan cut from 4000-px synthetic bags laid side by side, air-padded."""
    from xscreen.scan import Scan
    from xscreen.synth import synth_bag

    bag = synth_bag(7, width=4000).scan
    reps = -(-width // bag.width)
    tiled = np.concatenate([bag.channels] * reps, axis=2)[:, :height, :width]
    out = np.full((2, height, width), int(bag.i0), np.uint16)
    out[:, : tiled.shape[1]] = tiled
    return Scan("memory", "dual", out, bag.i0)


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        line = next(ln for ln in fh if ln.startswith(field + ":"))
    return int(line.split()[1]) / 1024


def reset_peak_rss() -> None:
    """Linux: restart the VmHWM (peak RSS) count, so making the scan does not count as screening."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def memory_child(height: int, width: int, stride: int) -> None:
    loaded, _ = full_model(ngf=8, trained=False)
    scorer = Scorer(loaded, device="cpu", batch_size=64)
    cfg = ScreenConfig(stride=stride)
    screen(memory_scan(256, 256), scorer, cfg)  # warm-up: allocator pools, oneDNN primitives
    scan = memory_scan(height, width)
    reset_peak_rss()
    before = _status_mb("VmRSS")
    s = screen(scan, scorer, cfg)
    peak = _status_mb("VmHWM")
    maps = s.heat.nbytes + s.residual.nbytes + s.reconstruction.nbytes
    print(json.dumps(dict(height=height, width=width, before_mb=before, peak_mb=peak,
                          scan_mb=scan.channels.nbytes / 2**20, maps_mb=maps / 2**20,
                          tiles=s.n_patches, scored=s.n_scored, seconds=s.timings.total)))


def memory_report(stride: int) -> None:
    print(f"\nmemory (fresh process per size, ngf-8 model, stride {stride}, batch 64):")
    print(f"{'H x W':>12} {'tiles':>7} {'scan MB':>8} {'maps MB':>8} {'peak-before MB':>15} {'B/pixel':>8}")
    for h, w in ((3000, 2000), (3000, 4000), (3000, 8000)):
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(h), str(w), str(stride),
                              "--threads", str(torch.get_num_threads())],
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        grow = r["peak_mb"] - r["before_mb"]
        print(f"{h:>5} x {w:<5} {r['tiles']:>7} {r['scan_mb']:>8.0f} {r['maps_mb']:>8.0f} {grow:>15.0f} "
              f"{grow * 2**20 / (h * w):>8.1f}")


# --- main ---------------------------------------------------------------------------------------
def _report(args, loaded, origin, ours, eager, ref, flops, mm, prec, rank, compile_s) -> None:
    print(f"model: ngf {loaded.meta.net.ngf}, {loaded.meta.net.size}x{loaded.meta.net.size}, "
          f"{loaded.meta.net.channels} ch ({origin}); {flops / 1e9:.3f} GFLOP per patch (G + 2 D)")
    print(f"scans: {args.scans} synthetic bags, width {args.width}, stride {args.stride}, batch "
          f"{args.batch}; tiles {ours['tiles']}, non-air {ours['scored']}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"our precision {prec}; compile {'off' if args.no_compile else f'on ({compile_s:.0f} s once)'}")
    print(f"matmul GFLOP/s: " + ", ".join(f"{k} {v:.2f}" for k, v in mm.items() if v == v))
    print("wall = elapsed seconds; cpu = process CPU seconds (less sensitive to other users' load)")
    print(f"\n{'pipeline':<36} {'wall s':>7} {'cpu s':>7} {'tiles/s':>8} {'scored/s':>9} "
          f"{'scored/cpu-s':>12} {'fwd GFLOP/s':>11} {'outside fwd':>11}")
    for name, r in (("reference (fp32 NCHW, loops, bs 64)", ref), ("ours eager (channels-last)", eager),
                    ("ours" + ("" if args.no_compile else " compiled"), ours)):
        if r is not None:
            print(f"{name:<36} {r['seconds']:>7.1f} {r['cpu']:>7.1f} {r['tiles'] / r['seconds']:>8.2f} "
                  f"{r['scored'] / r['seconds']:>9.2f} {r['scored'] / r['cpu']:>12.2f} "
                  f"{r['scored'] * flops / r['forward'] / 1e9:>11.2f} {1 - r['forward'] / r['seconds']:>11.1%}")
    print()
    for name, r in (("ours eager", eager), ("ours" + ("" if args.no_compile else " compiled"), ours)):
        if r is None:
            continue
        if ref is not None:
            print(f"{name}: speed-up vs reference (wall) {r['tiles'] / r['seconds'] / (ref['tiles'] / ref['seconds']):.2f}x"
                  f" per scan, {r['scored'] / r['seconds'] / (ref['scored'] / ref['seconds']):.2f}x per scored"
                  f" patch; (cpu time) {ref['cpu'] / r['cpu'] * r['scored'] / ref['scored']:.2f}x per scored patch")
        gf = r["scored"] * flops / r["forward"] / 1e9
        print(f"{name}: {gf:.2f} GFLOP/s in forward = {gf / mm[prec]:.0%} of {prec} matmul, "
              f"{gf / mm['bf16']:.0%} of bf16 matmul; {1 - r['forward'] / r['seconds']:.1%} of wall "
              f"time outside the forward passes ({1 - r['forward_cpu'] / r['cpu']:.1%} of cpu time)")
    print("our stages (s): " + ", ".join(f"{k} {v:.2f}" for k, v in ours["stages"].items()))
    print(f"{rank[3]} vs fp32 on {args.rank_patches} patches: Spearman {rank[0]:.4f} (scores), "
          f"{rank[1]:.4f} (latent term); max relative score difference {rank[2]:.3%}")


def run_all(args, loaded, scans, cfg: ScreenConfig):
    """Reference, ours eager and ours (compiled) over the scans -> (ref, eager, ours, scorer, compile s)."""
    dev = torch.device(args.device)
    eager_scorer = None if args.no_eager else Scorer(loaded, device=args.device, precision=args.precision,
                                                     batch_size=args.batch)
    scorer = Scorer(loaded, device=args.device, precision=args.precision, batch_size=args.batch,
                    compile=not args.no_compile)
    net = loaded.meta.net
    zeros = torch.zeros(args.batch, net.channels, net.size, net.size)
    with torch.inference_mode():  # warm-up: oneDNN primitive caches, so no run pays for setup
        loaded.discriminator.cpu()(loaded.generator.cpu()(zeros))
        if eager_scorer is not None:
            eager_scorer.score(zeros)
    t0 = time.perf_counter()
    scorer.score(zeros)  # compiles here
    compile_s = time.perf_counter() - t0
    ref = eager = ours = None
    for scan in scans:  # interleaved per scan: the shared machine's load hits all three alike
        if dev.type == "cpu":  # the paper's CPU-era code path; on a GPU box only ours is timed
            ref = merge(ref, run_reference([scan], loaded, args.stride, 64))
        if eager_scorer is not None:
            eager = merge(eager, run_ours([scan], eager_scorer, cfg))
        ours = merge(ours, run_ours([scan], scorer, cfg))
    return ref, eager, ours, scorer, compile_s


def _timed_screen(scan, scorer: Scorer, cfg: ScreenConfig):
    t0, c0 = time.perf_counter(), time.process_time()
    s = screen(scan, scorer, cfg)
    return s, dict(seconds=time.perf_counter() - t0, cpu=time.process_time() - c0, tiles=s.n_patches, stages={})


def run_forms(args, loaded, scans) -> None:
    """Issue 29: the reference pipeline (plain score, fp32 NCHW, D twice) against ours with the plain
    score (every patch) and with the model's own score form - every patch (gate 0) and as screening
    runs it by default (gate 'auto': inpaint_gate.py) - interleaved per scan, one process."""
    from xscreen import inpaint_gate

    plain = Scorer(loaded, device=args.device, precision=args.precision, batch_size=args.batch)
    plain.inpaint, plain.window, plain.density = 0, 0, 0.0
    form = Scorer(loaded, device=args.device, precision=args.precision)  # the product's batch for its form
    runs = {"reference (plain, fp32 NCHW, D twice)": None, "ours, plain score (today's default)": None,
            "ours, model's form, every patch": None, "ours, model's form, default (gated)": None}
    cfgs = [ScreenConfig(stride=args.stride, threshold=1.0, scan_threshold=1.0, maps=False, gate=0.0),
            ScreenConfig(stride=args.stride, maps=False, gate=0.0), ScreenConfig(stride=args.stride, maps=False)]
    zeros = torch.zeros(args.batch, loaded.meta.net.channels, loaded.meta.net.size, loaded.meta.net.size)
    plain.score(zeros), form.score(zeros)  # warm-up
    keys, same, n_eval = list(runs), 0, [0, 0]
    for scan in scans:  # interleaved per scan: the shared machine's load hits all alike
        runs[keys[0]] = merge(runs[keys[0]], run_reference([scan], loaded, args.stride, 64))
        runs[keys[1]] = merge(runs[keys[1]], run_ours([scan], plain, cfgs[0]))
        (full, r2), (fast, r3) = _timed_screen(scan, form, cfgs[1]), _timed_screen(scan, form, cfgs[2])
        runs[keys[2]], runs[keys[3]] = merge(runs[keys[2]], r2), merge(runs[keys[3]], r3)
        same += (full.alarm == fast.alarm and [r.patches for r in full.regions] == [r.patches for r in fast.regions]
                 and abs(full.scan_score - fast.scan_score) < 1e-6)
        n_eval = [n_eval[0] + full.n_evaluated, n_eval[1] + fast.n_evaluated]
    t = loaded.meta.train
    print(f"model {args.model} ({loaded.meta.preprocess.kind}, ngf {loaded.meta.net.ngf}); form: inpaint "
          f"{t.score_inpaint} window {t.recon_window} density {t.density:g}; {len(scans)} bags, stride {args.stride}; "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision {form.precision.name}, "
          f"{torch.backends.cpu.get_cpu_capability()}")
    ref = runs[keys[0]]
    print(f"\n| pipeline | wall s | cpu s | tiles/s | speed-up vs reference (wall) | (cpu) |\n|---|---|---|---|---|---|")
    for name, r in runs.items():
        print(f"| {name} | {r['seconds']:.1f} | {r['cpu']:.1f} | {r['tiles'] / r['seconds']:.1f} | "
              f"{ref['seconds'] / r['seconds']:.2f}x | {ref['cpu'] / r['cpu']:.2f}x |")
    print(f"\ngated: {n_eval[1]} of {n_eval[0]} patches scored exactly ({n_eval[1] / max(n_eval[0], 1):.0%}); "
          f"{same} of {len(scans)} bags with the full grid's regions, alarm and bag score; steps {inpaint_gate.STATS}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scans", type=int, default=2)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--stride", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--ngf", type=int, default=64, help="model width (64 = the paper's; 8 for a smoke run)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--no-eager", action="store_true", help="skip the eager (uncompiled) run of ours")
    p.add_argument("--rank-patches", type=int, default=32)
    p.add_argument("--memory", action="store_true", help="also measure peak RSS vs scan size")
    p.add_argument("--memory-only", action="store_true")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--memory-child", nargs=3, type=int, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help="a calibrated model file: compare score forms (run_forms)")
    p.add_argument("--bags", type=Path, nargs="*", default=[], help="scan files or folders for --model "
                   "(default: --scans synthetic bags)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_only:
        return memory_report(64)
    if args.memory_child:
        return memory_child(*args.memory_child)
    if args.model:
        from xscreen.checkpoint import load_model
        from xscreen.pipeline import collect_paths
        from xscreen.scan import load_scan

        bags = [load_scan(p) for p in collect_paths(args.bags)] if args.bags else bench_scans(args.scans, args.width)
        return run_forms(args, load_model(args.model), bags)
    loaded, origin = full_model(ngf=args.ngf)
    scans = bench_scans(args.scans, args.width)
    cfg = ScreenConfig(stride=args.stride)
    dev = torch.device(args.device)
    flops = flops_per_patch(loaded)
    mm = {"fp32": matmul_gflops(torch.float32, dev, 2048),
          "bf16": matmul_gflops(torch.bfloat16, dev, 2048 if dev.type == "cuda" else 256),
          "fp16": matmul_gflops(torch.float16, dev, 2048) if dev.type == "cuda" else float("nan")}
    ref, eager, ours, scorer, compile_s = run_all(args, loaded, scans, cfg)
    rank = rank_check(scans, loaded, args.device, args.rank_patches, cfg)
    _report(args, loaded, origin, ours, eager, ref, flops, mm, scorer.precision.name, rank, compile_s)
    if args.memory:
        memory_report(64)


if __name__ == "__main__":
    main()
