"""Architecture of the Skip-GANomaly networks (DESIGN.md 'Model')."""
import pytest
import torch

from xscreen.config import NetConfig
from xscreen.network import Discriminator, Generator, UnetBlock, count_parameters, init_weights


def test_paper_architecture_parameter_counts_and_bottleneck():
    net = NetConfig(size=64, channels=3, ngf=64, ndf=64, nz=100)
    g, d = Generator(net), Discriminator(net)
    assert count_parameters(g) == 29_244_035  # ≈ 29.2 M, the pix2pix UNet at ngf 64
    assert count_parameters(d) == 3_576_677  # ≈ 3.6 M: DCGAN encoder to nz = 100 + 1×1 head
    seen = {}
    blocks = [m for m in g.modules() if isinstance(m, UnetBlock)]
    assert len(blocks) == 6  # log2(64) down-steps
    innermost = blocks[-1]  # modules() is depth-first: the last block is the deepest
    innermost.model[0].register_forward_hook(lambda m, i, o: seen.update(z=o.shape))
    g.eval()
    with torch.no_grad():
        g(torch.zeros(1, 3, 64, 64))
    assert seen["z"] == (1, 512, 1, 1)


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_shapes_and_ranges(size, channels):
    net = NetConfig(size=size, channels=channels, ngf=4, ndf=4, nz=10)
    g, d = Generator(net), Discriminator(net)
    x = torch.rand(2, channels, size, size) * 2 - 1
    with torch.no_grad():
        y = g(x)
        prob, feat = d(x)
    assert y.shape == x.shape and float(y.abs().max()) <= 1.0
    assert prob.shape == (2,) and feat.shape == (2, 10, 1, 1)
    assert float(prob.min()) >= 0.0 and float(prob.max()) <= 1.0


def test_unsupported_sizes_are_refused():
    with pytest.raises(ValueError, match="patch size 48"):
        Generator(NetConfig(size=48, channels=2))
    with pytest.raises(ValueError, match="4 input channels"):
        Discriminator(NetConfig(size=64, channels=4))


