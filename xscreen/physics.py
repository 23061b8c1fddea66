"""X-ray physics shared by the synthetic-bag generator and the material classifier.

Pure numpy, no xscreen imports, so both ``materials`` (display) and ``synth`` (generator) can
rely on it; it lives outside the ``synth`` package because ``materials`` sits below ``synth`` in the
layering and must not import it. Everything is Beer-Lambert over a small polychromatic spectrum per detector channel:

    T_c = sum_e w_ce * exp(-sum_m (mu/rho)_m(E_e) * D_m) / sum_e w_ce

with D_m the areal density (g/cm^2) of material m along the ray.

Mass attenuation coefficients mu/rho (cm^2/g, total with coherent scattering) are taken from
J. H. Hubbell and S. M. Seltzer, "Tables of X-Ray Mass Attenuation Coefficients and Mass
Energy-Absorption Coefficients" (NIST Standard Reference Database 126, v1.4, 2004),
https://physics.nist.gov/PhysRefData/XrayMassCoef/ (tab3 elements, tab4 compounds).
Cellulose (C6H10O5) is built from the H, C, O element tables by the mixture rule.
Between tabulated energies mu/rho is interpolated log-log, which is how the tables are meant to be
read away from absorption edges (the Pb K edge at 88.0 keV is kept as two rows).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Energies (keV) of the tabulated rows used below.
TABLE_KEV = np.array([30.0, 40.0, 50.0, 60.0, 80.0, 100.0, 150.0])

# mu/rho (cm^2/g) at TABLE_KEV, NIST SRD 126 (Hubbell & Seltzer).
_ELEMENTS = {
    "H": [0.3570, 0.3458, 0.3355, 0.3260, 0.3091, 0.2944, 0.2651],
    "C": [0.2562, 0.2076, 0.1871, 0.1753, 0.1610, 0.1514, 0.1347],
    "O": [0.3779, 0.2585, 0.2132, 0.1907, 0.1678, 0.1551, 0.1361],
}
_TABLE = {
    "water": [0.3756, 0.2683, 0.2269, 0.2059, 0.1837, 0.1707, 0.1505],
    "pe": [0.2706, 0.2275, 0.2084, 0.1970, 0.1823, 0.1719, 0.1534],  # polyethylene
    "pvc": [1.491, 0.7300, 0.4559, 0.3325, 0.2298, 0.1887, 0.1486],
    "glass": [0.7987, 0.4341, 0.3022, 0.2417, 0.1890, 0.1657, 0.1389],  # borosilicate (Pyrex)
    "al": [1.128, 0.5685, 0.3681, 0.2778, 0.2018, 0.1704, 0.1378],
    "fe": [8.176, 3.629, 1.958, 1.205, 0.5952, 0.3717, 0.1964],
    "cu": [10.92, 4.862, 2.613, 1.593, 0.7630, 0.4584, 0.2217],
    "sn": [41.21, 19.42, 10.70, 6.564, 3.029, 1.676, 0.6091],  # above the K edge at 29.2 keV
}
# Lead has its K edge inside the band: tabulated separately with the edge doubled.
_PB_KEV = np.array([30.0, 40.0, 50.0, 60.0, 80.0, 88.0, 88.0001, 100.0, 150.0])
_PB = np.array([30.32, 14.36, 8.041, 5.021, 2.419, 1.910, 7.683, 5.549, 2.014])

# Cellulose C6H10O5 mass fractions (H, C, O).
_CELLULOSE_W = {"H": 0.0622, "C": 0.4445, "O": 0.4934}


@dataclass(frozen=True)
class Material:
    name: str
    density: float  # g/cm^3, typical bulk density used to turn thickness into areal density
    table: str  # key of the mu/rho table


# The generator's materials, in the order of the areal-density stack (M, H, W).
MATERIALS: tuple[Material, ...] = (
    Material("cellulose", 0.8, "cellulose"),  # clothes, paper, books, leather, food
    Material("water", 1.0, "water"),  # liquids, gels, fresh food
    Material("pe", 0.95, "pe"),  # plastics, rubber soles, bag fabric
    Material("pvc", 1.38, "pvc"),  # cable insulation, hard cases
    Material("glass", 2.23, "glass"),
    Material("al", 2.70, "al"),
    Material("fe", 7.87, "fe"),
    Material("cu", 8.96, "cu"),
    Material("sn", 7.29, "sn"),
    Material("pb", 11.35, "pb"),
    # Explosive simulant: low-Z like cellulose (mu/rho of an organic CHNO mix is close to it), dense.
    Material("explosive", 1.65, "cellulose"),
)
MAT_INDEX = {m.name: i for i, m in enumerate(MATERIALS)}


def mu_rho(table: str, kev: np.ndarray) -> np.ndarray:
    """mu/rho (cm^2/g) of a table at energies ``kev`` (any shape), log-log interpolation."""
    kev = np.asarray(kev, dtype=np.float64)
    if table == "pb":
        xs, ys = _PB_KEV, _PB
    elif table == "cellulose":
        xs = TABLE_KEV
        ys = sum(w * np.asarray(_ELEMENTS[el]) for el, w in _CELLULOSE_W.items())
    else:
        xs, ys = TABLE_KEV, np.asarray(_TABLE[table])
    return np.exp(np.interp(np.log(kev), np.log(xs), np.log(ys)))


@dataclass(frozen=True)
class Spectrum:
    """A sandwich detector's two channels over a shared energy grid.

    ``weights`` (2, E): row 0 high channel, row 1 low channel (the Scan's channel order).
    The weights are detected-signal fractions: the front (low) layer absorbs mostly soft photons,
    the rear (high) layer sits behind a Cu filter and sees the hardened remainder.
    """

    kev: np.ndarray  # (E,)
    weights: np.ndarray  # (2, E), rows sum to 1

    def effective_kev(self) -> np.ndarray:
        """(2,) signal-weighted mean energy of the high and low channel."""
        return self.weights @ self.kev


_KEV = np.array([30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0, 120.0, 150.0])
_W_HIGH = np.array([0.0, 0.0, 0.07, 0.14, 0.18, 0.19, 0.16, 0.12, 0.09, 0.05])
_W_LOW = np.array([0.10, 0.22, 0.24, 0.18, 0.12, 0.08, 0.04, 0.02, 0.0, 0.0])
SANDWICH = Spectrum(_KEV, np.stack([_W_HIGH / _W_HIGH.sum(), _W_LOW / _W_LOW.sum()]))


def mu_matrix(spectrum: Spectrum = SANDWICH, materials=MATERIALS) -> np.ndarray:
    """(E, M) float32 mu/rho of every material at every energy of the spectrum."""
    cols = [mu_rho(m.table, spectrum.kev) for m in materials]
    return np.stack(cols, axis=1).astype(np.float32)


def transmission(areal: np.ndarray, spectrum: Spectrum = SANDWICH, materials=MATERIALS) -> np.ndarray:
    """Polychromatic transmission of an areal-density stack.

    areal: (M, ...) g/cm^2 per material. Returns (2, ...) float32 [high, low] in (0, 1].
    One matrix product (E, M) @ (M, N) does every pixel and energy at once.
    """
    areal = np.asarray(areal, dtype=np.float32)
    shape = areal.shape[1:]
    flat = areal.reshape(areal.shape[0], -1)
    expo = mu_matrix(spectrum, materials) @ flat  # (E, N)
    np.negative(expo, out=expo)
    np.exp(expo, out=expo)
    t = spectrum.weights.astype(np.float32) @ expo  # (2, N)
    return t.reshape((2,) + shape)


def reference_curve(table: str, areal: np.ndarray, spectrum: Spectrum = SANDWICH) -> np.ndarray:
    """(2, K) attenuation [a_high, a_low] = -ln T of one material at areal densities (K,) g/cm^2."""
    mu = mu_rho(table, spectrum.kev)  # (E,)
    expo = np.exp(-np.outer(mu, np.asarray(areal, dtype=np.float64)))  # (E, K)
    t = spectrum.weights @ expo
    return -np.log(np.maximum(t, 1e-300))
