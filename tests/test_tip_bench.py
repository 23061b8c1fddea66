"""Smoke test of benchmarks/bench_tip.py: it runs on a tiny bag and reports every category (no timings asserted)."""
import subprocess
import sys
from pathlib import Path

from xscreen.tip import CATEGORIES

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_tip.py"


def test_bench_tip_reports_every_category_and_the_total():
    res = subprocess.run([sys.executable, str(BENCH), "--bags", "1", "--repeat", "1", "--width", "200"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = [ln.split("|")[1].strip() for ln in res.stdout.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert rows == ["category", *CATEGORIES, "all"]
    total = next(ln for ln in res.stdout.splitlines() if ln.startswith("| all"))
    assert all(float(v) > 0 for v in total.strip("| ").split("|")[1:])


def test_bench_tip_refuses_bad_arguments():
    res = subprocess.run([sys.executable, str(BENCH), "--bags", "0"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and res.stderr.startswith("error: ")
