"""Realism numbers: a faithful projection passes; each known TIP artefact is caught by its number."""
import cv2
import numpy as np
import pytest

from xscreen.physics import MAT_INDEX, MATERIALS
from xscreen.tip import FTI, Placement, fti_from_areal, project, schedule, synth_fti
from xscreen.tip import simulate as sim
from xscreen.tip.generate import fti_seed
from xscreen.tip.importer import import_tray_scan
from xscreen.tip.realism import TOLERANCES, realism

PITCH = 1.5


@pytest.fixture(scope="module")
def bag():
    scene = sim.clutter_scene(21, 320, 220, pitch_mm=PITCH, items=9, organic_only=True)
    return sim.image(scene.areal, np.random.default_rng(3), pitch_mm=PITCH)


@pytest.fixture(scope="module")
def gun():
    return synth_fti("handgun", fti_seed(2, "handgun", 0), pitch_mm=2.0)


def plate() -> FTI:
    areal = np.zeros((len(MATERIALS), 50, 70), np.float32)
    areal[MAT_INDEX["fe"], 5:45, 5:65] = 2.5
    return fti_from_areal(areal, category="other", name="plate", pitch_mm=PITCH)


def test_a_faithful_projection_passes_every_check(bag, gun):
    for seed in range(3):
        p = schedule(bag, gun, np.random.default_rng(seed))
        r = realism(bag, project(bag, gun, p, rng=np.random.default_rng(seed)), gun)
        assert r.failures() == [], r
        assert abs(r.halo) < TOLERANCES["halo"] / 2 and r.over_air == 0.0


def test_an_unmasked_crop_shows_a_halo_and_pasted_edges(bag, gun):
    t = gun.transmission.copy()
    near = cv2.dilate(gun.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    t[:, ~near] = 0.92  # the tray kept around the object (divided by the air level, not the tray's)
    crop = FTI(name="crop", category="handgun", kind="dual", transmission=t, mask=gun.mask, pitch_mm=2.0,
               source="import", photons=6e4)
    p = schedule(bag, crop, np.random.default_rng(0))
    r = realism(bag, project(bag, crop, p), crop)
    assert {"halo", "pasted_edges"} <= set(r.failures())
    assert 0.05 < r.halo <= -np.log(0.92) + 0.005 and r.box_edge > 0.05  # the kept tray, where it reaches


def test_floating_over_air_is_caught(bag, gun):
    p = Placement(20, 20, 0.0, False, 2.0 / PITCH)  # in the corner: over the belt
    r = realism(bag, project(bag, gun, p), gun)
    assert "floating_over_air" in r.failures() and r.over_air > 0.2


def test_wrong_scale_is_caught(bag, gun):
    p = schedule(bag, gun, np.random.default_rng(1))
    wrong = Placement(p.cx, p.cy, p.angle_deg, p.flip, 1.0)  # pixel for pixel, ignoring the pitches
    r = realism(bag, project(bag, gun, wrong), gun)
    assert "wrong_scale" in r.failures() and r.scale_error == pytest.approx((PITCH / 2.0) ** 2 - 1, abs=0.05)


def test_a_noise_free_paste_is_caught_and_reapplied_noise_is_right(bag):
    steel = plate()
    p = Placement(160, 110)
    good = realism(bag, project(bag, steel, p, rng=np.random.default_rng(0)), steel)
    clean = realism(bag, project(bag, steel, p, noise=False), steel)
    assert 0.9 < good.noise_ratio < 1.1 and good.failures() == []
    assert clean.noise_ratio < 0.1 and clean.failures() == ["noise"]


def test_an_imported_fti_gets_only_the_missing_noise(bag):
    tray = np.zeros((len(MATERIALS), 90, 110), np.float32)
    tray[MAT_INDEX["pe"]] = 0.8
    tray[MAT_INDEX["fe"], 25:65, 25:85] = 2.5
    fti = import_tray_scan(sim.image(tray, np.random.default_rng(9), pitch_mm=PITCH), category="other",
                           name="plate in tray")
    r = realism(bag, project(bag, fti, Placement(160, 110), rng=np.random.default_rng(2)), fti)
    assert r.failures() == [] and 0.85 < r.noise_ratio < 1.2


def test_the_realism_page_tool_writes_the_page_and_every_check_passes(tmp_path):
    import importlib.util
    import json
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "tip_realism_tool", Path(__file__).resolve().parents[1] / "tools" / "tip_realism.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out, numbers = tmp_path / "page.png", tmp_path / "n.json"
    assert tool.main(["--out", str(out), "--json", str(numbers)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = json.loads(numbers.read_text())
    assert [r["category"] for r in rows] == ["handgun", "gun_part", "knife", "ied", "other"]
    for r in rows:
        assert r["failures"] == [] and abs(r["exact_a_high"]) < 0.01 and abs(r["exact_ratio"]) < 0.01
