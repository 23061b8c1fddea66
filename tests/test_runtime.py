"""precision='auto': chosen per device and per job by a cached measurement, never by a CPU flag alone."""
import json
import time

import pytest
import torch

from xscreen import runtime
from xscreen.config import NetConfig, TrainConfig
from xscreen.runtime import precision_for


def _workload(cost: dict[str, float], calls: list[str]):
    def run(p: runtime.Precision) -> None:
        calls.append(p.name)
        time.sleep(cost[p.name])
    return run


@pytest.fixture
def native_bf16(monkeypatch, tmp_path):
    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: True)
    monkeypatch.setenv("XSCREEN_PRECISION_CACHE", str(tmp_path / "precision.json"))
    return tmp_path / "precision.json"


def test_auto_picks_the_faster_per_job_and_caches_it(native_bf16):
    calls: list[str] = []
    train = precision_for("cpu", "auto", job="train", workload=_workload({"fp32": 0.001, "bf16": 0.02}, calls),
                          workload_key="net A")
    score = precision_for("cpu", "auto", job="score", workload=_workload({"fp32": 0.02, "bf16": 0.001}, calls),
                          workload_key="net A")
    assert (train.name, score.name) == ("fp32", "bf16")
    assert sorted(set(calls)) == ["bf16", "fp32"] and len(calls) == 24  # 2 jobs x 2 precisions x (1 + 5)
    cache = json.loads(native_bf16.read_text())
    assert sorted(v["choice"] for v in cache.values()) == ["bf16", "fp32"]
    calls.clear()
    again = precision_for("cpu", "auto", job="train", workload=_workload({"fp32": 1, "bf16": 1}, calls),
                          workload_key="net A")
    assert again.name == "fp32" and calls == []  # from the cache, nothing measured


def test_explicit_precision_and_missing_hardware_measure_nothing(native_bf16, monkeypatch):
    calls: list[str] = []
    work = _workload({"fp32": 0.0, "bf16": 0.0}, calls)
    assert precision_for("cpu", "bf16", job="train", workload=work).name == "bf16"
    assert precision_for("cpu", "fp32", job="score", workload=work).name == "fp32"
    monkeypatch.setattr(runtime, "cpu_supports_bf16", lambda: False)
    assert precision_for("cpu", "auto", job="train", workload=work).name == "fp32"
    assert calls == []


def test_auto_without_a_workload_is_fp32_on_cpu(native_bf16):
    assert precision_for("cpu", "auto").name == "fp32"


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"k": {"choice": "fp64"}}', ""])
def test_a_corrupt_cache_is_ignored_and_rewritten(native_bf16, content):
    native_bf16.write_text(content)
    calls: list[str] = []
    p = precision_for("cpu", "auto", job="score", workload=_workload({"fp32": 0.02, "bf16": 0.0}, calls),
                      workload_key="k2")
    assert p.name == "bf16" and calls
    assert any(v["choice"] == "bf16" for v in json.loads(native_bf16.read_text()).values())


def test_measuring_leaves_the_global_rng_alone(native_bf16):
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    precision_for("cpu", "auto", job="train", workload=lambda p: torch.rand(100), workload_key="rng")
    assert torch.equal(torch.rand(4), expected)


def test_train_precision_measures_real_train_steps(native_bf16):
    from xscreen.train.session import train_precision

    net = NetConfig(size=32, channels=1, ngf=4, ndf=4, nz=8)
    p = train_precision(net, TrainConfig(batch_size=8, precision="auto", device="cpu"))
    entry = next(iter(json.loads(native_bf16.read_text()).values()))
    assert p.name == entry["choice"] and set(entry["seconds"]) == {"fp32", "bf16"}
    assert all(v > 0 for v in entry["seconds"].values())


def test_candidates_alternate_so_load_slows_them_alike(native_bf16):
    calls: list[str] = []
    precision_for("cpu", "auto", job="score", workload=_workload({"fp32": 0.0, "bf16": 0.0}, calls),
                  workload_key="alt")
    assert calls[:2] == ["fp32", "bf16"] and calls[2:] == ["fp32", "bf16"] * 5
