"""The reference Skip-GANomaly repo's image-folder layout, so users can rerun the paper's protocols:
    ROOT/train/0.normal/*.png          (training: normal only)
    ROOT/test/0.normal/*, ROOT/test/1.abnormal/*
The label is the number before the dot of the class folder (0 normal, anything else abnormal)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from xscreen.config import Preprocess, ScanKind
from xscreen.preprocess import model_input
from xscreen.scan import Scan, ScanError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _class_label(folder: Path) -> int:
    head = folder.name.split(".", 1)[0]
    if not head.isdigit():
        raise ValueError(f"{folder}: class folders must be named '<label>.<name>', e.g. '0.normal'")
    return 0 if int(head) == 0 else 1


def read_image(path: Path, size: int, kind: ScanKind) -> Scan:
    """An image file as a Scan (C, size, size) uint8/uint16 of ``kind`` ("rgb" | "gray"), resized
    with area averaging (no aliasing when shrinking). Raises ScanError for an unreadable file."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype not in (np.uint8, np.uint16):
        raise ScanError(path, "cannot decode as an 8- or 16-bit image")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    if kind == "gray":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
        chans = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)[None]
    else:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB if img.ndim == 2 else cv2.COLOR_BGR2RGB)
        chans = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    i0 = 255.0 if chans.dtype == np.uint8 else 65535.0  # full scale = air (bright) for display images
    return Scan(path.stem, kind, np.ascontiguousarray(chans), i0, path=path)


class ImageFolderPatches(Dataset):
    """``split`` ("train" | "test") of ROOT; items are (x (C, size, size) float32 in [-1, 1], label int).
    Images are read lazily, one per item."""

    def __init__(self, root: str | Path, split: str = "train", size: int = 64, kind: ScanKind = "rgb"):
        if kind not in ("rgb", "gray"):
            raise ValueError(f"image folders hold 'rgb' or 'gray' images, not {kind!r}")
        folder = Path(root) / split
        if not folder.is_dir():
            raise ValueError(f"{folder}: no such folder (expected {split}/0.normal etc. under {root})")
        self.size, self.kind = size, kind
        self.preprocess = Preprocess(kind=kind)
        self.paths: list[Path] = []
        labels: list[int] = []
        for cls in sorted(p for p in folder.iterdir() if p.is_dir()):
            label = _class_label(cls)
            files = sorted(p for p in cls.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            self.paths += files
            labels += [label] * len(files)
        if not self.paths:
            raise ValueError(f"{folder}: no images found in its class folders")
        self.labels = np.array(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        scan = read_image(self.paths[i], self.size, self.kind)
        return torch.from_numpy(model_input(scan, self.preprocess)), int(self.labels[i])
