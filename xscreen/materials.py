"""The operator's image functions for dual-energy scans: attenuation, material classes, views.

Pure numpy/OpenCV. Material classes come from a 2-D decision over (a_high, a_low), not from the
low/high ratio alone: beam hardening makes the ratio of one material fall with thickness (iron goes
from ~3.1 when thin to ~1.7 when thick, below thin aluminium's ~1.9), so a fixed ratio cut would call
thick steel "inorganic". Instead the boundaries are curves, computed from the physics model in
``physics`` for reference materials (cellulose Z_eff~7, aluminium Z=13, iron Z=26) at
thicknesses from 0.01 to 300 g/cm^2: at each a_high the class boundary sits halfway (geometric mean)
between the neighbouring reference materials' a_low.

Every colour view is one lookup per pixel in a precomputed (NB, NB, 3) table indexed by the
quantised (a_high, a_low) pair (cv2.remap with float coordinates from cv2.log/sqrt), so rendering a
1000x1000 scan costs a few milliseconds (see benchmarks/bench_render.py).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from xscreen.physics import reference_curve
from xscreen.scan import Scan

VIEWS = ("pseudo", "gray", "negative", "high_pen", "organic", "inorganic")
DUAL_ONLY = ("high_pen", "organic", "inorganic")
MATERIAL_NAMES = ("air", "organic", "inorganic", "metal", "impenetrable")
AIR, ORGANIC, INORGANIC, METAL, IMPENETRABLE = range(5)

A_MAX = 9.0  # attenuation range of the tables; T = 1.2e-4 is at the 16-bit noise floor
AIR_A = 0.025  # below this in both channels: air (Poisson noise at I0=60000 is ~0.004)
IMPENETRABLE_A = 6.0  # high channel below 0.25 % transmission: too few photons to tell materials
# the material coordinate fades in over a_high 0 -> 0.2 (~18 % absorbed): below it, Poisson noise at
# i0 ~ 6e4 moves the ratio a_low / a_high by more than a few per cent of the organic-iron gap
MATERIAL_FADE_A = 0.2
NB = 512  # table bins per channel, spaced in sqrt(a) so thin objects keep fine ratio resolution
_T_MIN = 1e-6

# Standard operator palette (RGB): orange organic, green inorganic, blue metal, black impenetrable.
HUES = np.array([[255, 255, 255], [255, 150, 20], [40, 190, 40], [40, 90, 255], [0, 0, 0]], np.float32)


class ViewUnavailable(ValueError):
    """The view needs two energies and the scan has one (or is a vendor colour image)."""


def attenuation(scan_or_t: Scan | np.ndarray) -> np.ndarray:
    """(C, H, W) float32 a = -ln(T) per channel, from a Scan or a transmission array (C, H, W)."""
    t = scan_or_t.transmission() if isinstance(scan_or_t, Scan) else np.asarray(scan_or_t, np.float32)
    return -np.log(np.clip(t, _T_MIN, 1.0)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _curves() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a_low / a_high of cellulose, aluminium and iron at each a_high of the grid (600,)."""
    areal = np.geomspace(0.01, 300.0, 400)
    grid = _grid()
    out = []
    for table in ("cellulose", "al", "fe"):
        a_h, a_l = reference_curve(table, areal)
        out.append(np.interp(grid, a_h, a_l) / grid)
    return tuple(out)


def _grid() -> np.ndarray:
    return np.linspace(1e-3, A_MAX, 600)


