"""``xscreen patches build SCANS... -o store.h5`` and ``xscreen patches info STORE``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xscreen.config import PatchConfig, Preprocess


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("patches", help="build or inspect the HDF5 patch store of benign scans",
                       description="Tile benign scans into a patch store for training; validation "
                       "patches come from held-out scans.")
    actions = p.add_subparsers(dest="patches_action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="tile benign scans (files or folders) into a store")
    b.add_argument("scans", nargs="+", metavar="SCANS", help="benign scan files or folders (searched recursively)")
    b.add_argument("-o", "--out", required=True, type=Path, help="store file to write (.h5)")
    b.add_argument("--size", type=int, default=64, help="patch size in pixels (default 64)")
    b.add_argument("--stride", type=int, default=None, help="tiling stride (default: size / 2)")
    b.add_argument("--max-per-scan", type=int, default=None, help="at most this many patches per scan (random)")
    b.add_argument("--val-fraction", type=float, default=0.2, help="share of scans held out (default 0.2)")
    b.add_argument("--air-threshold", type=float, default=0.95,
                   help="a patch with mean transmission at or above this is air (default 0.95)")
    b.add_argument("--no-skip-air", action="store_true", help="keep air patches")
    b.add_argument("--seed", type=int, default=0, help="seed of the scan split and patch sampling")
    b.add_argument("--kind", choices=("dual", "rgb", "gray"), default=None,
                   help="input kind of the store (default: the first scan's)")
    b.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    i = actions.add_parser("info", help="counts, configs and manifest hash of a store")
    i.add_argument("store", type=Path)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return _build(args) if args.patches_action == "build" else _info(args)


def _scan_files(items: list[str]) -> list[Path]:
    from xscreen.scan import ScanError, list_scans

    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = list_scans(item, recursive=True)
            if not found:
                raise ScanError(item, "folder holds no scan files")
            files += found
        else:
            files.append(item)
    return files


def _build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from xscreen.dataset import build_patch_store
    from xscreen.scan import ScanError

    try:
        stride = args.stride or max(1, args.size // 2)
        patch = PatchConfig(size=args.size, stride=stride, air_threshold=args.air_threshold,
                            skip_air=not args.no_skip_air)
        _check(args, patch)
        files = _scan_files(args.scans)
        pre = Preprocess(kind=args.kind) if args.kind else None
        bar = tqdm(total=len(files), unit="scan", disable=args.quiet, file=sys.stderr)
        for rep in build_patch_store(files, args.out, patch, pre, max_per_scan=args.max_per_scan,
                                     val_fraction=args.val_fraction, seed=args.seed):
            if not rep.done:
                bar.update(1)
                bar.set_postfix(train=rep.n_train, val=rep.n_val)
        bar.close()
    except (ScanError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {rep.n_train} train + {rep.n_val} val patches from {len(files)} scans; "
          f"manifest {rep.manifest_sha256}")
    return 0


def _check(args: argparse.Namespace, patch: PatchConfig) -> None:
    if patch.size < 8 or patch.stride < 1:
        raise ValueError(f"bad patch geometry: size {patch.size}, stride {patch.stride}")
    if args.max_per_scan is not None and args.max_per_scan < 1:
        raise ValueError("--max-per-scan must be at least 1")


def _info(args: argparse.Namespace) -> int:
    from xscreen.dataset import store_info

    try:
        info = store_info(args.store)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{info.path}: kind {info.kind}, patch {info.patch.size} stride {info.patch.stride}")
    print(f"train: {info.n_train} patches from {info.n_train_scans} scans")
    print(f"val:   {info.n_val} patches from {info.n_val_scans} scans")
    print(f"manifest sha256: {info.manifest_sha256}")
    return 0
