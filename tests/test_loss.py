"""Loss terms and the anomaly score, against hand-computed values (DESIGN.md 'Model', 'Score')."""
import pytest
import torch
import torch.nn.functional as F

from xscreen.loss import anomaly_score, discriminator_loss, generator_loss, score_parts


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 2, 8, 8, generator=g) * 2 - 1
    x_hat = torch.rand(4, 2, 8, 8, generator=g) * 2 - 1
    f_x, f_xh = torch.randn(4, 5, 1, 1, generator=g), torch.randn(4, 5, 1, 1, generator=g)
    logit = torch.randn(4, generator=g)
    return x, x_hat, f_x, f_xh, logit


def test_generator_loss_terms_and_weights():
    x, x_hat, f_x, f_xh, logit = _data()
    gl = generator_loss(x, x_hat, logit, f_x, f_xh, w_adv=2.0, w_con=50.0, w_lat=3.0)
    adv = F.binary_cross_entropy(torch.sigmoid(logit), torch.ones(4))
    assert torch.allclose(gl.adv, 2.0 * adv, atol=1e-6)
    assert torch.allclose(gl.con, 50.0 * (x - x_hat).abs().mean())
    assert torch.allclose(gl.lat, 3.0 * ((f_x - f_xh) ** 2).mean())
    assert torch.allclose(gl.total, gl.adv + gl.con + gl.lat)
    assert gl.total.dtype == torch.float32


def test_paper_weight_40_reachable_and_bf16_inputs_give_fp32_losses():
    x, x_hat, f_x, f_xh, logit = _data()
    gl = generator_loss(x.bfloat16(), x_hat.bfloat16(), logit.bfloat16(), f_x, f_xh, w_con=40.0)
    assert gl.total.dtype == torch.float32
    assert torch.allclose(gl.con, 40.0 * (x.bfloat16().float() - x_hat.bfloat16().float()).abs().mean())


def test_discriminator_loss_real_and_fake():
    real, fake = torch.tensor([3.0, -1.0]), torch.tensor([-2.0, 0.5])
    dl = discriminator_loss(real, fake)
    assert torch.allclose(dl.real, F.binary_cross_entropy(torch.sigmoid(real), torch.ones(2)), atol=1e-6)
    assert torch.allclose(dl.fake, F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(2)), atol=1e-6)
    assert torch.allclose(dl.total, dl.real + dl.fake)
    # a confident, correct D drives the loss towards 0 (the re-init trigger)
    assert float(discriminator_loss(torch.full((2,), 30.0), torch.full((2,), -30.0)).total) < 1e-5


def test_score_l1_l2_and_lambda():
    x, x_hat, f_x, f_xh, _ = _data(1)
    p1 = score_parts(x, x_hat, f_x, f_xh, lam=0.9, recon="l1")
    p2 = score_parts(x, x_hat, f_x, f_xh, lam=0.9, recon="l2")
    r1 = (x - x_hat).abs().flatten(1).mean(1)
    r2 = ((x - x_hat) ** 2).flatten(1).mean(1)
    lat = ((f_x - f_xh) ** 2).flatten(1).mean(1)
    assert p1.score.shape == (4,)
    assert torch.allclose(p1.recon, r1) and torch.allclose(p2.recon, r2) and torch.allclose(p1.latent, lat)
    assert torch.allclose(p1.score, 0.9 * r1 + 0.1 * lat)
    assert torch.allclose(anomaly_score(x, x_hat, f_x, f_xh, 0.0, "l2"), lat)
    assert torch.allclose(anomaly_score(x, x_hat, f_x, f_xh, 1.0, "l2"), r2)


def test_score_is_per_sample_and_zero_for_perfect_reconstruction():
    x, x_hat, f_x, f_xh, _ = _data(2)
    s = anomaly_score(x, x_hat, f_x, f_xh)
    assert torch.allclose(anomaly_score(x[2:3], x_hat[2:3], f_x[2:3], f_xh[2:3]), s[2:3])
    assert torch.equal(anomaly_score(x, x, f_x, f_x), torch.zeros(4))


def test_unknown_reconstruction_error_refused():
    x, x_hat, f_x, f_xh, _ = _data()
    with pytest.raises(ValueError, match="recon"):
        anomaly_score(x, x_hat, f_x, f_xh, recon="l3")
