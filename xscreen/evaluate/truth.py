"""Ground truth for evaluation: threat masks, threat types, and which patches count as threat.

Dataset layout (``xscreen synth``): ``masks/<stem>.png`` (0 background, k > 0 = the k-th threat of the
bag), ``boxes/<stem>.json`` (the threats' types and boxes, in mask-label order) and ``labels.csv``
(stem, label, threat_types). Other tools' layouts (mask names, COCO, VOC, YOLO, labels CSV
columns) are read by ``annotations`` and ``boxsets`` into the same masks and types.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from xscreen.scan import ScanError

# Column names that tools use for the image and for its threat types in a labels CSV ('label' is
# not among the types: xscreen synth and many sets use it for benign/threat).
STEM_COLUMNS = ("stem", "file_stem", "filename", "file_name", "file", "image", "image_name", "image_id",
                "img", "name", "scan", "scan_id", "bag", "bag_id", "id")
TYPE_COLUMNS = ("threat_types", "threat_type", "types", "type", "classes", "class", "categories", "category",
                "class_name", "object")

# A patch is a threat patch when the threat covers >= `overlap` of the patch (default 10 %), or
# when the patch holds at least half of a threat too small to cover that much of any patch.
INSTANCE_SHARE = 0.5


@dataclass(frozen=True)
class Instance:
    label: int  # value in the mask
    type: str
    area: int  # pixels


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8/uint16 instance mask; ScanError if unreadable or not the scan's size. The size
    is read from the header first, so a hostile file cannot make us decode a huge image."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            width, height = im.size
    except Exception as exc:  # Pillow raises many types on foreign or broken files
        raise ScanError(path, f"cannot read the mask image ({type(exc).__name__})") from exc
    if (height, width) != shape:
        raise ScanError(path, f"mask is {width}x{height} but the scan is {shape[1]}x{shape[0]}")
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise ScanError(path, "cannot decode the mask image")
    if mask.ndim == 3:
        mask = mask.max(axis=2)
    if mask.shape != shape:
        raise ScanError(path, f"mask is {mask.shape[1]}x{mask.shape[0]} but the scan is {shape[1]}x{shape[0]}")
    return mask


def _split_types(text: str) -> list[str]:
    return [t.strip() for t in re.split(r"[;|,+ ]+", text or "") if t.strip()]


def _column(header: list[str], names: tuple[str, ...]) -> str | None:
    """The first of ``names`` among the CSV's columns, compared without case or spaces."""
    by_key = {h.strip().lower().replace(" ", "_"): h for h in header if h}
    return next((by_key[n] for n in names if n in by_key), None)


def read_labels_csv(path: Path, required: bool = False) -> dict[str, list[str]]:
    """stem -> threat types from a labels CSV. The stem column may be any of STEM_COLUMNS (a file
    name or path in it is reduced to its stem: data, never opened), the types column any of
    TYPE_COLUMNS. A missing file is {} unless ``required``; a file without a stem column raises."""
    from xscreen.evaluate.boxformats import MAX_SET_FILE_BYTES, read_text, stem_of

    if not path.is_file():
        if required:
            raise ScanError(path, "labels file not found")
        return {}
    lines = read_text(path, MAX_SET_FILE_BYTES).splitlines()
    header = next(csv.reader(lines[:1]), [])
    stem_col, type_col = _column(header, STEM_COLUMNS), _column(header, TYPE_COLUMNS)
    if stem_col is None:
        raise ScanError(path, f"no stem column: the columns are {', '.join(header) or '(none)'}; "
                              f"expected one of {', '.join(STEM_COLUMNS)}")
    out: dict[str, list[str]] = {}
    for row in csv.DictReader(lines):
        stem = stem_of(row.get(stem_col) or "")
        if stem:
            out[stem] = _split_types(row.get(type_col) or "") if type_col else []
    return out


