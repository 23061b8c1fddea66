"""The Scan type and ScanError (the contract every reader fills).

CONTRACT (other modules rely on this):
    Scan.channels : np.ndarray (C, H, W), integer dtype (uint8 or uint16), raw detector/display values.
        dual: C = 2, order [high, low]; rgb: C = 3 (R, G, B); gray: C = 1.
    Scan.i0       : float, the air level: the value a pixel has with nothing in the beam
        (from the file where recorded, else estimated). Bright = air.
    Scan.kind     : "dual" | "rgb" | "gray"
    load_scan(path, max_pixels=...) -> Scan ; raises ScanError(path, fault) on any bad input.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xscreen.config import ScanKind

DEFAULT_MAX_PIXELS = 200_000_000
MIN_SIDE = 64


class ScanError(Exception):
    """A scan that cannot be used. ``str(err)`` is '<file>: <fault>'."""

    def __init__(self, path: str | Path, fault: str):
        self.path = str(path)
        self.fault = fault
        super().__init__(f"{self.path}: {fault}")


@dataclass
class Scan:
    scan_id: str
    kind: ScanKind
    channels: np.ndarray  # (C, H, W) uint8/uint16
    i0: float
    path: Path | None = None
    pixel_pitch_mm: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.channels.shape[1])

    @property
    def width(self) -> int:
        return int(self.channels.shape[2])

    @property
    def high(self) -> np.ndarray:
        """(H, W) high-energy channel (dual scans only)."""
        self._need_dual("high")
        return self.channels[0]

    @property
    def low(self) -> np.ndarray:
        """(H, W) low-energy channel (dual scans only)."""
        self._need_dual("low")
        return self.channels[1]

    def transmission(self) -> np.ndarray:
        """(C, H, W) float32 in [0, 1]: value / i0, clipped."""
        return np.clip(self.channels.astype(np.float32) / np.float32(self.i0), 0.0, 1.0)

    def _need_dual(self, what: str) -> None:
        if self.kind != "dual":
            raise ValueError(f"{self.scan_id}: '{what}' needs a dual-energy scan, this one is {self.kind}")
