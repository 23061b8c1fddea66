"""``xscreen model info FILE [--json]``: the model card, configs and calibration of a model file."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="inspect model files", description="Inspect xscreen model files (.xsm).")
    actions = p.add_subparsers(dest="model_action", metavar="ACTION", required=True)
    i = actions.add_parser("info", help="print a model's card, configuration and calibration")
    i.add_argument("file", type=Path)
    i.add_argument("--json", action="store_true", help="machine-readable JSON")
    c = actions.add_parser("calibrate", help="recalibrate thresholds on held-out benign scans, screened as "
                           "operators screen them (at the screening stride)")
    c.add_argument("file", type=Path)
    c.add_argument("benign", nargs="+", help="held-out benign scan files or folders (not the training scans)")
    c.add_argument("--patch-far", type=float, default=0.01, help="target patch false-alarm rate (default 0.01)")
    c.add_argument("--scan-far", type=float, default=0.05, help="target scan false-alarm rate (default 0.05)")
    c.add_argument("--stride", type=int, default=32, help="screening stride to calibrate for (default 32)")
    c.add_argument("--lam", type=float, default=None, help="score weighting λ to store (default: keep the model's)")
    c.add_argument("--aggregation", choices=["max", "topk"], default="max")
    c.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def info_dict(path: Path) -> dict:
    from dataclasses import asdict

    from xscreen.checkpoint import read_meta

    meta, checksum = read_meta(path)
    name = meta.card.name or path.stem
    return {"file": str(path), "model_id": f"{name}-{checksum[:12]}", "checksum": checksum, **asdict(meta)}


def _text(d: dict) -> str:
    card, net, cal = d["card"], d["net"], d["calibration"]
    lines = [f"model      {d['model_id']}   ({d['file']})",
             f"checksum   sha256:{d['checksum']} (verified)",
             f"created    {card['created']}   training {card['train_seconds']:.0f}s   seed {card['seed']}",
             f"input      {d['preprocess']['kind']} ({net['channels']} ch), patch {net['size']}px stride "
             f"{d['patch']['stride']}, a_max {d['preprocess']['a_max']}",
             f"network    ngf {net['ngf']} ndf {net['ndf']} nz {net['nz']}; score λ {d['train']['lam']} "
             f"recon {d['train']['recon']}",
             f"data       {card['n_train_patches']} train patches / {card['n_train_scans']} scans, "
             f"{card['n_val_patches']} val patches / {card['n_val_scans']} scans",
             f"manifest   {card['data_manifest_sha256'] or '-'}"]
    if cal:
        lines.append(f"threshold  patch {cal['patch_threshold']:.6g} (FAR {cal['patch_far']:g}), scan "
                     f"{cal['scan_threshold']:.6g} (FAR {cal['scan_far']:g}, {cal['scan_aggregation']})")
    else:
        lines.append("threshold  not calibrated")
    if card["description"]:
        lines.append(f"about      {card['description']}")
    lines.append("versions   " + ", ".join(f"{k} {v}" for k, v in sorted(card["versions"].items())))
    if card["command"]:
        lines.append(f"command    {card['command']}")
    for key, value in card["evaluation"].items():
        lines.append(f"eval       {key}: {json.dumps(value, sort_keys=True)}")
    return "\n".join(lines)


def calibrate_cmd(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from xscreen.checkpoint import ModelError
    from xscreen.evaluate.recalibrate import CalibrationProgress, calibrate_on_scans, write_calibration
    from xscreen.scan import ScanError

    try:
        bar, result = None, None
        for item in calibrate_on_scans(args.file, args.benign, patch_far=args.patch_far, scan_far=args.scan_far,
                                       stride=args.stride, lam=args.lam, aggregation=args.aggregation,
                                       device=args.device):
            if isinstance(item, CalibrationProgress):
                bar = bar or tqdm(total=item.total, desc="calibrating", unit="scan", file=sys.stderr)
                bar.update(1)
                if item.fault:
                    print(f"error: {item.fault} (skipped)", file=sys.stderr)
            else:
                result = item
        if bar is not None:
            bar.close()
        checksum = write_calibration(args.file, result)
    except (ModelError, ScanError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    c = result.calibration
    print(f"{args.file}: λ {result.lam}, stride {result.stride}: patch threshold {c.patch_threshold:.6g} "
          f"(FAR {c.patch_far:g}, {c.n_patches} patches), scan threshold {c.scan_threshold:.6g} "
          f"(FAR {c.scan_far:g}, {c.n_scans} scans); new checksum {checksum[:12]}")
    return 1 if result.failures else 0


def run(args: argparse.Namespace) -> int:
    if args.model_action == "calibrate":
        return calibrate_cmd(args)
    from xscreen.checkpoint import ModelError

    try:
        d = info_dict(args.file)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(d, indent=2, sort_keys=True) if args.json else _text(d))
    return 0
