"""ONNX export of a model file, and an onnxruntime scoring backend for CPU sites.

The exported graph holds both networks and the score (``loss.score_parts``, the function training
and the torch scorer use), so a site scores with one ``session.run``: patches (N, C, S, S) in
[-1, 1] -> score, recon, latent (N,) and reconstruction (N, C, S, S); N is dynamic. The model's
identity, input contract, score settings and calibration ride along as ONNX metadata.

``onnx`` and ``onnxruntime`` are optional (``pip install xscreen[onnx]``); nothing else imports
this module.
"""
from __future__ import annotations

import dataclasses
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xscreen.atomic import atomic_path
from xscreen.loss import score_parts
from xscreen.network import reconstruct
from xscreen.onnx_file import DIGEST_KEY, ONNX_FORMAT, OUTPUTS, metadata_digest  # noqa: F401
from xscreen.scoring import PatchScores, Scorer

OPSET = 17  # onnxruntime >= 1.12 runs it; new enough for every op the two networks use


class ScoreGraph(torch.nn.Module):
    """G, D and the anomaly score as one module: (N, C, S, S) -> (score, recon, latent, x_hat)."""

    def __init__(self, generator: torch.nn.Module, discriminator: torch.nn.Module, lam: float, recon: str,
                 inpaint: int = 0, window: int = 0, density: float = 0.0, kind: str = "dual"):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.lam, self.recon, self.inpaint, self.window = float(lam), recon, int(inpaint), int(window)
        self.density, self.kind = float(density), str(kind)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x_hat = reconstruct(self.generator, x, self.inpaint)
        # two D passes, not one over [x; x_hat]: eval-mode BN makes them equal and the graph simpler
        _, f_x = self.discriminator(x)
        _, f_xh = self.discriminator(x_hat)
        parts = score_parts(x, x_hat, f_x, f_xh, self.lam, self.recon, self.window,  # type: ignore[arg-type]
                            self.density, self.kind)
        return parts.score, parts.recon, parts.latent, x_hat


def _loaded(model: Any) -> Any:
    if isinstance(model, (str, Path)):
        from xscreen.checkpoint import load_model

        return load_model(model)
    return model


