"""Rendering speed of materials.render on a 1000x1000 dual-energy scan, per view.

Side by side in one run:
  * table   - materials.render (cv2 log/sqrt to table coordinates, one colour-table lookup per pixel)
  * numpy   - the same colour maths evaluated directly on every pixel with numpy (no tables)
  * python  - a per-pixel Python loop (measured on a 100x100 crop, scaled to 10^6 pixels)

    /work/venv/bin/python benchmarks/bench_render.py [--repeat 10] [--append benchmarks/RESULTS.md]
"""
from __future__ import annotations

import argparse
import bisect
import datetime
import math
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from xscreen import materials as mt
from xscreen.scan import Scan
from xscreen.synth import synth_bag

HEADING = "## Rendering (materials.py)"


def scan_1000() -> Scan:
    """A synthetic bag resampled to exactly 1000x1000 px."""
    bag = synth_bag(2024, threat=True, width=1000).scan
    ch = np.stack([cv2.resize(c, (1000, 1000), interpolation=cv2.INTER_NEAREST) for c in bag.channels])
    return Scan("bench", "dual", ch, bag.i0)


def naive_numpy(scan: Scan) -> np.ndarray:
    """(H, W, 3) pseudo-colour by direct per-pixel float maths (what the tables precompute)."""
    high, low = cv2.medianBlur(scan.channels[0], 3), cv2.medianBlur(scan.channels[1], 3)
    a = mt.attenuation(Scan("n", "dual", np.stack([high, low]), scan.i0))
    cls = mt.material_classes(a[1], a[0])
    sat = (1.0 - np.exp(-a[0] / 0.25))[..., None]
    rgb = (255.0 * (1.0 - sat) + mt._hue(a[1], a[0], cls) * sat) * np.exp(-0.33 * a[0])[..., None]
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


def naive_python(scan: Scan, size: int = 100) -> np.ndarray:
    """(size, size, 3) pseudo-colour, one pixel at a time in Python (class colours, no blending)."""
    grid, b_oi, b_im = (list(map(float, v)) for v in mt._boundaries())
    out = np.zeros((size, size, 3), np.uint8)
    hi, lo = scan.channels[0, :size, :size].tolist(), scan.channels[1, :size, :size].tolist()
    for y in range(size):
        for x in range(size):
            ah = -math.log(min(max(hi[y][x] / scan.i0, 1e-6), 1.0))
            al = -math.log(min(max(lo[y][x] / scan.i0, 1e-6), 1.0))
            k = min(bisect.bisect_left(grid, ah), len(grid) - 1)
            r = al / max(ah, 1e-6)
            cls = mt.ORGANIC if r < b_oi[k] else mt.INORGANIC if r < b_im[k] else mt.METAL
            if ah < mt.AIR_A and al < mt.AIR_A:
                cls = mt.AIR
            if ah >= mt.IMPENETRABLE_A:
                cls = mt.IMPENETRABLE
            sat, val = 1.0 - math.exp(-ah / 0.25), math.exp(-0.33 * ah)
            for c in range(3):
                out[y, x, c] = int(min(255.0, (255.0 * (1 - sat) + mt.HUES[cls][c] * sat) * val))
    return out


def best_of(fn, repeat: int) -> float:
    """Median seconds per call (the machine is shared: the minimum is in ``fastest``)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    fastest.append(min(times))
    return float(np.median(times))


fastest: list[float] = []


def run(repeat: int) -> list[str]:
    scan = scan_1000()
    lines = ["| view | first call ms (builds tables) | ms per frame (median) | min ms | frames/s (median) |",
             "|---|---|---|---|---|"]
    for view in mt.VIEWS:
        t0 = time.perf_counter()
        mt.render(scan, view)
        first = time.perf_counter() - t0
        per = best_of(lambda: mt.render(scan, view), repeat)
        lines.append(f"| {view} | {first * 1e3:.1f} | {per * 1e3:.1f} | {fastest[-1] * 1e3:.1f} | {1 / per:.0f} |")
    extras = [("pseudo + window/level/gamma", lambda: mt.render(scan, "pseudo", window=0.8, level=0.5, gamma=1.5)),
              ("pseudo + edge", lambda: mt.render(scan, "pseudo", edge=True))]
    for name, fn in extras:
        fn()
        per = best_of(fn, repeat)
        lines.append(f"| {name} | - | {per * 1e3:.1f} | {fastest[-1] * 1e3:.1f} | {1 / per:.0f} |")
    table = best_of(lambda: mt.render(scan, "pseudo"), repeat)
    direct = best_of(lambda: naive_numpy(scan), max(2, repeat // 3))
    py = best_of(lambda: naive_python(scan), 1) * 100  # 100x100 crop -> 10^6 px
    lines += ["", "Side by side, pseudo-colour, 1000x1000:", "",
              "| method | ms per frame | ratio to table |", "|---|---|---|",
              f"| table lookup (materials.render) | {table * 1e3:.1f} | 1.0 |",
              f"| direct numpy per pixel | {direct * 1e3:.1f} | {direct / table:.1f}x |",
              f"| Python loop per pixel (100x100 crop x 100) | {py * 1e3:.0f} | {py / table:.0f}x |"]
    return lines


def append(path: Path, body: list[str], command: str) -> None:
    """Replace (or add) this benchmark's section in RESULTS.md, leaving other sections alone."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join([HEADING, "", f"Command: `{command}`  ", f"Date: {stamp}; machine: {platform.machine()}, "
                         f"{__import__('os').cpu_count()} CPUs (shared with other jobs while measured)", ""] + body) + "\n"
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + (text[nxt + 1:] if nxt >= 0 else "")
        text = text.replace(section + "## ", section + "\n## ")
    from xscreen.atomic import atomic_write_text

    atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--append", type=Path, default=None, help="RESULTS.md to update")
    args = ap.parse_args(argv)
    lines = run(args.repeat)
    print("\n".join(lines))
    if args.append:
        append(args.append, lines, "python benchmarks/bench_render.py " + " ".join(argv or sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