def test_init_statistics():
    torch.manual_seed(0)
    g = Generator(NetConfig(size=64, channels=2, ngf=32))
    init_weights(g)
    convs = [m.weight for m in g.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m.weight for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    w = torch.cat([c.detach().flatten() for c in convs])
    b = torch.cat([c.detach().flatten() for c in bns])
    assert abs(float(w.mean())) < 1e-3 and abs(float(w.std()) - 0.02) < 1e-3
    assert abs(float(b.mean()) - 1.0) < 5e-3 and abs(float(b.std()) - 0.02) < 5e-3


def test_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    net = NetConfig(size=32, channels=2, ngf=8, ndf=8)
    g, d = Generator(net).eval(), Discriminator(net).eval()
    x = torch.rand(3, 2, 32, 32) * 2 - 1
    with torch.no_grad():
        y0, (p0, f0) = g(x), d(x)
        g.to(memory_format=torch.channels_last)
        d.to(memory_format=torch.channels_last)
        xc = x.contiguous(memory_format=torch.channels_last)
        y1, (p1, f1) = g(xc), d(xc)
    assert torch.allclose(y0, y1, atol=1e-5) and torch.allclose(p0, p1, atol=1e-5)
    assert torch.allclose(f0, f1, atol=1e-5)


@pytest.mark.parametrize("size", [32, 64])
def test_outer_skips_off_removes_skips_from_the_outside(size):
    """outer_skips_off = k: the k levels below the outermost return only their reconstruction, so
    the next level up reads half the channels; output shape and range are unchanged."""
    counts = []
    for off in range(4):
        g = Generator(NetConfig(size=size, channels=2, ngf=8, outer_skips_off=off)).eval()
        y = g(torch.rand(2, 2, size, size) * 2 - 1)
        assert y.shape == (2, 2, size, size) and y.abs().max() <= 1
        levels = [m for m in g.modules() if isinstance(m, UnetBlock) and not m.outermost]
        assert [lv.skip for lv in levels][:3] == [i >= off for i in range(3)]
        counts.append(count_parameters(g))
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 4


def test_spectral_norm_discriminator_has_unit_spectral_norm_and_no_batchnorm():
    d = Discriminator(NetConfig(size=32, channels=3, ndf=8, nz=16, d_spectral_norm=True))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    for _ in range(20):  # power iteration runs once per training-mode forward
        d(torch.rand(4, 3, 32, 32))
    d.eval()
    for m in d.modules():
        if isinstance(m, torch.nn.Conv2d):
            sigma = float(torch.linalg.matrix_norm(m.weight.detach().reshape(m.weight.shape[0], -1), ord=2))
            assert sigma == pytest.approx(1.0, abs=0.05)
    # the normalised weights survive a state-dict round trip (what the model file stores)
    twin = Discriminator(NetConfig(size=32, channels=3, ndf=8, nz=16, d_spectral_norm=True))
    twin.load_state_dict(d.state_dict())
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(twin.eval()(x)[1], d(x)[1])


def test_init_weights_reaches_spectrally_normalised_convs():
    d = Discriminator(NetConfig(size=32, channels=1, ndf=16, nz=16, d_spectral_norm=True))
    raw = d.features[0].parametrizations.weight.original
    with torch.no_grad():
        raw.fill_(5.0)
    init_weights(d)
    assert raw.std().item() == pytest.approx(0.02, rel=0.3)


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("sn", [False, True])
def test_self_attention_discriminator_attends_across_the_patch(size, sn):
    """NetConfig.d_attention: one SAGAN layer on the S/4 map; it starts as the identity (γ = 0), and
    once γ is non-zero a change in one corner of the input reaches D's S/4 map at the far corner,
    which no stack of 4x4 convolutions that deep can do."""
    from xscreen.network import SelfAttention

    net = NetConfig(size=size, channels=2, ndf=8, nz=16, d_attention=True, d_spectral_norm=sn)
    d = Discriminator(net).eval()
    layers = [m for m in d.modules() if isinstance(m, SelfAttention)]
    assert len(layers) == 1
    convs = [layers[0].query, layers[0].key, layers[0].value, layers[0].out]
    assert all(torch.nn.utils.parametrize.is_parametrized(c) == sn for c in convs)
    seen = []
    layers[0].register_forward_hook(lambda m, i, o: seen.append((i[0], o)))
    x = torch.rand(2, 2, size, size) * 2 - 1
    prob, f = d(x)
    assert prob.shape == (2,) and f.shape == (2, 16, 1, 1) and torch.isfinite(f).all()
    inp, out = seen[-1]
    assert inp.shape[-2:] == (size // 4, size // 4) and torch.equal(inp, out)  # identity at γ = 0
    assert float(layers[0].gamma.detach()) == 0.0
    x2 = x.clone()
    x2[:, :, :4, :4] = -x2[:, :, :4, :4]  # the top-left corner only

    def far_change() -> float:  # at the bottom-right of the S/4 map
        with torch.no_grad():
            d(x), d(x2)
        return float((seen[-2][1] - seen[-1][1])[:, :, -1, -1].abs().max())

    assert far_change() == 0.0  # γ = 0: the convolutions alone do not reach that far
    if sn:
        return  # the spectrally normalised layer's weights are not set by hand
    with torch.no_grad():
        layers[0].gamma.fill_(1.0)
        layers[0].query.weight.zero_()  # uniform attention: every position reads every other
    assert far_change() > 0.0
    a_plain = Discriminator(NetConfig(size=size, channels=2, ndf=8, nz=16, d_spectral_norm=sn))
    assert count_parameters(d) > count_parameters(a_plain)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_unetpp_generator_nodes_shapes_and_gradient_paths(size):
    """UNet++ (NetConfig.generator "unetpp"): L = log2(S) encoder levels, a triangle of
    L(L-1)/2 nested nodes, same input/output as the UNet; every node lies on the output's gradient
    path (each feeds the next column), and the model is a different network from the UNet."""
    from xscreen.network import NestedGenerator, _NestedNode, build_generator

    net = NetConfig(size=size, channels=2, ngf=4, generator="unetpp")
    g = build_generator(net)
    assert isinstance(g, NestedGenerator)
    levels = {32: 5, 64: 6, 128: 7}[size]
    nodes = [m for m in g.modules() if isinstance(m, _NestedNode)]
    assert len(nodes) == levels * (levels - 1) // 2
    x = torch.rand(2, 2, size, size) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and float(y.detach().abs().max()) <= 1.0
    y.square().mean().backward()
    assert all(n.merge[0].weight.grad is not None and float(n.merge[0].weight.grad.abs().sum()) > 0 for n in nodes)
    assert count_parameters(g) != count_parameters(build_generator(NetConfig(size=size, channels=2, ngf=4)))
    assert isinstance(build_generator(NetConfig(size=size, channels=2, ngf=4)), Generator)


def test_unetpp_refuses_outer_skips_off():
    from xscreen.network import build_generator

    with pytest.raises(ValueError, match="outer_skips_off applies to the UNet generator"):
        build_generator(NetConfig(size=32, channels=2, ngf=4, generator="unetpp", outer_skips_off=1))