def onnx_bytes(model: Any) -> bytes:
    """The serialised ONNX model of a model file or LoadedModel (fp32, CPU), metadata included."""
    loaded = _loaded(model)
    meta = loaded.meta
    if getattr(meta, "known_threat", None) is not None:  # its fused scale would meet anomaly-only scores
        raise ValueError(f"{getattr(loaded, 'path', 'model')}: the known-threat head is not in the ONNX graph yet "
                         "(issue 29): screen this model with its .xsm file, or export the anomaly-only model")
    import onnx  # the optional extra: only once the model is one that can be exported
    graph = ScoreGraph(loaded.generator.float().cpu().eval(), loaded.discriminator.float().cpu().eval(),
                       meta.train.lam, meta.train.recon, meta.train.score_inpaint, meta.train.recon_window,
                       meta.train.density * meta.train.density_scale, meta.preprocess.kind).eval()
    example = torch.zeros(2, meta.net.channels, meta.net.size, meta.net.size)
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        # dynamo=False: the TorchScript exporter needs neither onnxscript nor a graph break-free
        # trace, and exports these plain conv nets exactly (parity test: tests/test_export.py)
        torch.onnx.export(graph, (example,), buf, input_names=["patches"], output_names=list(OUTPUTS),
                          dynamic_axes={name: {0: "n"} for name in ("patches", *OUTPUTS)},
                          opset_version=OPSET, dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    for key, value in _metadata(loaded).items():
        proto.metadata_props.add(key=key, value=value)
    return proto.SerializeToString()


def _metadata(loaded: Any) -> dict[str, str]:
    props = {"xscreen.format": ONNX_FORMAT, "xscreen.meta": loaded.meta.to_json(),
             "xscreen.weights_id": str(getattr(loaded, "weights_id", "") or ""), **_parts(loaded)}
    return {**props, DIGEST_KEY: metadata_digest(props)}


def _parts(loaded: Any) -> dict[str, str]:
    """The readable pieces (kept from the first export format; sites may read them directly)."""
    meta = loaded.meta
    cal = meta.calibration
    return {"xscreen.model_id": loaded.model_id, "xscreen.checksum": loaded.checksum,
            "xscreen.preprocess": json.dumps(dataclasses.asdict(meta.preprocess)),
            "xscreen.net": json.dumps(dataclasses.asdict(meta.net)),
            "xscreen.score": json.dumps({"lam": meta.train.lam, "recon": meta.train.recon,
                                         "score_inpaint": meta.train.score_inpaint,
                                         "recon_window": meta.train.recon_window,
                                         "density": meta.train.density,
                                         "density_scale": meta.train.density_scale}),
            "xscreen.calibration": json.dumps(dataclasses.asdict(cal) if cal is not None else None)}


def export_onnx(model: Any, out: str | Path) -> Path:
    """Write the ONNX file atomically; returns its path."""
    out = Path(out)
    data = onnx_bytes(model)
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(data)
    return out


class OnnxScorer(Scorer):
    """A ``Scorer`` whose patches go through onnxruntime on the CPU: the same interface (preprocess,
    thresholds, calibration come from the model file), so ``pipeline.screen`` runs it unchanged.
    ``model``: an ``.xsm`` (exported on the fly) or an ``.onnx`` written by ``xscreen export``
    (its metadata checked like a model file's header: onnx_file.read_onnx).
    ``threads``: onnxruntime intra-op threads (None: its default, one per core)."""

    def __init__(self, model: Any, batch_size: int | None = None, threads: int | None = None):
        import onnxruntime as ort

        if isinstance(model, (str, Path)) and Path(model).suffix.lower() == ".onnx":
            from xscreen.onnx_file import read_onnx

            data, loaded = read_onnx(model)
            self._adopt(loaded, batch_size)
        else:
            super().__init__(model, device="cpu", precision="fp32", batch_size=batch_size)
            data = onnx_bytes(self.loaded)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])

    def _adopt(self, loaded: Any, batch_size: int | None) -> None:
        """What ``Scorer.__init__`` sets, from the ONNX file's metadata; no torch networks."""
        from xscreen.runtime import Precision
        from xscreen.scoring import CPU_BATCH

        meta = loaded.meta
        self.device, self.loaded, self.compiled = torch.device("cpu"), loaded, False
        self.lam, self.recon = float(meta.train.lam), str(meta.train.recon)
        self.inpaint, self.window = int(meta.train.score_inpaint), int(meta.train.recon_window)
        self.density = float(meta.train.density) * float(meta.train.density_scale)
        self.kind = str(meta.preprocess.kind)
        self.generator = self.discriminator = None
        self.batch_size = int(batch_size) if batch_size else CPU_BATCH
        self.precision = Precision(self.device, None)

    def reconstruct(self, patches: torch.Tensor, inpaint: int = 0) -> torch.Tensor:
        """x_hat from the graph's own output; only the model's inpainting is in the graph."""
        if inpaint != self.inpaint:
            raise ValueError(f"reconstruction with inpainting {inpaint} is not in the exported graph "
                             f"(it holds {self.inpaint}); use --backend torch with the .xsm file")
        parts = [self._score_batch(c, keep=True).reconstructions for c in patches.split(self.batch_size)]
        return torch.cat(parts) if parts else patches.new_zeros(patches.shape, dtype=torch.float32)

    @torch.inference_mode()
    def _score_batch(self, x: torch.Tensor, keep: bool) -> PatchScores:
        feed = {"patches": np.ascontiguousarray(x.detach().float().cpu().numpy())}
        score, recon, latent, x_hat = (torch.from_numpy(a) for a in self.session.run(list(OUTPUTS), feed))
        return PatchScores(score, recon, latent, x_hat if keep else None)


def parity(model: Any, onnx_file: str | Path, n: int = 64, seed: int = 0) -> float:
    """Largest |score difference| between torch and onnxruntime on ``n`` random patches: the export
    is checked where it is made, not first at a site."""
    import onnxruntime as ort

    loaded = _loaded(model)
    net = loaded.meta.net
    x = torch.rand(n, net.channels, net.size, net.size, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(["score"], {"patches": x.numpy()})[0]
    want = Scorer(loaded, device="cpu", precision="fp32").score(x, keep_reconstructions=False).scores
    return float(np.abs(got - want.numpy()).max())
