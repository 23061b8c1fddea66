"""``xscreen evaluate --tip LIBRARY --benign SITE_BENIGN --model M --out DIR``: the site acceptance test
(evaluate/tip_accept.py), run from ``cli/evaluate.py`` when ``--tip`` is given."""
from __future__ import annotations

import argparse
import sys


def _excluded(args: argparse.Namespace) -> frozenset[str]:
    """--exclude-ids plus the FTIs the model's known-threat head trained on (its manifest)."""
    from xscreen.evaluate.tip_accept import read_id_file
    from xscreen.known_threat import trained_ids

    ids = read_id_file(args.exclude_ids) if args.exclude_ids is not None else frozenset()
    return ids | trained_ids(args.model)


def run_tip(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from xscreen.checkpoint import ModelError
    from xscreen.config import ScreenConfig
    from xscreen.evaluate.tip_accept import TipAcceptConfig, run_tip_accept
    from xscreen.scan import ScanError
    from xscreen.tip import TipError

    try:
        if args.threat is not None:
            raise ValueError("--tip and --threat are two tests: give one")
        if not args.benign.is_dir():
            raise ValueError(f"{args.benign}: no such folder")
        if args.per_bag < 1:
            raise ValueError(f"--per-bag {args.per_bag}: give 1 or more")
        screen = ScreenConfig(stride=args.stride, threshold=args.threshold, device=args.device,
                              precision=args.precision)
        cfg = TipAcceptConfig(screen=screen, per_bag=args.per_bag, seed=args.seed, overlap=args.overlap,
                              exclude_ids=_excluded(args))
        bar = tqdm(unit="bag", disable=args.quiet, file=sys.stderr)

        def progress(item) -> None:
            bar.total = item.total
            bar.update(1)
            if not item.ok:
                tqdm.write(f"warning: skipped {item.fault}", file=sys.stderr)

        result = run_tip_accept(args.model, args.tip, args.benign, cfg, out=args.out, on_progress=progress)
        bar.close()
    except (ModelError, ScanError, TipError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(result.to_markdown())
    print(f"wrote {', '.join(result.files)}")
    return 0
