"""Device and precision choice: one code path for CUDA and CPU (DESIGN.md, 'Device')."""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import ContextManager

import torch


@functools.lru_cache(maxsize=1)
def cpu_supports_bf16() -> bool:
    """True where the CPU has native bf16 dot products (AVX-512 BF16 / AMX); emulated bf16 is slower
    than fp32, so autocast is only worth it with hardware support."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def resolve_device(name: str = "auto") -> torch.device:
    if name in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return dev


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``; None means plain fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if cpu_supports_bf16() else None


@dataclass(frozen=True)
class Precision:
    device: torch.device
    dtype: torch.dtype | None

    def autocast(self) -> ContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def precision_for(device: str | torch.device = "auto", precision: str = "auto") -> Precision:
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return Precision(dev, autocast_dtype(dev, precision))
