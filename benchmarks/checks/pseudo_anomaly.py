"""Synthetic foreign objects as training anomalies: does outlier exposure reach what labels reach? (issue 12)

The supervised ceiling (``supervised_ceiling.py``) needs labelled threats, which the product never has.
This check trains the same network - the paper's discriminator architecture (``network.Discriminator``,
ndf 32) as a binary classifier - with **no threat data**: negatives are live benign training patches,
positives the same kind of patches with a generic foreign object superimposed by the X-ray physics the
benign criterion already uses (``train.selection.insert_object``: a random bar, ellipse or convex
polygon of transmission t, attenuations added in log space, the low-energy channel times a material
factor 1-1.6), drawn afresh every epoch, t uniform in ``--t-range`` (default 0.05-0.9: from dense metal
to faint); with ``--balance-darkness`` each negative carries the same mean added attenuation spread
evenly (a uniform sheet), so that darkness alone cannot tell the two apart. The test threats (handguns, gun parts, knives, IEDs of ``xscreen.synth``) are never seen
and never shaped the objects. Read each epoch on the test set as the supervised ceiling reads
(``read_score``), beside the shipped model's R and their fusion (each score turned into its benign
calibration tail, -ln(1 - F(s)), and summed: no threat data in the fusion either). The benign-only
reading printed with it: the AUC of held-out benign calibration patches against the same patches with
pasted benign rectangles (CutPaste, ``train.selection.paste_patch``: an anomaly kind the network never
trained on).

    python benchmarks/checks/pseudo_anomaly.py --train /tmp/xs_synth/train/benign \
        --calib /tmp/xs_synth/calib/benign --test /tmp/xs_synth/test --epochs 8
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from supervised_ceiling import batch_logits, live_patches, read_score, reading_args, reading_sets, train_epoch  # noqa: E402
from synthetic_baselines import tail_share  # noqa: E402

from xscreen.config import NetConfig  # noqa: E402
from xscreen.network import Discriminator  # noqa: E402
from xscreen.scoring import Scorer  # noqa: E402
from xscreen.train.selection import anomaly_auc, insert_object, paste_patch  # noqa: E402


def with_objects(x: torch.Tensor, kind: str, a_max: float, rng: np.random.Generator,
                 t_range: tuple[float, float], balance: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, C, S, S) -> (negatives, positives): positives are x with one generic object superimposed
    on every patch; negatives are x itself, or with ``balance`` x plus, channel by channel, the
    object's mean added value spread evenly over the patch (a uniform sheet: the pair differs in the
    object's shape, not in mean darkness)."""
    pos = np.stack([insert_object(p, kind, a_max, rng, t_range) for p in x.numpy()])
    neg = x.numpy()
    if balance:
        neg = np.clip(neg + (pos - neg).mean((2, 3), keepdims=True), -1.0, 1.0).astype(np.float32)
    return torch.from_numpy(neg), torch.from_numpy(pos)


def tail(calib: np.ndarray, s: np.ndarray) -> np.ndarray:
    """-ln of the benign tail share of s (``tail_share`` over the calibration scores, ties counted
    below s): a benign-calibrated scale on which two scores can be added."""
    return -np.log(tail_share(np.sort(calib), s, inclusive=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=Path, required=True, help="benign training bags")
    reading_args(ap)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--t-range", type=float, nargs=2, default=(0.05, 0.9))
    ap.add_argument("--balance-darkness", action="store_true",
                    help="negatives carry a uniform sheet of the object's mean attenuation (no darkness cue)")
    ap.add_argument("--out", type=Path, default=Path("/tmp/pseudo_anomaly.json"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    scorer = Scorer(args.model, device="cpu")
    kind, a_max = scorer.preprocess.kind, scorer.preprocess.a_max
    x_benign = live_patches(args.train, scorer, args.stride)
    calib, tb, tt = reading_sets(args, scorer, False)
    rng = np.random.default_rng(args.seed)
    held = torch.cat([e["x"][e["live"]] for e in calib])
    held = held[torch.from_numpy(rng.permutation(len(held))[:2000])]
    pasted = torch.from_numpy(np.stack([paste_patch(p, held[(i + 1) % len(held)].numpy(), rng)
                                        for i, p in enumerate(held.numpy())]))
    print(f"{len(x_benign)} benign training patches; objects t in {tuple(args.t_range)}", flush=True)

    net = Discriminator(NetConfig(size=scorer.patch_size, channels=scorer.preprocess.channels, ndf=args.ndf))
    opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(args.seed)
    y = torch.cat([torch.zeros(len(x_benign)), torch.ones(len(x_benign))])
    rows = [read_score("model", f"model {args.model.name}", None, calib, tb, tt)]
    print(json.dumps(rows[-1]), flush=True)
    for epoch in range(1, args.epochs + 1):
        x = torch.cat(with_objects(x_benign, kind, a_max, rng, tuple(args.t_range), args.balance_darkness))
        train_epoch(net, opt, x, y, torch.tensor(1.0), g)
        net.eval()
        for e in calib + tb + tt:
            e["pseudo"] = batch_logits(net, e["x"])
        ref_p = np.concatenate([e["pseudo"][e["live"]] for e in calib])
        ref_r = np.concatenate([e["model"][e["live"]] for e in calib])
        for e in calib + tb + tt:
            e["fused"] = tail(ref_p, e["pseudo"]) + tail(ref_r, e["model"])
        cut = float(anomaly_auc(batch_logits(net, held), batch_logits(net, pasted)))
        oe = "outlier exposure: D-architecture CNN, benign" + (" + even sheet" if args.balance_darkness else "")
        for key, name, sig in (("pseudo", oe + " vs generic objects", True),
                               ("fused", "outlier exposure + shipped R, benign tails summed", False)):
            row = read_score(key, name, epoch, calib, tb, tt, sigmoid=sig)
            row["benign_cutpaste_auc"] = round(cut, 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
