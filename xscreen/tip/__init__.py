"""Threat image projection (TIP): the threat library and the projection of threats into bags. No Qt.

Public API (used by the GUI's TIP mode, ``xscreen tip ...`` and evaluation):
``load_library(path) -> Library`` (``.pick(rng, categories, kind)``, ``.add(fti)``, ``.ftis``),
``build_library(path, per_category=, seed=)``, ``schedule(scan, fti, rng) -> Placement``,
``project(scan, fti, placement) -> Projected(scan, mask, placement, ...)``, all three in one call
``random_tip(scan, library, rng) -> TipImage(projected, fti)``, ``realism.realism(...)``, and
``stats.tip_stats(rows)``. A projected scan carries nothing that says TIP: whether a bag on screen is
a TIP image is known only to the code that projected it (and its audit row), never read from a file.
"""
from xscreen.tip.fti import CATEGORIES, FTI, SOURCES, TipError, read_fti
from xscreen.tip.generate import build_library, fti_from_areal, iter_build, synth_fti
from xscreen.tip.library import Library, load_library, new_library, open_or_create
from xscreen.tip.pick import TipImage, random_tip
from xscreen.tip.project import Projected, photon_gain, project
from xscreen.tip.schedule import occupied_area, schedule
from xscreen.tip.warp import Placement

__all__ = ["CATEGORIES", "FTI", "SOURCES", "TipError", "read_fti", "build_library", "fti_from_areal",
           "iter_build", "synth_fti", "Library", "load_library", "new_library", "open_or_create", "Projected",
           "photon_gain", "project", "occupied_area", "schedule", "Placement", "TipImage", "random_tip"]
