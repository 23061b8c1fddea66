"""xscreen.synth + `xscreen synth`: determinism, physics (air = I0), threat ground truth, files, CLI."""
import csv
import json

import cv2
import numpy as np
import pytest

from xscreen import materials as mt
from xscreen.cli import main
from xscreen.physics import transmission
from xscreen.scan import load_scan
from xscreen.synth import I0, ELECTRONIC_NOISE, SynthBag, synth_bag, write_dataset
from xscreen.synth.draw import Canvas, Pose
from xscreen.synth.threats import THREATS

W = 160  # small bags keep the tests fast; sizes are in cm so the scene is the same, only coarser


def test_same_seed_same_bag_other_seed_other_bag():
    a, b = synth_bag(11, threat=True, width=W), synth_bag(11, threat=True, width=W)
    assert np.array_equal(a.scan.channels, b.scan.channels) and np.array_equal(a.mask, b.mask)
    assert a.threats == b.threats
    c = synth_bag(12, threat=True, width=W)
    assert not np.array_equal(a.scan.channels[:, :50, :50], c.scan.channels[:, :50, :50]) or \
        a.scan.channels.shape != c.scan.channels.shape


def test_scan_contract():
    bag = synth_bag(3, width=W)
    s = bag.scan
    assert isinstance(bag, SynthBag) and s.kind == "dual" and s.i0 == I0
    assert s.channels.dtype == np.uint16 and s.channels.shape[0] == 2 and s.width == W
    assert 0.55 * W <= s.height <= 0.85 * W and bag.mask.shape == (s.height, s.width)
    assert s.pixel_pitch_mm > 0 and s.metadata["seed"] == 3
    default = synth_bag(4)
    assert 500 <= default.scan.width <= 1000


def test_air_maps_to_i0_within_noise():
    s = synth_bag(5, width=400).scan
    border = np.concatenate([s.channels[:, :, :8].reshape(2, -1), s.channels[:, :, -8:].reshape(2, -1)], axis=1)
    sigma = np.sqrt(I0 + ELECTRONIC_NOISE ** 2)
    for ch in border.astype(np.float64):
        assert abs(ch.mean() - I0) < 4 * sigma / np.sqrt(ch.size)
        assert 0.85 * sigma < ch.std() < 1.2 * sigma  # photon noise, blur lowers it a little


def test_bags_hold_all_three_material_classes():
    s = synth_bag(8, width=500).scan
    a = mt.attenuation(s)
    cls = mt.material_classes(a[1], a[0])
    frac = [np.mean(cls == k) for k in (mt.ORGANIC, mt.INORGANIC, mt.METAL)]
    assert frac[0] > 0.2 and frac[1] > 0.005 and frac[2] > 0.003, frac


def test_benign_bag_has_no_threats():
    bag = synth_bag(6, width=W)
    assert bag.threats == [] and not bag.mask.any()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_threat_masks_and_boxes_are_consistent(seed):
    bag = synth_bag(seed, threat=True, width=300)
    assert 1 <= len(bag.threats) <= 2
    assert set(np.unique(bag.mask)) <= set(range(len(bag.threats) + 1))
    h, w = bag.mask.shape
    for k, t in enumerate(bag.threats, start=1):
        ys, xs = np.nonzero(bag.mask == k)
        assert len(xs) > 20
        assert t.box == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
        x, y, bw, bh = t.box
        assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h
        a = mt.attenuation(bag.scan)[0]
        assert a[bag.mask == k].mean() > a[bag.mask == 0].mean()  # the threat adds attenuation


@pytest.mark.parametrize("kind", ["handgun", "knife", "gun_part"])
def test_metal_threats_read_as_metal(kind):
    cv = Canvas(160, 160, pitch_cm=0.15)
    cv.tag = 1
    THREATS[kind](cv, Pose(80, 80, 0.3, 0.15), np.random.default_rng(0))
    a = -np.log(np.clip(transmission(cv.areal), 1e-6, 1))
    cls = mt.material_classes(a[1], a[0])[cv.mask == 1]
    assert np.mean(cls >= mt.METAL) > 0.5, kind


