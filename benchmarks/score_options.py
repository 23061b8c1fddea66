"""Score options on a trained dual-energy model: benign-only choice, then the synthetic test set.

For each score setting (``score_inpaint`` k, ``recon_window`` w) a copy of MODEL is written with it,
recalibrated on held-out benign bags at the operating stride (``xscreen model calibrate``), and
scored on the test set (patch / pixel / scan AUC, per-type instance hit rate, benchmarks/_model_table.py).
The *choice* among settings uses only the benign calibration bags: the AUC of their patches with a
generic object superimposed (train/selection.py ``inserted``) against the same patches untouched.

    python benchmarks/score_options.py models/default.xsm --calib data/calib/benign \
        --test data/test --settings 0:0 2:16 --out /tmp/score_options
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from xscreen.checkpoint import load_model, update_model_meta
from xscreen.cli import main as cli
from xscreen.patches import air_value, tile
from xscreen.preprocess import model_input
from xscreen.scan import list_scans, load_scan
from xscreen.scoring import Scorer
from xscreen.train.selection import InsertedDataset, anomaly_auc

from _model_table import row


def benign_patches(folder: Path, size: int, pre, per_bag: int = 64, seed: int = 0) -> torch.Tensor:
    """Up to ``per_bag`` random non-air patches (N, C, S, S) of every bag in ``folder``."""
    rng = np.random.default_rng(seed)
    out = []
    for path in list_scans(folder):
        x = torch.from_numpy(model_input(load_scan(path), pre))
        air = air_value(pre)  # -1 for dual-energy input, +1 (bright) for rgb / gray
        p = tile(x, size, size // 2, pad_value=air).view.reshape(-1, x.shape[0], size, size)
        p = p[(p.mean((1, 2, 3)) - air).abs() > 0.1]  # not air
        out.append(p[np.sort(rng.permutation(len(p))[:per_bag])])
    return torch.cat(out).contiguous()


def inserted_auc(model: Path, patches: torch.Tensor) -> float:
    scorer = Scorer(model, device="cpu")
    pre = scorer.preprocess
    bad = torch.stack(list(InsertedDataset(TensorDataset(patches), pre.kind, pre.a_max, seed=0)))
    clean = scorer.score(patches, keep_reconstructions=False).scores.numpy()
    return anomaly_auc(clean, scorer.score(bad, keep_reconstructions=False).scores.numpy())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--calib", type=Path, required=True, help="held-out benign bags")
    ap.add_argument("--test", type=Path, required=True, help="folder with benign/ threat/ masks/")
    ap.add_argument("--settings", nargs="+", default=["0:0", "2:16"], help="k:w pairs")
    ap.add_argument("--out", type=Path, default=Path("/tmp/score_options"))
    ap.add_argument("--lams", type=float, nargs="+", default=None,
                    help="score weightings to report (default: the model's λ); calibration uses the model's")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = load_model(args.model)
    patches = benign_patches(args.calib, base.meta.net.size, base.meta.preprocess)
    rows = []
    for setting in args.settings:
        k, w = (int(v) for v in setting.split(":"))
        path = args.out / f"{args.model.stem}_inpaint{k}_window{w}.xsm"
        shutil.copyfile(args.model, path)
        update_model_meta(path, train=dataclasses.replace(base.meta.train, score_inpaint=k, recon_window=w))
        criterion = inserted_auc(path, patches)
        assert cli(["model", "calibrate", str(path), str(args.calib), "--stride", "32"]) == 0
        r = row(path, args.test / "benign", args.test / "threat", args.lams or [float(base.meta.train.lam)])
        r.update(setting=setting, benign_inserted_auc=round(criterion, 4))
        rows.append(r)
        print(json.dumps(r), flush=True)
    (args.out / "score_options.json").write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
