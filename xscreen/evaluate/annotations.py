"""All ground truth of one evaluation, gathered once and looked up per scan: masks, boxes, types.

Sources (each optional): a folder of masks named ``<stem>.png`` or ``<stem>_mask.png`` (also
.tif/.bmp); a box source (see ``boxsets``: per-image JSON / VOC XML / YOLO txt, or one COCO or box
JSON for the set); a labels.csv whose stem column is any of the usual names. Scans are matched by
file stem (a TIFF pair by the pair's stem) or by the scan id the file records.

``match`` counts what the threat scans will get before anything is screened, so the CLI can say
what matched and refuse a run whose annotations match nothing instead of quietly reporting only
scan-level numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from xscreen.evaluate import truth
from xscreen.evaluate.boxformats import Box, BoxFormat
from xscreen.evaluate.boxsets import read_box_source
from xscreen.scan import ScanError

MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")
MASK_TAGS = ("_mask", "-mask")


@dataclass(frozen=True)
class ScanTruth:
    mask: np.ndarray | None  # (H, W) instance mask, 0 = background
    types: list[str]  # threat types, in mask-label order where known
    boxes_outside: int = 0  # boxes reaching well past the scan: often a wrongly declared box format


@dataclass(frozen=True)
class TruthMatch:
    """What the threat scans are matched with, counted over file stems."""

    n_scans: int
    n_masks: int
    n_boxed: int  # scans with at least one box
    n_boxes: int
    n_typed: int  # scans with at least one threat type (from boxes or labels)
    unmatched: tuple[str, ...] = ()  # stems of threat scans that got nothing, for the message
    per_source: dict[str, int] = field(default_factory=dict)  # "masks"/"boxes"/"labels" -> scans matched

    @property
    def any(self) -> bool:
        return bool(self.n_masks or self.n_boxed or self.n_typed)

    def summary(self) -> str:
        return (f"annotations matched {self.n_scans - len(self.unmatched)} of {self.n_scans} threat scans: "
                f"{self.n_masks} masks, {self.n_boxes} boxes on {self.n_boxed} scans, "
                f"threat types for {self.n_typed} scans")


@dataclass(frozen=True)
class Annotations:
    masks: dict[str, Path] = field(default_factory=dict)
    boxes: dict[str, tuple[Box, ...]] = field(default_factory=dict)
    types: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # "masks"/"boxes"/"labels" -> what was read
    problems: tuple[str, ...] = ()  # per-image files that could not be read (skipped)

    @property
    def has_masks(self) -> bool:
        return "masks" in self.sources

    def match(self, paths: Iterable[Path]) -> TruthMatch:
        n = n_masks = n_boxed = n_boxes = n_typed = 0
        unmatched: list[str] = []
        per_source: dict[str, int] = {}
        for path in paths:
            keys = scan_keys(path)
            placed = sum(b.xyxy is not None for b in self._first(self.boxes, keys) or ())
            has = (self._first(self.masks, keys) is not None, placed > 0, bool(self._types(keys)))
            n, n_masks, n_boxed, n_boxes, n_typed = n + 1, n_masks + has[0], n_boxed + has[1], \
                n_boxes + placed, n_typed + has[2]
            if not any(has):
                unmatched.append(keys[-1])
            for source, table in (("masks", self.masks), ("boxes", self.boxes), ("labels", self.types)):
                per_source[source] = per_source.get(source, 0) + (self._first(table, keys) is not None)
        per_source = {k: v for k, v in per_source.items() if k in self.sources}
        return TruthMatch(n, n_masks, n_boxed, n_boxes, n_typed, tuple(unmatched), per_source)

    def names(self, source: str) -> list[str]:
        """The image stems a source holds, sorted (for messages)."""
        return sorted({"masks": self.masks, "boxes": self.boxes, "labels": self.types}[source])

    def truth(self, path: Path, height: int, width: int, scan_id: str | None = None) -> ScanTruth:
        """The mask (a mask file where masks are in use, else the boxes filled in; coarser, since a
        box holds background too) and the threat types of one screened scan."""
        keys = scan_keys(path) + ([scan_id] if scan_id else [])
        boxes = self._first(self.boxes, keys) or ()
        types = [b.type for b in boxes] or self._types(keys)
        if self.has_masks:
            mask_path = self._first(self.masks, keys)
            mask = truth.read_mask(mask_path, (height, width)) if mask_path is not None else None
            return ScanTruth(mask, types)
        where = Path(self.sources.get("boxes", "boxes"))
        mask = truth.mask_from_boxes(pixel_boxes(boxes, height, width, where), (height, width))
        return ScanTruth(mask, types, boxes_outside(boxes, height, width))

    def settings(self) -> dict[str, Any]:
        return {"sources": dict(self.sources), "problems": list(self.problems)}

    def _types(self, keys: list[str]) -> list[str]:
        boxes = self._first(self.boxes, keys)
        return [b.type for b in boxes] if boxes else list(self._first(self.types, keys) or ())

    @staticmethod
    def _first(table: dict, keys: list[str]) -> Any:
        return next((table[k] for k in keys if k in table), None)


def scan_keys(path: Path) -> list[str]:
    """Stems a scan file is known by: its own, and a TIFF pair's ('bag_high.tif' -> 'bag')."""
    stem = path.stem
    pair = stem.removesuffix("_high").removesuffix("_low")
    return [stem] if pair == stem else [stem, pair]


