"""Does the benign-only selection criterion track detection? (issue 12)

For every evaluated model (a ``score_options.py`` output folder: the recalibrated model copy and its
``score_options.json`` with the synthetic test numbers), the inserted-object AUC on held-out benign
patches is computed twice: with the criterion's faint objects (transmission 0.3-0.8, what
``--selection inserted`` uses) and with the same shapes dense (transmission 0.02-0.3: a few mm of
steel, a blade or a gun part). Then the rank correlation (Spearman) of each with the test set's patch
AUC and knife / IED hit rates, over all models.

Exploratory: the dense variant was written *after* the test set had shown that the faint criterion
prefers scores that find IEDs over scores that find knives, so its agreement here is not a
benign-only selection; it says whether such a criterion is worth fixing in advance.

    python benchmarks/criterion_check.py /tmp/score_options/* /tmp/so_* --calib CALIB/benign
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from xscreen.checkpoint import load_model
from xscreen.loss import patch_density
from xscreen.scoring import Scorer
from xscreen.train.selection import InsertedDataset, anomaly_auc

from score_options import benign_patches
from synthetic_baselines import darkness_matched_auc

RANGES = {"faint (criterion)": (0.3, 0.8), "dense": (0.02, 0.3)}


def spearman(a, b) -> float:
    ra, rb = (np.argsort(np.argsort(v)).astype(float) for v in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="score_options.py output folders")
    ap.add_argument("--calib", type=Path, required=True, help="held-out benign bags")
    ap.add_argument("--per-bag", type=int, default=32)
    ap.add_argument("--out", type=Path, default=Path("/tmp/criterion_check.json"))
    ap.add_argument("--resume", action="store_true", help="keep the rows already in --out")
    ap.add_argument("--variants", action="store_true",
                    help="also each range darkness-matched and as the share of inserted patches over the clean q99")
    args = ap.parse_args()
    rows, cache = [], {}
    done = {r["model"]: r for r in json.loads(args.out.read_text())} if args.resume and args.out.is_file() else {}
    for d in args.dirs:
        if not (d / "score_options.json").is_file():
            continue
        for r in json.loads((d / "score_options.json").read_text()):
            model = d / r["model"]
            if f"{d.name}/{r['model']}" in done:
                rows.append(done[f"{d.name}/{r['model']}"])
                continue
            meta = load_model(model).meta
            key = (meta.net.size, meta.preprocess)
            if key not in cache:
                cache[key] = benign_patches(args.calib, meta.net.size, meta.preprocess, per_bag=args.per_bag)
            patches = cache[key]
            scorer = Scorer(model, device="cpu")
            clean = scorer.score(patches, keep_reconstructions=False).scores.numpy()
            crit = {}
            kind = meta.preprocess.kind  # darkness: mean a / a_max of the energy channels (the density prior's)
            clean_dark = patch_density(patches, kind).double().numpy() if args.variants else None
            for name, tr in RANGES.items():
                bad = torch.stack(list(InsertedDataset(TensorDataset(patches), meta.preprocess.kind,
                                                       meta.preprocess.a_max, seed=0, t_range=tr)))
                s_bad = scorer.score(bad, keep_reconstructions=False).scores.numpy()
                crit[name] = round(anomaly_auc(clean, s_bad), 4)
                if args.variants:  # exploratory forms of the same inserted objects (session 7)
                    crit[f"{name}, darkness-matched"] = round(darkness_matched_auc(
                        clean, clean_dark, s_bad, patch_density(bad, kind).double().numpy())[0], 4)
                    crit[f"{name}, share over clean q99"] = round(float(np.mean(s_bad > np.quantile(clean, 0.99))), 4)
            # the model's own λ: the one it was calibrated and scored with (the only entry with hit rates)
            test = next(v for v in r["by_lambda"].values() if "types" in v)
            row = {"model": f"{d.name}/{r['model']}", "setting": r.get("setting"), **crit,
                   "test_patch_auc": test["patch"], "knife": test["types"].get("knife"), "ied": test["types"].get("ied")}
            rows.append(row)
            args.out.write_text(json.dumps(rows, indent=1))
            print(json.dumps(row), flush=True)
    args.out.write_text(json.dumps(rows, indent=1))
    for c in [k for k in rows[0] if k.startswith(tuple(RANGES))]:
        cs = [r[c] for r in rows]
        print(f"{c}: Spearman with test patch AUC {spearman(cs, [r['test_patch_auc'] for r in rows]):+.2f}, "
              f"knife hits {spearman(cs, [r['knife'] for r in rows]):+.2f}, IED hits "
              f"{spearman(cs, [r['ied'] for r in rows]):+.2f} over {len(rows)} models")


if __name__ == "__main__":
    main()
