"""How separable are the synthetic threat patches at all? A supervised ceiling (issue 12).

Not a detector for the product (it is trained on labelled threats, which the product never sees):
a measurement of what the pixel values of a 64-px patch can carry. The paper's discriminator
architecture (``network.Discriminator``, ndf 32) is trained as a plain binary classifier on the
labelled patches of a *separate* synthetic set (its own seed: no test bag, no test threat), then read
on the test set with the same grid, air rule, threat labels and per-type patch AUC as
``synthetic_baselines.py``. If a supervised CNN cannot rank a type's patches above benign ones, no
benign-only model can be expected to.

    python benchmarks/checks/supervised_ceiling.py --labelled /tmp/xs_synth/sup \
        --calib /tmp/xs_synth/calib/benign --test /tmp/xs_synth/test --model models/default.xsm
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthetic_baselines import BAG_SCORES, darkness_matched_auc, patch_auc_by_type  # noqa: E402

from xscreen.config import NetConfig, ScreenConfig  # noqa: E402
from xscreen.evaluate import truth  # noqa: E402
from xscreen.metrics import roc_auc, threshold_for_far  # noqa: E402
from xscreen.network import Discriminator, init_weights  # noqa: E402
from xscreen.evaluate.core import _object_pixels  # noqa: E402  (the evaluation's own pixel rule)
from xscreen.patches import grid_to_pixels, tile  # noqa: E402
from xscreen.pipeline import screen  # noqa: E402
from xscreen.preprocess import model_input  # noqa: E402
from xscreen.scan import list_scans, load_scan  # noqa: E402
from xscreen.scoring import Scorer  # noqa: E402
from xscreen.train.selection import anomaly_auc  # noqa: E402


def bag_patches(path: Path, scorer: Scorer, stride: int, folder: Path | None, types: dict, context: bool = False):
    """Patches of one bag on the screening grid: x (N, C, S, S), live, threat, darkness, model score,
    [(type, instance patches)]. ``context``: x also carries, as C more channels, the 2S x 2S window
    centred on the patch at half resolution (what lies around the patch)."""
    scan = load_scan(path)
    res = screen(scan, scorer, ScreenConfig(stride=stride, maps=False))
    rows, cols = res.score_grid.shape
    size = scorer.patch_size
    x = torch.from_numpy(model_input(scan, scorer.preprocess))
    tiling = tile(x, size, stride, pad_value=-1.0)
    p = tiling.view.reshape(-1, x.shape[0], size, size).contiguous()
    live = ~res.air_grid.ravel()
    dark = (p.mean((1, 2, 3)).numpy() + 1) / 2
    if context:  # windows at (origin - S/2) of size 2S: the same grid, one window per patch
        h = size // 2
        xc = F.pad(x, (h, h, h, h), value=-1.0)
        w = tile(xc, 2 * size, stride, pad_value=-1.0).view.reshape(-1, x.shape[0], 2 * size, 2 * size)
        p = torch.cat([p, F.avg_pool2d(w, 2)], 1)
    out = {"x": p, "live": live, "dark": dark, "model": res.score_grid.ravel(), "grid": (rows, cols),
           "tiling": tiling.geometry_only(), "objects": _object_pixels(res), "model_heat": res.heat, "mask": None,
           "tp": np.zeros(len(p), bool), "near": np.zeros(len(p), bool), "inst": []}
    if folder is not None:
        mask = truth.read_mask(folder / "masks" / f"{path.stem}.png", (scan.height, scan.width))
        out["mask"] = mask
        origins = np.array([(r * stride, c * stride) for r in range(rows) for c in range(cols)])
        out["tp"] = truth.threat_patches(mask, origins, size, 0.1) & live
        out["near"] = truth.patch_coverage(mask > 0, origins, size) > 0
        out["inst"] = [(i.type, truth.instance_patches(mask, i, origins, size, 0.1) & live)
                       for i in truth.instances(mask, types[path.stem])]
    return out


def load_set(root: Path, scorer: Scorer, stride: int, context: bool) -> tuple[list, list]:
    types = {r["stem"]: [t for t in r["threat_types"].split(";") if t]
             for r in csv.DictReader(open(root / "labels.csv", newline=""))}
    benign = [bag_patches(p, scorer, stride, None, types, context) for p in list_scans(root / "benign")]
    threat = [bag_patches(p, scorer, stride, root, types, context) for p in list_scans(root / "threat")]
    return benign, threat


def reading_args(ap: argparse.ArgumentParser) -> None:
    """The arguments every check that reads the test set like this one takes."""
    ap.add_argument("--calib", type=Path, required=True, help="benign calibration bags (1 %% threshold)")
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--model", type=Path, default=Path("models/default.xsm"), help="grid, input map, reference row")
    ap.add_argument("--stride", type=int, default=32, help="grid of the patches trained on and read")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)


def reading_sets(args: argparse.Namespace, scorer: Scorer, context: bool) -> tuple[list, list, list]:
    """The calibration bags and the test set's benign and threat bags, as ``bag_patches`` gives them."""
    calib = [bag_patches(p, scorer, args.stride, None, {}, context) for p in list_scans(args.calib)]
    return (calib, *load_set(args.test, scorer, args.stride, context))


