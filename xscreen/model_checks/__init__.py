"""Checks on everything a model file declares, made on load before any of it is used or allocated.

A model file is untrusted input (DESIGN.md). Its SHA-256 only catches accidental damage: whoever
edits the file can recompute it. So every value is refused for what it is. Each of these used to
load and fail open: a NaN or +inf threshold never alarms (``NaN >= t`` is False), ``lam`` NaN makes
every score NaN, ``a_max`` 0 or NaN maps every scan to NaN, NaN weights score NaN, and
``ngf = 100000`` asked for terabytes before the weights were compared with the architecture.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any, Iterator, Literal, Mapping, Union

import torch
from torch.overrides import TorchFunctionMode

from xscreen.config import D_EVERY_MAX, DENSITY_MAX
from xscreen.model_checks.calibration import check_calibration, score_ceiling

SCREEN_STRIDE = 32  # ScreenConfig's default: a legacy calibration's bag area is counted in its patches


@dataclass(frozen=True)
class Range:
    """Closed interval [lo, hi], or (lo, hi] with ``lo_open``."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False

    def __contains__(self, v: float) -> bool:
        return (v > self.lo if self.lo_open else v >= self.lo) and v <= self.hi

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"


POSITIVE = Range(0.0, math.inf, lo_open=True)
NON_NEGATIVE = Range(0.0)
UNIT = Range(0.0, 1.0)
AT_LEAST_1 = Range(1)
# Wider than anything trained here (ngf 32-64, nz 100) yet small enough that a bad value is named
# before the networks are built; the shape check in checkpoint bounds the memory itself.
MAX_WIDTH, MAX_NZ = 1024, 4096

# Per config class (by name), the range of each numeric field that has one; every float is also
# required to be finite, every field to have its declared type.
LIMITS: dict[str, dict[str, Range]] = {
    # a 16-bit detector resolves attenuation up to ln(65535) = 11.1; a larger a_max only squeezes every
    # scan into the bottom of the input range (a_max 100 made a handgun score like air: issue 32)
    "Preprocess": {"a_max": Range(1.0, 12.0)},
    "PatchConfig": {"size": Range(8, 1024), "stride": Range(1, 1024), "air_threshold": UNIT},
    "NetConfig": {"size": Range(8, 1024), "channels": Range(1, 3), "ngf": Range(1, MAX_WIDTH),
                  "ndf": Range(1, MAX_WIDTH), "nz": Range(1, MAX_NZ), "outer_skips_off": Range(0, 3)},
    "TrainConfig": {"lam": UNIT, "epochs": NON_NEGATIVE, "batch_size": AT_LEAST_1, "lr": NON_NEGATIVE,
                    "beta1": UNIT, "beta2": UNIT, "w_adv": NON_NEGATIVE, "w_con": NON_NEGATIVE,
                    "w_lat": NON_NEGATIVE, "d_reinit_below": NON_NEGATIVE, "input_noise": NON_NEGATIVE,
                    "lr_step_epochs": AT_LEAST_1, "lr_gamma": NON_NEGATIVE, "patience": NON_NEGATIVE,
                    "num_workers": NON_NEGATIVE, "log_every": AT_LEAST_1, "val_fraction": UNIT,
                    "patch_far": UNIT, "scan_far": UNIT, "input_mask": UNIT, "d_every": Range(1, D_EVERY_MAX),
                    # k² generator passes per patch: 4 (16 passes) is already 16x the scoring cost
                    "score_inpaint": Range(0, 4), "recon_window": Range(0, 128),
                    "density": Range(0.0, DENSITY_MAX), "density_scale": Range(0.0, 1e6)},
    "Calibration": {"patch_threshold": POSITIVE, "scan_threshold": POSITIVE, "patch_far": UNIT,
                    "scan_far": UNIT, "top_k": AT_LEAST_1, "n_patches": NON_NEGATIVE,
                    "n_scans": NON_NEGATIVE, "alarm_scale": NON_NEGATIVE, "ref_area": NON_NEGATIVE,
                    "stride": Range(0, 1024), "version": NON_NEGATIVE, "n_alarmed": NON_NEGATIVE,
                    "area_max": NON_NEGATIVE,
                    "far_lo": UNIT, "far_hi": UNIT, "alarm_power": Range(0.0, 3.0)},
    "ModelCard": {"n_train_patches": NON_NEGATIVE, "n_val_patches": NON_NEGATIVE,
                  "n_train_scans": NON_NEGATIVE, "n_val_scans": NON_NEGATIVE,
                  "train_seconds": NON_NEGATIVE},
}


