"""Skip-GANomaly networks (Akçay et al., IJCNN 2019): a UNet generator and a DCGAN discriminator.

Generator: pix2pix UNet with log2(S) stride-2 down-steps to a 1×1 bottleneck, channel-concatenation
skips, BatchNorm, LeakyReLU(0.2) down / ReLU up, Tanh out. Discriminator: DCGAN encoder whose last
conv gives the feature f(x) (nz channels at 1×1) followed by a 1×1 conv head and a sigmoid.
Both are plain conv/BN stacks, so they run unchanged in ``torch.channels_last`` memory format.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from xscreen.config import NetConfig

SIZES = (32, 64, 128)


def _check(net: NetConfig) -> int:
    if net.size not in SIZES:
        raise ValueError(f"patch size {net.size} not supported (use one of {SIZES})")
    if net.channels not in (1, 2, 3):
        raise ValueError(f"{net.channels} input channels not supported (use 1, 2 or 3)")
    return int(math.log2(net.size))


class UnetBlock(nn.Module):
    """One UNet level: x (N, outer, H, W) -> (N, 2·outer, H, W) (the activated input concatenated
    with its reconstruction), or -> (N, out, H, W) for the outermost level (no skip, Tanh).

    BatchNorm is skipped on the outermost and innermost down-convs (pix2pix: the 1×1 bottleneck has
    one value per channel and sample, BN there would zero it at N = 1). Convs feeding a BN carry no
    bias (the BN shift makes it redundant), as in pix2pix.
    """

    def __init__(self, outer: int, inner: int, sub: "UnetBlock | None" = None, *,
                 in_ch: int | None = None, outermost: bool = False, skip: bool = True):
        super().__init__()
        self.outermost = outermost
        # without its skip a level returns only its reconstruction (N, outer, H, W): what it passes
        # up must go through the bottleneck, so the level cannot copy its input (issue 12)
        self.skip = skip and not outermost
        in_ch = outer if in_ch is None else in_ch
        down: list[nn.Module] = [nn.Conv2d(in_ch, inner, 4, 2, 1, bias=False)]
        if not outermost and sub is not None:
            down.append(nn.BatchNorm2d(inner))
        up_in = inner if sub is None or not sub.skip else inner * 2
        if outermost:
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1), nn.Tanh()]
        else:
            up = [nn.ReLU(True), nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=False), nn.BatchNorm2d(outer)]
        # pix2pix applies an in-place LeakyReLU to the block input, so its skip carries the
        # *activated* input. We keep that function but without the in-place aliasing, which is
        # fragile under autograd, channels_last and torch.compile.
        self.act = nn.Identity() if outermost else nn.LeakyReLU(0.2)
        self.model = nn.Sequential(*down, *([sub] if sub is not None else []), *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        h = self.act(x)
        return torch.cat([h, self.model(h)], 1) if self.skip else self.model(h)


class Generator(nn.Module):
    """UNet G: x (N, C, S, S) in [-1, 1] -> x̂ (N, C, S, S) in [-1, 1]; bottleneck (N, 8·ngf, 1, 1)."""

    def __init__(self, net: NetConfig):
        super().__init__()
        downs = _check(net)
        g = net.ngf
        block = UnetBlock(g * 8, g * 8)  # innermost: 2×2 -> 1×1
        for _ in range(downs - 5):
            block = UnetBlock(g * 8, g * 8, block)
        off = net.outer_skips_off  # levels counted from the outside: g, 2g, 4g, ...
        block = UnetBlock(g * 4, g * 8, block, skip=off < 3)
        block = UnetBlock(g * 2, g * 4, block, skip=off < 2)
        block = UnetBlock(g, g * 2, block, skip=off < 1)
        self.model = UnetBlock(net.channels, g, block, in_ch=net.channels, outermost=True)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class _NestedNode(nn.Module):
    """UNet++ node X(i, j), j >= 1: the level's earlier nodes X(i, 0..j-1) and the level below's
    X(i+1, j-1), upsampled by a transposed conv, concatenated and merged by a 3x3 conv."""

    def __init__(self, ch: int, below: int, earlier: int):
        super().__init__()
        self.up = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(below, ch, 4, 2, 1, bias=False), nn.BatchNorm2d(ch))
        self.merge = nn.Sequential(nn.Conv2d(ch * (earlier + 1), ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU())

    def forward(self, earlier: list[torch.Tensor], below: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([*earlier, self.up(below)], 1))


class NestedGenerator(nn.Module):
    """UNet++ G (``NetConfig.generator = "unetpp"``): the UNet's encoder (same down-convs, widths
    ngf, 2, 4, 8·ngf to a 1×1 bottleneck) with nested dense skip paths: level i (resolution S / 2^i)
    holds nodes X(i, 0..L-i), X(i, 0) the encoder's output (LeakyReLU-activated as the UNet's skips
    are), X(i, j) merging all of X(i, 0..j-1) with X(i+1, j-1) upsampled; x̂ = Tanh(ConvT(X(1, L-1))).
    Same input and output as ``Generator``; ``outer_skips_off`` does not apply."""

    def __init__(self, net: NetConfig):
        super().__init__()
        levels = _check(net)
        if net.outer_skips_off:
            raise ValueError("outer_skips_off applies to the UNet generator, not to unetpp")
        g = net.ngf
        ch = [min(g * 2 ** i, g * 8) for i in range(levels)]  # level i + 1's width
        downs: list[nn.Module] = [nn.Conv2d(net.channels, ch[0], 4, 2, 1, bias=False)]
        for i in range(1, levels):
            innermost = i == levels - 1  # pix2pix: no BatchNorm at the 1x1 bottleneck
            downs.append(nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(ch[i - 1], ch[i], 4, 2, 1, bias=False),
                                       *([] if innermost else [nn.BatchNorm2d(ch[i])])))
        self.downs = nn.ModuleList(downs)
        self.act = nn.LeakyReLU(0.2)
        # nodes[i][j - 1] = X(i + 1, j), for j = 1 .. levels - 1 - i
        self.nodes = nn.ModuleList(nn.ModuleList(_NestedNode(ch[i], ch[i + 1], j) for j in range(1, levels - i))
                                   for i in range(levels - 1))
        self.out = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(ch[0], net.channels, 4, 2, 1), nn.Tanh())
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = []
        h = x
        for down in self.downs:
            h = down(h)
            enc.append(h)
        levels = len(enc)
        # X[i] = the nodes of level i + 1 so far; column 0 is the activated encoder output (the
        # bottleneck stays as it is: the UNet's innermost up-path reads it through a ReLU, as here)
        grid = [[self.act(e)] for e in enc[:-1]] + [[enc[-1]]]
        for j in range(1, levels):
            for i in range(levels - j):
                grid[i].append(self.nodes[i][j - 1](grid[i], grid[i + 1][j - 1]))
        return self.out(grid[0][-1])


def build_generator(net: NetConfig) -> nn.Module:
    """The generator ``net`` names: the paper's UNet or the UNet++ option."""
    return NestedGenerator(net) if net.generator == "unetpp" else Generator(net)


