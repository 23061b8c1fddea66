"""The TIP scheduler: inside the bag only, never over air or off the belt, physical size, seeded."""
import dataclasses

import numpy as np
import pytest

from xscreen.materials import AIR_A
from xscreen.physics import MAT_INDEX
from xscreen.tip import Placement, TipError, occupied_area, project, schedule, synth_fti
from xscreen.tip import simulate as sim
from xscreen.tip.generate import fti_seed
from xscreen.tip.schedule import darkness

SCAN_PITCH = 1.5


@pytest.fixture(scope="module")
def bag():
    scene = sim.clutter_scene(11, 320, 220, pitch_mm=SCAN_PITCH, items=8)
    return sim.image(scene.areal, np.random.default_rng(0), pitch_mm=SCAN_PITCH)


@pytest.fixture(scope="module")
def knife():
    return synth_fti("knife", fti_seed(1, "knife", 0), pitch_mm=3.0)


def test_occupied_area_is_the_bag_not_the_belt(bag):
    occ = occupied_area(bag)
    assert not occ[:5].any() and not occ[:, :5].any() and not occ[-5:].any()  # belt around the bag
    assert occ[40:180, 40:280].all()  # inside the bag, air pockets between items included
    hole = np.zeros((len(MAT_INDEX), 100, 100), np.float32)
    hole[MAT_INDEX["pe"], 10:90, 10:90] = 2.0
    hole[MAT_INDEX["pe"], 40:60, 40:60] = 0.0  # an empty pocket inside the bag
    occ = occupied_area(sim.image(hole, np.random.default_rng(1)))
    assert occ[50, 50] and not occ[3, 3]


def test_placements_stay_inside_the_bag_at_physical_size(bag, knife):
    occ, dark = occupied_area(bag), darkness(bag)
    angles, flips = [], set()
    for seed in range(8):
        p = schedule(bag, knife, np.random.default_rng(seed))
        out = project(bag, knife, p)
        assert out.mask.any() and occ[out.mask].all()
        assert (dark[out.mask] > AIR_A).all()  # never over air
        assert p.scale == pytest.approx(3.0 / SCAN_PITCH)
        area = out.mask.sum() / (knife.mask.sum() * p.scale ** 2)
        assert 0.9 < area < 1.1  # the object keeps its size (the whole of it is on the scan)
        angles.append(p.angle_deg)
        flips.add(p.flip)
    assert np.ptp(angles) > 90 and flips == {True, False}


def test_same_seed_same_placement(bag, knife):
    a = schedule(bag, knife, np.random.default_rng(42))
    b = schedule(bag, knife, np.random.default_rng(42))
    c = schedule(bag, knife, np.random.default_rng(43))
    assert a == b and a != c
    pa = project(bag, knife, a, rng=np.random.default_rng(1)).scan.channels
    assert np.array_equal(pa, project(bag, knife, b, rng=np.random.default_rng(1)).scan.channels)


def test_no_room_and_no_pitch_are_errors(bag, knife):
    small = sim.slab_scene(80, 64, "cellulose", 2.0, pitch_mm=SCAN_PITCH)
    tiny = sim.image(small.areal, np.random.default_rng(0), pitch_mm=SCAN_PITCH)
    with pytest.raises(TipError, match="no room"):
        schedule(tiny, knife, np.random.default_rng(0), tries=3)
    unknown = dataclasses.replace(bag, pixel_pitch_mm=None)
    with pytest.raises(TipError, match="no pixel pitch"):
        schedule(unknown, knife, np.random.default_rng(0))
    p = schedule(unknown, knife, np.random.default_rng(0), pitch_mm=SCAN_PITCH)
    assert isinstance(p, Placement) and p.scale == pytest.approx(2.0)


def test_placement_json_round_trip_and_bad_values():
    p = Placement(10.5, 20.0, 33.0, True, 1.25)
    assert Placement.from_dict(p.to_dict()) == p
    with pytest.raises(TipError, match="scale"):
        Placement.from_dict({"cx": 1, "cy": 2, "scale": 0})
    with pytest.raises(TipError, match="invalid placement"):
        Placement.from_dict({"cx": "x"})


def test_random_tip_picks_an_fti_that_fits_and_is_reproducible(bag):
    from xscreen.physics import MATERIALS
    from xscreen.tip import Library, fti_from_areal, random_tip
    areal = np.zeros((len(MATERIALS), 300, 300), np.float32)
    areal[MAT_INDEX["fe"], 5:295, 5:295] = 1.0  # 30 cm at 1 mm: never fits the small bag below
    huge = fti_from_areal(areal, category="other", name="huge", pitch_mm=1.0)
    small = synth_fti("gun_part", fti_seed(0, "gun_part", 0), pitch_mm=1.0)
    lib = Library(path=None, ftis=[huge, small])
    scene = sim.slab_scene(240, 180, "cellulose", 3.0, pitch_mm=1.0)
    scan = sim.image(scene.areal, np.random.default_rng(0), pitch_mm=1.0)
    tips = [random_tip(scan, lib, np.random.default_rng(s)) for s in range(4)]
    assert {t.fti.fti_id for t in tips} == {small.fti_id}
    again = random_tip(scan, lib, np.random.default_rng(2))
    assert np.array_equal(again.projected.scan.channels, tips[2].projected.scan.channels)
    assert tips[0].projected.scan.metadata == scan.metadata and tips[0].projected.scan.scan_id == scan.scan_id
    air = sim.image(np.zeros_like(scene.areal), np.random.default_rng(0), pitch_mm=1.0)
    with pytest.raises(TipError, match="no bag found"):
        random_tip(air, lib, np.random.default_rng(0))


def test_a_tight_fit_is_found_by_the_exact_map():
    """A plate that fits only a few centres (rejection sampling misses them; the exact map does not)."""
    from xscreen.physics import MATERIALS
    from xscreen.tip import fti_from_areal
    areal = np.zeros((len(MATERIALS), 60, 60), np.float32)
    areal[MAT_INDEX["fe"], 5:55, 5:55] = 1.0
    plate = fti_from_areal(areal, category="other", name="square", pitch_mm=1.0)
    scene = sim.slab_scene(200, 160, "cellulose", 3.0, pitch_mm=1.0, box=(60, 50, 116, 106))
    scan = sim.image(scene.areal, np.random.default_rng(0), pitch_mm=1.0)
    occ = occupied_area(scan)
    assert occ.sum() < 70 * 70
    p = schedule(scan, plate, np.random.default_rng(1), tries=40)
    out = project(scan, plate, p)
    assert occ[out.mask].all() and out.mask.sum() >= 2500
