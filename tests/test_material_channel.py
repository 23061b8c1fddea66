"""The dual-energy material channel (Preprocess.material; issue 12, direction 5): a third model
input channel with each pixel's material between the organic and iron curves."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from xscreen.cli import main
from xscreen.config import Preprocess
from xscreen.loss import patch_density
from xscreen.materials import MATERIAL_FADE_A, material_coordinate
from xscreen.physics import reference_curve
from xscreen.preprocess import model_input, to_transmission
from xscreen.scan import Scan, save_scan

I0 = 60000.0


def _pixels(table: str, areal: float) -> tuple[float, float]:
    a_h, a_l = reference_curve(table, np.array([areal]))[:, 0]
    return float(a_h), float(a_l)


@pytest.mark.parametrize("areal", [2.0, 5.0, 20.0])
def test_reference_materials_sit_at_their_coordinates(areal):
    """Cellulose 0, aluminium 0.5, iron 1 at any thickness (beam hardening is corrected: the raw
    ratio of iron falls with thickness, the coordinate does not)."""
    for table, want in (("cellulose", 0.0), ("al", 0.5), ("fe", 1.0)):
        a_h, a_l = _pixels(table, areal / (4.0 if table == "fe" else 1.0))
        assert a_h > MATERIAL_FADE_A
        assert material_coordinate(np.array([a_h]), np.array([a_l]))[0] == pytest.approx(want, abs=0.02)


def test_thin_pixels_fade_to_organic():
    a_h, a_l = _pixels("fe", 0.005)  # a thin foil: ratio mostly noise on a real detector
    assert a_h < MATERIAL_FADE_A
    m = material_coordinate(np.array([a_h, 0.0]), np.array([a_l, 0.0]))
    assert m[0] == pytest.approx(a_h / MATERIAL_FADE_A, abs=0.02)  # iron's 1, faded by a_high / 0.2
    assert m[1] == 0.0  # air


def _scan_with_blocks() -> Scan:
    """Air, a cellulose block and an iron block side by side."""
    a = np.zeros((2, 32, 96))
    for x0, table, areal in ((32, "cellulose", 4.0), (64, "fe", 1.5)):
        a_h, a_l = _pixels(table, areal)
        a[0, :, x0:x0 + 32], a[1, :, x0:x0 + 32] = a_h, a_l
    return Scan("blocks", "dual", np.rint(np.exp(-a) * I0).astype(np.uint16), I0)


def test_model_input_appends_the_material_channel_and_keeps_the_energy_channels():
    scan = _scan_with_blocks()
    plain = model_input(scan, Preprocess())
    x = model_input(scan, Preprocess(material=True))
    assert x.shape == (3, 32, 96) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:2], plain)
    assert x[2, :, :32].max() == -1.0  # air: no material (and the padding value)
    assert x[2, :, 32:64].mean() == pytest.approx(-1.0, abs=0.05)  # organic
    assert x[2, :, 64:].mean() == pytest.approx(1.0, abs=0.05)  # iron
    # back to transmission: the scan's two channels only, as without the material channel
    np.testing.assert_allclose(to_transmission(x, Preprocess(material=True)), to_transmission(plain, Preprocess()))
    # density (the prior) is over the energy channels only
    assert float(patch_density(torch.from_numpy(x)[None])) == pytest.approx(
        float(patch_density(torch.from_numpy(plain)[None])), abs=1e-6)


def test_a_stack_of_patches_gives_what_each_patch_gives():
    scan = _scan_with_blocks()
    stack = np.stack([scan.channels[:, :, k:k + 32] for k in (0, 32, 64)])  # (3, 2, 32, 32)
    pre = Preprocess(material=True)
    x = model_input(Scan("", "dual", stack, I0), pre)
    assert x.shape == (3, 3, 32, 32)
    for k in range(3):
        np.testing.assert_array_equal(x[k], model_input(Scan("", "dual", stack[k], I0), pre))


def test_the_material_channel_needs_dual_energy_input_and_a_matching_network():
    with pytest.raises(ValueError, match="material channel needs dual-energy"):
        Preprocess(kind="rgb", material=True)
    scan = _scan_with_blocks()
    with pytest.raises(ValueError, match="does not fit the input"):
        model_input(scan, Preprocess(material=True), out=np.empty((2, 32, 96), np.float32))
    from xscreen.model_checks import check_consistency

    @dataclasses.dataclass
    class Meta:  # only the sections check_consistency reads first
        preprocess: Preprocess
        net: object

    from xscreen.config import NetConfig
    with pytest.raises(ValueError, match="with the material channel \\(3 channels\\)"):
        check_consistency(Meta(Preprocess(material=True), NetConfig(channels=2)))


def _bags(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        t = rng.uniform(0.05, 0.6, (2, 64, 64))
        save_scan(Scan(f"s{i}", "dual", (t * I0).astype(np.uint16), I0), folder / f"s{i}.h5")
    return folder


def test_train_with_the_material_channel_then_screen(tmp_path, capsys):
    data = _bags(tmp_path / "data", 4)
    out = tmp_path / "m.xsm"
    assert main(["train", str(data), "-o", str(out), "--material-channel", "--size", "32", "--ngf", "4",
                 "--epochs", "1", "--batch-size", "8", "--precision", "fp32", "--device", "cpu", "-q"]) == 0
    capsys.readouterr()
    assert main(["model", "info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["preprocess"]["material"] is True and info["net"]["channels"] == 3
    assert main(["model", "info", str(out)]) == 0
    assert "dual + material (3 ch)" in capsys.readouterr().out
    from xscreen.gui.probe import describe_model  # the GUI's model panel (no Qt needed to read it)
    assert "input: dual + material, patch 32px" in describe_model(out)
    assert main(["screen", str(data / "s0.h5"), "--model", str(out), "--out", str(tmp_path / "o")]) == 0
    row = (tmp_path / "o" / "summary.csv").read_text().splitlines()
    assert len(row) == 2 and "s0" in row[1]


def test_the_material_channel_is_refused_for_colour_images(tmp_path, capsys):
    from PIL import Image

    data = tmp_path / "rgb"
    data.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(data / f"c{i}.png")
    assert main(["train", str(data), "-o", str(tmp_path / "m.xsm"), "--material-channel", "--size", "32",
                 "--ngf", "4", "--epochs", "1", "--batch-size", "8", "--device", "cpu", "-q"]) != 0
    assert "material channel needs dual-energy" in capsys.readouterr().err
    assert not (tmp_path / "m.xsm").exists()
    assert not (tmp_path / "m.xsm.work").exists()  # the refused run leaves no empty work folder
    # a work folder the user made beforehand is theirs: it stays, even empty
    (tmp_path / "mine").mkdir()
    assert main(["train", str(data), "-o", str(tmp_path / "m.xsm"), "--material-channel", "--size", "32",
                 "--workdir", str(tmp_path / "mine"), "--ngf", "4", "--epochs", "1", "--batch-size", "8",
                 "--device", "cpu", "-q"]) != 0
    assert (tmp_path / "mine").is_dir() and not (tmp_path / "m.xsm").exists()


def test_wizard_carries_the_material_channel(tmp_path):
    from xscreen import wizard as wz
    from xscreen.wizard.logic import Inventory, ScanInfo

    s = wz.WizardState(material=True)
    assert wz.model_net(s).channels == 3
    assert wz.to_run_config(s, tmp_path / "m.xsm").preprocess.material is True
    scans = tuple(ScanInfo(tmp_path / f"c{i}.png", "rgb", 64, 64) for i in range(4))
    rgb = dataclasses.replace(s, inventory=Inventory(scans=scans))
    assert wz.model_net(rgb).channels == 3  # rgb's own three, no material
    assert wz.to_run_config(rgb, tmp_path / "m.xsm").preprocess.material is False
    assert any("material channel needs dual-energy" in e for e in wz.page_errors(rgb, "model"))
    assert not any("material" in e for e in wz.page_errors(dataclasses.replace(rgb, material=False), "model"))


def test_the_selection_criterion_inserts_objects_into_material_inputs_consistently():
    """`--selection inserted` on a material model: the object goes into both energy channels and the
    material channel is recomputed from them, exactly as model_input would."""
    from xscreen.train.selection import insert_object

    scan = _scan_with_blocks()
    pre = Preprocess(material=True)
    x = model_input(scan, pre)[:, :, :32]  # the air block: the inserted object is all there is
    y = insert_object(x, "dual", pre.a_max, np.random.default_rng(3), (0.05, 0.1))
    assert y.shape == x.shape and (y[:2] > x[:2]).any()
    again = y.copy()
    from xscreen.preprocess import material_channel
    material_channel(again, pre.a_max)
    np.testing.assert_array_equal(y, again)
    plain = model_input(scan, Preprocess())[:, :, :32]
    np.testing.assert_array_equal(insert_object(plain, "dual", pre.a_max, np.random.default_rng(3), (0.05, 0.1)), y[:2])
