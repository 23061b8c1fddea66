"""Ground truth for evaluation: threat masks, threat types, and which patches count as threat.

Dataset layout (``xscreen synth``): ``masks/<stem>.png`` (0 background, k > 0 = the k-th threat of the
bag), ``boxes/<stem>.json`` (the threats' types and boxes, in mask-label order) and ``labels.csv``
(stem, label, threat_types).
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from xscreen.scan import ScanError

# A patch is a threat patch when the threat covers >= `overlap` of the patch (default 10 %), or
# when the patch holds at least half of a threat too small to cover that much of any patch.
INSTANCE_SHARE = 0.5


@dataclass(frozen=True)
class Instance:
    label: int  # value in the mask
    type: str
    area: int  # pixels


def read_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8/uint16 instance mask; ScanError if unreadable or not the scan's size."""
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


def read_labels_csv(path: Path) -> dict[str, list[str]]:
    """stem -> threat types, from a labels.csv with columns stem/label/threat_types (missing: {})."""
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    out: dict[str, list[str]] = {}
    for row in rows:
        stem = row.get("stem") or row.get("name") or row.get("file") or ""
        if stem:
            out[Path(stem).stem] = _split_types(row.get("threat_types") or row.get("types") or "")
    return out


def read_boxes(path: Path) -> list[tuple[str, tuple[int, int, int, int] | None]]:
    """(type, box (x, y, w, h) or None) per threat, in mask-label order, from boxes/<stem>.json: a
    list of threats, or an object with a 'threats' (or 'boxes') list; each threat has 'type' (or
    'name'/'class'/'label') and optionally 'box'."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ScanError(path, f"cannot read the boxes file ({exc})") from exc
    items = data.get("threats", data.get("boxes", [])) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ScanError(path, "boxes file holds no list of threats")
    out: list[tuple[str, tuple[int, int, int, int] | None]] = []
    for t in items:
        t = t if isinstance(t, dict) else {}
        kind = str(t.get("type") or t.get("name") or t.get("class") or t.get("label") or "threat")
        box = t.get("box")
        ok = isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
        out.append((kind, tuple(int(round(v)) for v in box) if ok else None))  # type: ignore[misc]
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
