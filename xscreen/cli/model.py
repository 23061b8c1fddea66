"""``xscreen model info|calibrate|drift``: a model file's card and calibration; recalibrating it on
benign scans or on the bags operators cleared; the drift watch over the audit log."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from xscreen.config import score_form_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="model files: info, calibrate (recalibrate the alarm threshold), drift",
                       description="Inspect xscreen model files (.xsm), recalibrate their alarm threshold on "
                       "held-out benign scans or operators' cleared bags, and check the audit log for drift.")
    actions = p.add_subparsers(dest="model_action", metavar="ACTION", required=True)
    i = actions.add_parser("info", help="print a model's card, configuration and calibration")
    i.add_argument("file", type=Path)
    i.add_argument("--json", action="store_true", help="machine-readable JSON")
    c = actions.add_parser("calibrate", help="recalibrate the alarm threshold on held-out benign scans, screened "
                           "as operators screen them (at the screening stride), or on the bags operators cleared")
    c.add_argument("file", type=Path)
    c.add_argument("benign", nargs="*", help="held-out benign scan files or folders (not the training scans)")
    c.add_argument("--from-audit", metavar="AUDIT_DB", type=Path,
                   help="instead of scans: the bags operators cleared in this audit database (never a bag "
                   "marked suspect), as this model scored them; keeps the review level")
    c.add_argument("--out", type=Path, help="write the recalibrated model here (default: update FILE)")
    c.add_argument("--patch-far", type=float, default=0.01, help="target patch false-alarm rate (default 0.01)")
    c.add_argument("--scan-far", type=float, default=0.05, help="target scan false-alarm rate (default 0.05)")
    c.add_argument("--stride", type=int, default=32, help="screening stride to calibrate for (default 32)")
    c.add_argument("--lam", type=float, default=None, help="score weighting λ to store (default: keep the model's)")
    c.add_argument("--density", type=float, default=None, metavar="W",
                   help="weight of the density prior to store (0 = off, 1 = as much as the score at the benign "
                   "99th percentile); its scale is measured on these benign scans (default: keep the model's)")
    c.add_argument("--aggregation", choices=["max", "topk"], default="max")
    c.add_argument("--device", default="auto")
    s = actions.add_parser("sign", help="sign a model file with the site key that XSCREEN_MODEL_KEY names (a site "
                           "that sets it loads only files signed with it); only for files your analysts made")
    s.add_argument("file", type=Path)
    d = actions.add_parser("drift", help="compare the alarm and cleared-alarm rates in the audit log with the "
                           "model's target (exit 1 on drift)")
    d.add_argument("file", type=Path)
    d.add_argument("--audit", type=Path, default=None, help="audit database (default: the user's audit.sqlite)")
    d.add_argument("--all-versions", action="store_true", help="count rows under any threshold version")
    p.set_defaults(func=run)


def info_dict(path: Path) -> dict:
    from dataclasses import asdict

    from xscreen.checkpoint import read_meta, signature_status

    meta, checksum = read_meta(path)
    name = meta.card.name or path.stem
    return {"file": str(path), "model_id": f"{name}-{checksum[:12]}", "checksum": checksum,
            "signature": signature_status(path), **asdict(meta)}


def _net_options(net: dict) -> str:
    """The discriminator and skip options beyond the paper's, e.g. " (D spectral norm, D self-attention)";
    the generator is named before the widths already."""
    from xscreen.config import NetConfig, from_dict

    text = from_dict(NetConfig, {**net, "generator": "unet"}).options_text()
    return f" ({text})" if text else ""


def _text(d: dict) -> str:
    card, net, cal = d["card"], d["net"], d["calibration"]
    lines = [f"model      {d['model_id']}   ({d['file']})",
             f"checksum   sha256:{d['checksum']} (verified)",
             f"signature  {d['signature']}",
             f"created    {card['created']}   training {card['train_seconds']:.0f}s   seed {card['seed']}",
             f"input      {d['preprocess']['kind']}{' + material' if d['preprocess'].get('material') else ''} "
             f"({net['channels']} ch), patch {net['size']}px stride "
             f"{d['patch']['stride']}, a_max {d['preprocess']['a_max']}",
             f"network    {'UNet++ ' if net.get('generator') == 'unetpp' else ''}"
             f"ngf {net['ngf']} ndf {net['ndf']} nz {net['nz']}{_net_options(net)}; score λ {d['train']['lam']} "
             f"recon {d['train']['recon']}{_score_options(d['train'])}",
             f"score form {score_form_text(d['train'])}",
             f"data       {card['n_train_patches']} train patches / {card['n_train_scans']} scans, "
             f"{card['n_val_patches']} val patches / {card['n_val_scans']} scans",
             f"manifest   {card['data_manifest_sha256'] or '-'}"]
    lines += alarm_lines(d)
    if card["description"]:
        lines.append(f"about      {card['description']}")
    lines.append("versions   " + ", ".join(f"{k} {v}" for k, v in sorted(card["versions"].items())))
    if card["command"]:
        lines.append(f"command    {card['command']}")
    for key, value in card["evaluation"].items():
        lines.append(f"eval       {key}: {json.dumps(value, sort_keys=True)}")
    return "\n".join(lines)


def _score_options(t: dict) -> str:
    """The score options in use (issue 12), as they read in `xscreen train --help`."""
    out = ""
    if t.get("score_inpaint"):
        out += f", inpainting {t['score_inpaint']}x{t['score_inpaint']}"
    if t.get("recon_window"):
        out += f", window {t['recon_window']}"
    if t.get("density"):
        out += f", density prior {t['density']:g} (scale {t.get('density_scale', 0):.4g})"
    return out


def alarm_lines(d: dict) -> list[str]:
    """The alarm rule, its thresholds, achieved rate and interval, and the calibration history."""
    from xscreen.alarm import calibration_lines
    from xscreen.config import Calibration, from_dict

    cal = None if d["calibration"] is None else from_dict(Calibration, d["calibration"])
    # a legacy calibration's bag area is in patches of the stride it was screened at (32 unless noted)
    note = d["card"]["evaluation"].get("scan_calibration")
    stride = note.get("stride", 32) if isinstance(note, dict) else 32
    lines = calibration_lines(cal, stride if type(stride) is int and 0 < stride <= 1024 else 32)
    for h in d["card"].get("calibration_history", []):
        # the card's history is free-form data from the file: shown, never trusted to be numbers
        ci = h.get("interval_95")
        ci = ci if isinstance(ci, list) and len(ci) == 2 else None
        rate = (f"{h.get('n_alarmed')}/{h.get('n_bags')} alarmed (95 % {_num(ci[0], '.1%')}-{_num(ci[1], '.1%')})"
                if ci else f"{h.get('n_bags')} bags, achieved rate not recorded")
        lines.append(f"history    v{h.get('version')} {h.get('time', '')}: {h.get('source', '')}, {rate}, "
                     f"threshold {_num(h.get('threshold_at_ref_area', 0.0), '.6g')} at "
                     f"{_num(h.get('ref_area', 0.0), '.0f')} px^2")
    return lines


def _num(value: object, spec: str) -> str:
    """``value`` formatted as a number, or '?' when it is not one (a hand-edited card)."""
    if type(value) not in (int, float):
        return "?"
    try:
        return format(value, spec)
    except (ValueError, OverflowError):
        return "?"


def _calibrate_scans(args: argparse.Namespace):
    from tqdm import tqdm

    from xscreen.evaluate.recalibrate import CalibrationProgress, calibrate_on_scans

    bar, result = None, None
    for item in calibrate_on_scans(args.file, args.benign, patch_far=args.patch_far, scan_far=args.scan_far,
                                   stride=args.stride, lam=args.lam, aggregation=args.aggregation,
                                   device=args.device, density=args.density):
        if isinstance(item, CalibrationProgress):
            bar = bar or tqdm(total=item.total, desc="calibrating", unit="scan", file=sys.stderr)
            bar.update(1)
            if item.fault:
                print(f"error: {item.fault} (skipped)", file=sys.stderr)
        else:
            result = item
    if bar is not None:
        bar.close()
    return result


def calibrate_cmd(args: argparse.Namespace) -> int:
    from xscreen.alarm import achieved_text, count_warning
    from xscreen.audit import AuditError
    from xscreen.checkpoint import ModelError
    from xscreen.evaluate.recalibrate import calibrate_from_audit, write_calibration
    from xscreen.scan import ScanError

    if args.from_audit and args.density is not None:
        print("error: --density changes the score, so it needs benign scans, not --from-audit", file=sys.stderr)
        return 2
    if bool(args.benign) == bool(args.from_audit):
        print("error: give benign scan folders or --from-audit AUDIT_DB (one of the two)", file=sys.stderr)
        return 2
    try:
        result = (calibrate_from_audit(args.file, args.from_audit, scan_far=args.scan_far)
                  if args.from_audit else _calibrate_scans(args))
        checksum = write_calibration(args.file, result, args.out)
    except (ModelError, ScanError, AuditError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    c, target = result.calibration, args.out or args.file
    prior = f", density prior {result.density[0]:g} (scale {result.density[1]:.4g})" if result.density else ""
    print(f"{target}: λ {result.lam}{prior}, stride {result.stride}: review level {c.patch_threshold:.6g} "
          f"(patch FAR {c.patch_far:g}, {c.n_patches} patches); alarm threshold {c.scan_threshold:.6g} "
          f"at {c.ref_area:.0f} px^2 for {c.scan_far:.1%} of benign bags ({c.n_scans} scans); "
          f"new checksum {checksum[:12]}")
    print("achieved " + achieved_text(c))
    for reason in result.skipped[:10]:
        print(f"left out: {reason}", file=sys.stderr)
    warn = count_warning(c.n_scans, c.scan_far)
    if warn:
        print(f"warning: {warn}", file=sys.stderr)
    return 1 if result.failures else 0


def drift_cmd(args: argparse.Namespace) -> int:
    from xscreen.audit import AuditError, AuditLog
    from xscreen.checkpoint import ModelError, load_model
    from xscreen.drift import audit_drift
    from xscreen.pipeline import scoring_id

    try:
        loaded = load_model(args.file)
        meta, cal = loaded.meta, loaded.meta.calibration
        if cal is None:
            raise ValueError(f"{args.file}: not calibrated, so there is no target rate to watch")
        sid = scoring_id(loaded.weights_id, meta.train, meta.preprocess, cal.stride or 32)
        with AuditLog(args.audit, create=False) as log:
            report = audit_drift(log.rows(), cal.scan_far, "" if args.all_versions else f"{sid}.v{cal.version}")
    except (ModelError, AuditError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report.lines()))
    return 1 if report.drifted else 0


def sign_cmd(args: argparse.Namespace) -> int:
    from xscreen.checkpoint import ModelError, sign_model

    try:
        key = sign_model(args.file)
    except (ModelError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: signed with the site key {key}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.model_action == "calibrate":
        return calibrate_cmd(args)
    if args.model_action == "sign":
        return sign_cmd(args)
    if args.model_action == "drift":
        return drift_cmd(args)
    from xscreen.checkpoint import ModelError

    try:
        d = info_dict(args.file)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(d, indent=2, sort_keys=True) if args.json else _text(d))
    return 0