class Discriminator(nn.Module):
    """DCGAN D: x (N, C, S, S) -> (prob (N,), features f(x) (N, nz, 1, 1)).

    ``logits_features`` returns the pre-sigmoid logit instead, so losses can use the numerically
    stable (and autocast-safe) BCE-with-logits.
    """

    def __init__(self, net: NetConfig):
        super().__init__()
        downs = _check(net)
        d = net.ndf
        sn = net.d_spectral_norm
        conv = _sn_conv if sn else nn.Conv2d
        layers: list[nn.Module] = [conv(net.channels, d, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for i in range(downs - 3):  # S/2 -> 4 in stride-2 steps, doubling channels
            # spectral norm bounds D's Lipschitz constant itself; SN-GAN drops BatchNorm beside it
            layers += [conv(d * 2**i, d * 2 ** (i + 1), 4, 2, 1, bias=False),
                       *([] if sn else [nn.BatchNorm2d(d * 2 ** (i + 1))]), nn.LeakyReLU(0.2, True)]
            if i == 0 and net.d_attention:  # on the S/4 map (16 x 16 at 64 px), as SAGAN's mid-level layer
                layers.append(SelfAttention(d * 2, sn))
        layers.append(conv(d * 2 ** (downs - 3), net.nz, 4, 1, 0, bias=False))  # 4×4 -> 1×1: f(x)
        self.features = nn.Sequential(*layers)
        self.classifier = conv(net.nz, 1, 1)
        init_weights(self)

    def logits_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (N, C, S, S) -> (logit (N,), f(x) (N, nz, 1, 1))."""
        f = self.features(x)
        return self.classifier(f).reshape(-1), f

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logit, f = self.logits_features(x)
        return torch.sigmoid(logit), f


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): y = x + γ · W_o(softmax(q(x)ᵀ k(x)) applied to v(x)),
    1×1 convolutions for q, k (C/8 channels), v (C/2) and W_o, γ a learnt scalar starting at 0 so the
    layer starts as the identity. ``sn``: spectral norm on the four convolutions, as in SAGAN's D."""

    def __init__(self, ch: int, sn: bool = False):
        super().__init__()
        conv = _sn_conv if sn else nn.Conv2d
        inner = max(1, ch // 8)
        self.query, self.key = conv(ch, inner, 1, bias=False), conv(ch, inner, 1, bias=False)
        self.value, self.out = conv(ch, max(1, ch // 2), 1, bias=False), conv(max(1, ch // 2), ch, 1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (N, C/8, HW)
        k = self.key(x).flatten(2)
        v = self.value(x).flatten(2)  # (N, C/2, HW)
        attn = torch.softmax(torch.bmm(q.transpose(1, 2), k).float(), -1).to(v.dtype)  # (N, HW, HW): row i attends to j
        o = torch.bmm(v, attn.transpose(1, 2)).reshape(n, -1, h, w)
        return x + self.gamma.to(x.dtype) * self.out(o)


def reconstruct(generator: nn.Module, x: torch.Tensor, inpaint: int = 0) -> torch.Tensor:
    """x (N, C, S, S) -> x̂ (N, C, S, S). ``inpaint`` 0: x̂ = G(x) (the paper). k > 0: test-time
    inpainting - each block of a k x k grid is hidden (filled with the patch's per-channel mean, as
    training's ``hide_blocks`` does) and G's output of that pass is kept inside the block, so x̂ is
    predicted from context everywhere. The k² passes run as one batch (eval-mode BatchNorm: each
    patch's output does not depend on its batch)."""
    if not inpaint:
        return generator(x)
    n, c, s, _ = x.shape
    b = s // inpaint
    grid = (torch.arange(s, device=x.device) // b).clamp_max(inpaint - 1)  # S not a multiple of k: last block wider
    block = grid[:, None] * inpaint + grid[None, :]  # (S, S) block ids
    masks = (block[None] == torch.arange(inpaint * inpaint, device=x.device)[:, None, None])  # (k², S, S)
    masks = masks[:, None, None].to(x.dtype)  # (k², 1, 1, S, S)
    mean = x.mean((2, 3), keepdim=True)
    hidden = (x[None] * (1 - masks) + mean[None] * masks).reshape(-1, c, s, s)
    out = generator(hidden.contiguous(memory_format=torch.channels_last)).reshape(-1, n, c, s, s)
    return (out * masks.to(out.dtype)).sum(0)


def _sn_conv(*args, **kwargs) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(nn.Conv2d(*args, **kwargs))


def init_weights(module: nn.Module) -> None:
    """DCGAN init, applied recursively: conv weights N(0, 0.02), BN weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            # a spectrally normalised conv keeps its raw weight under parametrizations.weight.original
            weight = m.parametrizations.weight.original if nn.utils.parametrize.is_parametrized(m) else m.weight
            with torch.no_grad():
                weight.normal_(0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
