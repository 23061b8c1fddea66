"""The training wizard walked page by page with a tiny benign set and a tiny model (pytest-qt)."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtWidgets import QWizard  # noqa: E402

from xscreen.checkpoint import load_model  # noqa: E402
from xscreen.config import RunConfig  # noqa: E402
from xscreen.gui.training_wizard import TrainingWizard  # noqa: E402
from xscreen.scan import Scan, save_h5  # noqa: E402

TIMEOUT = 120_000


def _bag(seed: int, h: int = 96, w: int = 128) -> Scan:
    rng = np.random.default_rng(seed)
    t = np.ones((2, h, w), np.float32)
    for _ in range(6):
        y, x = rng.integers(0, h - 24), rng.integers(0, w - 24)
        dy, dx = rng.integers(8, 24, size=2)
        t[0, y:y + dy, x:x + dx] *= rng.uniform(0.3, 0.8)
        t[1, y:y + dy, x:x + dx] *= rng.uniform(0.2, 0.7)
    counts = rng.poisson(t * 60000).clip(0, 65535).astype(np.uint16)
    return Scan(f"bag{seed}", "dual", counts, 60000.0)


@pytest.fixture
def benign(tmp_path):
    folder = tmp_path / "benign"
    folder.mkdir()
    for i in range(5):
        save_h5(_bag(i), folder / f"bag{i}.h5")
    (folder / "broken.h5").write_bytes(b"not an hdf5 file")
    return folder


@pytest.fixture
def wizard(qtbot, tmp_path):
    w = TrainingWizard(workdir=tmp_path / "work", models_dir=tmp_path / "models")
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()


def _next_enabled(w) -> bool:
    return w.button(QWizard.WizardButton.NextButton).isEnabled()


def _through_model_page(qtbot, w, benign, epochs=1):
    assert not _next_enabled(w)  # nothing chosen yet
    w.pages["data"].add_inputs([benign])
    qtbot.waitUntil(lambda: len(w.state.inventory.scans) == 5 and w.quick.running is None, timeout=TIMEOUT)
    assert [p.name for p, _ in w.state.inventory.unreadable] == ["broken.h5"]
    assert _next_enabled(w)
    w.next()
    page = w.pages["patches"]
    page.size.setCurrentText("32")
    page.stride.setValue(16)
    qtbot.waitUntil(lambda: w.state.patch_estimate > 0 and w.quick.running is None, timeout=TIMEOUT)
    assert w.state.patch.size == 32 and _next_enabled(w)
    assert page.preview.pixmap() is not None and not page.preview.pixmap().isNull()
    page.stride.setValue(4)  # invalid stride: Next must go off
    assert not _next_enabled(w)
    page.stride.setValue(16)
    qtbot.waitUntil(lambda: w.state.patch_estimate > 0 and w.quick.running is None, timeout=TIMEOUT)
    w.next()
    m = w.pages["model"]
    m.preset.setCurrentText("fast")
    m.ngf.setValue(8), m.ndf.setValue(8), m.epochs.setValue(epochs), m.batch.setValue(16)
    m.precision.setCurrentText("fp32")
    assert (w.state.net.ngf, w.state.train.epochs, w.state.train.batch_size) == (8, epochs, 16)
    m.batch.setValue(1)
    assert not _next_enabled(w)
    m.batch.setValue(16)
    assert _next_enabled(w)
    w.next()


def test_wizard_walks_every_page_to_a_calibrated_saved_model(qtbot, wizard, benign, tmp_path):
    w = wizard
    _through_model_page(qtbot, w, benign)
    train = w.pages["train"]
    assert not _next_enabled(w)
    store_seen, show_store = [], train.show_store
    train.show_store = lambda p: (show_store(p), store_seen.append((p.scan, train.progress.maximum())))
    train.start.click()
    assert train.status.styleSheet() == "" and "#b00020" not in train.errors.styleSheet()  # not red
    try:
        qtbot.waitUntil(lambda: not w.state.training, timeout=TIMEOUT)
    finally:
        print("train status:", train.status.text())
    assert w.state.trained_model is not None
    # the bar moved while the patch store was built: one step per scan, out of the scans read
    assert [done for done, _ in store_seen[:3]] == [1, 2, 3] and store_seen[0][1] == 5
    assert train.epochs == [1] and len(train.history["g_con"]) == 1
    # per-iteration curves: many points inside the one epoch, not one dot per term
    assert len(train.steps_x) >= 3 and 0 < train.steps_x[0] < train.steps_x[-1] <= 1.0
    assert len(train.step_history["g_loss"]) == len(train.steps_x)
    assert train.preview.pixmap() is not None and not train.preview.pixmap().isNull()
    assert train.status.styleSheet() == "" and train.status.text().startswith("done")
    assert _next_enabled(w)
    w.next()
    cal = w.pages["calibrate"]
    qtbot.waitUntil(lambda: cal.calibration is not None, timeout=TIMEOUT)
    cal.patch_far.setValue(0.05)
    assert cal.calibration.patch_far == pytest.approx(0.05)
    w.next()
    save = w.pages["save"]
    assert not _next_enabled(w) and not w.button(QWizard.WizardButton.FinishButton).isEnabled()
    with qtbot.waitSignal(w.model_saved) as saved:
        save.name.setText("tiny wizard model")
        w.button(QWizard.WizardButton.FinishButton).click()
    path = Path(saved.args[0])
    assert path == tmp_path / "models" / "tiny_wizard_model.xsm"
    # Finish does not leave a blank tab: the wizard stays up at page 1, naming the saved model
    assert w.isVisible() and w.currentPage() is w.pages["data"]
    assert w.pages["data"].note.isVisible() and "tiny_wizard_model.xsm" in w.pages["data"].note.text()
    model = load_model(path)
    assert model.meta.card.name == "tiny wizard model"
    assert model.meta.calibration.patch_far == pytest.approx(0.05)
    assert model.meta.net.ngf == 8 and model.meta.patch.size == 32
    run = RunConfig.load(path.with_suffix(".json"))
    assert run.net.ngf == 8 and run.patch.stride == 16 and run.train.epochs == 1
    assert sorted(Path(b).name for b in run.benign) == [f"bag{i}.h5" for i in range(5)]  # broken.h5 skipped


def test_cancel_keeps_a_checkpoint_that_resumes(qtbot, wizard, benign):
    w = wizard
    _through_model_page(qtbot, w, benign, epochs=3)
    train = w.pages["train"]
    train.start.click()
    qtbot.waitUntil(lambda: len(train.epochs) >= 1, timeout=TIMEOUT)
    train.cancel.click()
    qtbot.waitUntil(lambda: not w.state.training, timeout=TIMEOUT)
    if w.state.trained_model is not None:
        pytest.skip("training finished before the cancel landed (machine too fast for this tiny run)")
    assert (w.workdir / "state.pt").is_file()
    assert train.resume.isEnabled() and not _next_enabled(w)
    done_before = len(train.epochs)
    train.resume.click()
    qtbot.waitUntil(lambda: w.state.trained_model is not None, timeout=TIMEOUT)
    assert train.epochs[-1] == 3 and len(train.epochs) == 3 - done_before + done_before
    assert load_model(w.state.trained_model).meta.calibration is not None


def test_wizard_config_reruns_headless(tmp_path, benign):
    """The config file the wizard saves is what `xscreen train --config` runs."""
    from xscreen.wizard import WizardState, apply_preset, to_run_config, Inventory, ScanInfo

    scans = tuple(ScanInfo(p, "dual", 128, 96) for p in sorted(benign.glob("bag*.h5")))
    state = apply_preset(WizardState(benign=(benign,), inventory=Inventory(scans), name="cli rerun"), "fast")
    state = dataclasses.replace(state, patch=dataclasses.replace(state.patch, size=32, stride=16),
                                net=dataclasses.replace(state.net, ngf=8, ndf=8),
                                train=dataclasses.replace(state.train, epochs=1, batch_size=16, precision="fp32"))
    out = tmp_path / "cli.xsm"
    cfg = tmp_path / "run.json"
    to_run_config(state, out).save(cfg)
    res = subprocess.run([sys.executable, "-m", "xscreen", "train", "--config", str(cfg)],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    model = load_model(out)
    assert model.meta.net.ngf == 8 and model.meta.patch.size == 32 and model.meta.calibration is not None
    assert json.loads(cfg.read_text())["name"] == "cli rerun"


def test_scan_count_warning_asks_for_enough_held_out_scans():
    from xscreen.gui.training_wizard.calibrate_pages import scan_count_warning

    assert scan_count_warning(40, 0.05) == ""
    text = scan_count_warning(1, 0.05)
    assert "only 1 held-out benign scan" in text and "needs about 40" in text


def test_preview_strip_shows_structure_and_the_difference():
    import torch

    from xscreen.wizard.run import preview_strip

    g = torch.Generator().manual_seed(0)
    x = -1 + 0.1 * torch.rand(4, 2, 16, 16, generator=g)  # faint benign texture near air
    x[:, :, 4:10, 4:10] += 0.3
    recon = x.clone()
    recon[1] += 0.15  # one patch reconstructed badly
    strip = preview_strip(x, recon, "dual")
    assert strip.shape == (48, 64, 3) and strip.dtype == np.uint8
    top, middle, bottom = strip[:16, :, 0], strip[16:32, :, 0], strip[32:, :, 0]
    assert top.std() > 40  # stretched: the faint texture fills the grey range
    assert np.array_equal(top[:, :16], middle[:, :16])  # exact reconstruction: identical tiles
    assert bottom[:, :16].max() == 0 and bottom[:, 16:32].min() > 50  # the difference row shows it


def test_model_page_sets_the_detection_options(qtbot, wizard):
    m = wizard.pages["model"]
    s = wizard.state
    from xscreen.config import SCORE_DEFAULTS

    dual = SCORE_DEFAULTS["dual"]  # issue 29: the standard preset's score form for dual-energy data
    assert (s.train.selection, s.train.input_mask, s.net.outer_skips_off, s.net.d_spectral_norm,
            s.train.score_inpaint, s.train.recon_window) == ("mean_score", 0.0, 0, False, dual["score_inpaint"],
                                                             dual["recon_window"])
    m.selection.setCurrentText("inserted")
    m.input_mask.setValue(0.5)
    m.skips_off.setValue(2)
    m.spectral.setChecked(True)
    m.inpaint.setValue(2)
    m.window.setValue(8)
    m.density.setValue(1.5)
    assert s.train.d_batch == "separate"  # the paper's, still the default (RESULTS.md, 'The discriminator bug')
    m.d_batch.setCurrentText("joint")
    s = wizard.state
    assert (s.train.selection, s.train.input_mask, s.net.outer_skips_off, s.net.d_spectral_norm,
            s.train.score_inpaint, s.train.recon_window, s.train.d_batch) == ("inserted", 0.5, 2, True, 2, 8, "joint")
    assert s.train.density == 1.5
    assert s.train.d_every == 1  # the paper's: D steps on every training step
    m.d_every.setValue(4)
    assert wizard.state.train.d_every == 4
    assert not wizard.state.net.d_attention
    m.attention.setChecked(True)
    assert wizard.state.net.d_attention
    assert wizard.state.material is False  # the paper's two energy channels
    m.material.setChecked(True)
    assert wizard.state.material is True and wz_net(wizard).channels == 3
    from xscreen.wizard.logic import Inventory, ScanInfo

    rgb = Inventory(scans=tuple(ScanInfo(Path(f"c{i}.png"), "rgb", 64, 64) for i in range(4)))
    m.advanced.setChecked(True)
    assert m.material.isEnabled()
    wizard.update(inventory=rgb)  # colour images: no energies to take a ratio of
    assert not m.material.isEnabled() and not m.material.isChecked() and wizard.state.material is False
    assert not any("material" in e for e in wz_errors(wizard))
    wizard.update(inventory=Inventory())
    assert m.material.isEnabled()
    m.advanced.setChecked(False)  # the group greys every advanced field, this one included
    assert not m.material.isEnabled()
    m.seed.setValue(7)  # any other change of state leaves it so
    assert not m.material.isEnabled()
    m.advanced.setChecked(True)
    assert m.material.isEnabled()
    m.window.setValue(1)  # a 1-px window is refused with a reason
    assert any("residual window" in e for e in wz_errors(wizard))
    m.window.setValue(0)
    assert wizard.state.net.generator == "unet"  # the paper's
    m.generator.setCurrentText("unetpp")  # skips off is still 2 from above: refused together, with a reason
    assert wizard.state.net.generator == "unetpp"
    assert any("skips off applies to the unet generator" in e for e in wz_errors(wizard))
    m.skips_off.setValue(0)
    assert not wz_errors(wizard) or not any("skips off" in e for e in wz_errors(wizard))


def wz_net(wizard):
    from xscreen import wizard as wz

    return wz.model_net(wizard.state)


def wz_errors(wizard):
    from xscreen import wizard as wz

    return wz.page_errors(wizard.state, "model")
