"""Reading an exported ``.onnx`` model (``xscreen export``) for the onnxruntime backend.

An .onnx file is untrusted input like a model file: ``xscreen screen --model m.onnx`` used to hand it
to the safetensors reader ("not a readable model file ... header too large"). Its calibration and
preprocessing ride along as metadata, and they are checked here as a model file's header is
(``checkpoint._parse_meta``: types, ranges, cross-field consistency, and whatever plausibility
checks the model file gets), plus: the metadata digest, the id and checksum formats, and the
graph's input and outputs against the recorded patch size and channels. Protobuf parsing runs no
code; the size is bounded before anything is read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from xscreen.checkpoint import LoadedModel, ModelCard, ModelError, ModelMeta, _parse_meta
from xscreen.config import PatchConfig, TrainConfig

OUTPUTS = ("score", "recon", "latent", "reconstruction")  # the exported graph's outputs, in order
ONNX_FORMAT = "xscreen-onnx/2"  # 2: the whole ModelMeta rides along ('xscreen.meta'), with a digest
DIGEST_KEY = "xscreen.metadata_sha256"
MAX_ONNX_BYTES = 4 << 30  # ngf 1024 nets are far below this; a bigger file is not ours
_CHECKSUM = re.compile(r"[0-9a-f]{64}")
_MODEL_ID = re.compile(r"[\w.+-]{1,200}")


def metadata_digest(props: dict[str, str]) -> str:
    """SHA-256 over the xscreen metadata (keys sorted, the digest itself left out): catches damage,
    not a consistent edit - the values are checked for plausibility on load for that."""
    body = json.dumps({k: v for k, v in sorted(props.items()) if k.startswith("xscreen.") and k != DIGEST_KEY},
                      sort_keys=True)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def read_onnx(path: str | Path) -> tuple[bytes, LoadedModel]:
    """(the file's bytes, a LoadedModel without torch networks: meta, model_id, checksum, path).
    ModelError naming the file and the field for anything that does not hold."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise ModelError(path, "no such model file")
    if path.stat().st_size > MAX_ONNX_BYTES:
        raise ModelError(path, f"ONNX file larger than {MAX_ONNX_BYTES >> 30} GiB: not an xscreen export")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and onnx's own errors on malformed bytes
        raise ModelError(path, f"not a readable ONNX file ({type(exc).__name__}: {str(exc)[:200]})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if "xscreen.model_id" not in props:
        raise ModelError(path, "ONNX file without xscreen metadata (not written by `xscreen export`)")
    meta = _meta(path, props)
    _check_identity(path, props)
    _check_graph(path, proto, meta)
    return data, LoadedModel(None, None, meta, props["xscreen.model_id"], props["xscreen.checksum"],  # type: ignore[arg-type]
                             path, props.get("xscreen.weights_id", ""))


def _meta(path: Path, props: dict[str, str]) -> ModelMeta:
    """The recorded ModelMeta, checked exactly as a model file's header is."""
    if DIGEST_KEY in props and props[DIGEST_KEY] != metadata_digest(props):
        raise ModelError(path, "ONNX metadata digest mismatch: the metadata was modified or corrupted")
    text = props.get("xscreen.meta")
    if text is None:  # the first export format: the pieces, no patch config or card
        text = _legacy_meta_json(path, props)
    return _parse_meta(path, text)


def _legacy_meta_json(path: Path, props: dict[str, str]) -> str:
    try:
        net = json.loads(props["xscreen.net"])
        score = json.loads(props["xscreen.score"])
        meta = {"net": net, "preprocess": json.loads(props["xscreen.preprocess"]),
                "patch": dataclasses.asdict(PatchConfig(size=int(net["size"]))),
                "train": {**dataclasses.asdict(TrainConfig()), **score},
                "calibration": json.loads(props["xscreen.calibration"]),
                "card": dataclasses.asdict(ModelCard(name=props["xscreen.model_id"].rsplit("-", 1)[0]))}
        return json.dumps(meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(path, f"invalid ONNX metadata: {type(exc).__name__}: {exc}") from None


def _check_identity(path: Path, props: dict[str, str]) -> None:
    if not _MODEL_ID.fullmatch(props["xscreen.model_id"]):
        raise ModelError(path, "invalid ONNX metadata: xscreen.model_id is not a model id")
    if not _CHECKSUM.fullmatch(props.get("xscreen.checksum", "")):
        raise ModelError(path, "invalid ONNX metadata: xscreen.checksum is not a SHA-256")
    wid = props.get("xscreen.weights_id", "")
    if wid and not _CHECKSUM.fullmatch(wid):
        raise ModelError(path, "invalid ONNX metadata: xscreen.weights_id is not a SHA-256")


def _check_graph(path: Path, proto: Any, meta: ModelMeta) -> None:
    """Input 'patches' (N, C, S, S) with the recorded C and S; the four outputs the scorer reads."""
    inputs = [i for i in proto.graph.input if i.name not in {t.name for t in proto.graph.initializer}]
    if [i.name for i in inputs] != ["patches"]:
        raise ModelError(path, f"ONNX graph inputs {[i.name for i in inputs]} are not ['patches']")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    want = [None, meta.net.channels, meta.net.size, meta.net.size]
    if dims != want:
        raise ModelError(path, f"ONNX input shape {dims} does not match the recorded model "
                               f"(N, {meta.net.channels}, {meta.net.size}, {meta.net.size})")
    if [o.name for o in proto.graph.output] != list(OUTPUTS):
        raise ModelError(path, f"ONNX graph outputs {[o.name for o in proto.graph.output]} are not {list(OUTPUTS)}")


__all__ = ["DIGEST_KEY", "MAX_ONNX_BYTES", "ONNX_FORMAT", "OUTPUTS", "metadata_digest", "read_onnx"]