def read_boxes(path: Path) -> list[tuple[str, tuple[int, int, int, int] | None]]:
    """(type, box (x, y, w, h) or None) per threat, in mask-label order, from one per-image box
    JSON (``boxes/<stem>.json`` as xscreen synth writes it; see ``boxformats.json_boxes``)."""
    from xscreen.evaluate.boxformats import MAX_IMAGE_FILE_BYTES, declared_format, json_boxes, read_json

    data = read_json(path, MAX_IMAGE_FILE_BYTES)
    out: list[tuple[str, tuple[int, int, int, int] | None]] = []
    for b in json_boxes(data, declared_format(data, "xywh", path), path):
        x0, y0, x1, y1 = (int(round(v)) for v in b.xyxy) if b.xyxy else (0, 0, 0, 0)
        out.append((b.type, (x0, y0, x1 - x0, y1 - y0) if b.xyxy else None))
    return out


def read_box_types(path: Path) -> list[str]:
    """Threat types in mask-label order (see ``read_boxes``)."""
    return [kind for kind, _ in read_boxes(path)]


def mask_from_boxes(boxes: list[tuple[str, tuple[int, int, int, int] | None]], shape: tuple[int, int]
                    ) -> np.ndarray | None:
    """(H, W) uint8 instance mask with box k filled with k (later boxes on top), for data that has
    boxes but no pixel masks; None when no box is given."""
    if not any(b is not None for _, b in boxes):
        return None
    mask = np.zeros(shape, np.uint8)
    for k, (_, box) in enumerate(boxes, start=1):
        if box is not None:
            x, y, w, h = box
            mask[max(y, 0):max(y + h, 0), max(x, 0):max(x + w, 0)] = min(k, 255)
    return mask


def instances(mask: np.ndarray, types: list[str]) -> list[Instance]:
    """One Instance per label k > 0 present in the mask, typed by ``types[k - 1]`` where known."""
    labels, areas = np.unique(mask[mask > 0], return_counts=True)
    if len(labels) == 1 and len(types) == 1:
        # a binary mask (0/255 or 0/1) of a bag with one known threat type: that threat
        return [Instance(int(labels[0]), types[0], int(areas[0]))]
    return [Instance(int(k), types[k - 1] if 0 < k <= len(types) else "threat", int(a))
            for k, a in zip(labels, areas)]


def patch_coverage(binary: np.ndarray, origins: np.ndarray, size: int) -> np.ndarray:
    """Pixels of ``binary`` (H, W) inside each patch at ``origins`` (N, 2) (y, x) -> (N,) int.
    Patches may run past the scan's edge (air padding), where nothing is counted."""
    h, w = binary.shape
    hp, wp = origins[:, 0].max(initial=0) + size, origins[:, 1].max(initial=0) + size
    padded = np.zeros((max(h, hp) + 1, max(w, wp) + 1), np.int64)
    padded[1:h + 1, 1:w + 1] = binary
    integral = padded.cumsum(0).cumsum(1)
    y, x = origins[:, 0], origins[:, 1]
    return integral[y + size, x + size] - integral[y, x + size] - integral[y + size, x] + integral[y, x]


def threat_patches(mask: np.ndarray, origins: np.ndarray, size: int, overlap: float) -> np.ndarray:
    """(N,) bool: patches that count as threat (see ``INSTANCE_SHARE``)."""
    hit = patch_coverage(mask > 0, origins, size) >= overlap * size * size
    for k in np.unique(mask[mask > 0]):
        inst = mask == k
        hit |= patch_coverage(inst, origins, size) >= INSTANCE_SHARE * inst.sum()
    return hit


def instance_patches(mask: np.ndarray, inst: Instance, origins: np.ndarray, size: int,
                     overlap: float) -> np.ndarray:
    """(N,) bool: patches that see instance ``inst`` (same rule as ``threat_patches``)."""
    cov = patch_coverage(mask == inst.label, origins, size)
    return (cov >= overlap * size * size) | (cov >= INSTANCE_SHARE * inst.area)
