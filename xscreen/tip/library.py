"""A TIP library: a folder with one ``<id>.npz`` file per FTI and ``index.json`` listing them.

The index is untrusted like the files: its file names must be exactly ``<16 hex>.npz`` (a name in a
file is never a path), each entry's id, category, kind and source must agree with the file it names
(the file's id is recomputed from its content), and anything that disagrees refuses the library with
the file and the fault named. Sites add FTIs with ``Library.add`` (file first, then the index, both
atomic), so a crash never leaves an index naming a missing file.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from xscreen.atomic import atomic_write_bytes, atomic_write_text
from xscreen.tip.fti import CATEGORIES, FTI, TipError, fti_bytes, read_fti

INDEX = "index.json"
INDEX_FORMAT = "xscreen-tip-library"
MAX_INDEX_BYTES = 8 << 20
MAX_FTIS = 20000
_FILE = re.compile(r"^[0-9a-f]{16}\.npz$")
_AGREE = ("category", "kind", "source")


@dataclass(frozen=True)
class IndexEntry:
    fti_id: str
    file: str
    name: str
    category: str
    kind: str
    source: str


@dataclass
class Library:
    """The FTIs of one library folder, in index order. ``ftis`` holds validated FTIs."""

    path: Path
    ftis: list[FTI] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ftis)

    def get(self, fti_id: str) -> FTI:
        for f in self.ftis:
            if f.fti_id == fti_id:
                return f
        raise TipError(self.path, f"no FTI with id {fti_id!r}")

    def categories(self) -> list[str]:
        return [c for c in CATEGORIES if any(f.category == c for f in self.ftis)]

    def pick(self, rng: np.random.Generator, categories: Sequence[str] | None = None,
             kind: str | None = None) -> FTI:
        """A random FTI: first a category (uniform over those asked for and present), then an FTI of it,
        so a library rich in knives does not make knives the only TIP. ``kind`` keeps only FTIs of
        that input kind (the scan's)."""
        wanted = list(categories) if categories else list(CATEGORIES)
        bad = [c for c in wanted if c not in CATEGORIES]
        if bad:
            raise TipError(self.path, f"unknown categor{'y' if len(bad) == 1 else 'ies'} {', '.join(bad)}")
        pool = [f for f in self.ftis if f.category in wanted and (kind is None or f.kind == kind)]
        if not pool:
            raise TipError(self.path, f"no FTI of kind {kind or 'any'} in categories {', '.join(wanted)}")
        cats = [c for c in CATEGORIES if any(f.category == c for f in pool)]
        cat = cats[int(rng.integers(len(cats)))]
        choices = [f for f in pool if f.category == cat]
        return choices[int(rng.integers(len(choices)))]

    def add(self, fti: FTI) -> bool:
        """Store ``fti`` in the folder and the index; False if an FTI with its id is already there."""
        if any(f.fti_id == fti.fti_id for f in self.ftis):
            return False
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.path / f"{fti.fti_id}.npz", fti_bytes(fti))
        self.ftis.append(fti)
        self._write_index()
        return True

    def _write_index(self) -> None:
        entries = [{"id": f.fti_id, "file": f"{f.fti_id}.npz", "name": f.name, "category": f.category,
                    "kind": f.kind, "source": f.source, "pitch_mm": f.pitch_mm} for f in self.ftis]
        atomic_write_text(self.path / INDEX, json.dumps({"format": INDEX_FORMAT, "version": 1,
                                                         "ftis": entries}, indent=1))


def new_library(path: str | Path) -> Library:
    """An empty library at ``path`` (folder created, index written); refuses a folder holding one."""
    path = Path(path)
    if (path / INDEX).exists():
        raise TipError(path, "already holds a TIP library (add to it instead)")
    if path.exists() and not path.is_dir():
        raise TipError(path, "exists and is not a folder")
    lib = Library(path)
    path.mkdir(parents=True, exist_ok=True)
    lib._write_index()
    return lib


def open_or_create(path: str | Path) -> Library:
    path = Path(path)
    return load_library(path) if (path / INDEX).exists() else new_library(path)


def load_library(path: str | Path) -> Library:
    """Read and validate a library folder (index and every FTI file). Raises TipError."""
    path = Path(path)
    if not path.is_dir():
        raise TipError(path, "library folder not found" if not path.exists() else "not a folder")
    entries = read_index(path / INDEX)
    lib = Library(path)
    for e in entries:
        f = read_fti(path / e.file)
        if f.fti_id != e.fti_id:
            raise TipError(path / INDEX, f"entry {e.fti_id} names a file whose content is FTI {f.fti_id}")
        for key in _AGREE:
            if getattr(f, key) != getattr(e, key):
                raise TipError(path / INDEX, f"entry {e.fti_id}: {key} {getattr(e, key)!r} disagrees with "
                                             f"the file ({getattr(f, key)!r})")
        lib.ftis.append(f)
    return lib


def read_index(index: Path) -> list[IndexEntry]:
    """index.json -> entries, each checked for shape; the file names checked against ``<id>.npz``."""
    try:
        if not index.is_file():
            raise TipError(index, "no index.json: not a TIP library (xscreen tip build makes one)")
        if index.stat().st_size > MAX_INDEX_BYTES:
            raise TipError(index, f"index larger than {MAX_INDEX_BYTES} bytes")
        doc = json.loads(index.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TipError(index, f"cannot read ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TipError(index, f"not valid JSON ({str(exc)[:100]})") from exc
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT or not isinstance(doc.get("ftis"), list):
        raise TipError(index, f"not an {INDEX_FORMAT} index")
    if len(doc["ftis"]) > MAX_FTIS:
        raise TipError(index, f"more than {MAX_FTIS} entries")
    return _entries(doc["ftis"], index)


def _entries(raw: Iterable[object], index: Path) -> list[IndexEntry]:
    out: list[IndexEntry] = []
    seen: set[str] = set()
    for k, e in enumerate(raw):
        try:
            entry = IndexEntry(str(e["id"]), str(e["file"]), str(e["name"]), str(e["category"]),
                               str(e["kind"]), str(e["source"]))
        except (TypeError, KeyError) as exc:
            raise TipError(index, f"entry {k} is missing a field ({exc})") from exc
        if not _FILE.match(entry.file) or entry.file != f"{entry.fti_id}.npz":
            raise TipError(index, f"entry {k}: file {entry.file[:60]!r} is not '<id>.npz' for its id")
        if entry.fti_id in seen:
            raise TipError(index, f"entry {k}: id {entry.fti_id} listed twice")
        seen.add(entry.fti_id)
        out.append(entry)
    return out
