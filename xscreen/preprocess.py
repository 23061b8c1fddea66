"""Scan -> model input and back (the fixed maps recorded in every model file)."""
from __future__ import annotations

import numpy as np

from xscreen.config import Preprocess
from xscreen.scan import Scan

_T_MIN = 1e-6


def model_input(scan: Scan, pre: Preprocess, out: np.ndarray | None = None) -> np.ndarray:
    """(C, H, W) float32 in [-1, 1], written into ``out`` (a (C, H, W) float32 array or view, e.g.
    the inside of a padded buffer) when given. Raises ValueError when the scan's kind is not the
    model's. Works one channel at a time in place: for an 8000 x 3000 dual scan the float64
    temporaries of a whole-array formula peaked at ~0.6 GB more (issue 17, memory)."""
    if scan.kind != pre.kind:
        raise ValueError(f"{scan.scan_id}: the model expects '{pre.kind}' scans, this scan is '{scan.kind}'")
    ch = scan.channels
    if out is None:
        out = np.empty(ch.shape, np.float32)
    elif out.shape != ch.shape or out.dtype != np.float32:
        raise ValueError(f"output buffer {out.shape} {out.dtype} does not fit the scan {ch.shape} float32")
    i0 = np.float32(scan.i0)
    for c in range(ch.shape[0]):  # the same float32 operations as the whole-array formula, in place
        o = out[c]
        np.divide(ch[c], i0, out=o, dtype=np.float32)  # transmission, as Scan.transmission
        np.clip(o, 0.0, 1.0, out=o)
        if pre.kind == "dual":
            np.maximum(o, np.float32(_T_MIN), out=o)
            np.log(o, out=o)
            o /= np.float32(-pre.a_max)  # a / a_max, a = -ln T
            np.clip(o, 0.0, 1.0, out=o)
        o *= np.float32(2.0)
        o -= np.float32(1.0)
    return out


def to_transmission(x: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Inverse of ``model_input`` up to clipping: (C, H, W) in [-1, 1] -> transmission in [0, 1]."""
    x = np.asarray(x, dtype=np.float32)
    if pre.kind == "dual":
        return np.exp(-(x + 1.0) * 0.5 * pre.a_max).astype(np.float32)
    return np.clip((x + 1.0) * 0.5, 0.0, 1.0).astype(np.float32)


def air_transmission_level(x_normalised_threshold: float, pre: Preprocess) -> float:
    """Model-input value that corresponds to a transmission threshold (for on-device air tests)."""
    if pre.kind == "dual":
        a = -np.log(max(x_normalised_threshold, _T_MIN))
        return float(2.0 * min(a / pre.a_max, 1.0) - 1.0)
    return float(2.0 * x_normalised_threshold - 1.0)
