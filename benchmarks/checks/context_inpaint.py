"""Does a wider view help a one-class model? Inpainting from the patch's surroundings (issue 12).

The labelled ceiling (``supervised_ceiling.py --context``) gained from seeing the 2S x 2S window
around each patch. This check asks the same of a benign-only model: a UNet generator (the product's
``network.Generator``, its first convolution widened to 2C input channels) is trained on benign
patches to restore a hidden block of the patch (``train.step.hide_blocks``: one block of side S/4..S/2
filled with the patch mean, every patch) from the rest of the patch **and** the surrounding window at
half resolution, the patch's own place in that window blanked (so the hidden block cannot be read
there). Score: test-time 2 x 2 inpainting (each quadrant hidden in turn, predicted from the other three
and the surroundings), R = mean |x - x̂|. The control arm (``--no-context``) trains the identical
network with the context channels set to zero: only the information differs.

L1 reconstruction only (no discriminator: the shipped model scores R alone, and a measurement of what
the wider view carries needs no adversarial term). Read each ``--read-every`` epochs on the test set
exactly as the supervised ceiling reads (patch / darkness-matched / per-type / pixel / scan AUC, hits
at the 1 % patch false-alarm threshold set on benign calibration bags); the epoch is never chosen on
the test set: every reading is printed, the benign criterion beside it (mean R of held-out benign
calibration patches, lower is better - the reconstruction objective itself).

    python benchmarks/checks/context_inpaint.py --train /tmp/xs_synth/train/benign \
        --calib /tmp/xs_synth/calib/benign --test /tmp/xs_synth/test [--no-context] --epochs 8
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervised_ceiling import augment, live_patches, read_score, reading_args, reading_sets  # noqa: E402

from xscreen.config import NetConfig  # noqa: E402
from xscreen.network import Generator, init_weights  # noqa: E402
from xscreen.scoring import Scorer  # noqa: E402
from xscreen.train.step import hide_blocks  # noqa: E402


def blank_centre(x: torch.Tensor, c: int, zero_context: bool) -> torch.Tensor:
    """x (N, 2C, S, S) = patch + its 2S window at half resolution; the window's centre (where the
    patch itself lies, side S/2) set to 0, or the whole window when ``zero_context``."""
    x = x.clone()
    s = x.shape[-1]
    if zero_context:
        x[:, c:] = 0.0
    else:
        x[:, c:, s // 4:3 * s // 4, s // 4:3 * s // 4] = 0.0
    return x


def context_generator(c: int, size: int, ngf: int) -> Generator:
    """The product's UNet generator for C output channels, reading 2C input channels."""
    g = Generator(NetConfig(size=size, channels=c, ngf=ngf))
    g.model.model[0] = torch.nn.Conv2d(2 * c, ngf, 4, 2, 1, bias=False)
    init_weights(g.model.model[0])
    return g


def inpaint_recon(g: torch.nn.Module, x: torch.Tensor, c: int) -> torch.Tensor:
    """x̂ (N, C, S, S) of x (N, 2C, S, S, context already blanked), each quadrant predicted with it
    hidden (filled with the patch's per-channel mean) from the other three and the context."""
    h = x.shape[-1] // 2
    p = x[:, :c]
    mean = p.mean((2, 3), keepdim=True)
    recon = torch.empty_like(p)
    for qy in (0, h):
        for qx in (0, h):
            hidden = x.clone()
            hidden[:, :c, qy:qy + h, qx:qx + h] = mean.expand(-1, -1, h, h)
            recon[:, :, qy:qy + h, qx:qx + h] = g(hidden).float()[:, :, qy:qy + h, qx:qx + h]
    return recon


def inpaint_scores(g: torch.nn.Module, x: torch.Tensor, c: int, batch: int = 128) -> np.ndarray:
    """R = mean |x - x̂| of every patch of x, x̂ from ``inpaint_recon`` (bf16, no gradients)."""
    out = []
    with torch.no_grad(), torch.autocast("cpu", torch.bfloat16):
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            out.append((xb[:, :c] - inpaint_recon(g, xb, c)).abs().mean((1, 2, 3)))
    return torch.cat(out).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, required=True, help="benign training bags")
    reading_args(ap)
    ap.add_argument("--read-every", type=int, default=2)
    ap.add_argument("--ngf", type=int, default=32)
    ap.add_argument("--no-context", action="store_true", help="control: the context channels set to zero")
    ap.add_argument("--out", type=Path, default=Path("/tmp/context_inpaint.json"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    scorer = Scorer(args.model, device="cpu")
    c, size = scorer.preprocess.channels, scorer.patch_size
    zero = args.no_context
    x_train = blank_centre(live_patches(args.train, scorer, args.stride, True), c, zero)
    calib, tb, tt = reading_sets(args, scorer, True)
    for e in calib + tb + tt:  # only the live patches are scored (air patches read 0, as screening has them)
        e["x"] = blank_centre(e["x"][e["live"]], c, zero)
    print(f"{len(x_train)} training patches; context {'zeroed' if zero else 'on'}", flush=True)

    g = context_generator(c, size, args.ngf).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(args.seed)
    name = "one-class inpainting " + ("without context (zeroed)" if zero else "+ context")
    rows = [read_score("model", f"model {args.model.name}", None, calib, tb, tt)]
    print(json.dumps(rows[-1]), flush=True)
    for epoch in range(1, args.epochs + 1):
        g.train()
        t0, total, n = time.time(), 0.0, 0
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(order), 64):
            xb = augment(x_train[order[i:i + 64]], gen)
            target = xb[:, :c]
            hidden = torch.cat([hide_blocks(target, 1.0, gen), xb[:, c:]], 1)
            with torch.autocast("cpu", torch.bfloat16):
                loss = (g(hidden.contiguous(memory_format=torch.channels_last)).float() - target).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, n = total + loss.item() * len(xb), n + len(xb)
        print(f"epoch {epoch}: train L1 {total / n:.5f} ({time.time() - t0:.0f} s)", flush=True)
        if epoch % args.read_every and epoch != args.epochs:
            continue
        g.eval()
        for e in calib + tb + tt:
            e["r"] = np.zeros(len(e["live"]), np.float32)
            e["r"][e["live"]] = inpaint_scores(g, e["x"], c)
        row = read_score("r", name, epoch, calib, tb, tt, sigmoid=False)
        row["benign_calib_mean_r"] = round(float(np.concatenate([e["r"][e["live"]] for e in calib]).mean()), 5)
        rows.append(row)
        print(json.dumps(row), flush=True)
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
