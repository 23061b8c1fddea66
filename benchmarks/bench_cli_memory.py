"""Peak memory of the whole ``xscreen screen`` command on a large dual scan (issue 17).

Makes an H x W dual-energy HDF5 scan (two synthetic bags side by side in air), runs the CLI in a
fresh process and samples, every 20 ms, the resident memory of the command *and its reader
process* summed (what the machine has to hold), and prints the peak.

    python benchmarks/bench_cli_memory.py --height 3000 --width 8000 [-- extra xscreen screen flags]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_scan(path: Path, height: int, width: int, seed: int = 42) -> None:
    from xscreen.scan import Scan, save_h5
    from xscreen.synth import synth_bag

    bag = synth_bag(seed=seed, threat=True, width=min(4000, width // 2))
    ch = bag.scan.channels
    big = np.full((2, height, width), int(bag.scan.i0 * 0.99), np.uint16)
    h, w = min(ch.shape[1], height), ch.shape[2]
    for x0 in range(0, width - w + 1, w):
        big[:, :h, x0:x0 + w] = ch[:, :h]
    save_h5(Scan(scan_id="large", kind="dual", channels=big, i0=bag.scan.i0), path)


def tree_rss(pid: int) -> int:
    """Summed VmRSS (bytes) of ``pid`` and all its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as fh:
                total += next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:")) * 1024
            with open(f"/proc/{p}/task/{p}/children") as fh:
                todo += [int(c) for c in fh.read().split()]
        except (OSError, StopIteration):
            pass
    return total


def peak_of(cmd: list[str]) -> tuple[int, int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc.pid))
        time.sleep(0.02)
    return peak, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--width", type=int, default=8000)
    ap.add_argument("extra", nargs="*", help="more `xscreen screen` flags (after --)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scan = Path(tmp) / "large.h5"
        make_scan(scan, args.height, args.width)
        cmd = [sys.executable, "-m", "xscreen", "screen", str(scan), "--out", str(Path(tmp) / "out"),
               "--threads", "1", *args.extra]
        peak, rc = peak_of(cmd)
    print(f"{args.height} x {args.width} dual scan, `xscreen screen {' '.join(args.extra)}`: "
          f"peak {peak / 2**20:.0f} MiB (command + reader process), exit {rc}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
