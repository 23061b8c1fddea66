"""``xscreen screen PATH... --model M --out DIR``: batch screening of files and folders.

Per scan: ``<out>/<name>.json`` (summary, regions) and ``<out>/<name>.png`` (overlay), ``<name>`` the
scan id made safe (``paths.output_stem``: the id comes from inside the file and stays data) and owned
by the file's content (cli/screen_outputs.py): the same file rescreened rewrites its own outputs, a
different file with the same id or at the same path gets a new name. Across scans: rows appended to
``<out>/summary.csv`` (``summary-<i>of<n>.csv`` for a shard), each with its run's time, in the one
schema of ``xscreen.report.summary``. Bad files are reported (``error: <file>: <fault>``), files of a
kind the model does not take and special files (FIFOs) are listed as skipped; a report that cannot be
written is that bag's error, never the batch's. Exit 1 when any bag failed, 2 when nothing could
start (no model, no scan files, a bad setting). All writes are atomic.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from xscreen.cli.screen_outputs import render_rgb  # noqa: F401  (cli/watch.py imports it from here)
from xscreen.config import ScreenConfig
from xscreen.text import printable



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
    from xscreen.budget import memory_budget_from_env
    from xscreen.pipeline import collect_paths, parse_shard, resolve_thresholds
    from xscreen.scan import ScanError

    try:
        memory_budget_from_env()  # a bad setting stops here, not in every file's reader
        if args.report:
            from xscreen.report import parse_formats

            parse_formats(args.report)
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
        print(f"error: {printable(exc)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        where = "" if "XSCREEN_" in str(exc) or "report format" in str(exc) else f"{args.model or 'model'}: "
        print(f"error: {printable(where + str(exc))}", file=sys.stderr)
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
        # an exported .onnx runs on onnxruntime whatever --backend says: torch cannot read it
        if args.backend == "onnx" or Path(model).suffix.lower() == ".onnx":
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

    from xscreen.cli.screen_outputs import special_files
    from xscreen.pipeline import ScreenProgress, screen_paths
    from xscreen.report.context import utc_now
    from xscreen.report.summary import append_summary, failure_row

    out, run_time = Path(args.out), utc_now()
    # special files are named once, by the first shard (every shard sees the same folders)
    rows = [failure_row(p, f"{p}: {why}", run_time=run_time, status="skipped")
            for p, why in (special_files(args.paths) if shard[0] == 0 else [])]
    for r in rows:
        print(f"skipped: {printable(r.error)}", file=sys.stderr)
    taken: set[str] = set()
    with tqdm(total=len(files), unit="scan", file=sys.stderr, disable=None,
              bar_format="{l_bar}{bar}| {n:.1f}/{total} scans [{elapsed}<{remaining}]") as bar:
        done = 0
        for item in screen_paths(files, scorer, cfg, progress=True):
            if isinstance(item, ScreenProgress):  # within the scan, batch by batch
                bar.n = done + item.done / max(item.total, 1)
                bar.refresh()
                continue
            row = _row(item, out, args, run_time, taken)
            for note in getattr(getattr(item, "screening", None), "notices", ()):  # sections, empty tray
                tqdm.write(f"notice: {printable(f'{item.path}: {note}')}", file=sys.stderr)
            if row.status != "ok":
                tqdm.write(f"{'skipped' if row.status == 'skipped' else 'error'}: {printable(row.error)}",
                           file=sys.stderr)
            rows.append(row)
            done += 1
            bar.n = done
            bar.refresh()
    csv_name = "summary.csv" if shard == (0, 1) else f"summary-{shard[0]}of{shard[1]}.csv"
    append_summary(rows, out / csv_name)
    return _report_totals(rows, files, scorer, cfg, out / csv_name)


def _report_totals(rows, files, scorer, cfg, csv_path: Path) -> int:
    failed = sum(r.status == "error" for r in rows)
    skipped = sum(r.status == "skipped" for r in rows)
    judged = [r for r in rows if r.alarm]  # a bag whose report failed was still screened and judged
    n_alarm = sum(r.alarm == "ALARM" for r in judged)
    print(f"screened {sum(r.status == 'ok' for r in rows)} of {len(files)} scans ({n_alarm} alarms, "
          f"{failed} failed, {skipped} skipped); summary: {csv_path}")
    cal = scorer.calibration
    if cal is not None and cfg.scan_threshold is None and cfg.threshold is None:
        from xscreen.drift import check_rate

        # most bags at a site are benign, so the alarm rate bounds the false-alarm rate from above
        print(check_rate("alarm rate", n_alarm, len(judged), cal.scan_far).message)
    return 1 if failed else 0


def _row(item, out: Path, args, run_time: str, taken: set[str]):
    """One bag's summary row; its outputs written on the way. Any failure is this bag's."""
    from xscreen.cli.screen_outputs import claim, write_outputs
    from xscreen.pipeline import ScreenFailure
    from xscreen.report.summary import failure_row, summary_row

    if isinstance(item, ScreenFailure):
        wrong = item.wrong_kind
        if wrong is not None:  # not unreadable: a file for another kind of model (e.g. samples/rgb)
            return failure_row(item.path, f"{item.path}: scan kind '{wrong.got}'; this model takes "
                                          f"'{wrong.expected}' scans", run_time=run_time, status="skipped")
        return failure_row(item.path, item.fault, run_time=run_time)
    s = item.screening
    try:
        stem = claim(out, s, taken)
        row = summary_row(s, output=stem, run_time=run_time)
        write_outputs(item, out, stem, args.overlay)
    except (OSError, ValueError) as exc:
        return failure_row(item.path, f"{item.path}: cannot write outputs: {exc}", run_time=run_time)
    if args.report:
        try:
            write_reports_hook(s, item.scan, out / stem, args.report)
        except Exception as exc:  # noqa: BLE001 - a report that cannot be laid out fails this bag only
            return dataclasses.replace(row, status="error", error=f"{item.path}: report not written "
                                       f"({type(exc).__name__}: {str(exc)[:300]})")
    return row


def write_reports_hook(screening, scan, out_dir: Path, formats: str) -> list[Path]:
    """Reports through ``xscreen.report`` (imported here: the report area is optional)."""
    from xscreen.report import write_reports

    wanted = [f.strip() for f in formats.split(",") if f.strip()]
    return write_reports(screening, scan, out_dir, wanted)
