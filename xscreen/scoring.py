"""``Scorer``: a Skip-GANomaly model resident on its device, patches -> anomaly scores.

A(x) = lam * R(x) + (1 - lam) * L(x) (DESIGN.md 'Score'), R = mean |x - x_hat| (l1) or mean
(x - x_hat)^2 (l2) over the patch, L = mean (f(x) - f(x_hat))^2 over the discriminator features.
Both networks run in eval mode - the reference code left BatchNorm in train mode at test time, so
its scores depended on what else was in the batch; here a patch's score is a function of the patch.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from xscreen.config import Preprocess
from xscreen.loss import score_parts
from xscreen.network import reconstruct
from xscreen.runtime import Precision, precision_for, resolve_device

CPU_BATCH = 64  # 2-core CPU: 128 measured within noise of 64 (benchmarks/RESULTS.md)
_CUDA_BYTES_PER_PATCH = 48 * 2**20  # conservative activation footprint of G + 2 D passes, ngf 64
_MAX_CUDA_BATCH = 2048


@dataclass
class PatchScores:
    """Per-patch results for a batch of n patches."""

    scores: torch.Tensor  # (n,) float32 A = lam R + (1 - lam) L
    recon_error: torch.Tensor  # (n,) float32 R
    latent_error: torch.Tensor  # (n,) float32 L
    reconstructions: torch.Tensor | None  # (n, C, S, S) model space, or None when not kept


def _load(model: Any, device: torch.device) -> Any:
    if isinstance(model, (str, Path)):
        from xscreen.checkpoint import load_model  # lazy: keeps scoring importable on its own

        return load_model(model, map_location=str(device))
    return model


class Scorer:
    """Loads a model once and scores batches of patches on its device.

    ``model``: a model file path or a ``checkpoint.LoadedModel`` (anything with ``generator``,
    ``discriminator``, ``meta``, ``model_id``, ``checksum``).
    ``compile``: ``torch.compile`` both networks for one fixed batch shape (partial batches are
    padded, so nothing recompiles). On the 2-core dev CPU it measured 0.8-1.5x of eager
    channels-last (benchmarks/RESULTS.md) after a one-off compile of 0.2-3 minutes, so it is off by
    default; it is meant for CUDA, where it also captures CUDA graphs.
    """

    def __init__(self, model: Any, device: str = "auto", precision: str = "auto",
                 batch_size: int | None = None, compile: bool = False):
        self.device = resolve_device(device)
        self.loaded = _load(model, self.device)
        meta = self.loaded.meta
        self.lam = float(meta.train.lam)
        self.recon = str(meta.train.recon)
        self.inpaint, self.window = int(meta.train.score_inpaint), int(meta.train.recon_window)
        # ρ of the density prior (0 = off) and the input kind that defines density
        self.density = float(meta.train.density) * float(meta.train.density_scale)
        self.kind = str(meta.preprocess.kind)
        self.compiled = bool(compile)
        self.generator = self._prepare(self.loaded.generator)
        self.discriminator = self._prepare(self.loaded.discriminator)
        # the optional known-threat head (issue 29): its logit is fused with A per patch, so every
        # caller (pipeline, calibration, evaluation) sees one score; None = the anomaly score alone
        head = getattr(self.loaded, "known_threat", None)
        self.known = None if head is None else self._prepare(head)
        self.known_meta = meta.known_threat if head is not None else None
        self.batch_size = int(batch_size) if batch_size else self._default_batch()
        self.precision = self._choose_precision(precision)

    def _choose_precision(self, precision: str) -> Precision:
        """``auto``: the faster of fp32 and the device's reduced precision on a real scoring batch of
        this model, measured once per machine and cached (runtime.precision_for)."""
        net = self.loaded.meta.net
        batch = min(self.batch_size, 256)

        def workload(p: Precision) -> None:
            self.precision = p
            self._score_batch(torch.zeros(batch, net.channels, net.size, net.size), keep=False)

        key = f"{json.dumps(dataclasses.asdict(net), sort_keys=True)} batch {batch}"
        # a compiled model would be compiled once per candidate just to be timed: minutes, so it takes
        # the device's default (reduced precision on CUDA, fp32 on the CPU) instead
        return precision_for(self.device, precision, job="score", workload=None if self.compiled else workload,
                             workload_key=key)

    def _prepare(self, net: torch.nn.Module) -> torch.nn.Module:
        # channels-last lets oneDNN / cuDNN pick NHWC conv kernels without reorders per layer
        net = net.to(self.device, memory_format=torch.channels_last).eval()
        for p in net.parameters():
            p.requires_grad_(False)
        if not self.compiled:
            return net
        import torch._inductor.config as inductor_config

        # freezing folds eval-mode BatchNorm into the convs and pre-packs oneDNN weights - most of
        # the measured CPU gain; it is process-wide, and only ever applies to inference graphs
        inductor_config.freezing = True
        mode = "reduce-overhead" if self.device.type == "cuda" else None  # CUDA graphs on GPU
        return torch.compile(net, dynamic=False, mode=mode)

    def _default_batch(self) -> int:
        if self.device.type != "cuda":
            # an inpainted score runs G on k² copies of each patch in one batch: keep G's batch at
            # CPU_BATCH, so its activations (and the command's peak memory) stay the plain score's
            return max(8, CPU_BATCH // max(1, self.inpaint) ** 2)
        free, _ = torch.cuda.mem_get_info(self.device)
        scale = (self.patch_size / 64) ** 2 * (self.loaded.meta.net.ngf / 64)
        return int(max(16, min(_MAX_CUDA_BATCH, free * 0.5 // (_CUDA_BYTES_PER_PATCH * scale / 16))))

    # --- what the pipeline, GUI and reports read -------------------------------------------
    @property
    def model_id(self) -> str:
        return str(self.loaded.model_id)

    @property
    def checksum(self) -> str:
        return str(self.loaded.checksum)

    @property
    def preprocess(self) -> Preprocess:
        return self.loaded.meta.preprocess

    @property
    def patch_size(self) -> int:
        return int(self.loaded.meta.net.size)

    @property
    def calibration(self):
        return self.loaded.meta.calibration

    @property
    def threshold(self) -> float | None:
        """Calibrated raw patch threshold, None for an uncalibrated model."""
        cal = self.calibration
        return None if cal is None else float(cal.patch_threshold)

    @property
    def scan_threshold(self) -> float | None:
        cal = self.calibration
        return None if cal is None else float(cal.scan_threshold)

    # --- scoring -----------------------------------------------------------------------------
    def score(self, patches: torch.Tensor, keep_reconstructions: bool = True) -> PatchScores:
        """patches (N, C, S, S) in [-1, 1] -> PatchScores, in chunks of ``batch_size``.

        On CUDA out-of-memory the batch size is halved and the chunk retried.
        """
        parts: list[PatchScores] = []
        i = 0
        while i < patches.shape[0]:
            chunk = patches[i: i + self.batch_size]
            try:
                parts.append(self._score_batch(chunk, keep_reconstructions))
            except torch.OutOfMemoryError:
                if self.batch_size <= 1:
                    raise
                torch.cuda.empty_cache()
                self.batch_size //= 2
                continue
            i += chunk.shape[0]
        return _concat(parts, keep_reconstructions)

    @torch.inference_mode()
    def reconstruct(self, patches: torch.Tensor, inpaint: int = 0) -> torch.Tensor:
        """patches (N, C, S, S) -> x_hat (N, C, S, S) fp32 on the device, the generator alone (no
        discriminator pass): ``inpaint`` 0 is the plain x_hat = G(x) whatever the model's score form
        (the cheap pass of inpaint_gate.py)."""
        out = []  # G's batch as in scoring: batch_size x k² inputs (see _default_batch)
        for chunk in patches.split(self.batch_size * (1 if inpaint else max(1, self.inpaint) ** 2)):
            x = chunk.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            with self.precision.autocast():
                out.append(reconstruct(self.generator, x, inpaint).float())
        return torch.cat(out) if out else patches.new_zeros(patches.shape, dtype=torch.float32)

    @torch.inference_mode()
    def _score_batch(self, x: torch.Tensor, keep: bool) -> PatchScores:
        n = x.shape[0]
        x = x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        if self.compiled and n < self.batch_size:  # one shape for the compiled graph: pad
            x = torch.cat([x, x.new_zeros((self.batch_size - n, *x.shape[1:]))]).contiguous(
                memory_format=torch.channels_last)
        with self.precision.autocast():
            x_hat = reconstruct(self.generator, x, self.inpaint)
            # one discriminator pass over [x; x_hat]: a bigger GEMM, and eval-mode BN makes the
            # features of each half identical to two separate passes
            _, feats = self.discriminator(torch.cat([x, x_hat.to(x.dtype)], dim=0))
        m = x.shape[0]
        f = feats.float().flatten(1)
        f_x, f_xh = f[:n], f[m: m + n]
        x, x_hat = x[:n].float(), x_hat[:n].float()
        if self.compiled:  # CUDA-graph outputs are overwritten by the next replay
            x_hat = x_hat.clone()
        parts = score_parts(x, x_hat, f_x, f_xh, self.lam, self.recon, self.window,  # type: ignore[arg-type]
                            self.density, self.kind)
        score = parts.score
        if self.known is not None:
            from xscreen.model_checks.known_threat import fuse

            with self.precision.autocast():
                logit, _ = self.known.logits_features(x.contiguous(memory_format=torch.channels_last))
            score = fuse(self.known_meta, score, logit.float()).to(score.device)
        return PatchScores(score, parts.recon, parts.latent, x_hat if keep else None)


def _concat(parts: list[PatchScores], keep: bool) -> PatchScores:
    if len(parts) == 1:
        return parts[0]
    if not parts:  # no patches: empty results of the documented shapes
        z = torch.zeros(0)
        return PatchScores(z, z, z, torch.zeros(0, 1, 1, 1) if keep else None)
    return PatchScores(
        torch.cat([p.scores for p in parts]),
        torch.cat([p.recon_error for p in parts]),
        torch.cat([p.latent_error for p in parts]),
        torch.cat([p.reconstructions for p in parts]) if keep else None,  # type: ignore[misc]
    )
