"""Smoke test of benchmarks/bench_known_threat.py: the harness runs end to end on a tiny model and
writes every test's numbers for the anomaly score, the head and the fusion (not the science)."""
import json
import sys
from pathlib import Path

from screen_fixtures import save_tiny_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_bench_known_threat_smoke(tmp_path):
    import bench_known_threat

    model = save_tiny_model(tmp_path / "m.xsm", size=32)
    assert bench_known_threat.main(["--model", str(model), "--out", str(tmp_path / "o"), "--smoke"]) == 0
    doc = json.loads((tmp_path / "o" / "bench_known_threat.json").read_text())
    assert set(doc["results"]) == {"a_family2", "a'_synth_same_generator", "b_left_out_knife",
                                   "b_left_out_knife_family2"}
    for name, r in doc["results"].items():
        assert set(r["by_score"]) == {"anomaly", "head", "fused"}, name
        for s in r["by_score"].values():
            assert 0.0 <= s["scan_auc"] <= 1.0 and 0 <= s["found"] <= s["n"]
    from xscreen.tip import load_library

    cats = {f.fti_id: f.category for f in load_library(tmp_path / "o" / "libA").ftis}
    assert doc["manifests"]["no_knife"] and all(cats[i] != "knife" for i in doc["manifests"]["no_knife"])
    assert any(cats[i] == "knife" for i in doc["manifests"]["all"])
