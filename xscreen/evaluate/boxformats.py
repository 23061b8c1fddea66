"""Box annotations as other tools write them: xscreen/per-file JSON, one JSON for a whole set, COCO,
Pascal VOC XML and YOLO txt, all read into one form (``Box``) keyed by image stem.

Annotation files are untrusted: a name inside one (COCO ``file_name``, VOC ``<filename>``, a CSV
cell) is only ever a lookup key, reduced to its stem and never opened; files are size-checked
before they are read; XML is parsed with defusedxml (no DTDs, no entity expansion).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal

from xscreen.scan import SCAN_SUFFIXES, ScanError

BoxFormat = Literal["xywh", "xyxy"]
BOX_FORMATS = ("xywh", "xyxy")
MAX_SET_FILE_BYTES = 256 << 20  # one file for a whole set (COCO's val2017 is ~25 MB)
MAX_IMAGE_FILE_BYTES = 4 << 20  # one file for one image
MAX_BOXES = 10_000  # per image; more is not an annotation of a bag
_IMAGE_SUFFIXES = set(SCAN_SUFFIXES) | {".gif", ".webp", ".jp2", ".j2k", ".tga"}
_TYPE_KEYS = ("type", "name", "class", "category", "label")
_BOX_KEYS = ("box", "bbox", "bndbox")
_LIST_KEYS = ("threats", "boxes", "objects", "annotations")
_NAME_KEYS = ("stem", "file_stem", "filename", "file_name", "file", "image", "image_name", "image_id", "name")


@dataclass(frozen=True)
class Box:
    """One annotated threat. ``xyxy`` (x0, y0, x1, y1), x1/y1 exclusive, in pixels, or in fractions of
    the image when ``normalized`` (YOLO); None when the file gives only the type. ``image_size``
    (W, H): the image size the annotation declares (COCO, VOC), checked against the scan."""

    type: str
    xyxy: tuple[float, float, float, float] | None = None
    normalized: bool = False
    image_size: tuple[int, int] | None = None


def stem_of(name: Any) -> str:
    """'imgs\\\\a/bag.7.png' -> 'bag.7': the last component of a name from inside a file, without an
    image extension. A lookup key only; it is never joined to a folder or opened."""
    base = re.split(r"[\\/]", str(name).strip())[-1]
    dot = base.rfind(".")
    return base[:dot] if dot > 0 and base[dot:].lower() in _IMAGE_SUFFIXES else base


def read_text(path: Path, limit: int) -> str:
    """The file's text, refused unread when larger than ``limit`` bytes."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise ScanError(path, f"annotation file is {size:,} bytes; the limit is {limit:,}")
        return path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise ScanError(path, f"cannot read the annotation file ({exc.strerror or exc})") from exc


def read_json(path: Path, limit: int) -> Any:
    try:
        return json.loads(read_text(path, limit))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ScanError(path, f"cannot read the boxes file ({exc})") from exc


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"not a number: {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    return number


def to_xyxy(values: Iterable[Any], fmt: BoxFormat) -> tuple[float, float, float, float]:
    """Four numbers in the declared format -> (x0, y0, x1, y1); a negative width or height is refused
    (often the sign of a wrongly declared format)."""
    v = [_number(x) for x in values]
    if len(v) != 4:
        raise ValueError(f"a box needs 4 numbers, got {len(v)}")
    x0, y0, a, b = v
    x1, y1 = (x0 + a, y0 + b) if fmt == "xywh" else (a, b)
    if x1 < x0 or y1 < y0:
        raise ValueError(f"box {v} has a negative size as {fmt}")
    return x0, y0, x1, y1


def _box_value(raw: Any, fmt: BoxFormat) -> tuple[float, float, float, float]:
    """A box as a list of 4 numbers (in ``fmt``) or an object whose keys say the format."""
    if isinstance(raw, dict):
        low = {str(k).lower(): v for k, v in raw.items()}
        if {"xmin", "ymin", "xmax", "ymax"} <= low.keys():
            return to_xyxy([low["xmin"], low["ymin"], low["xmax"], low["ymax"]], "xyxy")
        if {"x0", "y0", "x1", "y1"} <= low.keys():
            return to_xyxy([low["x0"], low["y0"], low["x1"], low["y1"]], "xyxy")
        w, h = low.get("w", low.get("width")), low.get("h", low.get("height"))
        return to_xyxy([low.get("x"), low.get("y"), w, h], "xywh")
    if isinstance(raw, (list, tuple)):
        return to_xyxy(raw, fmt)
    raise ValueError(f"not a box: {raw!r}")


def json_box(item: Any, fmt: BoxFormat) -> Box:
    """One threat from a JSON item: its type (``type``/``name``/``class``/``category``/``label``) and
    optional box (``box``/``bbox``/``bndbox``); a bare list of 4 numbers is a box of type 'threat'."""
    if isinstance(item, (list, tuple)):
        return Box("threat", to_xyxy(item, fmt))
    if not isinstance(item, dict):
        return Box("threat")
    kind = next((str(item[k]) for k in _TYPE_KEYS if item.get(k) not in (None, "")), "threat")
    raw = next((item[k] for k in _BOX_KEYS if item.get(k) is not None), None)
    return Box(kind, None if raw is None else _box_value(raw, fmt))


def declared_format(data: Any, default: BoxFormat, path: Path) -> BoxFormat:
    """A JSON file's own ``box_format`` wins over the command line's: it is the file's statement."""
    fmt = data.get("box_format", default) if isinstance(data, dict) else default
    if fmt not in BOX_FORMATS:
        raise ScanError(path, f"box_format '{fmt}' is not one of {', '.join(BOX_FORMATS)}")
    return fmt


def json_boxes(items: Any, fmt: BoxFormat, path: Path) -> list[Box]:
    """A list of threats (or an object holding one under threats/boxes/objects/annotations)."""
    if isinstance(items, dict):
        items = next((items[k] for k in _LIST_KEYS if isinstance(items.get(k), list)), None)
    if not isinstance(items, list):
        raise ScanError(path, "boxes file holds no list of threats")
    if len(items) > MAX_BOXES:
        raise ScanError(path, f"{len(items):,} boxes for one image; the limit is {MAX_BOXES:,}")
    try:
        return [json_box(item, fmt) for item in items]
    except ValueError as exc:
        raise ScanError(path, f"bad box ({exc})") from exc


def record_name(record: dict) -> str | None:
    """The image a record of a whole-set JSON or CSV belongs to, as a stem."""
    value = next((record[k] for k in _NAME_KEYS if record.get(k) not in (None, "")), None)
    return None if value is None else stem_of(value)
