"""Projection of an FTI into a scan: Beer-Lambert on raw transmission, scanner noise re-applied.

Dual energy and grey (raw counts): per channel the bag's counts N are multiplied by the FTI's
transmission, N' = N * T_FTI (T = T_bag * T_FTI), never display pixels. With a polychromatic beam
that ignores beam hardening (the bag has already hardened the beam, so a real object under it
attenuates less than T_FTI says): +1 to +6 % in attenuation and -2 to +5 % in the material ratio
a_low/a_high for steel over up to 20 g/cm^2 of organics, +8 % / +11 % over a thin steel sheet; enough to
turn steel over organic clutter from the display's 'inorganic' to 'metal' colour. So an FTI with areal
densities (generated ones) is rendered exactly by default: over the bag's two-material equivalent
(cellulose + iron areal densities matching its measured high and low attenuation, ``basis``),
multiplier = T(bag_eq + FTI) / T(bag_eq) per channel: within 0.1 % of direct simulation over
organic or organic + steel layers where the bag is penetrable, within 1 % over cluttered bags.
``hardening=False`` forces the plain product. tests/test_tip_physics.py states and checks both
tolerances against direct simulation of the same object in the same bag.

Noise. A generated FTI is noise-free and sharp: its transmission gets the scanner model's blur
(``synth.BLUR_SIGMA``) and, for the added attenuation, Gaussian noise of variance g*N*T*(1-T), which
turns the bag's scaled noise (variance g*N*T^2) into the g*N*T a real scan of both has; the gain g
(counts per photon) is read from the scan's air (variance/mean of neighbour differences), 1 if it has
too little air. An imported FTI already carries its own scan's noise and blur: no blur is added, and
noise only for the shortfall between g*N*T and what the product already has (bag noise T^2*g*N plus
the FTI's relative noise 1/(photons*T) times (N*T)^2, times the share of it that the placement's
resampling keeps, ``warp_noise_factor``); where the product is already
noisier (a light object over a light bag) it stays so, up to a factor (T + T_bag) in variance.
RGB pseudo-colour exports: display values times the approximate per-channel transmission, no noise
(a vendor colour map is not Beer-Lambert: the result is an approximation and said so).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from xscreen.physics import MAT_INDEX, MATERIALS, SANDWICH, mu_matrix
from xscreen.scan import Scan
from xscreen.synth import BLUR_SIGMA
from xscreen.tip.basis import basis
from xscreen.tip.fti import FTI, TipError
from xscreen.tip.warp import Placement, Window, warp_layers

_T_MIN = 1e-6
MIN_AIR_PIXELS = 2000


@dataclass
class Projected:
    """``scan``: the projected scan (same id, kind, i0, pitch, metadata as the bag: nothing in it says
    TIP; ``path`` None: it is not the bag's file); ``mask`` (H, W) bool: the FTI footprint in scan
    coordinates; ``box`` (x, y, w, h): the window the FTI touched (clipped to the scan); ``gain``:
    counts per photon used for the noise."""

    scan: Scan
    mask: np.ndarray
    placement: Placement
    fti_id: str
    category: str
    box: tuple[int, int, int, int]
    gain: tuple[float, ...] = ()


def photon_gain(scan: Scan) -> tuple[float, ...]:
    """Counts per photon per channel (C,), from the variance of neighbour differences in the air
    (pixels within 3 % of i0); 1.0 where the scan shows too little air to tell."""
    out = []
    for ch in scan.channels.astype(np.float32):
        d = ch[:, 1:] - ch[:, :-1]
        air = (np.abs(ch[:, 1:] - scan.i0) < 0.03 * scan.i0) & (np.abs(ch[:, :-1] - scan.i0) < 0.03 * scan.i0)
        if air.sum() < MIN_AIR_PIXELS:
            out.append(1.0)
            continue
        var = float(np.var(d[air])) / 2.0
        out.append(float(np.clip(var / float(np.mean(ch[:, 1:][air])), 1e-3, 1e3)))
    return tuple(out)


def _fti_window(fti: FTI, p: Placement) -> Window:
    layers = -np.log(np.clip(fti.transmission, _T_MIN, 1.0))
    return warp_layers(layers, fti.mask, p)


def _blurred_t(atten: np.ndarray, sharp: bool) -> np.ndarray:
    """(C, h, w) attenuation -> transmission, blurred in intensity (what a detector does) when the FTI
    is sharp; written as 1 - blur(1 - T) so a zero-attenuation FTI stays exactly 1."""
    t = np.exp(-atten)
    if sharp:
        for c in range(len(t)):
            t[c] = 1.0 - cv2.GaussianBlur(1.0 - t[c], (0, 0), BLUR_SIGMA)
    return np.clip(t, _T_MIN, 1.0)


def _poly_t(areal: np.ndarray, mats: tuple) -> np.ndarray:
    """``physics.transmission`` of (K, N) areal densities -> (2, N), with einsum: the same sums, but a
    BLAS matrix product of these thin shapes took 50 ms for 3e4 pixels on a busy 2-core box (its
    threads wait for cores) where einsum takes 1 ms."""
    expo = np.einsum("em,mn->en", mu_matrix(SANDWICH, mats), areal)
    np.negative(expo, out=expo)
    np.exp(expo, out=expo)
    return np.einsum("ce,en->cn", SANDWICH.weights.astype(np.float32), expo)


def _hardened_t(fti: FTI, p: Placement, scan: Scan, counts: np.ndarray) -> np.ndarray:
    """(2, h, w) exact multiplier T(bag_eq + FTI) / T(bag_eq), bag_eq = the bag's cellulose + iron
    equivalent (``basis``). Only the FTI's own materials and the two basis ones enter the sums."""
    keep = {MAT_INDEX["cellulose"], MAT_INDEX["fe"]}
    used = sorted(set(np.nonzero(fti.areal.reshape(len(MATERIALS), -1).any(1))[0]) | keep)
    mats = tuple(MATERIALS[k] for k in used)
    areal = warp_layers(fti.areal[used], fti.mask, p).clip(scan.height, scan.width).layers
    there = areal.any(0)  # the product only where the object is: elsewhere the multiplier is 1
    a = [-np.log(np.clip(cv2.GaussianBlur(counts[c], (0, 0), 1.0)[there] / scan.i0, _T_MIN, 1.0)) for c in (0, 1)]
    eq = basis(a[0], a[1])
    base = np.zeros((len(used), int(there.sum())), np.float32)
    base[used.index(MAT_INDEX["cellulose"])], base[used.index(MAT_INDEX["fe"])] = eq[0], eq[1]
    t = np.ones((2,) + there.shape, np.float32)
    t[:, there] = _poly_t(base + areal[:, there], mats) / _poly_t(base, mats)
    for c in range(2):
        t[c] = 1.0 - cv2.GaussianBlur(1.0 - t[c], (0, 0), BLUR_SIGMA)
    return np.clip(t, _T_MIN, 1.0)


def warp_noise_factor(fti: FTI, p: Placement) -> float:
    """How much the placement's resampling keeps of white noise's variance (1 = all; area averaging
    when shrinking and linear interpolation at fractional offsets keep less): an imported FTI's own
    noise is that much quieter once placed. Measured by warping unit white noise the same way."""
    unit = np.random.default_rng(0).standard_normal((1,) + fti.mask.shape).astype(np.float32)
    win = warp_layers(unit, fti.mask, p)
    inner = cv2.erode(win.mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return float(np.clip(win.layers[0][inner].var(), 0.01, 1.0)) if inner.sum() > 20 else 1.0


def _noise_var(fti: FTI, n: np.ndarray, t: np.ndarray, gain: float, kept: float) -> np.ndarray:
    """Variance (counts^2) to add so the product N*T has the g*N*T of a direct scan (see docstring).
    ``kept``: share of the imported FTI's own noise variance that survived resampling."""
    want = gain * n * t
    have = gain * n * t * t
    if fti.noisy:
        have = have + kept * (n * t) ** 2 / (fti.photons * t)
    return np.maximum(want - have, 0.0)


def project(scan: Scan, fti: FTI, placement: Placement, *, rng: np.random.Generator | None = None,
            noise: bool = True, hardening: bool | None = None) -> Projected:
    """The bag ``scan`` with ``fti`` projected at ``placement`` (see module docstring).

    ``rng`` draws the re-applied noise (default: a fixed seed, so the call is reproducible);
    ``hardening``: None (default) renders an FTI with areal densities exactly (dual only), else the
    plain product; False forces the product. Raises TipError when the FTI's kind is not the scan's.
    """
    if fti.kind != scan.kind:
        raise TipError(fti.name, f"FTI input kind {fti.kind} does not match the scan's ({scan.kind})")
    rng = rng or np.random.default_rng(0)
    win = _fti_window(fti, placement).clip(scan.height, scan.width)
    out = scan.channels.copy()
    mask = np.zeros((scan.height, scan.width), bool)
    h, w = win.mask.shape
    box = (win.x0, win.y0, w, h)
    gain: tuple[float, ...] = ()
    if h and w:
        sl = (slice(None), slice(win.y0, win.y0 + h), slice(win.x0, win.x0 + w))
        mask[sl[1:]] = win.mask
        counts = scan.channels[sl].astype(np.float32)
        if scan.kind == "rgb":
            t = _blurred_t(win.layers, False)
            out[sl] = np.clip(np.rint(counts * t), 0, 255).astype(out.dtype)
        else:
            gain = photon_gain(scan)
            exact = fti.areal is not None and scan.kind == "dual"
            if exact if hardening is None else (hardening and exact):
                t = _hardened_t(fti, placement, scan, counts)
            else:
                t = _blurred_t(win.layers, not fti.noisy)
            kept = warp_noise_factor(fti, placement) if fti.noisy and noise else 1.0
            out[sl] = _apply(counts, t, fti, gain, kept, rng, noise, out.dtype)
    # path=None: the TIP image is not the file the bag came from (nothing may hash, report or reload
    # it as that file); id, pitch and metadata stay the bag's, so nothing in it says TIP either
    new = replace(scan, channels=out, path=None, metadata=dict(scan.metadata))
    return Projected(new, mask, placement, fti.fti_id, fti.category, box, gain)


def _apply(counts: np.ndarray, t: np.ndarray, fti: FTI, gain: tuple[float, ...], kept: float,
           rng: np.random.Generator, noise: bool, dtype) -> np.ndarray:
    """(C, h, w) counts times t, plus the missing noise; rounded and clipped to ``dtype``."""
    res = counts * t
    if noise:
        for c in range(len(res)):
            var = _noise_var(fti, counts[c], t[c], gain[c], kept)
            touched = var > 0
            res[c][touched] += rng.standard_normal(int(touched.sum()), dtype=np.float32) * np.sqrt(var[touched])
    hi = np.iinfo(dtype).max
    return np.clip(np.rint(res), 0, hi).astype(dtype)


