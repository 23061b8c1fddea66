"""Known-threat score (issue 29 Part 2): a small CNN trained on benign patches against patches with
FTIs projected into benign bags (tip), fused with the anomaly score by a rule learnt on benign tails.
An option beside the anomaly score, never a replacement for it."""
from __future__ import annotations

from pathlib import Path

__all__ = ["trained_ids"]


def trained_ids(model: str | Path) -> frozenset[str]:
    """The FTI ids a model's known-threat head trained on (its manifest); empty for a model without
    a head. ``evaluate --tip`` keeps them out: a head measured on its own training FTIs flatters."""
    from xscreen.known_threat.build import read_head_meta

    meta = read_head_meta(model)
    return frozenset(meta.fti_ids) if meta is not None else frozenset()
