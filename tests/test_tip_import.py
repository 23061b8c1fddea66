"""FTIs from images: a tray scan divided by the empty tray, an annotated RGB export (approximate)."""
import numpy as np
import pytest

from xscreen.materials import attenuation
from xscreen.physics import MAT_INDEX, MATERIALS
from xscreen.scan import Scan
from xscreen.tip import Placement, TipError, project, schedule
from xscreen.tip import simulate as sim
from xscreen.tip.importer import import_tray_scan


def tray_scene(with_object: bool) -> np.ndarray:
    areal = np.zeros((len(MATERIALS), 100, 140), np.float32)
    areal[MAT_INDEX["pe"]] = np.linspace(0.5, 1.5, 140, dtype=np.float32)  # a tray thicker to one side
    if with_object:
        areal[MAT_INDEX["al"], 30:70, 40:100] += 2.0
    return areal


def test_dividing_by_the_empty_tray_removes_an_uneven_tray():
    scan = sim.image(tray_scene(True), np.random.default_rng(0))
    empty = sim.image(tray_scene(False), np.random.default_rng(1))
    fti = import_tray_scan(scan, category="other", name="al block", tray=empty)
    truth = attenuation(sim.image(tray_scene(True) - tray_scene(False), np.random.default_rng(2), noise=False))
    a = -np.log(fti.transmission)
    inner = np.zeros_like(fti.mask)
    inner[8:-8, 8:-8] = fti.mask[8:-8, 8:-8]
    # beam hardening by the tray: the object's attenuation behind it is a little lower than alone
    assert a[0][inner].mean() == pytest.approx(truth[0][30:70, 40:100].mean(), rel=0.05)
    assert 2200 <= fti.mask.sum() <= 46 * 66 and fti.photons > 1e4


def test_box_crops_and_a_box_outside_the_image_is_refused():
    scan = sim.image(tray_scene(True), np.random.default_rng(0))
    fti = import_tray_scan(scan, category="other", name="al", box=(20, 15, 100, 70))
    assert fti.mask.sum() > 2000
    with pytest.raises(TipError, match="not inside"):
        import_tray_scan(scan, category="other", name="al", box=(100, 50, 100, 70))
    blank = sim.image(tray_scene(False), np.random.default_rng(0))
    with pytest.raises(TipError, match="no object found"):
        import_tray_scan(blank, category="other", name="nothing")


def test_rgb_crop_is_approximate_and_projects_into_rgb_scans_only():
    img = np.full((3, 120, 160), 250, np.uint8)  # a vendor export: near-white background
    img[:, 40:80, 50:110] = np.array([60, 90, 200], np.uint8)[:, None, None]  # a blue (metal) object
    export = Scan("export", "rgb", img, 255.0, pixel_pitch_mm=1.0)
    mask = np.zeros((120, 160), bool)
    mask[40:80, 50:110] = True
    fti = import_tray_scan(export, category="knife", name="blade", box=(30, 20, 100, 80), mask=mask)
    assert fti.kind == "rgb" and fti.source == "rgb-crop" and not fti.noisy
    assert np.allclose(fti.transmission[:, fti.mask].mean(1), np.array([60, 90, 200]) / 250, atol=0.01)
    bag = np.full((3, 200, 260), 250, np.uint8)
    bag[:, 20:180, 20:240] = np.array([200, 160, 100], np.uint8)[:, None, None]  # an orange (organic) bag
    rgb_bag = Scan("bag", "rgb", bag, 255.0, pixel_pitch_mm=1.0)
    out = project(rgb_bag, fti, schedule(rgb_bag, fti, np.random.default_rng(0)))
    inside = out.scan.channels[:, out.mask].mean(1)
    assert np.allclose(inside, np.array([200, 160, 100]) * np.array([60, 90, 200]) / 250, atol=3)
    dual = sim.image(tray_scene(False), np.random.default_rng(0))
    with pytest.raises(TipError, match="does not match"):
        project(dual, fti, Placement(70, 50))


def test_a_scan_without_pitch_needs_one():
    scan = sim.image(tray_scene(True), np.random.default_rng(0))
    scan.pixel_pitch_mm = None
    with pytest.raises(TipError, match="no pixel pitch"):
        import_tray_scan(scan, category="other", name="al")
    assert import_tray_scan(scan, category="other", name="al", pitch_mm=0.8).pitch_mm == 0.8


def test_rgb_crop_from_a_real_sixray_export_projects_into_another(realdata):
    """A gun box from a SIXray pseudo-colour JPEG (box from benchmarks/sixray_boxes.json) as an rgb-crop
    FTI, projected into a benign SIXray image: only pixels at the FTI's footprint change."""
    from xscreen.scan import load_scan
    src = load_scan(realdata / "sixray_subset" / "positive" / "P00011.jpg")
    fti = import_tray_scan(src, category="handgun", name="P00011 gun", box=(70, 200, 120, 145), pitch_mm=1.0,
                           threshold=0.1)
    assert fti.kind == "rgb" and fti.source == "rgb-crop" and fti.mask.sum() > 1000
    negative = sorted((realdata / "sixray_subset" / "negative").iterdir())[0]
    bag = load_scan(negative)
    bag.pixel_pitch_mm = 1.0
    out = project(bag, fti, schedule(bag, fti, np.random.default_rng(0)))
    changed = (out.scan.channels != bag.channels).any(0)
    x, y, w, h = out.box
    assert changed.any() and not changed[:, :x].any() and not changed[:y].any()
    assert not changed[:, x + w:].any() and not changed[y + h:].any()


def test_grey_scans_import_and_project_like_one_channel_of_dual():
    dual_tray = sim.image(tray_scene(True), np.random.default_rng(0))
    grey_tray = Scan("grey tray", "gray", dual_tray.channels[:1].copy(), dual_tray.i0, pixel_pitch_mm=1.0)
    fti = import_tray_scan(grey_tray, category="other", name="al block")
    assert fti.kind == "gray" and fti.transmission.shape[0] == 1 and fti.noisy
    air = sim.image(np.zeros((len(MATERIALS), 120, 160), np.float32), np.random.default_rng(1))
    grey_air = Scan("grey air", "gray", air.channels[:1].copy(), air.i0, pixel_pitch_mm=1.0)
    out = project(grey_air, fti, Placement(80, 60))
    got = np.median(attenuation(out.scan)[0][out.mask])
    assert got == pytest.approx(np.median(-np.log(fti.transmission[0][fti.mask])), rel=0.03)


def test_an_annotation_of_another_size_is_refused():
    scan = sim.image(tray_scene(True), np.random.default_rng(0))
    with pytest.raises(TipError, match="must be the same size"):
        import_tray_scan(scan, category="other", name="al", mask=np.ones((10, 10), bool))
