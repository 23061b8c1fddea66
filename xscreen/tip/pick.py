"""One call for a TIP image: pick an FTI of the scan's kind, place it inside the bag, project it.

What the GUI's TIP mode and ``evaluate --tip`` need per TIP bag. A bag too small for the FTI drawn
is given another FTI (up to ``tries``); the result names the FTI, so the caller can record it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from xscreen.scan import Scan
from xscreen.tip.fti import FTI, TipError
from xscreen.tip.library import Library
from xscreen.tip.project import Projected, project
from xscreen.tip.schedule import occupied_area, schedule


@dataclass
class TipImage:
    """``projected``: the TIP image (scan, mask (H, W) bool, placement, box); ``fti``: what was projected."""

    projected: Projected
    fti: FTI


def random_tip(scan: Scan, library: Library, rng: np.random.Generator, *, categories: Sequence[str] | None = None,
               pitch_mm: float | None = None, tries: int = 5) -> TipImage:
    """A TIP image of ``scan`` with a random FTI from ``library`` (seeded by ``rng``). Raises TipError
    when no FTI of the scan's kind fits inside the bag after ``tries`` FTIs."""
    occupied = occupied_area(scan)
    if not occupied.any():
        raise TipError(scan.scan_id, "no bag found in the scan (nothing but air): no place for a TIP image")
    last: TipError | None = None
    for _ in range(tries):
        fti = library.pick(rng, categories, kind=scan.kind)
        try:
            placement = schedule(scan, fti, rng, occupied=occupied, pitch_mm=pitch_mm, tries=4)
        except TipError as exc:
            if "no room" not in exc.fault:
                raise
            last = exc
            continue
        return TipImage(project(scan, fti, placement, rng=rng), fti)
    raise last or TipError(scan.scan_id, "no FTI fits inside the bag")
