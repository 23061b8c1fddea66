"""Every maintained script in benchmarks/ runs on tiny data and prints the figure its results-page
table is made of (benchmarks/RESULTS.md names the full-size command). Speed is never asserted here:
only that the script completes and reports its measure as a number."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
SAMPLES = ROOT / "resources" / "samples"


def run(script: str, *args: str, timeout: int = 600) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{out[-3000:]}"
    return out


def numbers(pattern: str, text: str) -> list[float]:
    found = [float(v) for m in re.findall(pattern, text) for v in (m if isinstance(m, tuple) else (m,))]
    assert found, f"no match for {pattern!r} in:\n{text[-2000:]}"
    return found


@pytest.fixture(scope="module")
def tiny_sets(tmp_path_factory) -> Path:
    """A 2 + 2 bag test set and 3 benign calibration bags (calibration needs at least 3)."""
    from xscreen.cli import main as cli
    root = tmp_path_factory.mktemp("bench_sets")
    assert cli(["synth", str(root / "test"), "--benign", "2", "--threat", "2", "--seed", "5"]) == 0
    assert cli(["synth", str(root / "calib"), "--benign", "3", "--seed", "6"]) == 0
    return root


def test_bench_render_reports_frame_times():
    out = run("bench_render.py", "--repeat", "1")
    ratios = numbers(r"\| direct numpy per pixel \| [\d.]+ \| ([\d.]+)x \|", out)
    assert ratios[0] > 0


def test_bench_train_reports_ratios_against_the_reference():
    out = run("bench_train.py", "--ngf", "8", "--size", "32", "--batch", "4", "--steps", "1", "--warmup", "0",
              "--only", "main")
    ratios = numbers(r"x([\d.]+) vs reference fp32 NCHW", out)
    assert len(ratios) >= 4 and all(r > 0 for r in ratios)


def test_bench_screen_reports_the_speed_up_and_the_bf16_rank_agreement():
    out = run("bench_screen.py", "--scans", "1", "--width", "160", "--ngf", "8", "--no-compile",
              "--rank-patches", "4", "--threads", "1")
    assert numbers(r"speed-up vs reference \(wall\) ([\d.]+)x per scan", out)[0] > 0
    assert 0.9 <= numbers(r"Spearman ([\d.]+) \(scores\)", out)[0] <= 1.0


def test_bench_patch_store_compares_readers():
    out = run("bench_patch_store.py", "--patches", "300", "--size", "32", "--batch", "16", "--batches", "4")
    assert numbers(r"BlockBatchSampler \(16-patch runs\) \| [\d.]+ patches/s \| ([\d.]+)x", out)[0] > 0


def test_bench_onnx_compares_engines():
    pytest.importorskip("onnxruntime")
    out = run("bench_onnx.py", "--patches", "64", "--rounds", "1")
    assert numbers(r"onnxruntime fp32 +[\d.]+ patches/s +x([\d.]+) vs torch fp32", out)[0] > 0


def test_bench_cascade_counts_changed_bags(tmp_path):
    out = run("bench_cascade.py", str(SAMPLES), "--limit", "2", "--fractions", "0.8")
    rows = re.findall(r"\| 0\.8 \| (\d+) \| [\d.]+ \| ([\d.]+)× \| (\d+) / 2 \| (\d+) / 2 \|", out)
    assert rows, out[-2000:]
    scored, _, other_regions, other_alarms = rows[0]
    assert int(scored) > 0 and int(other_alarms) <= 2


def test_bench_cli_memory_reports_the_peak():
    out = run("bench_cli_memory.py", "--height", "300", "--width", "600")
    assert numbers(r"peak (\d+) MiB", out)[0] > 0
    assert "exit 0" in out


def test_bench_seams_measures_the_seam_energy(tmp_path):
    shutil.copy(SAMPLES / "bag02_handgun.h5", tmp_path / "bag02_handgun.h5")
    out = run("bench_seams.py", "--samples", str(tmp_path))
    row = re.search(r"\| bag02_handgun \| ([\d.]+) \| ([\d.]+) \| inf \| ([\d.]+) \|", out)
    assert row, out[-2000:]
    flat_recon, _, tapered_recon = (float(v) for v in row.groups())
    assert tapered_recon < flat_recon  # the tapered window is what removes the grid


def test_score_options_writes_its_row(tiny_sets, tmp_path):
    run("score_options.py", str(ROOT / "models" / "default.xsm"), "--calib", str(tiny_sets / "calib" / "benign"),
        "--test", str(tiny_sets / "test"), "--settings", "0:0", "--out", str(tmp_path))
    rows = [r for p in tmp_path.rglob("*.json") for r in (lambda d: d if isinstance(d, list) else [d])(
        json.loads(p.read_text()))]
    row = next(r for r in rows if isinstance(r, dict) and r.get("setting") == "0:0")
    assert 0.0 <= row["by_lambda"]["1.0"]["patch"] <= 1.0
    assert 0.0 <= row["benign_inserted_auc"] <= 1.0


def test_synthetic_baselines_tabulates_trivial_scores_beside_the_model(tiny_sets, tmp_path):
    out = run("synthetic_baselines.py", "--train", str(tiny_sets / "calib" / "benign"),
              "--calib", str(tiny_sets / "calib" / "benign"), "--test", str(tiny_sets / "test"),
              "--models", str(ROOT / "models" / "default.xsm"), "--out", str(tmp_path))
    for name in ("PCA k=64", "kNN k=1", "model default.xsm"):
        assert numbers(re.escape(name) + r"[^|]*\| ([\d.]+) \|", out)[0] <= 1.0


def test_site_recalibration_states_its_interval():
    out = run("site_recalibration.py", "--audit-bags", "3", "--test-bags", "3")
    low, high = numbers(r"stated interval of the recalibration \(3 cleared bags\): ([\d.]+)%-([\d.]+)%", out)
    assert 0 <= low < high <= 100


@pytest.mark.realdata
def test_detection_study_reads_every_score_form_on_sixray(realdata, tmp_path):
    run("detection_study.py", "--variant", "smoke", "--n-train", "3", "--n-val", "2", "--max-patches", "8",
        "--epochs", "1", "--ngf", "8", "--batch-size", "8", "--out", str(tmp_path), "--precision", "fp32")
    study = json.loads((tmp_path / "study_smoke.json").read_text())
    text = json.dumps(study)
    assert "R_l1" in text and "Rin_l1_max8" in text
