"""The known-threat head: D's architecture at low width (network.Discriminator, ndf 8, nz 16) whose
logit says "a projected threat is in this patch", trained on benign patches against patches of the
same benign bags with FTIs projected into them (tip.random_tip: Beer-Lambert, placement inside the
bag). Never trained on a test set's real threats. Shapes: patches (N, C, S, S) in model space.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from xscreen.config import NetConfig, Preprocess
from xscreen.evaluate.truth import patch_coverage
from xscreen.model_checks.known_threat import KnownThreatMeta, head_network
from xscreen.network import Discriminator
from xscreen.patches import air_mask, air_value, tile
from xscreen.preprocess import model_input
from xscreen.scan import Scan
from xscreen.tip import Library, TipError, random_tip

POSITIVE_SHARE = 0.05  # of a patch the FTI must cover for a positive (a sliver is not a threat view)


@dataclass(frozen=True)
class HeadConfig:
    ndf: int = 8
    nz: int = 16
    steps: int = 300
    batch: int = 64
    lr: float = 1e-3
    per_bag: int = 4  # TIP images per benign bag
    stride: int = 32
    seed: int = 0


@dataclass
class PatchSet:
    x: torch.Tensor  # (N, C, S, S) float32 model space
    y: torch.Tensor  # (N,) float32, 1 = FTI in the patch
    fti_ids: set[str] = field(default_factory=set)


def head_net(size: int, channels: int, cfg: HeadConfig) -> Discriminator:
    return head_network(NetConfig(size=size, channels=channels), KnownThreatMeta(ndf=cfg.ndf, nz=cfg.nz))


def scan_patches(scan: Scan, pre: Preprocess, size: int, stride: int, air_threshold: float
                 ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """(patches (N, C, S, S) of non-air cells, origins (N, 2) (y, x), keep (rows*cols,) bool)."""
    x = torch.from_numpy(np.ascontiguousarray(model_input(scan, pre)))
    t = tile(x, size, stride, air_value(pre))
    keep = ~air_mask(t, air_threshold, pre).reshape(-1).numpy()
    rows, cols = t.view.shape[:2]
    origins = np.array([(r * stride, c * stride) for r in range(rows) for c in range(cols)], np.int64)
    flat = t.view.reshape(rows * cols, *t.view.shape[2:])
    return flat[torch.from_numpy(keep)].clone(), origins[keep], keep


def tip_patch_set(scans: list[Scan], library: Library, pre: Preprocess, size: int, cfg: HeadConfig,
                  air_threshold: float = 0.95, neg_per_bag: int = 64) -> PatchSet:
    """Negatives: non-air patches of the benign bags (up to ``neg_per_bag`` each); positives: the
    patches of their TIP images that the FTI covers (>= POSITIVE_SHARE of the patch)."""
    rng = np.random.default_rng(cfg.seed)
    xs, ys, ids = [], [], set()
    for i, scan in enumerate(scans):
        neg, _, _ = scan_patches(scan, pre, size, cfg.stride, air_threshold)
        pick = rng.permutation(len(neg))[:neg_per_bag]
        xs.append(neg[torch.from_numpy(pick)])
        ys.append(torch.zeros(len(pick)))
        for k in range(cfg.per_bag):
            try:
                tipped = random_tip(scan, library, np.random.default_rng([cfg.seed, i, k]))
            except TipError:
                continue
            pos, origins, _ = scan_patches(tipped.projected.scan, pre, size, cfg.stride, air_threshold)
            hit = patch_coverage(tipped.projected.mask, origins, size) >= POSITIVE_SHARE * size * size
            if hit.any():
                xs.append(pos[torch.from_numpy(hit)])
                ys.append(torch.ones(int(hit.sum())))
                ids.add(tipped.fti.fti_id)
    if not ys or not any(bool(y.any()) for y in ys):
        raise ValueError("no TIP patch could be made: no FTI of the bags' kind fits inside them")
    return PatchSet(torch.cat(xs), torch.cat(ys), ids)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Flips and 90-degree turns: a threat's pose in the bag is arbitrary."""
    if torch.rand(1, generator=gen).item() < 0.5:
        x = x.flip(-1)
    return torch.rot90(x, int(torch.randint(4, (1,), generator=gen).item()), dims=(-2, -1))


def train_head(data: PatchSet, size: int, channels: int, cfg: HeadConfig) -> Discriminator:
    """Balanced batches (half positives) with BCE on the logit; Adam. Returns the head in eval mode."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = head_net(size, channels, cfg)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
    pos, neg = torch.nonzero(data.y > 0.5)[:, 0], torch.nonzero(data.y < 0.5)[:, 0]
    half = cfg.batch // 2
    net.train()
    for _ in range(cfg.steps):
        idx = torch.cat([pos[torch.randint(len(pos), (half,), generator=gen)],
                         neg[torch.randint(len(neg), (half,), generator=gen)]])
        x = augment(data.x[idx], gen)
        logit, _ = net.logits_features(x)
        loss = F.binary_cross_entropy_with_logits(logit, data.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


@torch.inference_mode()
def head_logits(net: Discriminator, patches: torch.Tensor, batch: int = 512) -> torch.Tensor:
    """patches (N, C, S, S) -> (N,) float32 logits."""
    out = [net.logits_features(p.float())[0].float() for p in patches.split(batch)]
    return torch.cat(out) if out else torch.zeros(0)
