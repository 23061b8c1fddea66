"""A box source (a folder of per-image files, or one file for the whole set) -> boxes by image stem.

Per image: ``<stem>.json`` (xscreen synth's layout, or any list of typed boxes), ``<stem>.xml``
(Pascal VOC), ``<stem>.txt`` (YOLO: class cx cy w h, normalised). One file for the set: COCO JSON,
a JSON object {image name: boxes}, or a JSON list of records naming their image. A per-image file
that cannot be read is listed as a problem and skipped; a whole-set file that cannot be read fails.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xscreen.evaluate.boxformats import (MAX_BOXES, MAX_IMAGE_FILE_BYTES, MAX_SET_FILE_BYTES, Box, BoxFormat,
                                         declared_format, json_box, json_boxes, read_json, read_text,
                                         record_name, stem_of, to_xyxy)
from xscreen.scan import ScanError

_NAMES_FILES = ("classes.txt", "obj.names", "data.yaml", "dataset.yaml")
_RESERVED = {"box_format", "format", "info", "description", "version", "licenses", "categories"}


@dataclass(frozen=True)
class BoxSet:
    boxes: dict[str, tuple[Box, ...]]
    kind: str  # what was read, for the match report: "COCO JSON", "Pascal VOC XML", ...
    problems: tuple[str, ...] = ()


def read_box_source(path: Path, fmt: BoxFormat) -> BoxSet:
    """Boxes from a folder of per-image files or from one file (by its content)."""
    if path.is_dir():
        return _read_folder(path, fmt)
    if not path.is_file():
        raise ScanError(path, "no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".xml":
        name, boxes = voc_boxes(path)
        return BoxSet(_with_alias({path.stem: boxes}, path.stem, name), "Pascal VOC XML")
    if suffix == ".txt":
        return BoxSet({path.stem: tuple(yolo_boxes(path, class_names(path.parent)))}, "YOLO txt")
    data = read_json(path, MAX_SET_FILE_BYTES)
    if isinstance(data, dict) and all(isinstance(data.get(k), list) for k in ("images", "annotations")):
        return BoxSet(coco_boxes(data, path), "COCO JSON")
    return BoxSet(_set_json(data, declared_format(data, fmt, path), path), "box JSON")


def _read_folder(folder: Path, fmt: BoxFormat) -> BoxSet:
    out: dict[str, tuple[Box, ...]] = {}
    kinds: set[str] = set()
    problems: list[str] = []
    names: list[str] | None = None
    for f in sorted(folder.iterdir()):
        suffix = f.suffix.lower()
        if f.name.startswith(".") or f.name.lower() in _NAMES_FILES or suffix not in (".json", ".xml", ".txt"):
            continue
        try:
            if suffix == ".json":
                data = read_json(f, MAX_IMAGE_FILE_BYTES)
                out[f.stem] = tuple(json_boxes(data, declared_format(data, fmt, f), f))
                kinds.add("per-image JSON")
            elif suffix == ".xml":
                name, out[f.stem] = voc_boxes(f)
                _with_alias(out, f.stem, name)
                kinds.add("Pascal VOC XML")
            else:
                names = class_names(folder) if names is None else names
                out[f.stem] = tuple(yolo_boxes(f, names))
                kinds.add("YOLO txt")
        except ScanError as exc:
            problems.append(str(exc))
    return BoxSet(out, " + ".join(sorted(kinds)) or "no box files", tuple(problems))


def _with_alias(out: dict, stem: str, name: str | None) -> dict:
    """VOC files name their image inside; index under that name too, when it is a different one
    (``out`` is updated in place and returned)."""
    if name and name != stem and name not in out:
        out[name] = out[stem]
    return out


def _set_json(data: Any, fmt: BoxFormat, path: Path) -> dict[str, tuple[Box, ...]]:
    """{image name: boxes} or [records each naming its image, with a box list or one box each]."""
    grouped: dict[str, list[Box]] = defaultdict(list)
    if isinstance(data, dict):
        for name, items in data.items():
            if name not in _RESERVED:
                grouped[stem_of(name)] += json_boxes(items, fmt, path)
    elif isinstance(data, list):
        for record in data:
            name = record_name(record) if isinstance(record, dict) else None
            if name is None:
                raise ScanError(path, "a record names no image (stem, file, filename, image ...)")
            has_list = any(isinstance(record.get(k), list) for k in ("threats", "boxes", "objects", "annotations"))
            try:
                grouped[name] += json_boxes(record, fmt, path) if has_list else [json_box(record, fmt)]
            except ValueError as exc:
                raise ScanError(path, f"bad box for {name} ({exc})") from exc
    else:
        raise ScanError(path, "box JSON is neither an object of images nor a list of records")
    return _checked(grouped, path)


def _checked(grouped: dict[str, list[Box]], path: Path) -> dict[str, tuple[Box, ...]]:
    big = next((k for k, v in grouped.items() if len(v) > MAX_BOXES), None)
    if big is not None:
        raise ScanError(path, f"{len(grouped[big]):,} boxes for {big}; the limit is {MAX_BOXES:,}")
    return {k: tuple(v) for k, v in grouped.items()}


def coco_boxes(data: dict, path: Path) -> dict[str, tuple[Box, ...]]:
    """COCO detection JSON: bbox is [x, y, w, h] by the format's definition; the category name is
    the type. Images listed without annotations are matched with no boxes."""
    try:
        cats = {c["id"]: str(c.get("name") or c["id"]) for c in data.get("categories") or []}
        images = {im["id"]: (stem_of(im["file_name"]), _size(im)) for im in data["images"]}
        grouped: dict[str, list[Box]] = {stem: [] for stem, _ in images.values()}
        for a in data["annotations"]:
            stem, size = images[a["image_id"]]
            kind = cats.get(a.get("category_id"), "threat")
            grouped[stem].append(Box(kind, to_xyxy(a["bbox"], "xywh"), image_size=size))
    except (KeyError, TypeError, ValueError) as exc:
        raise ScanError(path, f"not a readable COCO file ({type(exc).__name__}: {exc})") from exc
    return _checked(grouped, path)


def _size(image: dict) -> tuple[int, int] | None:
    w, h = image.get("width"), image.get("height")
    return (int(w), int(h)) if isinstance(w, (int, float)) and isinstance(h, (int, float)) else None


def voc_boxes(path: Path) -> tuple[str | None, tuple[Box, ...]]:
    """(the image's stem from <filename>, boxes) of one Pascal VOC file. VOC pixel coordinates are
    1-based and inclusive, so xmin 1 .. xmax 10 is the first ten pixels (0 .. 10 here)."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        root = fromstring(read_text(path, MAX_IMAGE_FILE_BYTES), forbid_dtd=True)
        width, height = root.findtext("size/width"), root.findtext("size/height")
        size = (int(float(width)), int(float(height))) if width and height else None
        boxes = []
        for obj in root.iter("object"):
            b = obj.find("bndbox")
            coords = None if b is None else [b.findtext(k) for k in ("xmin", "ymin", "xmax", "ymax")]
            xyxy = None if coords is None else to_xyxy(coords, "xyxy")
            xyxy = xyxy and (xyxy[0] - 1, xyxy[1] - 1, xyxy[2], xyxy[3])
            boxes.append(Box((obj.findtext("name") or "threat").strip(), xyxy, image_size=size))
    except (ParseError, DefusedXmlException, ValueError, TypeError) as exc:
        raise ScanError(path, f"not a readable Pascal VOC file ({type(exc).__name__}: {exc})") from exc
    if len(boxes) > MAX_BOXES:
        raise ScanError(path, f"{len(boxes):,} boxes; the limit is {MAX_BOXES:,}")
    name = root.findtext("filename")
    return (stem_of(name) if name else None), tuple(boxes)


def yolo_boxes(path: Path, names: list[str]) -> list[Box]:
    """One box per line: class cx cy w h (fractions of the image), an optional confidence after; a
    segmentation line (class x1 y1 x2 y2 ...) becomes the box around its polygon."""
    boxes = []
    for n, line in enumerate(read_text(path, MAX_IMAGE_FILE_BYTES).splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            cls, values = int(float(parts[0])), [float(v) for v in parts[1:]]
            if len(values) in (4, 5):
                cx, cy, w, h = values[:4]
                xyxy = to_xyxy([cx - w / 2, cy - h / 2, w, h], "xywh")
            elif len(values) >= 6 and len(values) % 2 == 0:
                xs, ys = values[0::2], values[1::2]
                xyxy = to_xyxy([min(xs), min(ys), max(xs), max(ys)], "xyxy")
            else:
                raise ValueError(f"{len(values)} numbers after the class")
        except ValueError as exc:
            raise ScanError(path, f"line {n} is not a YOLO box ({exc})") from exc
        boxes.append(Box(names[cls] if 0 <= cls < len(names) else f"class {cls}", xyxy, normalized=True))
        if len(boxes) > MAX_BOXES:
            raise ScanError(path, f"more than {MAX_BOXES:,} boxes")
    return boxes


def class_names(folder: Path) -> list[str]:
    """YOLO class names by index: classes.txt / obj.names (one a line) or the ``names`` of a
    data.yaml, in the label folder or its parent; [] when there are none."""
    for where in (folder, folder.parent):
        for name in _NAMES_FILES:
            f = where / name
            if f.is_file():
                text = read_text(f, MAX_IMAGE_FILE_BYTES)
                return _yaml_names(text) if f.suffix == ".yaml" else [s.strip() for s in text.splitlines()
                                                                      if s.strip()]
    return []


def _yaml_names(text: str) -> list[str]:
    """``names`` of an Ultralytics data.yaml: a flow list, a block list or an index map. Read by
    pattern, not by a YAML library (which nothing else here needs)."""
    flow = re.search(r"^names:\s*\[(.*?)\]", text, re.M | re.S)
    if flow:
        return [n.strip().strip("'\"") for n in flow.group(1).split(",") if n.strip()]
    block = re.search(r"^names:\s*\n((?:[ \t]+.*\n?)+)", text, re.M)
    if not block:
        return []
    items = [ln.strip() for ln in block.group(1).splitlines() if ln.strip()]
    mapped = [re.match(r"^(\d+)\s*:\s*(.+)$", it) for it in items]
    if all(mapped):
        return [m.group(2).strip().strip("'\"") for m in sorted(mapped, key=lambda m: int(m.group(1)))]
    return [it.lstrip("-").strip().strip("'\"") for it in items if it.startswith("-")]