def pixel_boxes(boxes: Iterable[Box], height: int, width: int, where: Path
                ) -> list[tuple[str, tuple[int, int, int, int] | None]]:
    """(type, (x, y, w, h) in whole pixels or None) per box for ``truth.mask_from_boxes``; YOLO
    fractions are scaled to the scan; a box made for an image of another size is refused."""
    out: list[tuple[str, tuple[int, int, int, int] | None]] = []
    for b in boxes:
        if b.xyxy is None:
            out.append((b.type, None))
            continue
        if b.image_size is not None and b.image_size != (width, height):
            raise ScanError(where, f"boxes are for a {b.image_size[0]}x{b.image_size[1]} image but the scan "
                                   f"is {width}x{height}")
        scale = np.array([width, height] * 2 if b.normalized else [1.0] * 4)
        # clipped to just outside the scan: a hostile 1e308 must not overflow into the integers
        xy = np.clip(np.array(b.xyxy) * scale, -1.0, [width + 1, height + 1] * 2)
        x0, y0, x1, y1 = (int(v) for v in np.r_[np.floor(xy[:2]), np.ceil(xy[2:])])
        out.append((b.type, (x0, y0, x1 - x0, y1 - y0)))
    return out


def boxes_outside(boxes: Iterable[Box], height: int, width: int, slack: float = 0.05) -> int:
    """Boxes whose far corner lies more than ``slack`` of the scan beyond its edge. [x0, y0, x1, y1]
    read as xywh doubles the far corner, so such boxes are the visible sign of that mistake."""
    far = [(b.xyxy[2], b.xyxy[3]) if not b.normalized else (b.xyxy[2] * width, b.xyxy[3] * height)
           for b in boxes if b.xyxy is not None]
    return sum(1 for x1, y1 in far if x1 > width * (1 + slack) or y1 > height * (1 + slack))


def mask_index(folder: Path) -> dict[str, Path]:
    """stem -> mask file: '<stem>.png' or '<stem>_mask.png' (also .tif/.bmp, '-mask'); a plain
    '<stem>.png' wins over a tagged one."""
    if not folder.is_dir():
        raise ScanError(folder, "masks folder not found")
    found: dict[str, Path] = {}
    tagged: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or f.suffix.lower() not in MASK_SUFFIXES or not f.is_file():
            continue
        tag = next((t for t in MASK_TAGS if f.stem.lower().endswith(t) and len(f.stem) > len(t)), None)
        if tag is None:
            found.setdefault(f.stem, f)
        else:
            tagged.setdefault(f.stem[: -len(tag)], f)
    return {**tagged, **found}


def load_annotations(masks: Path | None = None, boxes: Path | None = None, labels: Path | None = None,
                     box_format: BoxFormat = "xywh") -> Annotations:
    """Read every given source once; a source that is given but unreadable raises (ScanError)."""
    sources: dict[str, str] = {}
    mask_files: dict[str, Path] = {}
    if masks is not None:
        mask_files = mask_index(Path(masks))
        sources["masks"] = str(masks)
    box_set, problems = {}, ()
    if boxes is not None:
        read = read_box_source(Path(boxes), box_format)
        box_set, problems = read.boxes, read.problems
        sources["boxes"] = f"{boxes} ({read.kind})"
    types: dict[str, tuple[str, ...]] = {}
    if labels is not None:
        types = {k: tuple(v) for k, v in truth.read_labels_csv(Path(labels), required=True).items()}
        sources["labels"] = str(labels)
    return Annotations(mask_files, box_set, types, sources, problems)


def discover(threat_dir: Path, boxes: Path | None = None, labels: Path | None = None
             ) -> tuple[Path | None, Path | None]:
    """(boxes, labels) as given, else xscreen synth's places next to the threat folder where present."""
    root = threat_dir.parent
    if boxes is None and (root / "boxes").is_dir():
        boxes = root / "boxes"
    if labels is None and (root / "labels.csv").is_file():
        labels = root / "labels.csv"
    return boxes, labels
