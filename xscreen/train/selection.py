"""Benign-only model selection that tracks detection (issue 12).

The paper's objective - the mean anomaly score of held-out benign patches, lower is better -
rewards a generator that reconstructs *everything*, threats included: on SIXray it picked an epoch
with within-image AUC 0.59 over one with 0.79. The ``pasted`` criterion instead asks how well the
model's score separates held-out benign patches from the same patches with a synthetic anomaly
pasted in: a rotated rectangle cut from *another benign patch* (CutPaste, Li et al., CVPR 2021).
It uses benign material only - no threat shape, no threat data - and higher is better; the loop
minimises ``-AUC``.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from xscreen.metrics import roc_auc


def paste_patch(target: np.ndarray, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """target, donor (C, S, S) float32 -> a copy of target with a rotated rectangle (S/8..S/2 by
    S/4..3S/4, random angle and place) cut from donor pasted in."""
    c, s, _ = target.shape
    src = np.ascontiguousarray(donor.transpose(1, 2, 0))
    h, w = int(rng.integers(s // 8, s // 2)), int(rng.integers(s // 4, s * 3 // 4))
    y0, x0 = int(rng.integers(0, s - h)), int(rng.integers(0, s - w))
    piece = np.ascontiguousarray(src[y0:y0 + h, x0:x0 + w])
    m = cv2.getRotationMatrix2D((w / 2, h / 2), float(rng.uniform(0, 180)), 1.0)
    m[:, 2] += rng.integers(0, s - max(h, w) // 2, size=2)  # where it lands
    rot = cv2.warpAffine(piece, m, (s, s)).reshape(s, s, c)
    mask = cv2.warpAffine(np.ones((h, w), np.uint8), m, (s, s)).astype(bool)
    out = target.copy()
    out[:, mask] = rot[mask].T
    return out


class PastedDataset(Dataset):
    """``base`` (items (C, S, S) in [-1, 1]) with a CutPaste anomaly in every item; deterministic
    per (seed, index), so every epoch is judged on the same anomalies."""

    def __init__(self, base: Dataset, seed: int = 0):
        self.base, self.seed = base, seed

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> torch.Tensor:
        n = len(self)
        rng = np.random.default_rng((self.seed, i))
        j = (i + 1 + int(rng.integers(max(n - 1, 1)))) % n  # another patch, when there is one
        x, donor = (_item(self.base[k]).float().numpy() for k in (i, j))
        return torch.from_numpy(paste_patch(x, donor, rng))


def _item(item) -> torch.Tensor:
    return item[0] if isinstance(item, (list, tuple)) else item


def pasted_auc(clean: np.ndarray, pasted: np.ndarray) -> float:
    """AUC of pasted-anomaly scores (N,) against clean benign scores (M,): 1 = every pasted patch
    scores above every clean one."""
    return roc_auc(np.r_[np.zeros(len(clean)), np.ones(len(pasted))], np.r_[clean, pasted])
