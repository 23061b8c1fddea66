"""The model file (``.xsm``): one safetensors file, weights + metadata + checksum; never unpickled.

Layout: tensors ``generator.<name>`` and ``discriminator.<name>`` (float32, contiguous); the
safetensors string header holds ``xscreen_format`` (FORMAT), ``meta`` (ModelMeta as JSON) and
``checksum`` = sha256 over every tensor (name, dtype, shape, bytes, in name order) and the meta
JSON. The checksum detects accidental corruption only: it is not keyed, so whoever edits a file can
recompute it. What protects against a tampered file is that every field and weight is checked on
load (``model_checks``: types, ranges, finiteness, plausibility of the calibration, architecture
against the weights' shapes before anything is allocated), and, where a site sets
``XSCREEN_MODEL_KEY``, a keyed signature (``model_checks.signature``). A file that fails any of these
checks raises ``ModelError(path, fault)``.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xscreen.atomic import atomic_path
from xscreen.config import Calibration, NetConfig, PatchConfig, Preprocess, TrainConfig, from_dict, to_dict
from xscreen.model_checks import check_consistency, check_fields, check_tensors, shapes_only
from xscreen.model_checks.known_threat import KT_PREFIX, KnownThreatMeta, head_network
from xscreen.model_checks.signature import signature_text, sign, site_key, verify
from xscreen.network import Discriminator, build_generator

FORMAT = "xscreen-model/1"
_PREFIXES = ("generator.", "discriminator.")


class ModelError(Exception):
    """A model file that cannot be used. ``str(err)`` is '<file>: <fault>'."""

    def __init__(self, path: str | Path, fault: str):
        self.path = str(path)
        self.fault = fault
        super().__init__(f"{self.path}: {fault}")


@dataclass(frozen=True)
class ModelCard:
    name: str = ""
    description: str = ""
    created: str = ""  # ISO 8601 UTC
    seed: int = 0
    data_manifest_sha256: str = ""
    n_train_patches: int = 0
    n_val_patches: int = 0
    n_train_scans: int = 0
    n_val_scans: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    train_seconds: float = 0.0
    command: str = ""
    evaluation: dict[str, Any] = field(default_factory=dict)
    # one entry per calibration written (alarm.history_entry): version, time, source, rates
    calibration_history: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ModelMeta:
    net: NetConfig
    preprocess: Preprocess
    patch: PatchConfig
    train: TrainConfig
    calibration: Calibration | None
    card: ModelCard
    known_threat: KnownThreatMeta | None = None  # the optional known-threat head (issue 29), tensors known_threat.*

    def to_json(self) -> str:
        d = to_dict(self)
        if d["known_threat"] is None:  # a model without a head is written as before (older readers)
            del d["known_threat"]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelMeta":
        raw = json.loads(text)
        cal = raw.get("calibration")
        return cls(net=from_dict(NetConfig, raw["net"]), preprocess=from_dict(Preprocess, raw["preprocess"]),
                   patch=from_dict(PatchConfig, raw["patch"]), train=from_dict(TrainConfig, raw["train"]),
                   calibration=None if cal is None else from_dict(Calibration, cal),
                   card=from_dict(ModelCard, raw["card"]),
                   known_threat=None if raw.get("known_threat") is None
                   else from_dict(KnownThreatMeta, raw["known_threat"]))


@dataclass
class LoadedModel:
    generator: nn.Module  # network.Generator, or NestedGenerator for NetConfig.generator "unetpp"
    discriminator: Discriminator
    meta: ModelMeta
    model_id: str
    checksum: str
    path: Path
    weights_id: str = ""  # sha256 of the tensors alone: the same across recalibrations of one network
    known_threat: nn.Module | None = None  # the known-threat head (meta.known_threat), eval mode


def library_versions() -> dict[str, str]:
    import numpy
    import safetensors

    from xscreen import __version__
    return {"xscreen": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _checksum(tensors: dict[str, torch.Tensor], meta_json: str) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().data if t.numel() else b"")
    h.update(meta_json.encode())
    return h.hexdigest()


def _flat_state(generator: nn.Module, discriminator: nn.Module) -> dict[str, torch.Tensor]:
    """Both state dicts as one flat dict of contiguous CPU tensors (safetensors needs contiguous,
    unshared storage; channels_last weights are made contiguous here)."""
    out = {}
    for prefix, module in zip(_PREFIXES, (generator, discriminator)):
        module = getattr(module, "module", module)  # unwrap DistributedDataParallel
        for k, v in module.state_dict().items():
            out[prefix + k] = v.detach().to("cpu").contiguous().clone()
    return out


def _write(path: Path, tensors: dict[str, torch.Tensor], meta: ModelMeta) -> str:
    from safetensors.torch import save_file

    try:  # what loading would refuse is never written (e.g. a calibration no screening could use)
        check_fields(meta)
        check_consistency(meta)
    except ValueError as exc:
        raise ValueError(f"{path}: not written, the model file would be refused on load: {exc}") from None
    meta_json = meta.to_json()
    checksum = _checksum(tensors, meta_json)
    header = {"xscreen_format": FORMAT, "meta": meta_json, "checksum": checksum}
    key = site_key()  # a site that requires signed files signs every file it writes
    if key is not None:
        header.update(sign(checksum, key))
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return checksum


def save_model(path: str | Path, generator: nn.Module, discriminator: nn.Module, meta: ModelMeta,
               known_threat: nn.Module | None = None) -> str:
    """Write the model file atomically; returns its checksum."""
    tensors = _flat_state(generator, discriminator)
    if known_threat is not None:  # the head's weights beside G and D; meta.known_threat describes it
        tensors.update({KT_PREFIX + k: v.detach().to("cpu").contiguous().clone()
                        for k, v in known_threat.state_dict().items()})
    return _write(Path(path), tensors, meta)


def _read(path: Path, signed: bool = True) -> tuple[dict[str, torch.Tensor], ModelMeta, str]:
    """Tensors, meta and checksum of a verified file; ModelError on any fault. ``signed`` False:
    the site signature is not required (sign_model, which adds it)."""
    from safetensors import safe_open

    if not path.is_file():
        raise ModelError(path, "no such model file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types for every malformed layout
        raise ModelError(path, f"not a readable model file (truncated or not safetensors): {exc}") from None
    if header.get("xscreen_format") != FORMAT:
        found = header.get("xscreen_format", "none")
        raise ModelError(path, f"not an xscreen model file (format {found!r}, expected {FORMAT!r})")
    if "meta" not in header or "checksum" not in header:
        raise ModelError(path, "model file lacks its metadata or checksum")
    if not any(k.startswith(_PREFIXES[0]) for k in tensors) or not any(k.startswith(_PREFIXES[1]) for k in tensors):
        raise ModelError(path, "model file lacks generator or discriminator weights")
    if _checksum(tensors, header["meta"]) != header["checksum"]:
        raise ModelError(path, "checksum mismatch: the file was modified or corrupted")
    try:
        fault = verify(header, header["checksum"], site_key()) if signed else ""
    except ValueError as exc:
        raise ModelError(path, str(exc)) from None
    if fault:
        raise ModelError(path, fault)
    try:
        check_tensors(tensors)
    except ValueError as exc:
        raise ModelError(path, f"invalid weights: {exc}") from None
    return tensors, _parse_meta(path, header["meta"]), header["checksum"]


def _parse_meta(path: Path, text: str) -> ModelMeta:
    """The header's ModelMeta with every field checked (model_checks); ModelError otherwise."""
    try:
        meta = ModelMeta.from_json(text)
        check_fields(meta)
        check_consistency(meta)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise ModelError(path, f"invalid model metadata: {exc}") from None
    return meta


