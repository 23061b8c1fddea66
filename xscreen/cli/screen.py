"""``xscreen screen PATH... --model M --out DIR``: batch screening of files and folders.

Per scan: ``<out>/<name>.json`` (summary, regions) and ``<out>/<name>.png`` (overlay), ``<name>`` the
scan id made safe (``paths.output_stem``: the id comes from inside the file and stays data); across scans:
``<out>/summary.csv`` (``summary-<i>of<n>.csv`` for a shard, so job-array tasks sharing one output
folder never overwrite each other). Bad files are reported (``error: <file>: <fault>``) and skipped;
the exit code is 1 when any failed, 2 when nothing could start (no model, no scan files). All writes
are atomic.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from xscreen.atomic import atomic_write_bytes, atomic_write_text
from xscreen.config import ScreenConfig

CSV_FIELDS = ("scan_id", "path", "output", "status", "alarm", "scan_score", "scan_rel", "scan_threshold",
              "threshold", "n_regions", "n_alarm_regions", "top_region_rel", "area", "threshold_version",
              "n_patches", "n_scored", "n_evaluated", "width",
              "height", "kind", "sha256", "model_id", "seconds", "error")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("screen", help="screen scan files/folders with a model (batch, shardable)",
                       description="Screen scans (files or folders, recursive): per-scan JSON and "
                       "overlay PNG, and a summary CSV, into --out.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="scan files or folders")
    p.add_argument("--model", help="model file (.xsm); default: the shipped default model")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--stride", type=int, default=32, help="patch stride in pixels, 8-64 (default 32)")
    p.add_argument("--threshold", type=float, help="raw review level: regions from here (default: the model's)")
    p.add_argument("--scan-threshold", type=float,
                   help="raw alarm threshold for every bag, not adjusted for area (default: calibrated per area)")
    p.add_argument("--no-attention", action="store_true",
                   help="show only regions that reach the alarm threshold (no attention regions)")
    p.add_argument("--air-threshold", type=float, default=0.95,
                   help="patches with mean transmission >= this are air and not scored (default 0.95)")
    p.add_argument("--no-air-skip", action="store_true", help="score air patches too")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    p.add_argument("--batch-size", type=int, help="patches per forward pass (default: sized to the device)")
    p.add_argument("--threads", type=int,
                   help="CPU threads for torch (default: all cores; 1 per job when a node runs many)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (one-off 1-3 min; faster for large batches of scans)")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="scoring engine: torch (default) or onnxruntime on the CPU (needs xscreen[onnx])")
    p.add_argument("--cascade", nargs="?", const="auto", default=0.0, metavar="FRACTION",
                   help="coarse-to-fine screening: score patches at the patch size's stride first, then "
                   "at --stride only the patches estimated above FRACTION of the review level and their "
                   "neighbours (default off; given without a value 'auto': 0.8 where the estimate from the "
                   "coarse residual applies, i.e. λ 1 scores, else 0.5). Same regions and alarms in our "
                   "checks, far fewer patches scored; the heat map away from them is coarse. Not for "
                   "evaluation or calibration")
    p.add_argument("--shard", default="0/1", help="i/n: screen only the i-th of n disjoint parts")
    p.add_argument("--overlay", default="fill", choices=("fill", "contour", "none"))
    p.add_argument("--report", default="", help="also write reports: comma list of html,pdf,csv,json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xscreen.pipeline import collect_paths, parse_shard, resolve_thresholds
    from xscreen.scan import ScanError

    try:
        shard = parse_shard(args.shard)
        files = collect_paths(args.paths, shard)
        # an empty shard of a real archive is normal in a job array; an empty input is a mistake
        if not files and not collect_paths(args.paths):
            raise _Fail(f"no scan files found in {', '.join(args.paths)}")
        cfg = ScreenConfig(stride=args.stride, air_threshold=args.air_threshold,
                           skip_air=not args.no_air_skip, threshold=args.threshold,
                           scan_threshold=args.scan_threshold, device=args.device,
                           attention=not args.no_attention,
                           precision=args.precision, batch_size=args.batch_size,
                           cascade=args.cascade, maps=bool(args.report))
        if cfg.cascade:
            from xscreen.cascade import resolve_fraction

            resolve_fraction(cfg.cascade, True)  # 'auto' or a fraction in range, before any file is read
        scorer = _scorer(args, cfg)
        resolve_thresholds(scorer, cfg)
        if not 8 <= cfg.stride <= min(64, scorer.patch_size):
            raise ValueError(f"--stride {cfg.stride} out of range [8, {min(64, scorer.patch_size)}]")
    except (_Fail, ScanError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {args.model or 'model'}: {exc}", file=sys.stderr)
        return 2
    return _screen_all(args, scorer, cfg, shard, files)


class _Fail(Exception):
    """A setup fault already phrased as '<file>: <fault>'."""


def _scorer(args: argparse.Namespace, cfg: ScreenConfig):
    from xscreen.checkpoint import ModelError
    from xscreen.paths import default_model
    from xscreen.scoring import Scorer

    if args.threads:
        import torch

        # on an oversubscribed node every parallel op waits for a descheduled thread
        # (measured 15x slower for a small model, benchmarks/RESULTS.md)
        torch.set_num_threads(max(1, args.threads))
    model = args.model or default_model()
    if model is None:
        raise _Fail("--model: no model given and no shipped model found")
    try:
        if args.backend == "onnx":
            from xscreen.export import OnnxScorer

            return OnnxScorer(model, batch_size=cfg.batch_size, threads=args.threads)
        return Scorer(model, device=cfg.device, precision=cfg.precision, batch_size=cfg.batch_size,
                      compile=args.compile)
    except ImportError as exc:
        raise _Fail(f"--backend onnx needs the optional packages onnx and onnxruntime "
                    f"(pip install 'xscreen[onnx]'): {exc}") from None
    except ModelError as exc:
        raise _Fail(str(exc)) from None
    except OSError as exc:
        raise _Fail(f"{model}: cannot read model ({exc.strerror or exc})") from None


def _screen_all(args, scorer, cfg, shard, files: list[Path]) -> int:
    from tqdm import tqdm

    from xscreen.pipeline import ScreenFailure, ScreenProgress, screen_paths

    out = Path(args.out)
    rows, names, failed = [], set(), 0
    with tqdm(total=len(files), unit="scan", file=sys.stderr, disable=None,
              bar_format="{l_bar}{bar}| {n:.1f}/{total} scans [{elapsed}<{remaining}]") as bar:
        for item in screen_paths(files, scorer, cfg, progress=True):
            if isinstance(item, ScreenProgress):  # within the scan, batch by batch
                bar.n = len(rows) + item.done / max(item.total, 1)
                bar.refresh()
                continue
            if isinstance(item, ScreenFailure):
                failed += 1
                tqdm.write(f"error: {item.fault}", file=sys.stderr)
                rows.append({"path": str(item.path), "status": "error", "error": item.fault})
            else:
                try:
                    rows.append(_write_outputs(item, out, _claim(out, item.screening, names), args))
                except (OSError, ValueError) as exc:
                    failed += 1
                    tqdm.write(f"error: {item.path}: cannot write outputs: {exc}", file=sys.stderr)
                    rows.append({"path": str(item.path), "status": "error", "error": str(exc)})
            bar.n = len(rows)
            bar.refresh()
    csv_name = "summary.csv" if shard == (0, 1) else f"summary-{shard[0]}of{shard[1]}.csv"
    atomic_write_text(out / csv_name, _csv(rows))
    n_alarm = sum(1 for r in rows if r.get("alarm"))
    print(f"screened {len(files) - failed} of {len(files)} scans ({n_alarm} alarms, {failed} failed); "
          f"summary: {out / csv_name}")
    cal = scorer.calibration
    if cal is not None and cfg.scan_threshold is None and cfg.threshold is None:
        from xscreen.drift import check_rate

        # most bags at a site are benign, so the alarm rate bounds the false-alarm rate from above
        print(check_rate("alarm rate", n_alarm, len(files) - failed, cal.scan_far).message)
    return 1 if failed else 0


def _claim(out: Path, screening, taken: set[str]) -> str:
    """Output stem for one scan: its safe id, with -2, -3... until the name is free in this run and
    on disk. The JSON is created exclusively, so a scan screened earlier into the same folder (by an
    earlier run, or by another shard running now) is never overwritten; a rerun of the same file
    reuses its own name."""
    from xscreen.paths import output_stem

    out.mkdir(parents=True, exist_ok=True)
    while True:
        stem = output_stem(screening.scan_id, taken)
        target = out / f"{stem}.json"
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            if _written_for(target, screening.path):
                return stem
            continue
        with os.fdopen(fd, "w") as fh:  # a placeholder naming its owner until the JSON replaces it
            json.dump({"path": screening.path}, fh)
        return stem


def _written_for(target: Path, path: str | None) -> bool:
    try:
        doc = json.loads(target.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and path is not None and doc.get("path") == path


def _write_outputs(item, out: Path, stem: str, args) -> dict:
    s = item.screening
    summary = s.to_summary()
    atomic_write_text(out / f"{stem}.json", json.dumps(s.to_summary(include_grid=True)))
    if args.overlay != "none":
        from xscreen.heatmap import overlay

        img = overlay(render_rgb(item.scan), s.heat, args.overlay, regions=s.regions)
        ok, png = cv2.imencode(".png", img[..., ::-1])  # OpenCV writes BGR
        if not ok:
            raise ValueError("PNG encoding failed")
        atomic_write_bytes(out / f"{stem}.png", png.tobytes())
    if args.report:
        write_reports_hook(s, item.scan, out / stem, args.report)
    top = max((r.max_rel for r in s.regions), default=0.0)
    return {**{k: summary[k] for k in CSV_FIELDS if k in summary}, "output": stem, "status": "ok",
            "top_region_rel": top, "seconds": s.timings.total}


def write_reports_hook(screening, scan, out_dir: Path, formats: str) -> list[Path]:
    """Reports through ``xscreen.report`` (imported here: the report area is optional)."""
    from xscreen.report import write_reports

    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    return write_reports(screening, scan, out_dir, wanted)


def render_rgb(scan) -> np.ndarray:
    """(H, W, 3) uint8 display image: the material pseudo-colour view (rgb scans: their own
    colours; gray: grey) when ``xscreen.materials`` is installed, else a plain grey render."""
    try:
        from xscreen.materials import available_views, render
    except ImportError:
        t = scan.transmission()
        if scan.kind == "rgb":
            return np.ascontiguousarray((t.transpose(1, 2, 0) * 255.0 + 0.5).astype(np.uint8))
        return np.repeat((t[0] * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    return render(scan, available_views(scan)[0])


def _csv(rows: list[dict]) -> str:
    from xscreen.csvtext import csv_text

    return csv_text(CSV_FIELDS, rows)
