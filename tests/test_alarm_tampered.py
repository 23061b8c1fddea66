"""Tampered but finite model fields, checksum recomputed (issue 32 item 7): each used to load and
clear the handgun bag, crash `screen`, or crash `model info` with a traceback. Each is now refused
on load with the field named; a real calibration still loads."""
import math

import numpy as np
import pytest
import torch

from test_checkpoint import _resign
from xscreen.alarm import calibrate_bags, rule_for
from xscreen.checkpoint import ModelCard, ModelError, ModelMeta, load_model, read_meta, save_model
from xscreen.cli import main as cli_main
from xscreen.config import Calibration, NetConfig, PatchConfig, Preprocess, TrainConfig
from xscreen.network import Discriminator, Generator

NET = NetConfig(size=32, channels=2, ngf=4, ndf=4, nz=8)
# the shipped default model's calibration (models/default.xsm, v2): real numbers, not made up
QUANTILES = {"0.5": 0.017566, "0.9": 0.026707, "0.95": 0.033138, "0.99": 0.046536, "0.999": 0.076230}
REAL = Calibration(0.046536, 0.01, 0.082089, 0.05, "max", 5, QUANTILES, n_patches=70193, n_scans=200,
                   alarm_rule="area", alarm_power=0.5, alarm_loc=0.21186651, alarm_scale=0.02513162,
                   ref_area=375808.0, stride=32, version=2, n_alarmed=13, far_lo=0.035, far_hi=0.1086,
                   source="200 benign scans")


def _save(path, cal):
    torch.manual_seed(0)
    meta = ModelMeta(NET, Preprocess(), PatchConfig(size=32, stride=16), TrainConfig(), cal, ModelCard(name="t"))
    save_model(path, Generator(NET), Discriminator(NET), meta)
    return path


@pytest.fixture
def real_model(tmp_path):
    return _save(tmp_path / "real.xsm", REAL)


CASES = [  # (what was edited, the field the refusal must name); the first five cleared the handgun bag
    ({"calibration": {"alarm_loc": 1000.0}}, "calibration.alarm_loc"),
    ({"calibration": {"alarm_rule": "legacy", "scan_threshold": 1e308}}, "calibration.scan_threshold"),
    ({"calibration": {"ref_area": 1e-300}}, "calibration.ref_area"),
    ({"calibration": {"scan_far": 1e-300}}, "calibration.scan_far"),
    ({"preprocess": {"a_max": 100.0}}, "preprocess.a_max"),
    # these two crashed `screen` (ZeroDivisionError; a RuntimeError that aborted the batch)
    ({"calibration": {"alarm_rule": "legacy", "n_patches": 0, "n_scans": 1}}, "calibration.n_patches"),
    ({"train": {"recon_window": 128}}, "train.recon_window"),
    # these crashed `model info` with a traceback
    ({"calibration": {"scan_far": 0.0}}, "calibration.scan_far"),
    ({"calibration": {"scan_far": 1.0}}, "calibration.scan_far"),
    ({"calibration": {"alarm_loc": 1e300}}, "calibration.alarm_loc"),
    ({"calibration": {"alarm_loc": -1e300}}, "calibration.alarm_loc"),
    ({"calibration": {"alarm_scale": 1e300}}, "alarm_scale"),
    ({"calibration": {"alarm_power": 0.0}}, "alarm_power"),
    ({"calibration": {"alarm_power": 0.7}}, "calibration.alarm_power"),
    ({"calibration": {"quantiles": {"0.5": 0.5, "0.99": 0.1}}}, "calibration.quantiles"),
    ({"calibration": {"n_alarmed": 201}}, "calibration.n_alarmed"),
    ({"calibration": {"patch_threshold": 50.0}}, "calibration.patch_threshold"),
]


@pytest.mark.parametrize("edit, field", CASES, ids=[f"{k}-{i}" for i, (e, k) in enumerate(CASES)])
def test_tampered_finite_fields_are_refused_with_the_field_named(real_model, tmp_path, capsys, edit, field):
    def apply(meta):
        for section, values in edit.items():
            meta[section].update(values)

    bad = _resign(real_model, tmp_path / "bad.xsm", edit_meta=apply)
    for load in (load_model, read_meta):
        with pytest.raises(ModelError, match="invalid model metadata") as err:
            load(bad)
        assert field in err.value.fault, err.value.fault
    assert cli_main(["model", "info", str(bad)]) == 2  # a clean error line, not a traceback
    err_text = capsys.readouterr().err
    assert err_text.startswith("error: ") and field in err_text and "Traceback" not in err_text


def test_the_real_calibration_and_plausible_edits_still_load(real_model, tmp_path, capsys):
    meta = load_model(real_model).meta
    assert meta.calibration == REAL
    assert cli_main(["model", "info", str(real_model)]) == 0
    assert "threshold 0.08208" in capsys.readouterr().out

    def stricter(m):  # another target rate: a different threshold, still inside the benign span
        m["calibration"]["scan_far"] = 0.01

    t = rule_for(load_model(_resign(real_model, tmp_path / "ok.xsm", edit_meta=stricter)).meta.calibration, 32)
    assert 0.082089 < t.threshold(375808.0) < 10 * QUANTILES["0.999"]


def test_a_calibration_made_by_calibrate_bags_passes_its_own_load_check(tmp_path):
    """The checks refuse only what a calibration cannot produce: a fresh fit on benign bags of
    different sizes loads, and it records the largest bag's area."""
    rng = np.random.default_rng(5)
    areas = rng.uniform(2e5, 6e5, 60)
    bag_max = 0.05 + 0.01 * np.log(areas / 3e5) + rng.gumbel(0.0, 0.01, 60)
    patches = rng.exponential(0.01, 20000) + 0.01
    cal = calibrate_bags(patches, bag_max, areas, stride=32)
    assert cal.area_max == pytest.approx(areas.max())
    assert load_model(_save(tmp_path / "fresh.xsm", cal)).meta.calibration == cal
    with pytest.raises(ValueError, match="scan false-alarm rate"):
        calibrate_bags(patches, bag_max, areas, scan_far=0.9)
    assert math.isfinite(rule_for(cal, 32).area_hi)


def test_model_info_shows_a_hand_edited_card_history_without_a_traceback(real_model, tmp_path, capsys):
    """The card's calibration history and evaluation notes are free-form: shown, never formatted as
    numbers they are not (before: ValueError / AttributeError tracebacks)."""
    def edit(meta):
        meta["card"]["calibration_history"] = [{"version": 1, "interval_95": "ab", "threshold_at_ref_area": "x",
                                                "ref_area": None, "n_bags": 3, "n_alarmed": 0}]
        meta["card"]["evaluation"] = {"scan_calibration": [32]}

    bad = _resign(real_model, tmp_path / "card.xsm", edit_meta=edit)
    assert cli_main(["model", "info", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "history    v1" in out and "threshold ? at ? px^2" in out


def test_what_loading_would_refuse_is_never_written(real_model):
    """A recalibration (or a save) whose result the load check would refuse fails at the write, with
    the field named, and the file on disk stays the loadable one it was."""
    from dataclasses import replace

    from xscreen.checkpoint import update_model_meta

    before = real_model.read_bytes()
    with pytest.raises(ValueError, match="not written.*calibration.alarm_loc"):
        update_model_meta(real_model, calibration=replace(REAL, alarm_loc=1000.0))
    assert real_model.read_bytes() == before and load_model(real_model).meta.calibration == REAL
