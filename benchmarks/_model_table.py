"""Compare model files on one synthetic test set: AUCs (for several score weightings λ), CPU speed, size.

    python benchmarks/model_table.py M1.xsm [M2.xsm ...] --benign TEST/benign --threat TEST/threat \
        [--lams 0.9,1.0,0.0] [--out DIR]

λ = 0.9 is the paper's score (and what calibration used); λ = 1 is reconstruction only, λ = 0 latent
only. Detection and false-alarm rates are given at the calibrated thresholds for the model's own λ.
Speed: patches/s of ``Scorer.score`` on real patches from the test bags, best of 3, in this process.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from xscreen.checkpoint import load_model
from xscreen.evaluate import EvalResult, run_evaluation
from xscreen.network import count_parameters
from xscreen.patches import tile
from xscreen.preprocess import model_input
from xscreen.scan import list_scans, load_scan
from xscreen.scoring import Scorer


def speed(scorer: Scorer, threat_dir: Path, n: int = 512) -> float:
    scan = load_scan(list_scans(threat_dir)[0])
    x = torch.from_numpy(model_input(scan, scorer.preprocess))
    size = scorer.patch_size
    patches = tile(x, size, 32, pad_value=-1.0).view.reshape(-1, x.shape[0], size, size)[:n].contiguous()
    scorer.score(patches[:64], keep_reconstructions=False)  # warm-up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        scorer.score(patches, keep_reconstructions=False)
        best = min(best, time.perf_counter() - t0)
    return len(patches) / best


def evaluate(scorer: Scorer, benign: Path, threat: Path) -> EvalResult:
    masks = threat.parent / "masks"
    return run_evaluation(scorer, benign, threat, masks if masks.is_dir() else None)


def row(path: Path, benign: Path, threat: Path, lams: list[float]) -> dict:
    loaded = load_model(path)
    scorer = Scorer(loaded)
    own_lam = scorer.lam
    out = {"model": path.name, "model_id": loaded.model_id, "ngf": loaded.meta.net.ngf,
           "size_mb": round(path.stat().st_size / 2**20, 1),
           "params_m": round((count_parameters(loaded.generator) + count_parameters(loaded.discriminator)) / 1e6, 2),
           "epochs": loaded.meta.card.evaluation.get("training", {}).get("epochs_run"),
           "train_minutes": round(loaded.meta.card.train_seconds / 60, 1),
           "patches_per_s": round(speed(scorer, threat), 1), "by_lambda": {}}
    for lam in lams:
        scorer.lam = lam
        r = evaluate(scorer, benign, threat)
        entry = {lv.level: (None if lv.auc is None else round(lv.auc, 3)) for lv in r.levels}
        if lam == own_lam:
            entry.update(threat_scan_detection=r.threat_scan_detection, benign_scan_far=r.benign_scan_far,
                         benign_patch_far=r.benign_patch_far,
                         types={t.type: t.instance_rate for t in r.types})
        out["by_lambda"][str(lam)] = entry
    scorer.lam = own_lam
    return out


def markdown(rows: list[dict]) -> str:
    lines = ["| model | ngf | file MB | params M | CPU patches/s | λ | patch AUC | scan AUC (max) | scan AUC (top-5) "
             "| pixel AUC | threat bags alarmed | benign bags alarmed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for lam, e in r["by_lambda"].items():
            det = e.get("threat_scan_detection")
            far = e.get("benign_scan_far")
            top = next((v for k, v in e.items() if k.startswith("scan_top")), None)
            lines.append(f"| {r['model']} | {r['ngf']} | {r['size_mb']} | {r['params_m']} | {r['patches_per_s']} | "
                         f"{lam} | {e.get('patch')} | {e.get('scan_max')} | {top} | {e.get('pixel')} | "
                         f"{'' if det is None else f'{det:.0%}'} | {'' if far is None else f'{far:.0%}'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--benign", type=Path, required=True)
    ap.add_argument("--threat", type=Path, required=True)
    ap.add_argument("--lams", default="0.9,1.0,0.0")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    lams = [float(v) for v in args.lams.split(",")]
    rows = [row(p, args.benign, args.threat, lams) for p in args.models]
    table = markdown(rows)
    print(table)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "model_table.json").write_text(json.dumps(rows, indent=2, default=str))
        (args.out / "model_table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
