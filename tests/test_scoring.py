"""Scorer: A = lam R + (1 - lam) L from the model's TrainConfig, eval-mode, batch-independent."""
import pytest
import torch

from screen_fixtures import save_tiny_model, tiny_model, with_calibration
from xscreen.scoring import Scorer


def _patches(n=12, c=2, s=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, s, s, generator=g) * 2 - 1


def _manual(model, x, recon="l1", lam=0.9):
    with torch.no_grad():
        x_hat = model.generator(x)
        _, fx = model.discriminator(x)
        _, fxh = model.discriminator(x_hat)
    d = x - x_hat
    r = (d.abs() if recon == "l1" else d.square()).flatten(1).mean(1)
    lat = (fx - fxh).flatten(1).square().mean(1)
    return lam * r + (1 - lam) * lat, r, lat, x_hat


@pytest.mark.parametrize("recon", ["l1", "l2"])
def test_scores_follow_the_formula_in_fp32(recon):
    model = tiny_model(recon=recon)
    x = _patches()
    want, r, lat, x_hat = _manual(model, x, recon)
    got = Scorer(model, device="cpu", precision="fp32").score(x)
    torch.testing.assert_close(got.scores, want, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got.recon_error, r, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got.latent_error, lat, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(got.reconstructions, x_hat, rtol=1e-4, atol=1e-5)
    assert got.scores.shape == (12,) and (got.scores > 0).all()


def test_matches_loss_anomaly_score_when_available():
    loss = pytest.importorskip("xscreen.loss")
    model = tiny_model()
    x = _patches()
    with torch.no_grad():
        x_hat = model.generator(x)
        _, fx = model.discriminator(x)
        _, fxh = model.discriminator(x_hat)
        want = loss.anomaly_score(x, x_hat, fx, fxh, 0.9, "l1")
    got = Scorer(model, device="cpu", precision="fp32").score(x).scores
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_scores_do_not_depend_on_batch_order_or_size():
    x = _patches(n=20)
    a = Scorer(tiny_model(), device="cpu", precision="fp32", batch_size=20).score(x).scores
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(3))
    b = Scorer(tiny_model(), device="cpu", precision="fp32", batch_size=3).score(x[perm]).scores
    torch.testing.assert_close(b, a[perm], rtol=1e-5, atol=1e-7)
    single = Scorer(tiny_model(), device="cpu", precision="fp32", batch_size=1).score(x[:1]).scores
    torch.testing.assert_close(single, a[:1], rtol=1e-5, atol=1e-7)


def test_model_is_eval_mode_channels_last_and_frozen():
    s = Scorer(tiny_model(), device="cpu", precision="fp32")
    assert not s.generator.training and not s.discriminator.training
    conv = next(m for m in s.generator.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not any(p.requires_grad for p in s.generator.parameters())
    assert s.score(_patches(n=2), keep_reconstructions=False).reconstructions is None


def test_bf16_scores_rank_like_fp32():
    x = _patches(n=32)
    a = Scorer(tiny_model(), device="cpu", precision="fp32").score(x).scores
    b = Scorer(tiny_model(), device="cpu", precision="bf16").score(x).scores
    assert b.dtype == torch.float32
    torch.testing.assert_close(b, a, rtol=0.05, atol=1e-3)


def test_out_of_memory_halves_the_batch_and_retries(monkeypatch):
    s = Scorer(tiny_model(), device="cpu", precision="fp32", batch_size=16)
    real = s._score_batch

    def flaky(x, keep):
        if x.shape[0] > 4:
            raise torch.OutOfMemoryError("simulated")
        return real(x, keep)

    monkeypatch.setattr(s, "_score_batch", flaky)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    x = _patches(n=10)
    got = s.score(x).scores
    assert s.batch_size == 4 and got.shape == (10,)
    torch.testing.assert_close(got, Scorer(tiny_model(), device="cpu", precision="fp32").score(x).scores)


def test_loads_a_model_file_and_reads_calibration(tmp_path):
    path = save_tiny_model(tmp_path / "m.xsm")
    s = Scorer(path, device="cpu")
    assert s.model_id.startswith("tiny-") and len(s.checksum) == 64
    assert s.patch_size == 32 and s.preprocess.kind == "dual" and s.threshold is None
    cal = Scorer(with_calibration(tiny_model(), 0.2, 0.3), device="cpu")
    assert cal.threshold == 0.2 and cal.scan_threshold == 0.3


def _with_score(model, **train):
    from dataclasses import replace

    return replace(model, meta=replace(model.meta, train=replace(model.meta.train, **train)))


def test_inpainting_reconstruction_takes_each_block_from_the_pass_that_hid_it():
    from xscreen.network import reconstruct

    model = tiny_model()
    x = _patches(5)
    with torch.no_grad():
        got = reconstruct(model.generator, x, 2)
        mean = x.mean((2, 3), keepdim=True)
        for i in range(2):
            for j in range(2):
                hidden = x.clone()
                hidden[:, :, i * 16:(i + 1) * 16, j * 16:(j + 1) * 16] = mean.expand(-1, -1, 16, 16)
                want = model.generator(hidden)[:, :, i * 16:(i + 1) * 16, j * 16:(j + 1) * 16]
                torch.testing.assert_close(got[:, :, i * 16:(i + 1) * 16, j * 16:(j + 1) * 16], want,
                                           rtol=1e-4, atol=1e-5)
        assert not torch.allclose(got, model.generator(x), atol=1e-3)  # the copy path is really cut


def test_windowed_residual_finds_a_small_spot_the_patch_mean_dilutes():
    from xscreen.loss import score_parts

    x = torch.zeros(2, 2, 32, 32)
    x_hat = x.clone()
    x_hat[0, :, 4:12, 20:28] = 1.0  # an 8x8 spot of residual 1 in patch 0
    f = torch.zeros(2, 8, 1, 1)
    whole = score_parts(x, x_hat, f, f, 1.0, "l1", window=0).recon
    spot = score_parts(x, x_hat, f, f, 1.0, "l1", window=8).recon
    assert whole[0].item() == pytest.approx(64 / 1024)
    assert spot[0].item() == pytest.approx(1.0) and spot[1].item() == 0.0


def test_scorer_and_training_validation_agree_with_score_options():
    """The score options live in the model file; Scorer and the train loop's validation scorer (which
    selects epochs) compute the same numbers from them."""
    from torch.utils.data import TensorDataset

    from xscreen.runtime import precision_for
    from xscreen.train import validation_scores

    model = _with_score(tiny_model(), score_inpaint=2, recon_window=8, lam=0.7)
    x = _patches(9)
    got = Scorer(model, device="cpu", precision="fp32").score(x)
    want = validation_scores(model.generator, model.discriminator, TensorDataset(x), precision_for("cpu", "fp32"),
                             lam=0.7, recon="l1", inpaint=2, window=8)
    torch.testing.assert_close(got.scores.double(), torch.from_numpy(want), rtol=1e-4, atol=1e-6)
    plain = Scorer(tiny_model(), device="cpu", precision="fp32").score(x).scores
    assert not torch.allclose(got.scores, plain)
