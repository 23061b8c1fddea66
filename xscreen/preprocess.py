"""Scan -> model input and back (the fixed maps recorded in every model file)."""
from __future__ import annotations

import numpy as np

from xscreen.config import Preprocess
from xscreen.materials import material_coordinate
from xscreen.scan import Scan

_T_MIN = 1e-6


class WrongKind(ValueError):
    """A scan of another input kind than the model's: not a broken file, a file for another model
    (``xscreen screen`` lists it as skipped, the lane stores it with a notice)."""

    def __init__(self, scan_id: str, expected: str, got: str):
        super().__init__(f"{scan_id}: the model expects '{expected}' scans, this scan is '{got}'")
        self.expected, self.got = expected, got


def model_input(scan: Scan, pre: Preprocess, out: np.ndarray | None = None) -> np.ndarray:
    """(C, H, W) float32 in [-1, 1], written into ``out`` (a (C, H, W) float32 array or view, e.g.
    the inside of a padded buffer) when given; C = ``pre.channels`` (the scan's channels, then the
    material channel when ``pre.material``). ``scan.channels`` may also be a stack of patches
    (N, C, S, S) - every map is per pixel - and the result is then (N, C, S, S). Raises ValueError
    when the scan's kind or channel count is not the model's. Works one channel at a time in place:
    for an 8000 x 3000 dual scan the float64 temporaries of a whole-array formula peaked at ~0.6 GB
    more (issue 17, memory)."""
    if scan.kind != pre.kind:
        raise WrongKind(scan.scan_id, pre.kind, scan.kind)
    ch = scan.channels
    axis = ch.ndim - 3  # channel axis: 0 for a scan, 1 for a stack of patches
    if axis not in (0, 1) or ch.shape[axis] != pre.scan_channels:
        raise ValueError(f"{scan.scan_id}: channels {ch.shape} do not fit a '{pre.kind}' model input "
                         f"({pre.scan_channels} channels)")
    shape = (*ch.shape[:axis], pre.channels, *ch.shape[axis + 1:])
    if out is None:
        out = np.empty(shape, np.float32)
    elif out.shape != shape or out.dtype != np.float32:
        raise ValueError(f"output buffer {out.shape} {out.dtype} does not fit the input {shape} float32")
    i0 = np.float32(scan.i0)
    energy = out[:, :pre.scan_channels] if axis else out[:pre.scan_channels]
    for c in range(ch.shape[0]):  # the same float32 operations as the whole-array formula, in place
        o = energy[c]
        np.divide(ch[c], i0, out=o, dtype=np.float32)  # transmission, as Scan.transmission
        np.clip(o, 0.0, 1.0, out=o)
        if pre.kind == "dual":
            np.maximum(o, np.float32(_T_MIN), out=o)
            np.log(o, out=o)
            o /= np.float32(-pre.a_max)  # a / a_max, a = -ln T
            np.clip(o, 0.0, 1.0, out=o)
        o *= np.float32(2.0)
        o -= np.float32(1.0)
    if pre.material:
        material_channel(out, pre.a_max)
    return out


def material_channel(out: np.ndarray, a_max: float, rows: int = 256) -> None:
    """Channel 2 = 2 * material coordinate - 1, from the energy channels 0 and 1 of ``out`` (C, H, W)
    or (N, C, S, S), a band of rows (or patches) at a time: the interpolation's float64
    temporaries stay a few MB on an enormous scan."""
    high, low, mat = (out[..., k, :, :] for k in range(3))
    scale = np.float32(0.5 * a_max)
    for y in range(0, high.shape[0], rows):
        a_h = (high[y:y + rows] + np.float32(1.0)) * scale
        a_l = (low[y:y + rows] + np.float32(1.0)) * scale
        mat[y:y + rows] = material_coordinate(a_h, a_l) * np.float32(2.0) - np.float32(1.0)


def to_transmission(x: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Inverse of ``model_input`` up to clipping: (C, H, W) in [-1, 1] -> transmission in [0, 1] of the
    scan's own channels (a material channel is not a transmission and is left out)."""
    x = np.asarray(x, dtype=np.float32)[:pre.scan_channels]  # the material channel is derived: dropped
    if pre.kind == "dual":
        return np.exp(-(x + 1.0) * 0.5 * pre.a_max).astype(np.float32)
    return np.clip((x + 1.0) * 0.5, 0.0, 1.0).astype(np.float32)


def air_transmission_level(x_normalised_threshold: float, pre: Preprocess) -> float:
    """Model-input value that corresponds to a transmission threshold (for on-device air tests)."""
    if pre.kind == "dual":
        a = -np.log(max(x_normalised_threshold, _T_MIN))
        return float(2.0 * min(a / pre.a_max, 1.0) - 1.0)
    return float(2.0 * x_normalised_threshold - 1.0)
