"""Scan -> model input and back (the fixed maps recorded in every model file)."""
from __future__ import annotations

import numpy as np

from xscreen.config import Preprocess
from xscreen.scan import Scan

_T_MIN = 1e-6


def model_input(scan: Scan, pre: Preprocess) -> np.ndarray:
    """(C, H, W) float32 in [-1, 1]. Raises ValueError when the scan's kind is not the model's."""
    if scan.kind != pre.kind:
        raise ValueError(f"{scan.scan_id}: the model expects '{pre.kind}' scans, this scan is '{scan.kind}'")
    t = scan.transmission()
    if pre.kind == "dual":
        a = -np.log(np.maximum(t, _T_MIN))
        return (2.0 * np.clip(a / pre.a_max, 0.0, 1.0) - 1.0).astype(np.float32)
    return (2.0 * t - 1.0).astype(np.float32)


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
