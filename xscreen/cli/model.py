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


def run(args: argparse.Namespace) -> int:
    from xscreen.checkpoint import ModelError

    try:
        d = info_dict(args.file)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(d, indent=2, sort_keys=True) if args.json else _text(d))
    return 0
