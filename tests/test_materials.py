"""materials.py: dual-energy physics (classes over thickness), views, display settings, rgb/gray scans."""
import numpy as np
import pytest

from xscreen import materials as mt
from xscreen.physics import MAT_INDEX, MATERIALS, SANDWICH, reference_curve, transmission
from xscreen.scan import Scan

I0 = 60000.0


def _areal_for_high(table: str, a_high: np.ndarray) -> np.ndarray:
    """Areal density (g/cm^2) of a material that gives the requested high-energy attenuation."""
    areal = np.geomspace(1e-3, 500.0, 4000)
    a_h, _ = reference_curve(table, areal)
    return np.interp(a_high, a_h, areal)


def _dual_scan(t: np.ndarray, noise: bool = False, seed: int = 0) -> Scan:
    """(2, H, W) transmission -> dual Scan at I0, optionally with photon noise."""
    counts = t * I0
    if noise:
        counts = np.random.default_rng(seed).poisson(counts)
    return Scan("t", "dual", np.clip(np.rint(counts), 0, 65535).astype(np.uint16), I0)


def test_spectrum_effective_energies_match_a_sandwich_detector():
    high, low = SANDWICH.effective_kev()
    assert 75 <= high <= 90 and 50 <= low <= 60


@pytest.mark.parametrize("table,expected", [("cellulose", mt.ORGANIC), ("water", mt.ORGANIC),
                                            ("pe", mt.ORGANIC), ("al", mt.INORGANIC), ("fe", mt.METAL),
                                            ("cu", mt.METAL)])
def test_materials_keep_their_class_over_thickness(table, expected):
    a_high = np.linspace(0.1, 5.5, 40)
    a_h, a_l = reference_curve(table, _areal_for_high(table, a_high))
    assert np.allclose(a_h, a_high, atol=1e-3)
    assert (mt.material_classes(a_l, a_h) == expected).all()


def test_equal_high_attenuation_metal_and_organic_differ_at_every_thickness():
    a_high = np.linspace(0.05, 5.9, 60)
    org = reference_curve("cellulose", _areal_for_high("cellulose", a_high))
    fe = reference_curve("fe", _areal_for_high("fe", a_high))
    c_org = mt.material_classes(org[1], org[0])
    c_fe = mt.material_classes(fe[1], fe[0])
    assert (c_org == mt.ORGANIC).all() and (c_fe == mt.METAL).all()


def test_ratio_alone_would_fail_because_of_beam_hardening():
    # Thin aluminium has a higher low/high ratio than thick iron: a fixed ratio cut cannot work,
    # which is why the classifier's boundaries depend on a_high.
    al = reference_curve("al", _areal_for_high("al", np.array([0.1])))
    fe = reference_curve("fe", _areal_for_high("fe", np.array([5.0])))
    assert al[1, 0] / al[0, 0] > fe[1, 0] / fe[0, 0]
    assert mt.material_classes(al[1], al[0])[0] == mt.INORGANIC
    assert mt.material_classes(fe[1], fe[0])[0] == mt.METAL


def test_noisy_slabs_with_equal_high_attenuation_are_told_apart():
    """End to end through counts, photon noise and the render tables."""
    for a_high in (0.5, 1.5, 3.0, 4.5):
        areal = np.zeros((len(MATERIALS), 32, 64), np.float32)
        areal[MAT_INDEX["cellulose"], :, :32] = _areal_for_high("cellulose", a_high)
        areal[MAT_INDEX["fe"], :, 32:] = _areal_for_high("fe", a_high)
        scan = _dual_scan(transmission(areal), noise=True, seed=int(a_high * 10))
        a = mt.attenuation(scan)
        cls = mt.material_classes(a[1], a[0])
        assert np.mean(cls[:, :32] == mt.ORGANIC) > 0.95, a_high
        assert np.mean(cls[:, 32:] == mt.METAL) > 0.95, a_high
        rgb = mt.render(scan, "pseudo").astype(int)
        left, right = rgb[8:24, 4:28].mean(axis=(0, 1)), rgb[8:24, 36:60].mean(axis=(0, 1))
        assert left[0] > left[2] + 20, (a_high, left)  # orange: red over blue
        assert right[2] > right[0] + 5, (a_high, right)  # blue


def test_air_and_impenetrable():
    t = np.ones((2, 8, 16), np.float32)
    t[:, :, 8:] = 1e-4
    scan = _dual_scan(t)
    a = mt.attenuation(scan)
    cls = mt.material_classes(a[1], a[0])
    assert (cls[:, :8] == mt.AIR).all() and (cls[:, 8:] == mt.IMPENETRABLE).all()
    rgb = mt.render(scan, "pseudo")
    assert (rgb[:, :8] >= 250).all() and (rgb[:, 8:] <= 5).all()
    assert mt.MATERIAL_NAMES[mt.IMPENETRABLE] == "impenetrable"


