"""What the bag already holds along each ray, as a two-material equivalent (cellulose + iron).

The exact rendering of a generated FTI needs the beam the bag leaves behind. Two measured channels
pin two unknowns: areal densities (c, f) g/cm^2 of cellulose and iron whose polychromatic
attenuation equals the bag's (a_high, a_low) - organic clutter comes out as cellulose, metal as
iron, mixtures in between (the dual-energy basis decomposition). Solved per pixel by Newton steps
with the analytic Jacobian (dA_k/dD_m = the mean of mu_m over channel k's transmitted spectrum),
started from cellulose alone and kept non-negative (a material beyond iron, e.g. copper, ends as the
nearest non-negative mix); pixels too dark to tell (a_high > 6) keep the cellulose-only equivalent.
"""
from __future__ import annotations

import numpy as np

from xscreen.physics import SANDWICH, mu_rho, reference_curve

STEPS = 8
DARK_A = 6.0  # materials.IMPENETRABLE_A: too few photons for the low/high ratio to mean anything


def _mu() -> np.ndarray:
    return np.stack([mu_rho("cellulose", SANDWICH.kev), mu_rho("fe", SANDWICH.kev)], 1)  # (E, 2)


def _forward(d: np.ndarray, mu: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d (2, N) -> attenuation (2, N) [high, low] and Jacobian (2, 2, N) [channel, material]."""
    expo = np.exp(-(mu @ d))  # (E, N)
    t = w @ expo  # (2, N)
    jac = np.einsum("ke,en,em->kmn", w, expo, mu) / t[:, None, :]
    return -np.log(np.maximum(t, 1e-30)), jac


def basis(a_high: np.ndarray, a_low: np.ndarray) -> np.ndarray:
    """(2, N) [cellulose, iron] g/cm^2 from attenuations (N,) each (float64 inside)."""
    grid = np.geomspace(1e-3, 400.0, 512)
    c0 = np.interp(a_high, reference_curve("cellulose", grid)[0], grid, left=0.0)
    d = np.stack([c0, np.zeros_like(c0)]).astype(np.float64)
    meas = np.stack([a_high, a_low]).astype(np.float64)
    mu, w = _mu(), SANDWICH.weights.astype(np.float64)
    for _ in range(STEPS):
        a, j = _forward(d, mu, w)
        r = a - meas
        det = j[0, 0] * j[1, 1] - j[0, 1] * j[1, 0]
        det = np.where(np.abs(det) < 1e-12, 1e-12, det)
        d[0] -= (j[1, 1] * r[0] - j[0, 1] * r[1]) / det
        d[1] -= (-j[1, 0] * r[0] + j[0, 0] * r[1]) / det
        np.maximum(d, 0.0, out=d)
    bad = (a_high > DARK_A) | ~np.isfinite(d).all(0)
    d[0, bad], d[1, bad] = c0[bad], 0.0
    return d.astype(np.float32)
