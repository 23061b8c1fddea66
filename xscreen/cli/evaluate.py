"""``xscreen evaluate --model M --benign DIR --threat DIR [--masks DIR] --out DIR``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="measure a model on labelled benign and threat scans",
                       description="Patch-, scan- and pixel-level AUC and AP, detection per threat type "
                       "at the calibrated thresholds, ROC and score-histogram PNGs, JSON and Markdown.")
    p.add_argument("--model", required=True, type=Path, help="model file (.xsm)")
    p.add_argument("--benign", required=True, type=Path, help="folder of benign scans")
    p.add_argument("--threat", required=True, type=Path, help="folder of threat scans")
    p.add_argument("--masks", type=Path, default=None,
                   help="threat masks <stem>.png (default: THREAT/../masks where present)")
    p.add_argument("--out", required=True, type=Path, help="folder for results.json/.md and PNGs")
    p.add_argument("--stride", type=int, default=32, help="tiling stride (default 32)")
    p.add_argument("--overlap", type=float, default=0.1,
                   help="share of a patch a threat must cover to make it a threat patch (default 0.1)")
    p.add_argument("--top-k", type=int, default=5, help="k of the top-k mean scan score (default 5)")
    p.add_argument("--threshold", type=float, default=None, help="override the calibrated patch threshold")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--record-in-model", metavar="NAME", default=None,
                   help="also store the headline numbers in the model card's evaluation under NAME "
                   "(rewrites the model file, so its checksum and model id change)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _masks(args: argparse.Namespace) -> Path | None:
    if args.masks is not None:
        if not args.masks.is_dir():
            raise ValueError(f"{args.masks}: no such folder")
        return args.masks
    guess = args.threat.parent / "masks"
    if guess.is_dir():
        print(f"using masks from {guess}", file=sys.stderr)
        return guess
    return None


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from xscreen.checkpoint import ModelError
    from xscreen.config import ScreenConfig
    from xscreen.evaluate import EvalConfig, EvalResult, evaluate_model, write_outputs
    from xscreen.scan import ScanError

    try:
        for folder in (args.benign, args.threat):
            if not folder.is_dir():
                raise ValueError(f"{folder}: no such folder")
        screen = ScreenConfig(stride=args.stride, threshold=args.threshold, device=args.device,
                              precision=args.precision)
        cfg = EvalConfig(screen=screen, overlap=args.overlap, top_k=args.top_k)
        bar, result = None, None
        for item in evaluate_model(args.model, args.benign, args.threat, _masks(args), cfg):
            if isinstance(item, EvalResult):
                result = item
                continue
            bar = bar or tqdm(total=item.total, unit="scan", disable=args.quiet, file=sys.stderr)
            bar.update(1)
            if not item.ok:
                tqdm.write(f"warning: skipped {item.fault}", file=sys.stderr)
        if bar is not None:
            bar.close()
        assert result is not None
        write_outputs(result, args.out)
        if args.record_in_model:
            from xscreen.checkpoint import update_model_meta

            update_model_meta(args.model, evaluation={args.record_in_model: result.summary()})
    except (ModelError, ScanError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.to_markdown())
    print(f"wrote {', '.join(result.files)}")
    return 0
