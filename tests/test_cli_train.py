"""``xscreen train`` on real-world folders: odd files are listed and skipped, never fatal unless
nothing is left; every flag shows its default; λ and the loss weights are flags."""
import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xscreen.cli import build_parser, main
from xscreen.config import RunConfig
from xscreen.scan import Scan, save_scan

TINY = ["--size", "32", "--ngf", "4", "--epochs", "1", "--batch-size", "8", "--precision", "fp32",
        "--device", "cpu", "-q"]


def dual_bags(folder, n, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        t = rng.uniform(0.05, 0.6, (2, 64, 64))
        save_scan(Scan(f"s{i}", "dual", (t * 60000).astype(np.uint16), 60000.0), folder / f"s{i}.h5")
    return sorted(folder.glob("*.h5"))


def odd_files(folder):
    """What sits next to the bags in a synth output: masks (all zero for benign bags, grey with a
    threat), and a broken file."""
    (folder / "masks").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(folder / "masks" / "benign.png")
    mask = np.zeros((64, 64), np.uint8)
    mask[10:30, 10:30] = 255
    Image.fromarray(mask).save(folder / "masks" / "threat.png")
    (folder / "broken.tif").write_bytes(b"II*\0" + b"\0" * 20)
    return {"benign.png": "all pixels are zero", "threat.png": "a gray image; training on the dual scans",
            "broken.tif": "TIFF holds no image"}


def test_odd_files_are_listed_and_skipped_and_training_goes_on(tmp_path, capsys):
    data = tmp_path / "data"
    bags = dual_bags(data, 4)
    reasons = odd_files(data)
    out = tmp_path / "m.xsm"
    assert main(["train", str(data), "-o", str(out), "--save-config", str(tmp_path / "eff.json")] + TINY) == 0
    err = capsys.readouterr().err
    for name, reason in reasons.items():
        line = next(ln for ln in err.splitlines() if ln.startswith("skipped") and name in ln)
        assert reason in line
    assert out.is_file()
    # the config records exactly the scans trained on, so it reruns without the odd files
    assert RunConfig.load(tmp_path / "eff.json").benign == tuple(map(str, bags))
    assert main(["model", "info", str(out), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)["card"]
    assert card["n_train_scans"] + card["n_val_scans"] == 4


def test_a_synth_output_folder_trains_on_its_benign_bags_only(tmp_path, capsys):
    """The issue's case: `xscreen train` pointed at an `xscreen synth` folder (benign/, threat/,
    masks/ with all-zero PNGs for benign bags, labels.csv)."""
    assert main(["synth", str(tmp_path / "syn"), "--benign", "3", "--threat", "1", "--width", "200"]) == 0
    capsys.readouterr()
    out = tmp_path / "m.xsm"
    assert main(["train", str(tmp_path / "syn"), "-o", str(out), "--save-config", str(tmp_path / "e.json")]
                + TINY) == 0
    err = capsys.readouterr().err
    assert err.count("all pixels are zero") == 3  # the benign bags' masks
    assert "threat/threat_0_00000.h5: labelled a threat bag (" in err and "labels.csv" in err
    assert "masks/threat_0_00000.png: labelled a threat bag" in err
    used = RunConfig.load(tmp_path / "e.json").benign
    assert [Path(p).parent.name for p in used] == ["benign"] * 3 and out.is_file()


def test_nothing_usable_left_is_refused_with_every_reason(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(data / "zero.png")
    (data / "broken.h5").write_bytes(b"not hdf5")
    assert main(["train", str(data), "-o", str(tmp_path / "m.xsm")] + TINY) == 2
    err = capsys.readouterr().err
    assert "error: no usable benign scans: 2 file(s) skipped" in err
    assert "zero.png: all pixels are zero" in err and "broken.h5: corrupt or unreadable HDF5" in err
    assert not (tmp_path / "m.xsm").exists()


def test_a_tie_of_scan_kinds_is_refused_not_guessed(tmp_path, capsys):
    dual_bags(tmp_path, 1)
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(tmp_path / "grey.png")
    assert main(["train", str(tmp_path), "-o", str(tmp_path / "m.xsm")] + TINY) == 2
    assert "mixed scan kinds (1 dual, 1 gray) in equal numbers" in capsys.readouterr().err


def test_unusable_val_set_is_refused(tmp_path, capsys):
    dual_bags(tmp_path / "train", 3)
    (tmp_path / "val").mkdir()
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(tmp_path / "val" / "grey.png")
    assert main(["train", str(tmp_path / "train"), "--val", str(tmp_path / "val"),
                 "-o", str(tmp_path / "m.xsm")] + TINY) == 2
    assert "grey.png: a gray image; training on the dual scans" in capsys.readouterr().err


def test_missing_input_is_named(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope"), "-o", str(tmp_path / "m.xsm"), "-q"]) == 2
    assert f"error: {tmp_path / 'nope'}: no such file or folder" in capsys.readouterr().err


def _train_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def test_help_shows_every_default():
    for action in _train_parser()._actions:
        if action.option_strings and action.dest != "help":
            assert "default" in (action.help or ""), action.option_strings
    text = _train_parser().format_help()
    for shown in ("--lam LAM", "(default 1)", "--w-con W_CON", "(default 50)", "--w-adv", "--w-lat", "--score-inpaint",
                  "--selection", "(default mean_score)"):
        assert shown in text


def test_lambda_and_loss_weights_reach_the_config(tmp_path):
    from xscreen.cli.train import effective_config

    args = _train_parser().parse_args(["x", "--lam", "1.0", "--w-adv", "2", "--w-con", "40", "--w-lat", "0.5",
                                       "--recon", "l2", "--val-fraction", "0.3"])
    t = effective_config(args).train
    assert (t.lam, t.w_adv, t.w_con, t.w_lat, t.recon, t.val_fraction) == (1.0, 2.0, 40.0, 0.5, "l2", 0.3)


@pytest.mark.parametrize("flags, fault", [(["--lam", "1.5"], "λ must be in [0, 1]"),
                                          (["--w-con", "-1"], "loss weights must not be negative"),
                                          (["--val-fraction", "1"], "--val-fraction must be between 0 and 1")])
def test_out_of_range_settings_are_refused_before_reading_data(tmp_path, capsys, flags, fault):
    assert main(["train", str(tmp_path / "nope"), "-q"] + flags) == 2
    assert fault in capsys.readouterr().err


def test_detection_options_reach_the_config_and_are_range_checked(capsys):
    from xscreen.cli import train as cli_train

    p = argparse.ArgumentParser()
    sub = p.add_subparsers()
    cli_train.register(sub)
    args = p.parse_args(["train", "x", "--input-mask", "0.5", "--selection", "pasted", "--outer-skips-off", "2",
                         "--d-spectral-norm"])
    cfg = cli_train.effective_config(args)
    assert (cfg.train.input_mask, cfg.train.selection) == (0.5, "pasted")
    assert (cfg.net.outer_skips_off, cfg.net.d_spectral_norm) == (2, True)
    plain = cli_train.effective_config(p.parse_args(["train", "x"]))
    assert (plain.train.input_mask, plain.net.outer_skips_off, plain.net.d_spectral_norm) == (0.0, 0, False)
    assert plain.net.generator == "unet"
    assert cli_train.effective_config(p.parse_args(["train", "x", "--generator", "unetpp"])).net.generator == "unetpp"
    assert not plain.net.d_attention
    assert cli_train.effective_config(p.parse_args(["train", "x", "--d-attention"])).net.d_attention
    with pytest.raises(SystemExit):
        p.parse_args(["train", "x", "--selection", "best_on_test"])


def test_d_every_reaches_the_config_and_out_of_range_values_are_refused(tmp_path, capsys):
    from xscreen.cli.train import effective_config

    assert effective_config(_train_parser().parse_args(["x", "--d-every", "2"])).train.d_every == 2
    assert effective_config(_train_parser().parse_args(["x"])).train.d_every == 1  # the paper: every step
    for bad in ("0", "17"):
        assert main(["train", str(tmp_path / "nope"), "-q", "--d-every", bad]) == 2
        assert "the discriminator must step every 1 to 16 training steps" in capsys.readouterr().err
