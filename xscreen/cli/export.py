"""``xscreen export MODEL.xsm --format onnx [-o OUT.onnx]``: the model for onnxruntime sites."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model file for other runtimes (ONNX)",
                       description="Write both networks and the anomaly score as one ONNX graph "
                       "(input 'patches' (N, C, S, S) in [-1, 1]; outputs score, recon, latent, "
                       "reconstruction), with the model's preprocessing and calibration as metadata. "
                       "Needs the optional packages onnx and onnxruntime (pip install 'xscreen[onnx]').")
    p.add_argument("model", type=Path, help="model file (.xsm)")
    p.add_argument("--format", choices=("onnx",), default="onnx", help="export format (default onnx)")
    p.add_argument("-o", "--output", type=Path, default=None, help="file to write (default MODEL.onnx)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from xscreen.checkpoint import ModelError, load_model

    try:
        from xscreen.export import export_onnx, parity

        loaded = load_model(args.model)
        out = export_onnx(loaded, args.output or args.model.with_suffix(".onnx"))
        worst = parity(loaded, out)
    except ImportError as exc:
        print(f"error: ONNX export needs the optional packages onnx and onnxruntime "
              f"(pip install 'xscreen[onnx]'): {exc}", file=sys.stderr)
        return 2
    except (ModelError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{out}: {out.stat().st_size / 2**20:.1f} MiB, ONNX opset 17; onnxruntime scores differ from "
          f"torch by at most {worst:.2e} on 64 random patches")
    return 0
