"""TIP projection speed per bag: scheduling (occupied area + placement) and projection, per category.

Bags are ``synth_bag`` scans (default 750 px wide, the generator's middle size; about 0.9 mm pitch),
FTIs are generated at 1 mm. Per bag, side by side in one run:
  * schedule  - occupied area of the bag + a seeded placement of the FTI inside it
  * product   - Beer-Lambert product on counts, blur, noise re-applied (``hardening=False``; the path
                of imported FTIs)
  * exact     - the exact rendering over the bag's cellulose equivalent (the default for generated FTIs)
Times are medians over ``--bags`` bags x ``--repeat`` repeats, in ms; loading and saving are left out.

    /work/venv/bin/python benchmarks/bench_tip.py [--bags 5] [--repeat 3] [--width 750]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

from xscreen.synth import synth_bag
from xscreen.tip import CATEGORIES, project, schedule, synth_fti
from xscreen.tip.generate import fti_seed
from xscreen.tip.schedule import occupied_area


def timed(fn, repeat: int) -> tuple[float, object]:
    best, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best.append(time.perf_counter() - t0)
    return min(best), out


def measure(bags: int, repeat: int, width: int) -> dict[str, dict[str, list[float]]]:
    """{category: {step: [seconds per bag]}}."""
    scans = [synth_bag(9000 + k, width=width).scan for k in range(bags)]
    ftis = {c: synth_fti(c, fti_seed(0, c, 0)) for c in CATEGORIES}
    out: dict[str, dict[str, list[float]]] = {c: {"schedule": [], "product": [], "exact": []} for c in CATEGORIES}
    for k, scan in enumerate(scans):
        for cat, fti in ftis.items():
            def place():
                return schedule(scan, fti, np.random.default_rng(k), occupied=occupied_area(scan))
            t_s, p = timed(place, repeat)
            t_p, _ = timed(lambda: project(scan, fti, p, rng=np.random.default_rng(k), hardening=False), repeat)
            t_h, _ = timed(lambda: project(scan, fti, p, rng=np.random.default_rng(k)), repeat)
            for step, t in (("schedule", t_s), ("product", t_p), ("exact", t_h)):
                out[cat][step].append(t)
    return out


def table(res: dict[str, dict[str, list[float]]], width: int, bags: int) -> str:
    lines = [f"TIP projection per bag ({bags} synth bags, {width} px wide; median ms; "
             f"{platform.processor() or platform.machine()}, {platform.python_version()})",
             "| category | schedule | product | exact | schedule + exact |", "|---|---|---|---|---|"]
    rows = {**res, "all": {k: [v for st in res.values() for v in st[k]] for k in ("schedule", "product", "exact")}}
    for cat, steps in rows.items():
        s, p, e = (1000 * statistics.median(steps[k]) for k in ("schedule", "product", "exact"))
        lines.append(f"| {cat} | {s:.1f} | {p:.1f} | {e:.1f} | {s + e:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bags", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--width", type=int, default=750)
    args = ap.parse_args(argv)
    if args.bags < 1 or args.repeat < 1 or not 64 <= args.width <= 4000:
        print("error: --bags and --repeat must be >= 1, --width within 64..4000", file=sys.stderr)
        return 2
    print(table(measure(args.bags, args.repeat, args.width), args.width, args.bags))
    return 0


if __name__ == "__main__":
    sys.exit(main())
