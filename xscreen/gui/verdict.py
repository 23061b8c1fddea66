"""What the alarm banner says about the bag on screen, the legend texts and the screening mode (no Qt).

Each verdict differs from the others in its word, its icon shape and its colour, so an operator
who cannot tell red from green still reads ALARM vs NO ALARM (issue 14 item 4). The bag alarm is
the screening's own (DESIGN.md: one decision rule); regions below it are "attention", never a
threat.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xscreen import heatmap, materials


@dataclass(frozen=True)
class Verdict:
    kind: str  # "alarm" | "attention" | "no_alarm" | "unscored" | "none" | "error"
    headline: str
    detail: str
    background: str
    foreground: str
    shape: str  # icon: "triangle" | "diamond" | "circle" | "square" | "cross"


def mode_text(screening: Any | None) -> str:
    """How the shown result was screened: '' when exact (every non-air patch scored)."""
    if screening is None or not getattr(screening, "cascade", 0.0):
        return ""
    return f"Fast screening: {screening.n_evaluated} of {screening.n_scored} patches scored"


def verdict_for(screening: Any | None, loaded: bool = True) -> Verdict:
    """The banner for a screening (``pipeline.Screening``); None with a bag loaded = not scored."""
    if screening is None:
        if not loaded:
            return Verdict("none", "NO BAG", "open a scan or a folder", "#eeeeee", "#424242", "square")
        return Verdict("unscored", "NOT SCORED", "no detector result for this bag (no model, or "
                       "scoring not finished)", "#e0e0e0", "#212121", "square")
    n = len(screening.regions)
    regions = f"{n} region{'s' if n != 1 else ''}"
    rel = f"highest {screening.scan_rel:.2f} x alarm threshold"
    if screening.alarm:
        return Verdict("alarm", "ALARM", f"{regions} flagged, {rel} - inspect before deciding "
                       "(J: next region)", "#b71c1c", "#ffffff", "triangle")
    if n:
        return Verdict("attention", "ATTENTION", f"no bag alarm; {regions} to look at ({rel})",
                       "#ffb300", "#000000", "diamond")
    return Verdict("no_alarm", "NO ALARM", f"no region above the threshold ({rel})",
                   "#1b5e20", "#ffffff", "circle")


def failed_verdict(message: str) -> Verdict:
    """A bag that could not be read or scored (a non-finite score included): never a clear."""
    first = message.strip().splitlines()[0] if message.strip() else "unknown fault"
    return Verdict("error", "ERROR", f"this bag is not cleared - {first}", "#4a148c", "#ffffff", "cross")


# (key, function, short label, full name): short, so the strip leaves room for the bag's name
FUNCTION_KEYS = (("1", "pseudo", "Colour", "pseudo-colour"), ("2", "gray", "Grey", "grey"),
                 ("3", "negative", "Neg", "negative"), ("4", "high_pen", "HiPen", "high penetration"),
                 ("5", "organic", "Org", "organic only"), ("6", "inorganic", "Inorg", "inorganic only"),
                 ("E", "edge", "Edge", "edge enhancement"))
FUNCTION_VIEWS = tuple(name for _, name, _, _ in FUNCTION_KEYS[:6])  # keys 1-6: state.IMAGE_VIEWS

# Material classes of the colour views, as the operator reads them; colours from materials.HUES.
MATERIAL_KEY = tuple((label, tuple(int(c) for c in materials.HUES[cls])) for label, cls in (
    ("organic", materials.ORGANIC), ("inorganic / light metal", materials.INORGANIC),
    ("metal", materials.METAL), ("impenetrable", materials.IMPENETRABLE)))
MATERIAL_VIEWS = ("pseudo", "organic", "inorganic", "high_pen")


def heat_tick_labels(rel_threshold: float) -> list[tuple[float, str]]:
    """(position 0..1 along the colour bar, label) for the heatmap's colour bar. The map is drawn
    relative to the threshold in force (the model's x ``rel_threshold``)."""
    t = f" ({rel_threshold:.2f} x model)" if abs(rel_threshold - 1.0) > 1e-6 else ""
    return [(heatmap.RAMP_LO / heatmap.HEAT_MAX, f"{heatmap.RAMP_LO:g}"),
            (1.0 / heatmap.HEAT_MAX, f"1 = review level{t}"),
            (1.0, f"{heatmap.HEAT_MAX:g}+ x")]
