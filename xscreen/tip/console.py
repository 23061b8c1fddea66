"""TIP at the operator console, per bag, without Qt: whether a bag gets a TIP image, the image, the
operator's response, then the real bag.

States of one bag: no TIP (the real bag is screened and decided as always), or
``shown`` (the TIP image, screened by the same pipeline, waits for the operator's response; nothing on
screen tells it apart) -> ``feedback`` (the response is recorded as a TIP event, the operator sees
"TIP detected" / "TIP missed" with the threat outlined) -> ``finish`` (the real bag, without the threat,
is presented for the real decision). The TIP response is never the bag's decision: abandoning the trial
(sign-out, a crash, another bag chosen) leaves the real bag undecided.

Whether a bag is a TIP image lives only here, in memory (and in the TIP event written); it is never
read from a file. The draw per bag uses the OS's randomness (``secrets``) so operators cannot predict
it; tests pass a seeded ``chance``. The pipeline and the audit are above this layer: the console
takes the screening as given and returns the event's fields (``TipResult.event_fields``) for
``audit.TipEvent``.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from xscreen.scan import Scan
from xscreen.tip.fti import TipError
from xscreen.tip.library import Library, load_library
from xscreen.tip.pick import TipImage, random_tip
from xscreen.tip.supervisor import TipSettings

RESPONSES = {"decide.suspect": "suspect", "decide.clear": "clear", "decide.unresolved": "unresolved"}
DETECTED = ("suspect", "unresolved")  # 'unresolved' counts as detected (issue 30), recorded as such


def overlap(mask: np.ndarray, box: tuple[int, int, int, int] | None) -> bool | None:
    """Whether the operator's selected region ``box`` (x, y, w, h) touches the FTI ``mask`` (H, W)
    bool; None when no region was selected."""
    if box is None:
        return None
    x, y, w, h = (int(round(v)) for v in box)
    x0, y0 = max(x, 0), max(y, 0)
    return bool(mask[y0:max(y + h, 0), x0:max(x + w, 0)].any())


@dataclass(frozen=True)
class TipResult:
    """The operator's response to one TIP image; ``event_fields()`` are ``audit.TipEvent``'s."""

    operator: str
    scan_id: str
    file_sha256: str
    model_id: str
    fti_id: str
    category: str
    placement: dict[str, Any]
    response: str
    decision_seconds: float
    overlap: bool | None
    threshold: float
    live_threshold: float | None
    regions_shown: list[Any] = field(default_factory=list)

    @property
    def detected(self) -> bool:
        return self.response in DETECTED

    def event_fields(self) -> dict[str, Any]:
        return {"operator": self.operator, "scan_id": self.scan_id, "file_sha256": self.file_sha256,
                "model_id": self.model_id, "fti_id": self.fti_id, "category": self.category,
                "placement": dict(self.placement), "response": self.response,
                "decision_seconds": round(float(self.decision_seconds), 3), "detected": self.detected,
                "overlap": self.overlap, "threshold": float(self.threshold),
                "live_threshold": self.live_threshold, "regions_shown": list(self.regions_shown)}


@dataclass
class TipTrial:
    """One bag's TIP: ``bag`` (the console's key, e.g. the path), the real bag's id and file hash,
    the TIP image (``tip.projected.scan``, ``.mask`` (H, W) bool, ``.box``), ``phase`` shown | feedback."""

    bag: str
    scan_id: str
    file_sha256: str
    tip: TipImage
    phase: str = "shown"
    result: TipResult | None = None


class TipConsole:
    """TIP for one console: the draw, the projection and the trial of the bag on screen."""

    def __init__(self, settings: TipSettings, *, chance: Callable[[int], int] = secrets.randbelow,
                 rng: np.random.Generator | None = None, library: Library | None = None):
        """``chance(n)``: a whole number in [0, n) (default ``secrets.randbelow``: the OS's randomness);
        ``rng``: placement and noise of the projection (default seeded by the OS)."""
        self.settings = settings
        self._chance = chance
        self.rng = rng if rng is not None else np.random.default_rng()
        self._library = library
        self.rolled: set[str] = set()  # bags that had their draw: never a second TIP on the same bag
        self.drawn: set[str] = set()  # bags drawn for TIP whose TIP image has not been shown yet
        self.trial: TipTrial | None = None

    @property
    def active(self) -> bool:
        return bool(self.settings.enabled)

    def library(self) -> Library:
        """The library of the setting, loaded (and validated) once. Raises TipError."""
        if self._library is None:
            self._library = load_library(self.settings.library)
        return self._library

    def wants_tip(self, bag: str, *, decided: bool) -> bool:
        """The draw for ``bag``: once per bag and console, only for undecided bags while TIP is on;
        true with probability 1 / rate."""
        if not self.active or decided or bag in self.rolled:
            return False
        self.rolled.add(bag)
        if self._chance(self.settings.rate) != 0:
            return False
        self.drawn.add(bag)  # drawn ahead (pre-scoring the next bag) or now: shown when the bag comes
        return True

    def project(self, bag: str, scan: Scan, file_sha256: str) -> TipTrial:
        """The TIP image of the real ``scan`` (which is left as it was). Raises TipError when no FTI
        of the scan's kind fits; the caller then shows the real bag."""
        cats = self.settings.categories or None
        tip = random_tip(scan, self.library(), self.rng, categories=cats)
        return TipTrial(bag, scan.scan_id, file_sha256, tip)

    def begin(self, trial: TipTrial) -> None:
        """``trial``'s TIP image is now on screen, waiting for the operator."""
        self.drawn.discard(trial.bag)
        self.trial = trial

    def on_screen(self, bag: str | None = None) -> TipTrial | None:
        """The trial on screen (of ``bag`` when given), or None."""
        t = self.trial
        return t if t is not None and (bag is None or t.bag == bag) else None

    def respond(self, action: str, *, operator: str, seconds: float, model_id: str, threshold: float,
                live_threshold: float | None = None, regions_shown: list[Any] | None = None,
                selected_box: tuple[int, int, int, int] | None = None) -> TipResult:
        """The operator's decision key on the TIP image (decide.suspect | clear | unresolved):
        the trial goes to feedback; the returned result is what the TIP event records."""
        t = self.trial
        if t is None or t.phase != "shown":
            raise TipError("console", "no TIP image is waiting for a response")
        if action not in RESPONSES:
            raise TipError("console", f"{action!r} is not a response to a TIP image")
        p = t.tip.projected
        t.result = TipResult(operator, t.scan_id, t.file_sha256, model_id, t.tip.fti.fti_id, t.tip.fti.category,
                             p.placement.to_dict(), RESPONSES[action], float(seconds),
                             overlap(p.mask, selected_box), float(threshold), live_threshold,
                             list(regions_shown or []))
        t.phase = "feedback"
        return t.result

    def finish(self) -> str | None:
        """End the trial: the real bag comes next. Returns its key (None without a trial)."""
        t, self.trial = self.trial, None
        return None if t is None else t.bag

    abandon = finish  # sign-out, a crash, another bag: the trial goes, the real bag stays undecided


def feedback_text(result: TipResult) -> tuple[str, str]:
    """(headline, detail) of the feedback the operator sees after responding to a TIP image."""
    what = result.category.replace("_", " ")
    if result.detected:
        head = "TIP detected"
        how = "Unresolved counts as detected" if result.response == "unresolved" else "Suspect"
        where = {True: "your selected region was on it", False: "your selected region was elsewhere",
                 None: "no region selected"}[result.overlap]
        return head, f"{how}: this was a projected threat image ({what}), outlined. {where.capitalize()}."
    return "TIP missed", (f"This was a projected threat image ({what}): it was where the outline is. "
                          "Clear on this image would have missed it.")
