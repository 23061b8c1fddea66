"""The fictional threat image (FTI): a threat imaged alone, and its one-file format.

An FTI holds per-channel transmission T in (0, 1] (C, h, w) float32 ([high, low] for dual energy; for
pseudo-colour RGB exports an *approximate* per-channel transmission, value / background), a footprint
mask (h, w) bool, a category, a name, its pixel pitch (mm) and its source. FTIs generated from the
physics also carry their areal densities (M, h, w) g/cm^2 over ``physics.MATERIALS`` so projection can
render them exactly (beam hardening included) instead of multiplying transmissions.

File: ``<id>.npz`` (numpy zip, written uncompressed-header/compressed-data by ``np.savez_compressed``)
with arrays ``transmission``, ``mask``, optional ``areal`` and ``meta`` (UTF-8 JSON as uint8). It is
read as untrusted: member names and uncompressed sizes are checked from the zip directory before any
array is decoded, ``allow_pickle=False``, every field is validated, and the id is recomputed from the
content - a file whose content does not hash to its declared id is refused. ``name`` is display text,
never a path.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xscreen.config import CHANNELS
from xscreen.physics import MATERIALS

CATEGORIES = ("handgun", "gun_part", "knife", "ied", "other")
SOURCES = ("synth", "import", "rgb-crop")
MAX_SIDE = 2048  # px; a threat at 1 mm pitch is well under 2 m
MAX_MEMBER_BYTES = 64 << 20  # uncompressed bytes of one array: refuses zip bombs before decoding
_MEMBERS = {"transmission.npy", "mask.npy", "areal.npy", "meta.npy"}
_MATERIAL_NAMES = [m.name for m in MATERIALS]
FORMAT = "xscreen-fti"
VERSION = 1


class TipError(Exception):
    """A TIP library, FTI file or projection request that cannot be used. ``str`` names the file and fault."""

    def __init__(self, where: str | Path, fault: str):
        self.where = str(where)
        self.fault = fault
        super().__init__(f"{self.where}: {fault}")


@dataclass(frozen=True, eq=False)
class FTI:
    """One threat image. ``transmission`` (C, h, w) float32 in (0, 1]; ``mask`` (h, w) bool;
    ``areal`` (M, h, w) float32 g/cm^2 or None; ``photons``: air-level photon count of the scan it
    was imported from (its own noise), 0 for noise-free (generated) FTIs."""

    name: str
    category: str
    kind: str  # "dual" | "rgb" | "gray": must match the scan it is projected into
    transmission: np.ndarray
    mask: np.ndarray
    pitch_mm: float
    source: str
    areal: np.ndarray | None = None
    photons: float = 0.0
    fti_id: str = field(init=False)

    def __post_init__(self) -> None:
        check_fields(self, "FTI")
        object.__setattr__(self, "fti_id", content_id(self))

    @property
    def height(self) -> int:
        return int(self.mask.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[1])

    @property
    def noisy(self) -> bool:
        return self.photons > 0


def content_id(f: FTI) -> str:
    """16 hex of SHA-256 over what the FTI *is* (pixels, category, kind, pitch, source), not its name."""
    h = hashlib.sha256()
    h.update(json.dumps([f.category, f.kind, round(float(f.pitch_mm), 6), f.source, float(f.photons)]).encode())
    for a in (f.transmission, f.mask.astype(np.uint8), f.areal):
        if a is not None:
            h.update(str(a.shape).encode())
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def check_fields(f: FTI, where: str | Path) -> None:
    """Raise TipError naming ``where`` unless every field of ``f`` is valid."""
    if f.category not in CATEGORIES:
        raise TipError(where, f"unknown category {f.category!r} (one of {', '.join(CATEGORIES)})")
    if f.kind not in CHANNELS:
        raise TipError(where, f"unknown input kind {f.kind!r} (dual, rgb or gray)")
    if f.source not in SOURCES:
        raise TipError(where, f"unknown source {f.source!r} (one of {', '.join(SOURCES)})")
    if not isinstance(f.name, str) or not 0 < len(f.name) <= 200:
        raise TipError(where, "name must be text of 1-200 characters")
    if not (isinstance(f.pitch_mm, (int, float)) and math.isfinite(f.pitch_mm) and 0.01 <= f.pitch_mm <= 100):
        raise TipError(where, f"pixel pitch {f.pitch_mm!r} mm is not within 0.01..100")
    if not (math.isfinite(f.photons) and f.photons >= 0):
        raise TipError(where, f"photons {f.photons!r} must be 0 (noise-free) or a positive count")
    t, m = f.transmission, f.mask
    if not (isinstance(t, np.ndarray) and t.dtype == np.float32 and t.ndim == 3 and t.shape[0] == CHANNELS[f.kind]):
        raise TipError(where, f"transmission must be float32 ({CHANNELS[f.kind]}, h, w) for kind {f.kind}")
    if not (isinstance(m, np.ndarray) and m.dtype == bool and m.shape == t.shape[1:]):
        raise TipError(where, f"mask must be bool {t.shape[1:]} (the transmission's size)")
    if not (1 <= m.shape[0] <= MAX_SIDE and 1 <= m.shape[1] <= MAX_SIDE):
        raise TipError(where, f"size {m.shape[1]}x{m.shape[0]} px is outside 1..{MAX_SIDE}")
    if not m.any():
        raise TipError(where, "empty footprint mask")
    if not (np.isfinite(t).all() and (t > 0).all() and (t <= 1).all()):
        raise TipError(where, "transmission must be finite and within (0, 1]")
    if f.areal is not None:
        a = f.areal
        if not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.shape == (len(MATERIALS),) + m.shape):
            raise TipError(where, f"areal densities must be float32 ({len(MATERIALS)}, h, w)")
        if not (np.isfinite(a).all() and (a >= 0).all() and a.max() < 1000):
            raise TipError(where, "areal densities must be finite, >= 0 and < 1000 g/cm^2")


def _meta(f: FTI) -> dict:
    return {"format": FORMAT, "version": VERSION, "id": f.fti_id, "name": f.name, "category": f.category,
            "kind": f.kind, "pitch_mm": float(f.pitch_mm), "source": f.source, "photons": float(f.photons),
            "materials": _MATERIAL_NAMES if f.areal is not None else None}


def fti_bytes(f: FTI) -> bytes:
    """The file content of ``f`` (npz bytes)."""
    arrays = {"transmission": f.transmission, "mask": f.mask.astype(np.uint8),
              "meta": np.frombuffer(json.dumps(_meta(f)).encode("utf-8"), np.uint8)}
    if f.areal is not None:
        arrays["areal"] = f.areal
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def read_fti(path: str | Path, *, max_bytes: int = 128 << 20) -> FTI:
    """One FTI file -> FTI, validated (see module docstring). Raises TipError naming ``path``."""
    path = Path(path)
    try:
        if not path.is_file():
            raise TipError(path, "file not found" if not path.exists() else "not a regular file")
        if path.stat().st_size > max_bytes:
            raise TipError(path, f"file is larger than {max_bytes} bytes")
        data = path.read_bytes()
        return parse_fti(data, path)
    except OSError as exc:
        raise TipError(path, f"cannot read ({exc.strerror or exc})") from exc


def parse_fti(data: bytes, where: str | Path) -> FTI:
    """npz bytes -> FTI; every check of ``read_fti`` except the file-system ones."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            if len(names) != len(set(names)) or not set(names) <= _MEMBERS or "meta.npy" not in names:
                raise TipError(where, f"not an FTI file (members {sorted(names)[:6]})")
            if any(i.file_size > MAX_MEMBER_BYTES for i in infos):
                raise TipError(where, f"an array declares more than {MAX_MEMBER_BYTES} bytes")
            for name in names:
                with z.open(name) as member:
                    _check_header(member, name, where)
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except TipError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise TipError(where, f"corrupt or foreign FTI file ({type(exc).__name__}: {str(exc)[:120]})") from exc
    return _from_arrays(arrays, where)