def _build(path: Path, tensors: dict[str, torch.Tensor], meta: ModelMeta) -> tuple[nn.Module, Discriminator]:
    _check_shapes(path, tensors, meta)
    g, d = build_generator(meta.net), Discriminator(meta.net)
    for prefix, module in zip(_PREFIXES, (g, d)):
        part = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(part, strict=True)
        except RuntimeError as exc:
            raise ModelError(path, f"weights do not match the recorded architecture: {exc}") from None
    return g.eval(), d.eval()


def _check_shapes(path: Path, tensors: dict[str, torch.Tensor], meta: ModelMeta) -> None:
    """The recorded architecture's weight shapes must be the file's, compared on the meta device
    (shapes without storage): a header claiming a huge network costs nothing to refuse, and a
    network that passes is no bigger than the weights already read."""
    try:
        with shapes_only():
            nets = build_generator(meta.net), Discriminator(meta.net)
    except ValueError as exc:
        raise ModelError(path, f"unsupported architecture: {exc}") from None
    want = {prefix + k: tuple(v.shape) for prefix, net in zip(_PREFIXES, nets)
            for k, v in net.state_dict().items()}
    if meta.known_threat is not None:
        with shapes_only():
            head = head_network(meta.net, meta.known_threat)
        want.update({KT_PREFIX + k: tuple(v.shape) for k, v in head.state_dict().items()})
    have = {k: tuple(v.shape) for k, v in tensors.items()}
    if want != have:
        diff = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
        raise ModelError(path, f"weights do not match the recorded architecture ({len(diff)} "
                         f"tensor(s) differ, e.g. {diff[0]}: file {have.get(diff[0])}, "
                         f"architecture {want.get(diff[0])})")


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> LoadedModel:
    """Load and verify a model file; both networks returned in eval mode on ``map_location``."""
    path = Path(path)
    tensors, meta, checksum = _read(path)
    g, d = _build(path, tensors, meta)
    name = meta.card.name or path.stem
    return LoadedModel(g.to(map_location), d.to(map_location), meta, f"{name}-{checksum[:12]}", checksum, path,
                       _checksum(tensors, ""), _build_head(path, tensors, meta, map_location))