def live_patches(root: Path, scorer: Scorer, stride: int, context: bool = False) -> torch.Tensor:
    """The live (non-air) patches of every scan in ``root``, one bag at a time (air patches dropped
    before the next bag is read)."""
    out = []
    for p in list_scans(root):
        e = bag_patches(p, scorer, stride, None, {}, context)
        out.append(e["x"][e["live"]])
    return torch.cat(out)


def pixel_auc(bags: list[dict], key: str, sigmoid: bool = True) -> float:
    """Pixel AUC read as ``xscreen evaluate`` reads it: the per-pixel heat (each pixel the weighted
    mean of the scores of the patches covering it, air patches 0), over the pixels a non-air patch
    covers, threat-mask pixels against all others (every pixel, not a sample). ``key`` "model": the
    screening's own heat map; otherwise the key's patch scores (through a sigmoid first when
    ``sigmoid``: logits; else used as they are), stitched alike."""
    scores, labels = [], []
    for e in bags:
        if key == "model":
            heat = e["model_heat"]
        else:
            values = 1.0 / (1.0 + np.exp(-e[key])) if sigmoid else e[key]
            grid = np.where(e["live"], values, 0.0).reshape(e["grid"])
            heat = grid_to_pixels(torch.from_numpy(grid.astype(np.float32)), e["tiling"]).numpy()
        idx = np.flatnonzero(e["objects"])
        scores.append(heat.ravel()[idx])
        labels.append(np.zeros(idx.size, bool) if e["mask"] is None else e["mask"].ravel()[idx] > 0)
    s, y = np.concatenate(scores), np.concatenate(labels)
    return anomaly_auc(s[~y], s[y])


