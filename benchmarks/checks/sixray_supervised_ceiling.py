"""SIXray: how far a supervised patch classifier gets on the within-image protocol (issue 12).

Not a detector for the product (it is trained on labelled threat boxes, which the product never
sees): a measurement of what a SIXray patch, labelled by the protocol's own loose-box rule, can carry.
The paper's discriminator architecture (``network.Discriminator``, ndf 32) is trained as a plain
binary classifier, leaving whole threat images out (K folds by image): positives are the patches of the
training images at least 25 % inside a threat box (the protocol's rule), negatives their patches wholly
outside every box plus the benign training patches of the split; patches touching a box below the rule
are left out. Each threat image is then scored by the network of the fold that did not see it and
read exactly like every other score (``detection_study.within_image``: pooled and darkness-matched, at
the rule and with "inside" tightened to 0.5 / 0.75 coverage). A last network trained on every image is
read on its own training images: what the labels allow at all.

    python benchmarks/checks/sixray_supervised_ceiling.py --seed 0 [--scale 0.5 --patch 64] [--folds 4]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from detection_study import load_data, within_image  # noqa: E402
from supervised_ceiling import batch_logits, train_epoch  # noqa: E402

from xscreen.config import NetConfig  # noqa: E402
from xscreen.network import Discriminator  # noqa: E402

RULES = (0.25, 0.5, 0.75)


def as_input(p: np.ndarray) -> torch.Tensor:
    """uint8 (N, 3, S, S) -> the model's [-1, 1] input, as ``_common.ArrayPatches`` maps it."""
    return torch.from_numpy(p.astype(np.float32) / 127.5 - 1.0)


def train_net(x: torch.Tensor, y: torch.Tensor, size: int, epochs: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = Discriminator(NetConfig(size=size, channels=3, ndf=32))
    opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    pos_weight = (y == 0).sum() / (y == 1).sum().clamp(min=1)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        train_epoch(net, opt, x, y, pos_weight, g)
    return net.eval()


def logits(net: torch.nn.Module, p: np.ndarray) -> np.ndarray:
    return batch_logits(net, as_input(p))


def training_set(d: dict, images: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    neg = [d["train"]] + [d["threat"][i][d["cover"][i] == 0] for i in images]
    pos = [d["threat"][i][d["cover"][i] >= RULES[0]] for i in images]
    n_neg, n_pos = sum(len(a) for a in neg), sum(len(a) for a in pos)
    return as_input(np.concatenate(neg + pos)), torch.cat([torch.zeros(n_neg), torch.ones(n_pos)])


def read(d: dict, scores: list[np.ndarray], images: list[int]) -> dict:
    out = {}
    outside = [d["cover"][i] == 0 for i in images]
    for rule in RULES:
        inside = [d["cover"][i] >= rule for i in images]
        r = within_image([scores[i] for i in images], [d["dark"][i] for i in images], inside, outside)
        out[f"cov>={rule}"] = {"pooled": round(r["pooled"], 3), "matched": round(r["matched"], 3),
                               "inside": int(sum(a.sum() for a in inside))}
    return out


def held_out_scores(d: dict, folds: list[np.ndarray], epochs: int, patch: int, seed: int) -> list[np.ndarray]:
    """Each threat bag's patch logits from the network of the fold that left it out."""
    n = len(d["threat"])
    scores: list[np.ndarray] = [None] * n  # type: ignore[list-item]
    for k, held in enumerate(folds):
        seen = [i for i in range(n) if i not in set(held.tolist())]
        x, y = training_set(d, seen)
        net = train_net(x, y, patch, epochs, seed=100 * seed + k)
        for i in held:
            scores[i] = logits(net, d["threat"][i])
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="benchmark split (the study cache's seed)")
    ap.add_argument("--scale", type=float, default=0.25)
    ap.add_argument("--patch", type=int, default=32)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--epochs", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/xs_study"))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    ns = argparse.Namespace(out=args.cache, scale=args.scale, patch=args.patch, seed=args.seed)
    d = load_data(ns)
    n = len(d["threat"])
    folds = np.array_split(np.random.default_rng(args.seed).permutation(n), args.folds)
    rows = []
    for epochs in args.epochs:
        scores = held_out_scores(d, folds, epochs, args.patch, args.seed)
        row = {"split": args.seed, "scale": args.scale, "patch": args.patch, "epochs": epochs,
               "read": f"held-out images ({args.folds} folds)", **read(d, scores, list(range(n)))}
        rows.append(row)
        print(json.dumps(row), flush=True)
    x, y = training_set(d, list(range(n)))
    net = train_net(x, y, args.patch, max(args.epochs), seed=100 * args.seed + 99)
    scores = [logits(net, t) for t in d["threat"]]
    row = {"split": args.seed, "scale": args.scale, "patch": args.patch, "epochs": max(args.epochs),
           "read": "its own training images", **read(d, scores, list(range(n)))}
    rows.append(row)
    print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