def _build_head(path: Path, tensors: dict[str, torch.Tensor], meta: ModelMeta, map_location) -> nn.Module | None:
    """The known-threat head (shapes already checked against meta.known_threat), or None."""
    if meta.known_threat is None:
        return None
    head = head_network(meta.net, meta.known_threat)
    try:
        head.load_state_dict({k[len(KT_PREFIX):]: v for k, v in tensors.items() if k.startswith(KT_PREFIX)})
    except RuntimeError as exc:
        raise ModelError(path, f"known-threat weights do not match their record: {exc}") from None
    return head.eval().to(map_location)


def read_meta(path: str | Path) -> tuple[ModelMeta, str]:
    """(meta, checksum) of a verified model file, without building the networks."""
    _, meta, checksum = _read(Path(path))
    return meta, checksum


def sign_model(path: str | Path) -> str:
    """Sign a model file with the site key (XSCREEN_MODEL_KEY must be set); every other check still
    applies. Returns the key id."""
    key = site_key()
    if key is None:
        raise ValueError("XSCREEN_MODEL_KEY is not set: name the site's model key file to sign with")
    path = Path(path)
    tensors, meta, _ = _read(path, signed=False)
    _write(path, tensors, meta)
    return sign("", key)["signature_key"]


def signature_status(path: str | Path) -> str:
    """Whether a (verified) model file is signed, and whether the signature was checked."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        return signature_text(fh.metadata() or {}, site_key())


def update_model_meta(path: str | Path, *, calibration: Calibration | None = None,
                      evaluation: dict[str, Any] | None = None, train: TrainConfig | None = None,
                      **card_changes: Any) -> str:
    """Rewrite calibration, the card's evaluation dict, the training config (e.g. the score's λ,
    which scoring reads from it) and/or card fields; re-checksummed, atomic.

    Returns the new checksum. Unknown card fields raise ValueError.
    """
    path = Path(path)
    tensors, meta, _ = _read(path)
    names = {f.name for f in dataclasses.fields(ModelCard)}
    unknown = sorted(set(card_changes) - names)
    if unknown:
        raise ValueError(f"unknown model card field(s): {', '.join(unknown)}")
    if evaluation is not None:
        card_changes["evaluation"] = {**meta.card.evaluation, **evaluation}
    card = dataclasses.replace(meta.card, **card_changes)
    meta = dataclasses.replace(meta, card=card, calibration=calibration or meta.calibration,
                               train=train or meta.train)
    return _write(path, tensors, meta)