def batch_logits(net: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """The network's logit of every patch of x (N, C, S, S), in batches of 256, no gradients."""
    with torch.no_grad():
        return torch.cat([net.logits_features(x[i:i + 256])[0] for i in range(0, len(x), 256)]).float().numpy()


def score_bags(net: torch.nn.Module, bags: list[dict]) -> None:
    """e["sup"] = the network's logit of every patch of every bag (eval mode, batches of 256)."""
    for e in bags:
        e["sup"] = batch_logits(net, e["x"])


def instance_scores(bags: list[dict], key: str) -> dict[str, list[np.ndarray]]:
    """Per threat type, the ``key`` scores of the patches that see each instance of it."""
    out: dict[str, list[np.ndarray]] = {}
    for e in bags:
        for ty, sel in e["inst"]:
            out.setdefault(ty, []).append(e[key][sel])
    return out


def read_score(key: str, name: str, epoch: int | None, calib: list[dict], tb: list[dict], tt: list[dict],
               sigmoid: bool = True) -> dict:
    """The test-set reading of the patch scores ``e[key]`` of every bag: patch AUC (threat patches
    against every live benign-bag patch), darkness-matched AUC, patch AUC by type, scan AUC by bag
    score, pixel AUC (stitched as screening stitches; ``sigmoid`` as in ``pixel_auc``), and the share
    of instances hit at the 1 % patch false-alarm threshold set on the ``calib`` bags."""
    th = threshold_for_far(np.concatenate([e[key][e["live"]] for e in calib]), 0.01)
    b = np.concatenate([e[key][e["live"]] for e in tb])
    t = np.concatenate([e[key][e["tp"]] for e in tt])
    matched, _ = darkness_matched_auc(b, np.concatenate([e["dark"][e["live"]] for e in tb]), t,
                                      np.concatenate([e["dark"][e["tp"]] for e in tt]))
    by_type = instance_scores(tt, key)
    # bag scores as synthetic_baselines.py makes them (its "d" dict holds the score by name)
    bags = [{"d": {key: e[key]}, "live": e["live"], "grid": e["grid"]} for e in tb + tt]
    bag_y = np.r_[np.zeros(len(tb)), np.ones(len(tt))]
    scan = {n: round(roc_auc(bag_y, np.array([f(e, key, th) for e in bags])), 3) for n, f in BAG_SCORES.items()}
    return {"score": name, "epoch": epoch, "patch_auc": round(anomaly_auc(b, t), 3),
            "darkness_matched_auc": round(matched, 3), "patch_auc_by_type": patch_auc_by_type(b, by_type),
            "scan_auc_by_bag_score": scan, "pixel_auc": round(pixel_auc(tb + tt, key, sigmoid), 3),
            "hits": {ty: round(float(np.mean([(s >= th).any() for s in v])), 2) for ty, v in sorted(by_type.items())},
            "test_benign_patch_far": round(float(np.mean(b >= th)), 4)}


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    k = int(torch.randint(0, 4, (1,), generator=g))
    x = torch.rot90(x, k, (2, 3))
    return torch.flip(x, (3,)) if torch.rand(1, generator=g) < 0.5 else x


def train_epoch(net: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                pos_weight: torch.Tensor, g: torch.Generator) -> None:
    """One epoch of class-weighted BCE over (x, y) in shuffled batches of 64, each batch flipped /
    rotated by ``augment``; leaves the network in training mode."""
    net.train()
    order = torch.randperm(len(x), generator=g)
    for i in range(0, len(order), 64):
        j = order[i:i + 64]
        logit, _ = net.logits_features(augment(x[j], g))
        loss = F.binary_cross_entropy_with_logits(logit, y[j], pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labelled", type=Path, required=True, help="synthetic set (own seed) to train on")
    reading_args(ap)
    ap.add_argument("--ndf", type=int, default=32)
    ap.add_argument("--context", action="store_true", help="also the 2x window around each patch, at half resolution")
    ap.add_argument("--out", type=Path, default=Path("/tmp/supervised_ceiling.json"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    scorer = Scorer(args.model, device="cpu")
    lb, lt = load_set(args.labelled, scorer, args.stride, args.context)
    # negatives: live patches of benign bags and of threat bags away from any threat pixel; positives:
    # the threat patches (the evaluation's own rule); patches touching a threat below it are left out
    xs = [e["x"][e["live"]] for e in lb] + [e["x"][e["live"] & ~e["near"]] for e in lt] + [e["x"][e["tp"]] for e in lt]
    n_neg = sum(len(v) for v in xs[:len(lb) + len(lt)])
    x_train = torch.cat(xs)
    y_train = torch.cat([torch.zeros(n_neg), torch.ones(len(x_train) - n_neg)])
    print(f"training patches: {n_neg} negative, {len(x_train) - n_neg} positive", flush=True)
    calib, tb, tt = reading_sets(args, scorer, args.context)

    net = Discriminator(NetConfig(size=scorer.patch_size, channels=scorer.preprocess.channels, ndf=args.ndf))
    if x_train.shape[1] != scorer.preprocess.channels:  # context channels: a wider first convolution
        net.features[0] = torch.nn.Conv2d(x_train.shape[1], args.ndf, 4, 2, 1, bias=False)
        init_weights(net.features[0])
    opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.5, 0.999))
    pos_weight = torch.tensor(n_neg / max(1, len(x_train) - n_neg))
    g = torch.Generator().manual_seed(args.seed)
    rows = []
    for epoch in range(1, args.epochs + 1):
        train_epoch(net, opt, x_train, y_train, pos_weight, g)
        net.eval()
        score_bags(net, calib + tb + tt)
        for key in ("sup", "model"):
            if key == "model" and epoch > 1:
                continue
            name = "supervised D-architecture CNN" + (" + context" if args.context else "")
            rows.append(read_score(key, name if key == "sup" else f"model {args.model.name}",
                                   epoch if key == "sup" else None, calib, tb, tt, sigmoid=key == "sup"))
            print(json.dumps(rows[-1]), flush=True)
    # the same network on the patches it was trained on: if a type does not separate even there, its
    # patches overlap benign ones in what a 64-px patch shows (not a matter of too few examples)
    score_bags(net, lb + lt)
    b = np.concatenate([e["sup"][e["live"]] for e in lb])
    row = {"score": "supervised, on its own training patches", "epoch": args.epochs,
           "patch_auc_by_type": patch_auc_by_type(b, instance_scores(lt, "sup"))}
    rows.append(row)
    print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
