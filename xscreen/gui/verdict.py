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


def _drawn(shown: list) -> str:
    """'3 regions drawn (1 alarm, 2 attention)': what the boxes and the list show, counted."""
    if not shown:
        return "no region drawn"
    n_alarm = sum(getattr(r, "level", "alarm") == "alarm" for r in shown)
    kinds = [f"{k} {word}" for k, word in ((n_alarm, "alarm"), (len(shown) - n_alarm, "attention")) if k]
    return f"{len(shown)} region{'s' if len(shown) != 1 else ''} drawn ({', '.join(kinds)})"


def verdict_for(screening: Any | None, loaded: bool = True, shown: list | None = None,
                scale: Any | None = None) -> Verdict:
    """The banner for a screening (``pipeline.Screening``); None with a bag loaded = not scored.
    ``shown``: the regions drawn (default: the screening's own); ``scale``: ``probe.Scale`` of the
    live threshold. The headline is always the calibrated rule's verdict: moving the live threshold
    changes what is drawn - and the detail says so - never ALARM into NO ALARM."""
    if screening is None:
        if not loaded:
            return Verdict("none", "NO BAG", "open a scan or a folder", "#eeeeee", "#424242", "square")
        return Verdict("unscored", "NOT SCORED", "no detector result for this bag (no model, or "
                       "scoring not finished)", "#e0e0e0", "#212121", "square")
    shown = list(screening.regions) if shown is None else shown
    moved = scale is not None and scale.moved
    live = f"showing regions ≥ {scale.live:.2f} × alarm; " if moved else ""
    machine = f"machine verdict {'ALARM' if screening.alarm else 'NO ALARM'}, highest {screening.scan_rel:.2f} × alarm"
    tail = " · T: back to the review level" if moved else ""
    drawn = _drawn(shown)
    if screening.alarm:
        hint = " - inspect before deciding (J: next region)" if shown else ""
        return Verdict("alarm", "ALARM", f"{live}{machine} · {drawn}{hint}{tail}", "#b71c1c", "#ffffff", "triangle")
    if screening.regions:  # the calibrated review level found something below the alarm
        return Verdict("attention", "ATTENTION", f"{live}{machine} · {drawn}{tail}",
                       "#ffb300", "#000000", "diamond")
    review = f" (review level {scale.review:.2f} × alarm)" if scale is not None and not moved else ""
    return Verdict("no_alarm", "NO ALARM", f"{live}{machine} · {drawn}{review}{tail}", "#1b5e20", "#ffffff", "circle")


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


def heat_tick_labels(review: float = 1.0, live: float | None = None) -> list[tuple[float, str, str]]:
    """(position 0..1 along the colour bar, label, "tick" | "mark") for the heatmap's colour bar, on
    the one scale (× alarm, 0..HEAT_MAX): ticks under the bar at 0, the alarm (1.00) and the top;
    marks drawn as lines across it at the review level and, when moved, the live threshold."""
    ticks = [(0.0, "0", "tick"), (1.0 / heatmap.HEAT_MAX, "1.00 = alarm", "tick"),
             (1.0, f"{heatmap.HEAT_MAX:g}+ × alarm", "tick")]
    marks = [(review, f"review {review:.2f}")]
    if live is not None and abs(live - review) > 1e-6 * max(review, 1e-12):
        marks.append((live, f"shown ≥ {live:.2f}"))
    return ticks + [(min(v, heatmap.HEAT_MAX) / heatmap.HEAT_MAX, text, "mark") for v, text in marks]
