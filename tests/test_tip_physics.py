"""Projection physics (issue 30): Beer-Lambert on counts, against direct simulation of the same object
in the same bag. Stated tolerances (xscreen/tip/project.py, README 'TIP'):
- the plain product of transmissions (imported FTIs; ``hardening=False``): mean high-channel
  attenuation and material ratio a_low/a_high within 6 % of direct simulation for steel up to
  10 g/cm^2 over up to 20 g/cm^2 of organics where the bag is penetrable (beam hardening: the bag has
  already hardened the beam; +3.1 % / +3.1 % for the 3 over 8 g/cm^2 case tested here); within 12 %
  where the bag has steel under the object (+8 % / +11 % over a 0.8 g/cm^2 steel sheet);
- the exact rendering (generated FTIs, the default for them): within 1 %;
- noise: variance/mean of the projected region within 10 % of the directly simulated one.
"""
import cv2
import numpy as np
import pytest

from xscreen.materials import attenuation, material_classes
from xscreen.physics import MAT_INDEX, MATERIALS, transmission
from xscreen.scan import Scan
from xscreen.tip import FTI, Placement, TipError, fti_from_areal, photon_gain, project
from xscreen.tip import simulate as sim
from xscreen.tip.importer import import_tray_scan

TOL_MULTIPLY = 0.06
TOL_MULTIPLY_METAL = 0.12  # the plain product where the bag has steel under the object
TOL_HARDENED = 0.01
TOL_NOISE = 0.10


def steel_plate(g_cm2=3.0, h=40, w=60) -> FTI:
    areal = np.zeros((len(MATERIALS), h + 20, w + 20), np.float32)
    areal[MAT_INDEX["fe"], 10:10 + h, 10:10 + w] = g_cm2
    return fti_from_areal(areal, category="other", name="steel plate", pitch_mm=1.0)


def interior(mask, px=4):
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)).astype(bool)


@pytest.fixture(scope="module")
def organic():
    """An even 8 g/cm^2 cellulose 'bag' (organic clutter), imaged, and a steel plate in it."""
    scene = sim.slab_scene(260, 180, "cellulose", 8.0)
    bag = sim.image(scene.areal, np.random.default_rng(0))
    plate = steel_plate(h=80, w=120)  # ~8000 interior pixels: the variance is known to ~2 %
    where = Placement(130, 90)
    direct = sim.image(sim.with_object(scene, plate, where), np.random.default_rng(1))
    return scene, bag, plate, where, direct


def test_zero_attenuation_fti_leaves_the_bag_unchanged():
    bag = sim.image(sim.clutter_scene(3, 200, 150).areal, np.random.default_rng(0))
    nothing = FTI(name="nothing", category="other", kind="dual", transmission=np.ones((2, 30, 30), np.float32),
                  mask=np.ones((30, 30), bool), pitch_mm=1.0, source="synth")
    for p in (Placement(100, 75), Placement(90, 60, 33.0, True, 1.7)):
        out = project(bag, nothing, p)
        assert np.array_equal(out.scan.channels, bag.channels)
        assert out.mask.sum() > 0


