"""Device and precision choice: one code path for CUDA and CPU (DESIGN.md, 'Device').

``precision="auto"`` is decided per device *and per job* (training or scoring) by what is faster
there, from a short measurement of that job's own workload, cached per machine (issue 17): on one
CPU with AVX-512 BF16, bf16 training measured 3x slower than fp32 while bf16 scoring was the fast
one; on another with the same flag bf16 training was 1.6x faster. A CPU flag alone cannot tell.
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ContextManager, Literal

import torch

# XSCREEN_MEMORY_BUDGET is read strictly in a torch-free leaf (the scan readers use it); here for callers
from xscreen.budget import MEMORY_BUDGET_RANGE, MEMORY_BUDGET_VAR, memory_budget_from_env  # noqa: F401

Job = Literal["train", "score"]


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


# A workload runs one step of a job (a train step, a scoring batch) under the given precision.
Workload = Callable[[Precision], None]


def precision_for(device: str | torch.device = "auto", precision: str = "auto", *, job: Job = "score",
                  workload: Workload | None = None, workload_key: str = "") -> Precision:
    """The precision to run ``job`` with. An explicit ``precision`` is obeyed. ``auto`` with a
    ``workload`` times it under each candidate (fp32 and the device's reduced precision) and keeps
    the faster, cached per machine, job and ``workload_key``; without one, the reduced precision is
    used on CUDA and fp32 on the CPU (the safe side: emulated bf16 is slower than fp32)."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    reduced = Precision(dev, autocast_dtype(dev, "auto"))
    if precision != "auto" or reduced.dtype is None:
        return Precision(dev, autocast_dtype(dev, precision))
    if workload is None:
        return reduced if dev.type == "cuda" else Precision(dev, None)
    key = "|".join((job, _machine(dev), f"torch {torch.__version__}", f"threads {torch.get_num_threads()}",
                    workload_key))
    cached = _read_cache().get(key)
    if cached in ("fp32", reduced.name):
        return Precision(dev, autocast_dtype(dev, cached))
    seconds = _time_all(workload, [Precision(dev, None), reduced])
    choice = min(seconds, key=seconds.get)
    _write_cache(key, choice, seconds)
    return Precision(dev, autocast_dtype(dev, choice))


def _machine(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"cpu {model} bf16={cpu_supports_bf16()}"


def _time_all(workload: Workload, candidates: list[Precision], reps: int = 5) -> dict[str, float]:
    """Seconds of one run per candidate: the fastest of ``reps``, after one warm-up each (the first
    run pays for kernel selection). Candidates alternate run by run, so a machine busy with other work
    slows them alike (a one-candidate-then-the-other measurement on a loaded machine once picked fp32
    for scoring at 0.48 s vs 0.79 s, where bf16 is 1.9x faster when measured fairly). The global RNG
    is left as it was: measuring must not change what a seeded run computes."""
    best = {p.name: float("inf") for p in candidates}
    with torch.random.fork_rng(devices=[]):
        for p in candidates:
            workload(p)
        for _ in range(reps):
            for p in candidates:
                if p.device.type == "cuda":
                    torch.cuda.synchronize(p.device)
                t0 = time.perf_counter()
                workload(p)
                if p.device.type == "cuda":
                    torch.cuda.synchronize(p.device)
                best[p.name] = min(best[p.name], time.perf_counter() - t0)
    return best


def precision_cache_path() -> Path:
    if os.environ.get("XSCREEN_PRECISION_CACHE"):
        return Path(os.environ["XSCREEN_PRECISION_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    home = os.environ.get("XSCREEN_HOME")
    return (Path(home) if home else Path(base) / "xscreen") / "precision.json"


def _read_cache() -> dict[str, str]:
    """key -> choice; an unreadable or foreign file counts as empty (it is only a cache)."""
    try:
        raw = json.loads(precision_cache_path().read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {k: v["choice"] for k, v in raw.items()
            if isinstance(k, str) and isinstance(v, dict) and v.get("choice") in ("fp32", "bf16", "fp16")}


def _write_cache(key: str, choice: str, seconds: dict[str, float]) -> None:
    from xscreen.atomic import atomic_write_text

    path = precision_cache_path()
    try:
        raw = json.loads(path.read_text())
        raw = raw if isinstance(raw, dict) else {}
    except (OSError, ValueError):
        raw = {}
    raw[key] = {"choice": choice, "seconds": {k: round(v, 5) for k, v in seconds.items()},
                "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with contextlib.suppress(OSError):  # a read-only home must not stop a run
        atomic_write_text(path, json.dumps(raw, indent=1, sort_keys=True))
