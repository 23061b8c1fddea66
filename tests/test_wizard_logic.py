"""Training-wizard gates and estimates, without Qt."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from xscreen.config import PatchConfig, TrainConfig
from xscreen.scan import Scan
from xscreen.wizard import (MIN_PATCHES, Inventory, ScanInfo, WizardState, apply_preset, count_patches,
                            page_errors, safe_model_filename, tiling_preview, to_run_config)


def _inv(kinds):
    return Inventory(tuple(ScanInfo(Path(f"s{i}.h5"), k, 200, 200) for i, k in enumerate(kinds)))


def _ready(**kw):
    base = WizardState(benign=(Path("benign"),), inventory=_inv(["dual"] * 5), patch_estimate=500, name="my model")
    return dataclasses.replace(base, **kw)


def test_data_page_needs_input_one_kind_and_enough_scans():
    assert page_errors(WizardState(), "data") == ["choose at least one folder or file of benign scans"]
    assert page_errors(_ready(), "data") == []
    mixed = page_errors(_ready(inventory=_inv(["dual", "dual", "rgb", "dual"])), "data")
    assert len(mixed) == 1 and "mixed scan kinds (3 dual, 1 rgb)" in mixed[0]
    few = page_errors(_ready(inventory=_inv(["dual", "dual"])), "data")
    assert len(few) == 1 and "2 readable scan(s)" in few[0]


def test_data_page_refuses_missing_threat_folder(tmp_path):
    assert page_errors(_ready(threat=tmp_path), "data") == []
    errs = page_errors(_ready(threat=tmp_path / "nope"), "data")
    assert len(errs) == 1 and "does not exist" in errs[0]


@pytest.mark.parametrize("patch,estimate,ok", [
    (PatchConfig(), 500, True),
    (PatchConfig(size=48), 500, False),
    (PatchConfig(stride=4), 500, False),
    (PatchConfig(size=32, stride=64), 500, False),
    (PatchConfig(air_threshold=0.0), 500, False),
    (PatchConfig(), MIN_PATCHES - 1, False),
    (PatchConfig(), MIN_PATCHES, True),
])
def test_patch_page_gate(patch, estimate, ok):
    assert (page_errors(_ready(patch=patch, patch_estimate=estimate), "patches") == []) is ok


@pytest.mark.parametrize("train,ok", [
    (TrainConfig(), True), (TrainConfig(epochs=0), False), (TrainConfig(batch_size=1), False),
    (TrainConfig(lam=1.5), False), (TrainConfig(w_con=-1), False),
])
def test_model_page_gate(train, ok):
    assert (page_errors(_ready(train=train), "model") == []) is ok


def test_train_and_calibrate_gates(tmp_path):
    model = tmp_path / "m.xsm"
    assert page_errors(_ready(), "train") == ["train a model first (or resume the last run)"]
    assert page_errors(_ready(trained_model=model), "train") != []  # path given, file absent
    model.write_bytes(b"x")
    assert page_errors(_ready(trained_model=model), "train") == []
    assert page_errors(_ready(trained_model=model, training=True), "train") == ["training is running"]
    assert page_errors(_ready(trained_model=model), "calibrate") == []
    bad = _ready(trained_model=model, train=TrainConfig(scan_far=0.0))
    assert page_errors(bad, "calibrate") == ["false-alarm rates must be between 0 and 0.5"]


@pytest.mark.parametrize("name,ok", [("my model", True), ("", False), (" lead", False), ("a/b", False),
                                     ("x" * 64, True), ("x" * 65, False), ("baggage-v2.1_test", True)])
def test_save_page_name_gate(name, ok):
    assert (page_errors(_ready(name=name), "save") == []) is ok


def test_presets_and_run_config(tmp_path):
    fast_d = _ready(patch=PatchConfig(size=32, stride=16))
    fast_d = dataclasses.replace(fast_d, train=dataclasses.replace(fast_d.train, d_every=4))
    s = apply_preset(fast_d, "paper")
    assert s.train.d_every == 1  # the paper steps D on every step, whatever was set before
    assert (s.net.ngf, s.net.ndf, s.train.epochs, s.train.lam, s.train.d_batch) == (64, 64, 15, 0.9, "separate")
    std = apply_preset(s, "standard")  # the evidence's recipe (RESULTS.md, 'The discriminator bug')
    assert (std.net.ngf, std.train.lam, std.train.d_batch) == (32, 1.0, "separate")
    run = to_run_config(s, tmp_path / "m.xsm")
    assert run.net.size == 32 and run.net.channels == 2 and run.preprocess.kind == "dual"
    run.save(tmp_path / "run.json")
    assert type(run).load(tmp_path / "run.json") == run
    assert safe_model_filename(" my model/v2 ") == "my_model_v2.xsm"


def _scan(h=128, w=192):
    ch = np.full((2, h, w), 60000, np.uint16)
    ch[:, 32:96, 64:128] = 3000  # one dense block, everything else air
    return Scan("t", "dual", ch, 60000.0)


def test_count_patches_skips_air():
    kept, total = count_patches(_scan(), PatchConfig(size=64, stride=32))
    assert total == 3 * 5
    # grid patches whose 64x64 window overlaps the block enough to fall below 95 % transmission
    assert kept == 9
    kept_all, _ = count_patches(_scan(), PatchConfig(size=64, stride=32, skip_air=False))
    assert kept_all == 15


def test_tiling_preview_shades_air_and_draws_grid():
    scan = _scan()
    rgb = np.full((scan.height, scan.width, 3), 255, np.uint8)
    out = tiling_preview(rgb, scan, PatchConfig(size=64, stride=32))
    assert out.shape == rgb.shape
    assert tuple(out[0, 5]) == (0, 170, 255)           # grid line
    assert out[10, 10].sum() < 255 * 3                 # air patch shaded
    assert tuple(out[50, 80]) == (255, 255, 255)       # patch over the block untouched


def test_speed_measurement_times_the_runs_own_discriminator_cadence_and_batches(monkeypatch):
    """'Measure speed' runs real steps as training will: joint or separate D batches, and D stepped on
    every d_every-th step only (at least one whole cycle is timed)."""
    import xscreen.train as train_pkg
    from xscreen.config import NetConfig
    from xscreen.wizard.run import measure_speed

    calls = []
    real = train_pkg.train_step

    def spy(pair, x, precision, **kw):
        calls.append((kw.get("d_joint", False), kw.get("d_update", True)))
        return real(pair, x, precision, **kw)

    monkeypatch.setattr(train_pkg, "train_step", spy)
    net = NetConfig(size=32, channels=2, ngf=4, ndf=4, nz=8)
    est = measure_speed(net, TrainConfig(batch_size=4, device="cpu", precision="fp32", d_every=4, d_batch="joint"),
                        n_patches=400, steps=2)
    assert calls == [(True, True), (True, True), (True, False), (True, False), (True, False)]  # warm-up + 4
    assert est.patches_per_s > 0 and est.seconds_per_epoch == pytest.approx(400 / est.patches_per_s)


def test_an_evaluation_folder_overlapping_the_training_data_is_refused(tmp_path):
    """Issue 31 item 10: the training folder chosen as the evaluation folder (or one inside the
    other, e.g. the benign/ half of an 'xscreen synth' folder) was accepted without a word."""
    synth = tmp_path / "synth"
    (synth / "benign").mkdir(parents=True)
    (synth / "threat").mkdir()
    other = tmp_path / "other"
    other.mkdir()
    for benign, threat in ((synth / "benign", synth / "benign"), (synth / "benign", synth), (synth, synth / "threat")):
        errs = page_errors(_ready(benign=(benign,), threat=threat), "data")
        assert len(errs) == 1 and "overlaps the benign training data" in errs[0], (benign, threat)
    assert page_errors(_ready(benign=(synth / "benign",), threat=other), "data") == []


def test_resume_only_for_a_run_that_stopped_before_its_end(tmp_path):
    import os

    from xscreen.wizard.run import can_resume

    assert not can_resume(tmp_path)  # nothing trained
    state, model = tmp_path / "state.pt", tmp_path / "model.xsm"
    state.write_bytes(b"s")
    assert can_resume(tmp_path)  # cancelled before the first model file
    model.write_bytes(b"m")
    os.utime(state, ns=(1_000_000_000, 1_000_000_000))
    os.utime(model, ns=(2_000_000_000, 2_000_000_000))
    assert not can_resume(tmp_path)  # finished: the model was written after the last state
    os.utime(state, ns=(3_000_000_000, 3_000_000_000))
    assert can_resume(tmp_path)  # a new run cancelled after an epoch


def test_calibrate_page_names_counts_and_interval_and_keeps_the_trained_threshold(tmp_path):
    from tests.screen_fixtures import save_tiny_model
    from xscreen.checkpoint import read_meta
    from xscreen.config import Calibration
    from xscreen.wizard.run import ValScores, calibration_for, calibration_summary, recalibrate

    stored = Calibration(0.06272, 0.01, 0.09, 0.05, n_patches=300, n_scans=3)
    path = save_tiny_model(tmp_path / "m.xsm", calibration=stored)
    rng = np.random.default_rng(0)
    scores = ValScores(rng.uniform(0.0, 0.1, 300), np.repeat(np.arange(3), 100))
    # the rates training calibrated for: its threshold, not a rescored 0.06263
    assert calibration_for(path, scores, 0.01, 0.05) == stored
    assert recalibrate(path, scores, 0.01, 0.05) == stored and read_meta(path)[0].calibration == stored
    other = calibration_for(path, scores, 0.02, 0.05)
    assert other.patch_threshold != stored.patch_threshold
    text = calibration_summary(other, scores)
    # 1 of 3 scans at the highest scan score: the count and what 3 scans can support, not "5.0 % of 3"
    assert "6 of 300 held-out benign patches reach it" in text
    assert "1 of 3 held-out benign scans alarm (95 % interval 0.8% to 90.6%; target 5.0%)" in text