def check_fields(obj: Any, limits: Mapping[str, Mapping[str, Range]] = LIMITS, where: str = "") -> None:
    """Raise ValueError naming the first field (dotted path, e.g. ``calibration.patch_threshold``) of
    dataclass ``obj``, nested dataclasses included, whose value is not of its declared type, not
    finite, or outside its Range."""
    hints = typing.get_type_hints(type(obj))
    ranges = limits.get(type(obj).__name__, {})
    for f in dataclasses.fields(obj):
        name, value, hint = f"{where}{f.name}", getattr(obj, f.name), hints[f.name]
        if not _fits(value, hint):
            raise ValueError(f"{name}: {value!r} is not {_describe(hint)}")
        if dataclasses.is_dataclass(value):
            check_fields(value, limits, f"{name}.")
        elif f.name in ranges and value not in ranges[f.name]:
            raise ValueError(f"{name}: {value!r} is outside {ranges[f.name]}")


def _fits(v: Any, hint: Any) -> bool:
    """Is ``v`` of type ``hint``? An annotation this does not know is refused, not waved through."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return v is None
    if origin is Literal:
        return any(type(v) is type(a) and v == a for a in args)
    if origin in (Union, types.UnionType):
        return any(_fits(v, a) for a in args)
    if hint in (bool, str):
        return isinstance(v, hint)
    if hint is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if hint is float:  # JSON writes 1.0 as 1; ints are finite, and huge ones must not reach float()
        return isinstance(v, int) and not isinstance(v, bool) or isinstance(v, float) and math.isfinite(v)
    if origin is dict:
        return isinstance(v, dict) and all(_fits(k, args[0]) and _fits(x, args[1]) for k, x in v.items())
    if origin in (list, tuple):
        item = args[0] if args else Any
        return isinstance(v, origin) and all(_fits(x, item) for x in v)
    return isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(v, hint)


def _describe(hint: Any) -> str:
    if hint is float:
        return "a finite number"
    name = getattr(hint, "__name__", None)
    return f"a {name}" if name and typing.get_origin(hint) is None else f"of type {hint}"


def check_consistency(meta: Any) -> None:
    """Fields that must agree across sections of a ModelMeta, then the calibration's plausibility
    (model_checks.calibration); ValueError naming the field otherwise."""
    expected = meta.preprocess.channels
    if meta.net.channels != expected:
        extra = " with the material channel" if meta.preprocess.material else ""
        raise ValueError(f"net.channels {meta.net.channels} does not match preprocess.kind "
                         f"'{meta.preprocess.kind}'{extra} ({expected} channels)")
    if meta.patch.size != meta.net.size:
        raise ValueError(f"patch.size {meta.patch.size} differs from net.size {meta.net.size}")
    t = meta.train
    if t.density > 0 and not t.density_scale > 0:  # the prior would be silently off
        raise ValueError(f"train.density {t.density:g} has no density_scale from benign data: set it with "
                         "`xscreen model calibrate FILE BENIGN --density W`")
    if t.recon_window > meta.patch.size:  # the window's pooling would fail on every bag (issue 32)
        raise ValueError(f"train.recon_window {t.recon_window} is larger than the {meta.patch.size}-px patch")
    cal = meta.calibration
    # an area rule with no scale or reference area would divide by zero into a NaN threshold
    if cal is not None and cal.alarm_rule == "area" and not (cal.alarm_scale > 0 and cal.ref_area > 0):
        raise ValueError("calibration.alarm_rule 'area' needs a positive alarm_scale and ref_area")
    if cal is not None:
        # a fused score (-ln of a tail probability) is not bounded by the anomaly score's ceiling
        fused = getattr(meta, "known_threat", None) is not None
        check_calibration(cal, meta.patch.size, cal.stride or SCREEN_STRIDE,
                          math.inf if fused else score_ceiling(t))
    kt = getattr(meta, "known_threat", None)
    if kt is not None:  # the known-threat head (issue 29): widths, tail maps, manifest size
        from xscreen.model_checks.known_threat import check_known_threat

        check_known_threat(kt)


def check_tensors(tensors: Mapping[str, torch.Tensor]) -> None:
    """Weights: float32 (int64 for BatchNorm's step counter), all finite, variances not negative -
    NaN or inf weights give NaN scores, which must never reach a decision."""
    for name, t in tensors.items():
        if t.dtype not in (torch.float32, torch.int64):
            raise ValueError(f"tensor {name} has dtype {t.dtype} (expected float32)")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise ValueError(f"tensor {name} holds NaN or infinite values")
        if name.endswith("running_var") and bool((t < 0).any()):
            raise ValueError(f"tensor {name} holds negative variances")


class _SkipNormalInit(TorchFunctionMode):
    """``normal_`` on the meta device has only a Python meta kernel, whose first use imports ~800
    modules (1-2 s); shapes need no values, so the weight init is skipped."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.normal_, torch.nn.init.normal_):
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Modules built inside get parameters with shapes and no storage (the meta device)."""
    with torch.device("meta"), _SkipNormalInit():
        yield
