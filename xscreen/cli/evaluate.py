"""``xscreen evaluate --model M --benign DIR --threat DIR [--masks|--boxes|--labels ...] --out DIR``.

The annotations are read and matched to the threat scans first: what matched is printed, and a
source that matches none of them stops the run (it would otherwise yield scan-level numbers only).
"""
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
    p.add_argument("--threat", type=Path, default=None, help="folder of threat scans (not with --tip)")
    p.add_argument("--tip", type=Path, default=None, metavar="LIBRARY",
                   help="site acceptance test: project FTIs of this TIP library into the --benign bags and "
                   "report per-category detection at the calibrated alarm rate, with intervals (no --threat)")
    p.add_argument("--per-bag", type=int, default=1, help="with --tip: TIP images per benign bag (default 1)")
    p.add_argument("--seed", type=int, default=0, help="with --tip: seed of the FTI draw and placement")
    p.add_argument("--exclude-ids", type=Path, default=None,
                   help="with --tip: FTI ids to keep out (one a line, a JSON list, or a manifest with "
                   "'fti_ids'); the FTIs a model's known-threat head trained on are kept out anyway")
    p.add_argument("--masks", type=Path, default=None,
                   help="folder of threat masks <stem>.png or <stem>_mask.png (default: THREAT/../masks "
                   "where present)")
    p.add_argument("--boxes", type=Path, default=None,
                   help="threat boxes: a folder of per-image <stem>.json / Pascal VOC <stem>.xml / YOLO "
                   "<stem>.txt, or one COCO JSON or box JSON for the set (default: THREAT/../boxes where "
                   "present); used as coarse masks when no masks are given")
    p.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh",
                   help="corner order of JSON boxes whose file does not declare a 'box_format' "
                   "(default xywh, as xscreen synth and COCO write; VOC and YOLO are read by their own rules)")
    p.add_argument("--labels", type=Path, default=None,
                   help="labels CSV: a stem column (stem, file_stem, filename, image, ...) and threat types "
                   "(threat_types, type, class, ...) (default: THREAT/../labels.csv where present)")
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
    return guess if guess.is_dir() else None


def load_truth(args: argparse.Namespace, threat_paths: list[Path]):
    """The annotations, with a report of what they match; ValueError when a source in use matches
    none of the threat scans (evaluating then would report only scan-level numbers, quietly)."""
    from xscreen.evaluate.annotations import discover, load_annotations

    boxes, labels = discover(args.threat, args.boxes, args.labels)
    ann = load_annotations(_masks(args), boxes, labels, args.box_format)
    for source, what in ann.sources.items():
        print(f"using {source} from {what}", file=sys.stderr)
    for problem in ann.problems:
        print(f"warning: skipped annotation {problem}", file=sys.stderr)
    match = ann.match(threat_paths)
    if ann.sources:
        print(match.summary(), file=sys.stderr)
    dead = [s for s, n in match.per_source.items() if n == 0]
    if dead:
        raise ValueError("; ".join(f"{s} from {ann.sources[s]} match none of the {match.n_scans} threat scans "
                                   f"(scans: {_sample([p.stem for p in threat_paths])}; {s}: "
                                   f"{_sample(ann.names(s))})" for s in dead))
    if match.unmatched and ann.sources:
        print(f"warning: {len(match.unmatched)} threat scan(s) have no annotation: {_sample(match.unmatched)}",
              file=sys.stderr)
    return ann


def _sample(names: list[str] | tuple[str, ...], n: int = 3) -> str:
    if not names:
        return "(none)"
    return ", ".join(names[:n]) + (f" ... ({len(names)} in all)" if len(names) > n else "")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from xscreen.checkpoint import ModelError
    from xscreen.config import ScreenConfig
    from xscreen.evaluate import EvalConfig, EvalResult, evaluate_model, write_outputs
    from xscreen.pipeline import collect_paths
    from xscreen.scan import ScanError

    if args.tip is not None:
        from xscreen.cli.evaluate_tip import run_tip

        return run_tip(args)
    if args.threat is None:
        print("error: give --threat (labelled threat scans) or --tip LIBRARY (the site acceptance test)",
              file=sys.stderr)
        return 2
    try:
        for folder in (args.benign, args.threat):
            if not folder.is_dir():
                raise ValueError(f"{folder}: no such folder")
        screen = ScreenConfig(stride=args.stride, threshold=args.threshold, device=args.device,
                              precision=args.precision)
        cfg = EvalConfig(screen=screen, overlap=args.overlap, top_k=args.top_k)
        truth = load_truth(args, collect_paths([args.threat]))
        bar, result = None, None
        for item in evaluate_model(args.model, args.benign, args.threat, cfg=cfg, annotations=truth):
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
        outside = result.settings.get("boxes_outside_scan", 0)
        if outside:
            print(f"warning: {outside} box(es) reach well past their scan's edge: if the boxes are "
                  f"[x0, y0, x1, y1], give --box-format xyxy (read as {args.box_format})", file=sys.stderr)
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
