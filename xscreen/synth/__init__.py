"""Physically grounded synthetic dual-energy bags, with and without threats, and datasets of them.

``bags`` assembles and images a bag and writes datasets; ``draw`` holds the rasterising primitives,
``items`` the benign contents, ``threats`` the threat objects. The X-ray physics they image with is
``xscreen.physics`` (shared with ``materials``, which sits below this package).
"""
from xscreen.synth.bags import (BLUR_SIGMA, ELECTRONIC_NOISE, I0, THREAT_MIX, SynthBag, SynthProgress, ThreatInfo,
                                bag_seed, synth_bag, write_dataset)
# Names that ``xscreen.synth`` has always re-exported from its helpers; kept so no importer breaks.
from xscreen.synth.bags import (BENIGN, THREAT_TYPES, THREATS, Canvas, Pose, Scan, atomic_write_bytes,
                                atomic_write_text, ellipse, line, polygon, rect, transmission)

__all__ = [
    "BLUR_SIGMA", "ELECTRONIC_NOISE", "I0", "THREAT_MIX", "SynthBag", "SynthProgress", "ThreatInfo",
    "bag_seed", "synth_bag", "write_dataset",
    "BENIGN", "THREAT_TYPES", "THREATS", "Canvas", "Pose", "Scan", "atomic_write_bytes",
    "atomic_write_text", "ellipse", "line", "polygon", "rect", "transmission",
]
