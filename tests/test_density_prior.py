"""The density prior (issue 12): score += ρ·D, D the patch's mean density, ρ = weight × a benign scale."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from screen_fixtures import dual_scan, save_tiny_model, tiny_model
from xscreen.checkpoint import ModelError, load_model, read_meta, save_model
from xscreen.loss import density_scale, patch_density, pixel_score, score_parts
from xscreen.scan import save_h5
from xscreen.scoring import Scorer


def _x(n=6, c=2, s=32, seed=0):
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_density_is_attenuation_for_dual_input_and_darkness_for_rgb():
    air_dual, dense_dual = torch.full((1, 2, 8, 8), -1.0), torch.full((1, 2, 8, 8), 1.0)
    assert patch_density(air_dual, "dual").item() == 0.0 and patch_density(dense_dual, "dual").item() == 1.0
    air_rgb = torch.full((1, 3, 8, 8), 1.0)  # bright = air in rgb / gray input
    assert patch_density(air_rgb, "rgb").item() == 0.0 and patch_density(-air_rgb, "gray").item() == 1.0
    half = torch.cat([torch.full((1, 2, 8, 4), -1.0), torch.full((1, 2, 8, 4), 1.0)], dim=3)
    assert patch_density(half, "dual").item() == pytest.approx(0.5)


def test_score_adds_rho_times_density_and_keeps_r_and_l_apart():
    x, x_hat = _x(), _x(seed=1)
    f, fh = torch.zeros(6, 4, 1, 1), torch.ones(6, 4, 1, 1)
    plain = score_parts(x, x_hat, f, fh, 0.9, "l1")
    prior = score_parts(x, x_hat, f, fh, 0.9, "l1", density=0.3, kind="dual")
    torch.testing.assert_close(prior.score, plain.score + 0.3 * ((x + 1) / 2).flatten(1).mean(1))
    torch.testing.assert_close(prior.recon, plain.recon)
    torch.testing.assert_close(prior.latent, plain.latent)
    # the per-pixel share the cascade's estimate averages: its patch mean is the score at λ 1
    at1 = score_parts(x, x_hat, f, f, 1.0, "l1", density=0.3, kind="dual").score
    torch.testing.assert_close(pixel_score(x, x_hat, "l1", 0.3, "dual").flatten(1).mean(1), at1)


def test_scale_is_the_ratio_of_benign_99th_percentiles_and_refuses_what_cannot_define_it():
    base, dens = np.linspace(0, 2, 101), np.linspace(0, 0.5, 101)
    assert density_scale(base, dens) == pytest.approx(np.quantile(base, 0.99) / np.quantile(dens, 0.99))
    for b, d, msg in ((np.zeros(0), np.zeros(0), "one per patch"), (base, dens[:5], "one per patch"),
                      (np.r_[base[:-1], np.nan], dens, "finite"), (base, np.zeros(101), "undefined")):
        with pytest.raises(ValueError, match=msg):
            density_scale(b, d)


def _with_prior(model, weight, scale):
    return replace(model, meta=replace(model.meta, train=replace(model.meta.train, density=weight,
                                                                 density_scale=scale)))


def test_scorer_applies_weight_times_scale_from_the_model_file(tmp_path):
    x = _x(9)
    plain = Scorer(tiny_model(), device="cpu", precision="fp32").score(x)
    m = _with_prior(tiny_model(), 0.5, 0.2)
    save_model(tmp_path / "p.xsm", m.generator, m.discriminator, m.meta)
    got = Scorer(tmp_path / "p.xsm", device="cpu", precision="fp32").score(x)
    torch.testing.assert_close(got.scores, plain.scores + 0.1 * patch_density(x, "dual"), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.recon_error, plain.recon_error)


def test_a_weight_without_a_scale_or_out_of_range_is_refused_on_load(tmp_path):
    """Edited into a good file (the checksum recomputed, as an editor would): refused on load; and
    save_model never writes such a file in the first place."""
    from test_checkpoint import _resign

    m = tiny_model()
    save_model(tmp_path / "good.xsm", m.generator, m.discriminator, m.meta)
    for weight, scale, msg in ((1.0, 0.0, "density_scale"), (11.0, 1.0, "density")):
        def edit(meta, weight=weight, scale=scale):
            meta["train"].update(density=weight, density_scale=scale)

        bad = _resign(tmp_path / "good.xsm", tmp_path / "bad.xsm", edit_meta=edit)
        with pytest.raises(ModelError, match=msg):
            load_model(bad)
        p = _with_prior(tiny_model(), weight, scale)
        with pytest.raises(ValueError, match=msg):
            save_model(tmp_path / "never.xsm", p.generator, p.discriminator, p.meta)
        assert not (tmp_path / "never.xsm").exists()


def test_the_prior_changes_the_scoring_id():
    from xscreen.thresholds import scoring_id

    m = tiny_model()
    ids = {scoring_id("w", t, m.meta.preprocess, 32) for t in
           (m.meta.train, replace(m.meta.train, density=1.0, density_scale=0.2),
            replace(m.meta.train, density=1.0, density_scale=0.3))}
    assert len(ids) == 3
    assert scoring_id("w", replace(m.meta.train, density=0.0, density_scale=0.0), m.meta.preprocess, 32) == \
        scoring_id("w", m.meta.train, m.meta.preprocess, 32)  # off: the id of files written before it


def test_training_sets_the_scale_from_the_chosen_weights_benign_validation_patches(tmp_path):
    from test_train import _fit, _patches, _run
    from xscreen.runtime import precision_for
    from xscreen.train.validation import benign_density_scale

    run = _run(density=1.0, selection="inserted", epochs=2)
    result = list(_fit(tmp_path, run))[-1]
    loaded = load_model(result.model_path)
    k = loaded.meta.train.density_scale
    assert loaded.meta.train.density == 1.0 and k > 0
    want = benign_density_scale(loaded.generator, loaded.discriminator, TensorDataset(_patches(12, 2)),
                                precision_for("cpu", "fp32"), run)
    assert k == pytest.approx(want, rel=1e-4)
    # the calibration was made with the prior on: the review level is a quantile of prior-on scores
    val = Scorer(loaded, device="cpu", precision="fp32").score(_patches(12, 2)).scores.numpy()
    assert loaded.meta.calibration.patch_threshold == pytest.approx(np.quantile(val, 0.99), rel=1e-3)


@pytest.fixture
def benign(tmp_path):
    folder = tmp_path / "benign"
    folder.mkdir()
    for i in range(5):
        save_h5(dual_scan(96, 128, seed=i, box=(8 + 4 * i, 10, 60, 50), scan_id=f"b{i}"), folder / f"b{i}.h5")
    return folder


def test_calibrate_density_measures_the_scale_on_the_benign_scans_and_stores_it(tmp_path, benign, capsys):
    from xscreen.cli import main
    from xscreen.evaluate.recalibrate import benign_density_scale

    model = save_tiny_model(tmp_path / "m.xsm")
    want = benign_density_scale(Scorer(model, device="cpu"), sorted(benign.glob("*.h5")))
    before = read_meta(model)[0].calibration
    assert main(["model", "calibrate", str(model), str(benign), "--density", "1", "--stride", "16"]) in (0, 1)
    out = capsys.readouterr().out
    meta = read_meta(model)[0]
    assert meta.train.density == 1.0 and meta.train.density_scale == pytest.approx(want, rel=1e-5)
    assert "density prior 1" in out
    assert main(["model", "info", str(model)]) == 0  # the score line names the prior and its scale
    assert f"recon l1, density prior 1 (scale {want:.4g})" in capsys.readouterr().out
    assert before is None or meta.calibration.patch_threshold != before.patch_threshold
    # --density 0 switches it off again
    assert main(["model", "calibrate", str(model), str(benign), "--density", "0", "--stride", "16"]) in (0, 1)
    meta = read_meta(model)[0]
    assert (meta.train.density, meta.train.density_scale) == (0.0, 0.0)


def test_calibrate_density_reads_a_one_shot_iterator_of_folders_for_both_passes(tmp_path, benign):
    """The scale pass and the screening pass see the same scans when ``benign`` is an iterator."""
    from xscreen.evaluate.recalibrate import calibrate_on_scans

    model = save_tiny_model(tmp_path / "m.xsm")
    result = list(calibrate_on_scans(model, iter([benign]), stride=16, density=1.0))[-1]
    assert result.calibration.n_scans == 5 and result.density[0] == 1.0 and result.density[1] > 0


def test_calibrate_density_refuses_a_bad_weight_and_the_audit_route(tmp_path, benign, capsys):
    from xscreen.cli import main

    model = save_tiny_model(tmp_path / "m.xsm")
    assert main(["model", "calibrate", str(model), str(benign), "--density", "nan"]) == 2
    assert "density weight nan out of range" in capsys.readouterr().err
    assert main(["model", "calibrate", str(model), "--from-audit", str(tmp_path / "a.db"), "--density", "1"]) == 2
    assert "needs benign scans" in capsys.readouterr().err


def test_wizard_logic_refuses_a_weight_out_of_range():
    from xscreen import wizard as wz

    s = wz.WizardState()
    s = replace(s, train=replace(s.train, density=12.0))
    assert any("density prior" in e for e in wz.page_errors(s, "model"))


@pytest.mark.parametrize("weight", ["-1", "nan", "11"])
def test_cli_train_refuses_a_bad_weight_before_any_work(tmp_path, capsys, weight):
    from xscreen.cli import main

    assert main(["train", str(tmp_path), "-o", str(tmp_path / "m.xsm"), "--density", weight]) == 2
    assert "density prior weight must be 0 (off) to 10" in capsys.readouterr().err
    assert not (tmp_path / "m.xsm").exists()