@functools.lru_cache(maxsize=1)
def _boundaries() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(K,) a_high grid and the organic|inorganic and inorganic|metal boundary ratios a_low/a_high."""
    org, inorg, metal = _curves()
    return _grid(), np.sqrt(org * inorg), np.sqrt(inorg * metal)


def material_classes(a_low: np.ndarray, a_high: np.ndarray) -> np.ndarray:
    """(H, W) uint8 class (0 air, 1 organic, 2 inorganic, 3 metal, 4 impenetrable) from attenuations (H, W)."""
    a_low = np.asarray(a_low, np.float32)
    a_high = np.asarray(a_high, np.float32)
    grid, b_oi, b_im = _boundaries()
    ratio = a_low / np.maximum(a_high, 1e-6)
    out = np.full(a_high.shape, ORGANIC, np.uint8)
    out[ratio >= np.interp(a_high, grid, b_oi)] = INORGANIC
    out[ratio >= np.interp(a_high, grid, b_im)] = METAL
    out[(a_high < AIR_A) & (a_low < AIR_A)] = AIR
    out[a_high >= IMPENETRABLE_A] = IMPENETRABLE
    return out


def _bin_centres() -> np.ndarray:
    """(NB,) attenuation at the centre of each table bin (bins uniform in sqrt(a))."""
    return (np.arange(NB) / NB) ** 2 * A_MAX


def _table_coords(channel: np.ndarray, i0: float) -> np.ndarray:
    """(H, W) float32 column/row coordinate into the colour tables for raw values (H, W) uint16.

    u = sqrt(a / A_MAX) * NB with a = -ln(value / i0), in five vectorised passes (OpenCV's SIMD log
    and sqrt); remap's nearest-neighbour rounding then picks the table row whose centre is nearest.
    A 65536-entry numpy gather does the same in 3-5x the time (index conversion dominates).
    """
    f = np.multiply(channel, np.float32(1.0 / i0), dtype=np.float32)
    cv2.log(f, f)  # in place (one float map per channel); value 0 gives -inf/huge: clipped below
    f *= np.float32(-NB * NB / A_MAX)
    np.clip(f, 0.0, float(NB * NB), out=f)
    return cv2.sqrt(f, f)


def _hue(a_low: np.ndarray, a_high: np.ndarray, cls: np.ndarray) -> np.ndarray:
    """(..., 3) float RGB hue: continuous along organic -> inorganic -> metal, like operator consoles.

    z is the position of a_low/a_high between the reference curves (0 organic, 1 Al, 2 Fe); the hue
    changes over a narrow band around each class boundary, so mixtures along a boundary do not
    flicker between two saturated colours while pure materials show their class colour.
    """
    z = _z(a_low, a_high)
    t1 = _smooth((z - 0.5) / 0.6 + 0.5)
    t2 = _smooth((z - 1.5) / 0.6 + 0.5)
    hue = (HUES[ORGANIC] * (1 - t1)[..., None] + HUES[INORGANIC] * (t1 * (1 - t2))[..., None]
           + HUES[METAL] * t2[..., None])
    return np.where((cls == IMPENETRABLE)[..., None], HUES[IMPENETRABLE], hue)


def _z(a_low: np.ndarray, a_high: np.ndarray) -> np.ndarray:
    """Position of log(a_low / a_high) between the reference curves at each a_high: 0 on cellulose,
    1 on aluminium, 2 on iron (linear in the log ratio between neighbours, extrapolated beyond)."""
    grid, _, _ = _boundaries()
    org, inorg, metal = (np.interp(a_high, grid, c) for c in _curves())
    lr = np.log(np.maximum(a_low, 1e-6) / np.maximum(a_high, 1e-6))
    return np.where(lr < np.log(inorg), (lr - np.log(org)) / np.log(inorg / org),
                    1.0 + (lr - np.log(inorg)) / np.log(metal / inorg))


def material_coordinate(a_high: np.ndarray, a_low: np.ndarray) -> np.ndarray:
    """(...) float32 in [0, 1]: the pixel's material between organic (0), aluminium (0.5) and iron
    (1) at its own a_high (beam hardening corrected, as the colour views), times
    min(1, a_high / MATERIAL_FADE_A) so that thin pixels, whose ratio is mostly noise, fade to 0."""
    a_high = np.asarray(a_high, np.float32)
    z = np.clip(_z(np.asarray(a_low, np.float32), a_high) * 0.5, 0.0, 1.0)
    z *= np.clip(a_high / MATERIAL_FADE_A, 0.0, 1.0)
    return z.astype(np.float32)


def _smooth(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _dual_table(view: str) -> np.ndarray:
    """(NB, NB, 3) uint8 colour for every (a_high bin, a_low bin) pair of a colour view."""
    a = _bin_centres()
    a_h, a_l = np.meshgrid(a, a, indexing="ij")
    cls = material_classes(a_l, a_h)
    sat = (1.0 - np.exp(-a_h / 0.4))[..., None]  # thin objects pale, saturated from ~0.8 attenuation
    if view == "high_pen":
        # Spend the whole brightness range on the dense end, where the normal view is near black.
        value = 1.0 - 0.92 * np.clip((a_h - 1.2) / (A_MAX - 2.5), 0.0, 1.0)
        cls = np.where(cls == IMPENETRABLE, METAL, cls)
    else:
        value = np.exp(-0.25 * a_h)
    rgb = (255.0 * (1.0 - sat) + _hue(a_l, a_h, cls) * sat) * value[..., None]
    if view in ("organic", "inorganic"):
        keep = (cls == ORGANIC if view == "organic" else cls >= INORGANIC) | (cls == AIR)  # air stays white
        faded = (0.75 + 0.25 * value)[..., None] * 235.0  # stripped material: pale grey ghost
        rgb = np.where(keep[..., None], rgb, faded)
    return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)


_dual_table_cached = functools.lru_cache(maxsize=len(VIEWS))(_dual_table)


def available_views(scan: Scan) -> tuple[str, ...]:
    """Views this scan can show: all of VIEWS for dual; rgb: its own colours (pseudo), gray, negative."""
    if scan.kind == "dual":
        return VIEWS
    if scan.kind == "rgb":
        return ("pseudo", "gray", "negative")
    return ("gray", "negative")


def render(scan: Scan, view: str = "pseudo", *, window: float | None = None, level: float | None = None,
           gamma: float = 1.0, edge: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 RGB display of ``scan`` in ``view``.

    window/level: display range in [0, 1] units (level = centre); gamma > 1 lifts dark (dense) regions
    (out = in ** (1 / gamma)); edge: unsharp-mask edge enhancement. Raises ViewUnavailable when the scan
    lacks the energies the view needs, ValueError for an unknown view or bad display settings.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view '{view}' (choose from {', '.join(VIEWS)})")
    if view not in available_views(scan):
        raise ViewUnavailable(
            f"{scan.scan_id}: view '{view}' needs a dual-energy scan; this scan is {scan.kind} "
            f"(available: {', '.join(available_views(scan))})")
    rgb = _render_dual(scan, view) if scan.kind == "dual" else _render_single(scan, view)
    rgb = tone(rgb, window=window, level=level, gamma=gamma)
    return unsharp(rgb) if edge else rgb


def _render_dual(scan: Scan, view: str) -> np.ndarray:
    """(H, W, 3) uint8 from a dual scan: grey views from the high channel, colour views by table."""
    high, low = scan.channels[0], scan.channels[1]
    i0 = max(float(scan.i0), 1.0)
    if view in ("gray", "negative"):
        g = high.astype(np.float32) * np.float32(1.0 / i0)  # grey = sqrt(T_high) = exp(-a_high / 2)
        np.clip(g, 0.0, 1.0, out=g)
        g = cv2.sqrt(g) * np.float32(255.0) + np.float32(0.5)
        gray = cv2.cvtColor(g.astype(np.uint8), cv2.COLOR_GRAY2RGB)
        return 255 - gray if view == "negative" else gray
    # Material colour comes from a ratio of two noisy channels; a 3x3 median keeps mixtures from
    # dithering between hues without the false colour fringes a mean makes at sharp edges
    # (air next to steel would average to an 'organic' ratio).
    y = _table_coords(cv2.medianBlur(high, 3), i0)
    x = _table_coords(cv2.medianBlur(low, 3), i0)
    # One remap = one table lookup per pixel with float coordinates, no index arrays.
    return cv2.remap(_dual_table_cached(view), x, y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)


def _render_single(scan: Scan, view: str) -> np.ndarray:
    """(H, W, 3) uint8 from an rgb or gray scan, shown as it is (gray/negative may apply)."""
    ch = scan.channels
    if ch.dtype == np.uint8:
        img = np.moveaxis(ch, 0, -1)
    else:
        img = (scan.transmission() * 255.0 + 0.5).astype(np.uint8).transpose(1, 2, 0)
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    elif view in ("gray", "negative"):
        img = np.repeat(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=-1)
    img = np.ascontiguousarray(img)
    return 255 - img if view == "negative" else img


def tone(rgb: np.ndarray, *, window: float | None = None, level: float | None = None,
         gamma: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8 through window/level (display units in [0, 1]) and gamma, via one 256-entry LUT."""
    if window is None and level is None and gamma == 1.0:
        return rgb
    window = 1.0 if window is None else float(window)
    level = 0.5 if level is None else float(level)
    if not (window > 0 and np.isfinite(window) and np.isfinite(level)):
        raise ValueError(f"window must be > 0 and level finite (got window={window}, level={level})")
    if not (gamma > 0 and np.isfinite(gamma)):
        raise ValueError(f"gamma must be > 0 (got {gamma})")
    x = np.arange(256, dtype=np.float64) / 255.0
    y = np.clip((x - (level - window / 2.0)) / window, 0.0, 1.0) ** (1.0 / gamma)
    lut = (y * 255.0 + 0.5).astype(np.uint8)
    return cv2.LUT(np.ascontiguousarray(rgb), lut)


def unsharp(rgb: np.ndarray, size: int = 5, amount: float = 1.0) -> np.ndarray:
    """(H, W, 3) uint8 edge enhancement: rgb + amount * (rgb - blur(rgb)).

    A box blur (constant cost per pixel) rather than a Gaussian: 3-4x faster at this radius and
    indistinguishable for edge emphasis.
    """
    blur = cv2.blur(rgb, (size, size))
    return cv2.addWeighted(rgb, 1.0 + amount, blur, -amount, 0)