def test_ied_shows_a_dense_organic_block():
    cv = Canvas(200, 200, pitch_cm=0.15)
    cv.tag = 1
    THREATS["ied"](cv, Pose(100, 100, 0.0, 0.15), np.random.default_rng(0))
    a = -np.log(np.clip(transmission(cv.areal), 1e-6, 1))
    cls = mt.material_classes(a[1], a[0])
    block = (cv.areal[-1] > 4.0)  # explosive layer
    assert block.sum() > 100
    assert np.mean(cls[block] == mt.ORGANIC) > 0.8 and a[0][block].mean() > 0.6


def test_width_out_of_range_is_refused():
    with pytest.raises(ValueError, match="width"):
        synth_bag(0, width=10)


@pytest.mark.parametrize("fmt", ["h5", "tiff"])
def test_write_dataset_files(tmp_path, fmt):
    steps = list(write_dataset(tmp_path, 2, 2, seed=9, fmt=fmt, width=W))
    assert [s.done for s in steps] == [1, 2, 3, 4] and steps[-1].total == 4
    rows = list(csv.DictReader((tmp_path / "labels.csv").open()))
    assert [r["label"] for r in rows] == ["benign", "benign", "threat", "threat"]
    for step, row in zip(steps, rows):
        assert step.path.is_file() and step.stem == row["stem"]
        scan = load_scan(step.path)
        assert scan.kind == "dual" and scan.width == W
        mask = cv2.imread(str(tmp_path / "masks" / f"{row['stem']}.png"), cv2.IMREAD_UNCHANGED)
        boxes = json.loads((tmp_path / "boxes" / f"{row['stem']}.json").read_text())
        assert mask.shape == (scan.height, scan.width) and boxes["width"] == W
        types = [t["type"] for t in boxes["threats"]]
        assert ";".join(types) == row["threat_types"]
        assert (len(types) > 0) == (row["label"] == "threat") == bool(mask.any())
        for t in boxes["threats"]:
            ys, xs = np.nonzero(mask == t["id"])
            assert t["box"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    if fmt == "tiff":
        assert (tmp_path / "benign" / f"{rows[0]['stem']}_low.tif").is_file()
    again = tmp_path / "again"
    list(write_dataset(again, 2, 2, seed=9, fmt=fmt, width=W))
    assert np.array_equal(load_scan(steps[2].path).channels,
                          load_scan(again / "threat" / steps[2].path.name).channels)


def test_stopping_early_lists_only_the_bags_written(tmp_path):
    gen = write_dataset(tmp_path, 5, 0, seed=1, width=W)
    next(gen)
    gen.close()
    rows = list(csv.DictReader((tmp_path / "labels.csv").open()))
    assert len(rows) == 1 and len(list((tmp_path / "benign").iterdir())) == 1


def test_write_dataset_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="format"):
        list(write_dataset(tmp_path, 1, 0, 0, fmt="png"))
    with pytest.raises(ValueError, match="at least one bag"):
        list(write_dataset(tmp_path, 0, 0, 0))
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="not a folder"):
        list(write_dataset(tmp_path / "f", 1, 0, 0))


def test_cli_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    rc = main(["synth", str(out), "--benign", "1", "--threat", "1", "--seed", "4", "--width", str(W),
               "--format", "tiff", "--preview"])
    assert rc == 0
    assert len(list((out / "benign").glob("*_high.tif"))) == 1 and len(list((out / "preview").glob("*.png"))) == 2
    assert "wrote 2 bags" in capsys.readouterr().out


@pytest.mark.parametrize("argv,code,message", [
    (["--benign", "-2"], 2, "--benign: must be 0 or more"),
    (["--threat", "many"], 2, "--threat: 'many' is not a whole number"),
    (["--benign", "1", "--format", "png"], 2, "invalid choice: 'png'"),
    (["--benign", "1", "--width", "5"], 2, "--width: must be within 64..4000"),
])
def test_cli_bad_arguments_exit_nonzero(tmp_path, capsys, argv, code, message):
    with pytest.raises(SystemExit) as exc:
        main(["synth", str(tmp_path / "ds")] + argv)
    assert exc.value.code == code and message in capsys.readouterr().err


def test_cli_nothing_to_do_and_file_as_folder(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "ds")]) == 2
    assert "error: nothing to write" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert main(["synth", str(tmp_path / "file"), "--benign", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "exists and is not a folder" in err


def test_cli_unwritable_output_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    rc = main(["synth", str(tmp_path / "file" / "sub"), "--benign", "1", "--width", str(W)])
    err = capsys.readouterr().err
    assert rc == 1 and "\nerror: " in err and "Not a directory" in err and "Traceback" not in err