_DTYPES = {"transmission.npy": np.float32, "areal.npy": np.float32, "mask.npy": np.uint8, "meta.npy": np.uint8}


def _check_header(member, name: str, where: str | Path) -> None:
    """The .npy header's declared dtype and shape, checked before numpy allocates anything for them
    (numpy sizes its array from the header, not from the data that follows)."""
    version = np.lib.format.read_magic(member)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(member)
    if dtype != np.dtype(_DTYPES[name]) or not 1 <= len(shape) <= 3:
        raise TipError(where, f"{name}: declared {dtype} {shape}, expected {np.dtype(_DTYPES[name])} of 1-3 axes")
    if int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > MAX_MEMBER_BYTES or min(shape) < 0:
        raise TipError(where, f"{name}: declared shape {shape} is over {MAX_MEMBER_BYTES} bytes")


def _from_arrays(arrays: dict[str, np.ndarray], where: str | Path) -> FTI:
    meta_raw = arrays.get("meta")
    try:
        if meta_raw is None or meta_raw.dtype != np.uint8 or meta_raw.ndim != 1 or meta_raw.size > 65536:
            raise ValueError("meta must be short UTF-8 JSON bytes")
        meta = json.loads(meta_raw.tobytes().decode("utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError(f"not an {FORMAT} v{VERSION} file")
        if "areal" in arrays and meta.get("materials") != _MATERIAL_NAMES:
            raise ValueError("areal densities over another material list than this version's")
        mask = arrays["mask"]
        if mask.dtype != np.uint8 or not np.isin(mask, (0, 1)).all():
            raise ValueError("mask must be uint8 0/1")
        f = FTI(name=meta["name"], category=meta["category"], kind=meta["kind"],
                transmission=arrays["transmission"], mask=mask.astype(bool), pitch_mm=meta["pitch_mm"],
                source=meta["source"], areal=arrays.get("areal"), photons=float(meta["photons"]))
    except TipError as exc:
        raise TipError(where, exc.fault) from exc
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)[:160]
        raise TipError(where, f"invalid FTI file: {detail}") from exc
    if meta.get("id") != f.fti_id:
        raise TipError(where, f"declared id {str(meta.get('id'))[:40]!r} does not match its content ({f.fti_id})")
    return f