def test_fti_over_air_reproduces_the_fti():
    air = sim.image(np.zeros((len(MATERIALS), 120, 160), np.float32), np.random.default_rng(0))
    plate = steel_plate(2.0)
    out = project(air, plate, Placement(80, 60))
    got = attenuation(out.scan)
    m = interior(out.mask)
    want = -np.log(plate.transmission[:, plate.mask]).mean(1)
    assert np.allclose(got[:, m].mean(1), want, rtol=0.01)
    assert abs(float(np.median(got[0][m])) - want[0]) < 0.01
    far = ~cv2.dilate(out.mask.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert np.array_equal(out.scan.channels[:, far], air.channels[:, far])  # the air around stays as it was


def test_steel_over_organic_matches_direct_simulation_within_tolerance(organic):
    _, bag, plate, where, direct = organic
    d = attenuation(direct)
    m = interior(direct_mask(plate, where, bag))
    d_ratio = d[1][m].mean() / d[0][m].mean()
    errors, classes = {}, {}
    for hardening in (False, True, None):
        p = attenuation(project(bag, plate, where, hardening=hardening).scan)
        errors[hardening] = (p[0][m].mean() / d[0][m].mean() - 1, (p[1][m].mean() / p[0][m].mean()) / d_ratio - 1)
        classes[hardening] = material_classes(p[1], p[0])[m]
    a_err, ratio_err = errors[False]
    assert 0 < a_err < TOL_MULTIPLY and 0 < ratio_err < TOL_MULTIPLY  # overestimates, within 6 %
    assert abs(errors[True][0]) < TOL_HARDENED and abs(errors[True][1]) < TOL_HARDENED
    assert errors[None] == errors[True]  # a generated FTI is rendered exactly unless told otherwise
    # what the operator sees: the display's material class of the steel matches the direct image when
    # rendered exactly (the plain product's +3 % in the ratio moved 90 % of it from 'inorganic' to
    # 'metal' when measured: why generated FTIs are rendered exactly)
    assert (classes[True] == material_classes(d[1], d[0])[m]).mean() > 0.9


def direct_mask(plate, where, bag):
    return project(bag, plate, where, noise=False).mask


def test_projected_noise_variance_matches_a_directly_simulated_bag(organic):
    _, bag, plate, where, direct = organic
    out = project(bag, plate, where, rng=np.random.default_rng(7))
    m = interior(out.mask)
    for c in range(2):
        p, d = out.scan.channels[c][m].astype(float), direct.channels[c][m].astype(float)
        assert abs((p.var() / p.mean()) / (d.var() / d.mean()) - 1) < TOL_NOISE
    quiet = project(bag, plate, where, noise=False)  # without re-applied noise: clearly too clean
    q = quiet.scan.channels[0][m].astype(float)
    assert q.var() / q.mean() < 0.5 * direct.channels[0][m].astype(float).var() / direct.channels[0][m].mean()


def test_photon_gain_is_read_from_the_air():
    air = sim.image(np.zeros((len(MATERIALS), 100, 100), np.float32), np.random.default_rng(0))
    assert np.allclose(photon_gain(air), 1.0, atol=0.05)
    doubled = Scan("x2", "dual", (air.channels.astype(np.int64) * 2 - int(air.i0)).clip(0, 65535).astype(np.uint16),
                   air.i0, pixel_pitch_mm=1.0)  # noise doubled around the same air level: 4x the variance
    assert np.allclose(photon_gain(doubled), 4.0, rtol=0.1)


def test_kind_mismatch_is_refused():
    gray = Scan("g", "gray", np.full((1, 80, 80), 200, np.uint16), 255.0, pixel_pitch_mm=1.0)
    with pytest.raises(TipError, match="does not match the scan"):
        project(gray, steel_plate(), Placement(40, 40))


def test_imported_tray_scan_projects_like_the_object_and_keeps_no_tray():
    """A plate scanned in a tray (the tray divides out), projected over air: the plate's attenuation,
    nothing around it (no tray rim, no halo), noise topped up only where it is missing."""
    rng = np.random.default_rng(4)
    tray = sim.slab_scene(160, 120, "pe", 1.0, box=(0, 0, 160, 120))
    with_plate = tray.areal.copy()
    with_plate[MAT_INDEX["fe"], 40:80, 50:110] += 2.0
    scan = sim.image(with_plate, rng)
    fti = import_tray_scan(scan, category="other", name="plate in tray")
    assert fti.source == "import" and fti.noisy
    assert 40 * 60 <= fti.mask.sum() <= 46 * 66  # the plate and its blurred edge (<= 3 px)
    assert (fti.transmission[:, ~cv2.dilate(fti.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)]
            == 1.0).all()
    air = sim.image(np.zeros((len(MATERIALS), 120, 160), np.float32), np.random.default_rng(5))
    out = project(air, fti, Placement(80, 60), rng=np.random.default_rng(6))
    want = attenuation(sim.image(np.pad(with_plate - tray.areal, 0), np.random.default_rng(8)))
    m = interior(out.mask)
    got = attenuation(out.scan)
    assert abs(got[0][m].mean() - want[0][40:80, 50:110][interior(np.ones((40, 60), bool))].mean()) < 0.02
    ring = cv2.dilate(out.mask.astype(np.uint8), np.ones((15, 15), np.uint8)).astype(bool) & ~cv2.dilate(
        out.mask.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    assert abs(got[0][ring].mean()) < 0.005


def test_basis_recovers_cellulose_and_iron_layers():
    from xscreen.tip.basis import basis
    cases = [(5.0, 0.0), (20.0, 0.0), (5.0, 1.0), (2.0, 3.0), (0.0, 2.0)]
    areal = np.zeros((len(MATERIALS), len(cases)), np.float32)
    for k, (c, f) in enumerate(cases):
        areal[MAT_INDEX["cellulose"], k], areal[MAT_INDEX["fe"], k] = c, f
    a = -np.log(transmission(areal))
    assert np.allclose(basis(a[0], a[1]).T, cases, atol=0.01)


def test_exact_rendering_over_a_bag_with_metal_in_it():
    """Steel under steel: the bag's iron equivalent hardens the beam for the FTI as the direct image does
    (the plain product is +8 % in a_high, +11 % in the ratio here: steel hardens the beam far more)."""
    scene = sim.slab_scene(220, 160, "cellulose", 4.0)
    scene.areal[MAT_INDEX["fe"], 16:144, 22:198] = 0.8  # a steel sheet across the bag (a laptop, a tin)
    bag = sim.image(scene.areal, np.random.default_rng(0))
    plate, where = steel_plate(2.0, h=60, w=90), Placement(110, 80)
    direct = attenuation(sim.image(sim.with_object(scene, plate, where), np.random.default_rng(1)))
    m = interior(project(bag, plate, where, noise=False).mask)
    for hardening, tol in ((None, TOL_HARDENED), (False, TOL_MULTIPLY_METAL)):
        p = attenuation(project(bag, plate, where, hardening=hardening).scan)
        assert abs(p[0][m].mean() / direct[0][m].mean() - 1) < tol
        ratio = (p[1][m].mean() / p[0][m].mean()) / (direct[1][m].mean() / direct[0][m].mean())
        assert abs(ratio - 1) < tol
