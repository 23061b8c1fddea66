"""``xscreen known-threat add MODEL LIBRARY --benign DIR -o OUT`` and ``xscreen known-threat info MODEL``.

An option (issue 29 Part 2): the known-threat head is trained on TIP images of the site's benign bags
and fused with the anomaly score; the new model is uncalibrated (``xscreen calibrate`` next), the
input model keeps the anomaly score alone.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("known-threat", help="add a known-threat head (trained on TIP images) to a model",
                       description="Known-threat score: a small CNN trained on benign patches against FTIs "
                       "projected into benign bags, fused with the anomaly score by benign tail probabilities.")
    s = p.add_subparsers(dest="kt_command", metavar="ACTION", required=True)
    a = s.add_parser("add", help="train the head and write a new model file")
    a.add_argument("model", type=Path, help="anomaly model (.xsm)")
    a.add_argument("library", type=Path, help="TIP library folder (xscreen tip build)")
    a.add_argument("--benign", required=True, type=Path, help="benign bags of the site (3 or more)")
    a.add_argument("-o", "--out", required=True, type=Path, help="new model file")
    a.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    a.add_argument("--per-bag", type=int, default=4, help="TIP images per benign bag (default 4)")
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=run_add)
    i = s.add_parser("info", help="the score form and the TIP manifest (FTI ids) of a model")
    i.add_argument("model", type=Path)
    i.add_argument("--ids", type=Path, default=None, help="also write the FTI ids (JSON, for evaluate --exclude-ids)")
    i.set_defaults(func=run_info)


def run_add(args: argparse.Namespace) -> int:
    from xscreen.checkpoint import ModelError
    from xscreen.known_threat.build import add_known_threat
    from xscreen.known_threat.head import HeadConfig
    from xscreen.scan import ScanError
    from xscreen.tip import TipError

    try:
        if args.out.resolve() == args.model.resolve():
            raise ValueError(f"{args.out}: write the new model beside the old one (the anomaly-only model stays)")
        if args.steps < 1 or args.per_bag < 1:
            raise ValueError("--steps and --per-bag must be at least 1")
        rep = add_known_threat(args.model, args.library, args.benign, args.out,
                               HeadConfig(steps=args.steps, per_bag=args.per_bag, seed=args.seed))
    except (ModelError, ScanError, TipError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {rep.out}: head trained on {rep.n_positive} TIP patches of {rep.n_ftis} FTIs and "
          f"{rep.n_benign} benign patches ({rep.n_train_bags} bags), tails fitted on {rep.n_tail_bags} other bags")
    print(f"the model is uncalibrated: run `xscreen model calibrate {rep.out} BENIGN` on the site's benign bags")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from xscreen.atomic import atomic_write_text
    from xscreen.checkpoint import ModelError, read_meta
    from xscreen.known_threat.build import describe

    try:
        meta, _ = read_meta(args.model)
        print(f"score: {describe(meta)}")
        if args.ids is not None:
            ids = meta.known_threat.fti_ids if meta.known_threat is not None else []
            atomic_write_text(args.ids, json.dumps({"fti_ids": ids}, indent=1))
            print(f"wrote {len(ids)} FTI id(s) to {args.ids}")
    except (ModelError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
