"""``xscreen tip build|import|list|project|stats`` end to end on small synthetic data."""
import json

import numpy as np
import pytest

from xscreen.cli import main
from xscreen.physics import MAT_INDEX, MATERIALS
from xscreen.scan import Scan, load_scan, save_h5, save_image
from xscreen.tip import CATEGORIES, load_library
from xscreen.tip import simulate as sim


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "lib"
    assert main(["tip", "build", str(path), "--per-category", "1", "--seed", "3", "--pitch-mm", "3"]) == 0
    return path


@pytest.fixture(scope="module")
def bag_file(tmp_path_factory):
    scene = sim.clutter_scene(5, 300, 220, pitch_mm=1.5, items=8)
    path = tmp_path_factory.mktemp("bag") / "bag.h5"
    save_h5(sim.image(scene.areal, np.random.default_rng(0), pitch_mm=1.5, scan_id="bag-1"), path)
    return path


def test_build_and_list_every_category(lib, capsys):
    capsys.readouterr()
    assert main(["tip", "list", str(lib)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    ids = {f.fti_id: f.category for f in load_library(lib).ftis}
    assert len(lines) == len(CATEGORIES) == len(ids)
    for line in lines:
        fid, cat = line.split()[:2]
        assert ids[fid] == cat


def test_project_writes_the_scan_the_mask_and_the_placement(lib, bag_file, tmp_path, capsys):
    out = tmp_path / "proj.h5"
    assert main(["tip", "project", str(lib), str(bag_file), "--out", str(out), "--seed", "7",
                 "--category", "knife"]) == 0
    doc = json.loads((tmp_path / "proj.tip.json").read_text())
    f = load_library(lib).get(doc["fti_id"])
    assert f.category == doc["category"] == "knife"
    src, got = load_scan(bag_file), load_scan(out)
    mask = load_scan(tmp_path / "proj.mask.png").channels[0] > 0
    assert mask.sum() == doc["mask_pixels"] > 0
    far = ~_grow(mask, 8)  # beyond the footprint and its anti-aliased, blurred edge (at 2x scale)
    assert np.array_equal(got.channels[:, far], src.channels[:, far])
    assert (got.channels[0][mask].astype(float).mean() < src.channels[0][mask].astype(float).mean())
    assert got.scan_id == src.scan_id and got.metadata == src.metadata  # nothing in the file says TIP
    again = tmp_path / "again.h5"
    assert main(["tip", "project", str(lib), str(bag_file), "--out", str(again), "--seed", "7",
                 "--category", "knife"]) == 0
    assert np.array_equal(load_scan(again).channels, got.channels)  # seeded: reproducible


def _grow(mask, px=3):
    import cv2
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)).astype(bool)


def test_import_adds_a_tray_scan(tmp_path, capsys):
    tray = np.zeros((len(MATERIALS), 100, 120), np.float32)
    tray[MAT_INDEX["pe"]] = 0.8
    tray[MAT_INDEX["fe"], 30:70, 30:90] = 1.5
    scan_path = tmp_path / "plate.h5"
    save_h5(sim.image(tray, np.random.default_rng(1), pitch_mm=1.0), scan_path)
    lib = tmp_path / "site"
    capsys.readouterr()
    assert main(["tip", "import", str(lib), str(scan_path), "--category", "other", "--name", "plate"]) == 0
    fid = capsys.readouterr().out.split()[0]
    f = load_library(lib).get(fid)
    assert f.source == "import" and f.category == "other" and f.noisy
    assert main(["tip", "import", str(lib), str(scan_path), "--category", "other"]) == 0
    assert "already in the library" in capsys.readouterr().out


def test_errors_are_one_line_and_non_zero(lib, tmp_path, capsys):
    assert main(["tip", "list", str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err.startswith("error: ")
    gray = tmp_path / "gray.png"
    save_image(Scan("g", "gray", np.full((1, 80, 80), 200, np.uint8), 255.0), gray)
    assert main(["tip", "project", str(lib), str(gray), "--out", str(tmp_path / "o.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no FTI of kind gray" in err and "Traceback" not in err
    assert main(["tip", "stats", "--audit", str(tmp_path / "none.sqlite")]) == 1
    assert "error: " in capsys.readouterr().err
    assert main(["tip", "build", str(tmp_path / "b"), "--per-category", "0"]) == 1
    assert "at least 1" in capsys.readouterr().err
    (tmp_path / "foreign.sqlite").write_bytes(b"not a database at all" * 100)
    assert main(["tip", "stats", "--audit", str(tmp_path / "foreign.sqlite")]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_stats_from_an_audit_database(tmp_path, capsys):
    from xscreen.audit import AuditLog, Decision, TipEvent
    db = tmp_path / "audit.sqlite"
    with AuditLog(db) as log:
        for k, d in enumerate(["suspect", "clear", "clear", "clear", "unreadable"]):
            log.record(Decision("ann", f"bag{k}", f"{k:064x}", "m", 1.0, d, 2.0))
        for k, response in enumerate(("suspect", "clear", "unresolved")):
            log.record_tip(TipEvent("ann", f"bag{k}", f"{k:064x}", "m", "f" * 16, "knife", {"cx": 1.0, "cy": 2.0},
                                    response, 3.0))
    csv, page = tmp_path / "s.csv", tmp_path / "s.html"
    capsys.readouterr()
    assert main(["tip", "stats", "--audit", str(db), "--csv", str(csv), "--html", str(page)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("ann") and " knife " in ln)
    assert "0.667" in line and " 3 " in line  # 2 of 3 TIP events detected (unresolved counts)
    assert "0.250" in next(ln for ln in out.splitlines() if ln.startswith("ann") and " * " in ln)  # 1 of 4 bags
    assert "not yet a reliable measure" in out
    assert csv.read_text().startswith("operator,category,events") and "TIP statistics" in page.read_text()
