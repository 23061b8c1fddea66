"""``xscreen synth OUT --benign N --threat K --seed S [--format h5|tiff]``: synthetic dual-energy bags."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {value})")
    return value


def _width(text: str) -> int:
    value = _count(text)
    if not 64 <= value <= 4000:
        raise argparse.ArgumentTypeError(f"must be within 64..4000 px (got {value})")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synth", help="write synthetic dual-energy bags (benign and with threats) with labels, boxes, masks",
        description="Physically simulated dual-energy X-ray bags. Writes OUT/benign/, OUT/threat/, "
        "OUT/labels.csv, OUT/boxes/<stem>.json and OUT/masks/<stem>.png. Same seed, same bags.")
    p.add_argument("out", help="output folder (created if absent)")
    p.add_argument("--benign", type=_count, default=0, help="number of threat-free bags (default 0)")
    p.add_argument("--threat", type=_count, default=0, help="number of bags with 1-2 threats (default 0)")
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--format", choices=("h5", "tiff"), default="h5", help="scan format (default h5)")
    p.add_argument("--width", type=_width, default=None, help="bag image width in px (default: random 500-1000)")
    p.add_argument("--preview", action="store_true", help="also write pseudo-colour PNGs to OUT/preview/")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from xscreen.scan import ScanError
    from xscreen.synth import write_dataset

    out = Path(args.out)
    if args.benign + args.threat == 0:
        print("error: nothing to write: give --benign N and/or --threat K (at least one bag)", file=sys.stderr)
        return 2
    if out.exists() and not out.is_dir():
        print(f"error: {out}: exists and is not a folder", file=sys.stderr)
        return 2
    total = args.benign + args.threat
    try:
        with tqdm(total=total, unit="bag", desc="synth", file=sys.stderr) as bar:
            for step in write_dataset(out, args.benign, args.threat, args.seed, fmt=args.format, width=args.width):
                if args.preview:
                    _preview(step.path, out / "preview" / f"{step.stem}.png")
                bar.update(1)
    except OSError as exc:  # unwritable folder, disk full, a file where a folder should be
        print(f"error: {exc.filename or out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except (ScanError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {total} bags ({args.benign} benign, {args.threat} threat) to {out}")
    return 0


def _preview(scan_path: Path, png: Path) -> None:
    import cv2

    from xscreen.atomic import atomic_write_bytes
    from xscreen.materials import render
    from xscreen.scan import load_scan

    rgb = render(load_scan(scan_path), "pseudo")
    ok, data = cv2.imencode(".png", rgb[:, :, ::-1])
    if ok:
        atomic_write_bytes(png, data.tobytes())