def test_attenuation_of_array_and_scan_agree():
    t = np.random.default_rng(0).uniform(0.01, 1.0, (2, 5, 7)).astype(np.float32)
    scan = _dual_scan(t)
    assert np.allclose(mt.attenuation(scan), -np.log(t), atol=2e-3)
    assert mt.attenuation(np.zeros((2, 2, 2))).max() == pytest.approx(-np.log(1e-6), rel=1e-5)


def _slab_scan() -> Scan:
    areal = np.zeros((len(MATERIALS), 40, 90), np.float32)
    areal[MAT_INDEX["cellulose"], :, 10:30] = 3.0
    areal[MAT_INDEX["al"], :, 30:50] = 2.0
    areal[MAT_INDEX["fe"], :, 50:70] = 3.0
    return _dual_scan(transmission(areal))


def test_every_view_renders_rgb_uint8_of_the_scan_size():
    scan = _slab_scan()
    for view in mt.VIEWS:
        img = mt.render(scan, view)
        assert img.shape == (40, 90, 3) and img.dtype == np.uint8, view
    gray, neg = mt.render(scan, "gray"), mt.render(scan, "negative")
    assert np.array_equal(neg, 255 - gray)
    assert (gray[..., 0] == gray[..., 2]).all()


def test_stripping_views_keep_only_their_materials():
    scan = _slab_scan()
    org, inorg = mt.render(scan, "organic").astype(int), mt.render(scan, "inorganic").astype(int)
    col = lambda img, x: img[20, x]  # noqa: E731
    # organic view: the cellulose slab keeps its colour, the metal slab is a neutral grey ghost
    assert col(org, 20)[0] - col(org, 20)[2] > 50
    assert abs(col(org, 60)[0] - col(org, 60)[2]) < 3
    # inorganic view: the reverse
    assert abs(col(inorg, 20)[0] - col(inorg, 20)[2]) < 3
    assert col(inorg, 60)[2] - col(inorg, 60)[0] > 20


def test_high_penetration_brightens_dense_regions():
    scan = _slab_scan()
    assert mt.render(scan, "high_pen")[20, 60].mean() > mt.render(scan, "pseudo")[20, 60].mean() + 30


def test_window_level_gamma_and_edges():
    scan = _slab_scan()
    base = mt.render(scan, "gray")
    assert np.array_equal(mt.render(scan, "gray", window=1.0, level=0.5), base)
    narrow = mt.render(scan, "gray", window=0.1, level=0.6)
    assert set(np.unique(narrow[base < 0.55 * 255])) == {0}
    assert set(np.unique(narrow[base > 0.65 * 255])) == {255}
    lifted = mt.render(scan, "gray", gamma=2.0)
    dark = base < 128
    assert (lifted[dark] >= base[dark]).all() and lifted[dark].mean() > base[dark].mean() + 10
    edged = mt.render(scan, "gray", edge=True).astype(int)
    jump = np.abs(np.diff(edged[20, :, 0])).max()
    assert jump > np.abs(np.diff(base[20, :, 0].astype(int))).max()
    with pytest.raises(ValueError, match="window"):
        mt.render(scan, "gray", window=0)
    with pytest.raises(ValueError, match="gamma"):
        mt.render(scan, "gray", gamma=-1)


def test_unknown_view_is_refused():
    with pytest.raises(ValueError, match="unknown view 'xray'"):
        mt.render(_slab_scan(), "xray")


def test_rgb_scan_shown_as_is_and_dual_views_unavailable():
    img = np.random.default_rng(1).integers(0, 256, (3, 20, 30), dtype=np.uint8)
    scan = Scan("vendor", "rgb", img, 255.0)
    assert mt.available_views(scan) == ("pseudo", "gray", "negative")
    assert np.array_equal(mt.render(scan, "pseudo"), np.moveaxis(img, 0, -1))
    gray = mt.render(scan, "gray")
    assert gray.shape == (20, 30, 3) and (gray[..., 0] == gray[..., 1]).all()
    assert np.array_equal(mt.render(scan, "negative"), 255 - gray)
    for view in mt.DUAL_ONLY:
        with pytest.raises(mt.ViewUnavailable, match="needs a dual-energy scan; this scan is rgb"):
            mt.render(scan, view)


def test_gray_scan_views():
    img = (np.arange(600, dtype=np.uint16).reshape(1, 20, 30) * 100)
    scan = Scan("g", "gray", img, 60000.0)
    assert mt.available_views(scan) == ("gray", "negative")
    out = mt.render(scan, "gray")
    assert out[0, 1, 0] == round(100 / 60000 * 255) and out[-1, -1, 0] == 255
    with pytest.raises(mt.ViewUnavailable, match="pseudo"):
        mt.render(scan, "pseudo")


def test_stripping_views_leave_air_white():
    scan = _slab_scan()
    for view in ("organic", "inorganic"):
        assert (mt.render(scan, view)[:, :8] >= 250).all(), view
