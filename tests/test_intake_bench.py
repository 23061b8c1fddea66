"""Smoke test of benchmarks/bench_intake.py: a few tiny bags through the inbox and over the network;
checks the figures it reports are there and consistent (no timing assertions)."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


@pytest.mark.parametrize("via", ["inbox", "network"])
def test_bench_intake_smoke(tmp_path, via, realdata):
    if via == "network":
        pytest.importorskip("pynetdicom")
    import bench_intake

    out = bench_intake.main(["--n", "3", "--rates", "50", "--tiny", "--width", "160", "--via", via,
                             "--threads", "1", "--json", str(tmp_path / "r.json")])
    row = out["rates"][0]
    assert row["n"] == 3 and 0 < row["median_s"] <= row["p95_s"] <= row["max_s"]
    assert row["sustained_per_s"] > 0 and 0 <= row["max_waiting"] <= 3
    assert json.loads((tmp_path / "r.json").read_text())["via"] == via
