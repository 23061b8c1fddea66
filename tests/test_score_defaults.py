"""Issue 29: a new model's score form follows the input kind (CLI, wizard, presets), while files and
configs that name a form keep it, and ``model info`` names the form."""
import argparse
import dataclasses
import json

import numpy as np

from xscreen import wizard as wz
from xscreen.cli import build_parser, main
from xscreen.config import SCORE_DEFAULTS, RunConfig, TrainConfig, score_form_text, with_score_defaults
from xscreen.scan import Scan, save_image

TINY = ["--size", "32", "--ngf", "4", "--epochs", "1", "--batch-size", "8", "--precision", "fp32",
        "--device", "cpu", "-q"]


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def rgb_bags(folder, n, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.integers(60, 230, (3, 64, 64)).astype(np.uint8)
        save_image(Scan(f"c{i}", "rgb", img, 255.0), folder / f"c{i}.png")


def test_defaults_per_kind_and_explicit_fields_kept():
    t = with_score_defaults(TrainConfig(), "rgb")
    assert (t.score_inpaint, t.recon_window, t.density) == (2, 16, 1.0)
    t = with_score_defaults(TrainConfig(), "dual")  # the simulators disagree: dual keeps the plain score
    assert (t.score_inpaint, t.recon_window, t.density) == (0, 0, 0.0)
    kept = with_score_defaults(TrainConfig(recon_window=8), "rgb", {"recon_window"})
    assert (kept.score_inpaint, kept.recon_window, kept.density) == (2, 8, 1.0)
    assert TrainConfig().score_inpaint == 0  # files and configs without the fields keep the plain score
    assert score_form_text(TrainConfig()).startswith("plain")
    assert score_form_text({"score_inpaint": 2, "recon_window": 16, "density": 1.0}) == \
        "inpainted 2x2 (4 generator passes), window 16, density prior 1"


def test_flags_and_config_files_count_as_chosen(tmp_path):
    from xscreen.cli.train import explicit_score_fields

    p = _train_parser()
    assert explicit_score_fields(p.parse_args(["x"])) == set()
    assert explicit_score_fields(p.parse_args(["x", "--density", "0"])) == {"density"}
    cfg = tmp_path / "run.json"
    RunConfig().save(cfg)  # the wizard writes every field: all three are chosen
    assert explicit_score_fields(p.parse_args(["x", "--config", str(cfg)])) == {"score_inpaint", "recon_window",
                                                                               "density"}
    cfg.write_text(json.dumps({"train": {"epochs": 2}}))
    assert explicit_score_fields(p.parse_args(["x", "--config", str(cfg)])) == set()
    text = " ".join(p.format_help().split())
    assert "default by input kind: dual 0, rgb 2, gray 2" in text and "dual 0, rgb 1, gray 1" in text


def test_wizard_presets_and_data_kind_set_the_score_form():
    state = wz.apply_preset(wz.WizardState(), "standard")  # no data yet: dual, the plain score
    assert (state.train.score_inpaint, state.train.recon_window, state.train.density) == (0, 0, 0.0)
    inv = wz.Inventory(tuple(wz.ScanInfo(f"c{i}.png", "rgb", 64, 64) for i in range(3)))
    rgb = wz.with_inventory(state, inv)
    assert (rgb.train.score_inpaint, rgb.train.recon_window, rgb.train.density) == (2, 16, 1.0)
    edited = dataclasses.replace(rgb, train=dataclasses.replace(rgb.train, density=0.5))
    assert wz.with_inventory(edited, inv).train.density == 0.5  # same kind again: the user's edit stays
    paper = wz.apply_preset(rgb, "paper")
    assert (paper.train.score_inpaint, paper.train.recon_window, paper.train.density) == (0, 0, 0.0)
    assert wz.to_run_config(rgb, "m.xsm").train.density == 1.0
    assert wz.page_errors(rgb, "model") == []


def test_cli_trains_an_rgb_model_with_the_rgb_default_and_model_info_names_it(tmp_path, capsys):
    rgb_bags(tmp_path / "rgb", 4)
    out = tmp_path / "m.xsm"
    assert main(["train", str(tmp_path / "rgb"), "-o", str(out)] + TINY) == 0
    capsys.readouterr()
    assert main(["model", "info", str(out), "--json"]) == 0
    t = json.loads(capsys.readouterr().out)["train"]
    assert {k: t[k] for k in SCORE_DEFAULTS["rgb"]} == SCORE_DEFAULTS["rgb"] and t["density_scale"] > 0
    assert main(["model", "info", str(out)]) == 0
    assert "score form inpainted 2x2 (4 generator passes), window 16, density prior 1" in \
        " ".join(capsys.readouterr().out.split())
