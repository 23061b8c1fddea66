"""Everything a training run holds between steps: networks, optimisers, schedulers, loaders.

``build_session`` makes it from a RunConfig; ``fit`` (loop.py) drives it. Kept apart from the
loop so the benchmark and the tests can build the same objects.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
from dataclasses import asdict, dataclass
from typing import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from xscreen.config import NetConfig, RunConfig, TrainConfig
from xscreen.network import Discriminator, build_generator
from xscreen.runtime import Precision, precision_for, resolve_device
from xscreen.train.step import GanPair, LossWeights, distributed, train_step


@dataclass
class Session:
    pair: GanPair
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    precision: Precision
    weights: LossWeights
    loader: DataLoader
    rank: int
    world: int

    @property
    def generator(self) -> torch.nn.Module:
        """The plain generator (unwrapped from DDP)."""
        return getattr(self.pair.generator, "module", self.pair.generator)

    @property
    def discriminator(self) -> torch.nn.Module:
        return self.pair.discriminator


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic kernels for the duration of a run, restoring the caller's settings after."""
    if not enabled:
        yield
        return
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
              torch.backends.cudnn.deterministic)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # warn_only: a few CUDA backward kernels have no deterministic version; CPU runs are exact
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[1], before[2]


def _scheduler(opt: torch.optim.Optimizer, t: TrainConfig) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped once per epoch (the reference created a scheduler and never stepped it)."""
    if t.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, t.epochs))
    gamma = t.lr_gamma if t.lr_schedule == "step" else 1.0
    return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, t.lr_step_epochs), gamma=gamma)


def make_loader(data: Dataset, t: TrainConfig, rank: int, world: int, device: torch.device) -> DataLoader:
    """Shuffled training batches; reshuffled per epoch through ``loader.batch_sampler.set_epoch``
    or ``loader.sampler.set_epoch`` (both seeded by (seed, epoch), so a resumed run sees the same
    order the uninterrupted one would have)."""
    n = len(data)  # type: ignore[arg-type]
    pin = device.type == "cuda"
    if world > 1:
        sampler = DistributedSampler(data, num_replicas=world, rank=rank, shuffle=True, seed=t.seed,
                                     drop_last=True)
        return DataLoader(data, batch_size=t.batch_size, sampler=sampler, drop_last=n >= t.batch_size * world,
                          num_workers=t.num_workers, pin_memory=pin)
    from xscreen.dataset import BlockBatchSampler

    # a patch store serves 16 contiguous patches per chunk read; other datasets shuffle freely
    block = 16 if hasattr(data, "read") else 1
    sampler = BlockBatchSampler(n, t.batch_size, block=block, shuffle=True, drop_last=n >= t.batch_size,
                                seed=t.seed)
    return DataLoader(data, batch_sampler=sampler, num_workers=t.num_workers, pin_memory=pin)


def new_pair(net: NetConfig, device: torch.device, t: TrainConfig, precision: Precision | None = None, *,
             channels_last: bool = True) -> GanPair:
    """Freshly initialised networks, Adam optimisers and (for fp16) a loss scaler."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = build_generator(net).to(device, memory_format=fmt)
    d = Discriminator(net).to(device, memory_format=fmt)
    betas = (t.beta1, t.beta2)
    opt_g = torch.optim.Adam(g.parameters(), lr=t.lr, betas=betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=t.lr, betas=betas)
    # fp16 needs loss scaling; bf16 and fp32 have fp32's exponent range and do not
    fp16 = precision is not None and precision.dtype == torch.float16
    return GanPair(g, d, opt_g, opt_d, torch.amp.GradScaler(device.type, enabled=fp16))


def train_precision(net: NetConfig, t: TrainConfig) -> Precision:
    """The precision training runs in: ``t.precision``, or for ``auto`` the faster of fp32 and the
    device's reduced precision on a few real train steps of this architecture (runtime.precision_for;
    measured once per machine and cached)."""
    device = resolve_device(t.device)
    batch = min(t.batch_size, 32)

    made: list = []  # the networks are built on the first timed step only: a cached choice builds none

    def step(p: Precision) -> None:
        if not made:
            x = torch.rand(batch, net.channels, net.size, net.size, device=device) * 2 - 1
            made.extend([new_pair(net, device, t), x])
        train_step(made[0], made[1], p)

    key = f"{json.dumps(asdict(net), sort_keys=True)} batch {batch}"
    chosen = precision_for(device, t.precision, job="train", workload=step, workload_key=key)
    if distributed():  # every rank must train in rank 0's precision
        code = torch.tensor([chosen.dtype is not None], dtype=torch.int64, device=device)
        dist.broadcast(code, 0)
        chosen = Precision(device, chosen.dtype if bool(code) else None)
    return chosen


def build_session(run: RunConfig, train_data: Dataset, *, channels_last: bool = True) -> Session:
    t = run.train
    precision = train_precision(run.net, t)
    seed_everything(t.seed)
    dev = precision.device
    plain = new_pair(run.net, dev, t, precision, channels_last=channels_last)
    g, d, opt_g, opt_d = plain.generator, plain.discriminator, plain.opt_g, plain.opt_d
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed() else (0, 1)
    g_wrapped: torch.nn.Module = g
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        g_wrapped = DDP(g, device_ids=[dev.index] if dev.type == "cuda" else None)
        for t_ in list(d.parameters()) + list(d.buffers()):
            dist.broadcast(t_.data, 0)  # DDP does this for G; D is averaged by hand
    pair = GanPair(g_wrapped, d, opt_g, opt_d, plain.scaler)
    return Session(pair, _scheduler(opt_g, t), _scheduler(opt_d, t), precision,
                   LossWeights(t.w_adv, t.w_con, t.w_lat), make_loader(train_data, t, rank, world, dev),
                   rank, world)


def fingerprint(run: RunConfig, n_train: int, n_val: int, manifest: str) -> str:
    """What a resumed run must share with the interrupted one (epochs and patience may change)."""
    t = asdict(run.train)
    for k in ("epochs", "patience", "log_every", "num_workers", "device"):
        t.pop(k)
    payload = {"net": asdict(run.net), "patch": asdict(run.patch), "pre": asdict(run.preprocess), "train": t,
               "n": [n_train, n_val], "manifest": manifest}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
