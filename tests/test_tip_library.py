"""The FTI file and the library folder: round trip, stable ids, every category, hostile files refused."""
import io
import re
import json
import zipfile

import numpy as np
import pytest

from xscreen.tip import (CATEGORIES, FTI, TipError, build_library, load_library, new_library, read_fti,
                         synth_fti)
from xscreen.tip.fti import fti_bytes
from xscreen.tip.generate import fti_seed

PITCH = 3.0  # coarse FTIs keep the tests fast


@pytest.fixture(scope="module")
def lib_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiplib") / "lib"
    build_library(path, per_category=2, seed=5, pitch_mm=PITCH)
    return path


def small_fti(value=0.5, category="knife", name="k") -> FTI:
    t = np.full((2, 12, 16), value, np.float32)
    m = np.zeros((12, 16), bool)
    m[3:9, 4:12] = True
    t[:, ~m] = 1.0
    return FTI(name=name, category=category, kind="dual", transmission=t, mask=m, pitch_mm=1.0, source="import",
               photons=5e4)


def test_build_has_every_category_and_is_reproducible(lib_path, tmp_path):
    lib = load_library(lib_path)
    assert len(lib) == 2 * len(CATEGORIES) and lib.categories() == list(CATEGORIES)
    for f in lib.ftis:
        assert f.source == "synth" and f.kind == "dual" and f.areal is not None and f.mask.any()
        assert f.transmission[0][f.mask].min() < 0.9  # a threat attenuates
    again = synth_fti("handgun", fti_seed(5, "handgun", 1), pitch_mm=PITCH)
    assert again.fti_id in {f.fti_id for f in lib.ftis}
    other = build_library(tmp_path / "b", per_category=1, seed=6, pitch_mm=PITCH)
    assert not {f.fti_id for f in other.ftis} & {f.fti_id for f in lib.ftis}


def test_generated_ftis_vary_in_pose_and_size():
    sizes = {synth_fti("knife", fti_seed(0, "knife", k), pitch_mm=PITCH).mask.sum() for k in range(4)}
    assert len(sizes) == 4


def test_fti_file_round_trip_keeps_content_and_id(tmp_path):
    f = small_fti()
    path = tmp_path / f"{f.fti_id}.npz"
    path.write_bytes(fti_bytes(f))
    g = read_fti(path)
    assert g.fti_id == f.fti_id and g.name == "k" and g.photons == 5e4
    assert np.array_equal(g.transmission, f.transmission) and np.array_equal(g.mask, f.mask)
    assert small_fti(name="renamed").fti_id == f.fti_id  # the id is the content, not the label
    assert small_fti(value=0.4).fti_id != f.fti_id


def test_site_adds_to_a_library_and_pick_balances_categories(tmp_path):
    lib = new_library(tmp_path / "site")
    for k in range(6):
        assert lib.add(small_fti(0.3 + 0.05 * k, "knife", f"knife {k}"))
    assert lib.add(small_fti(0.2, "ied", "one ied"))
    assert not lib.add(small_fti(0.2, "ied", "same pixels"))  # same id: stored once
    again = load_library(tmp_path / "site")
    assert [f.fti_id for f in again.ftis] == [f.fti_id for f in lib.ftis]
    rng = np.random.default_rng(0)
    picks = [again.pick(rng).category for _ in range(400)]
    assert 150 < picks.count("ied") < 250  # categories first: 1 IED among 7 is still half the picks
    assert {again.pick(rng, ["knife"]).category for _ in range(20)} == {"knife"}
    with pytest.raises(TipError, match="no FTI of kind rgb"):
        again.pick(rng, kind="rgb")
    with pytest.raises(TipError, match="unknown"):
        again.pick(rng, ["spoon"])


def _rewrite_member(data: bytes, name: str, payload: bytes) -> bytes:
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            z.writestr(info.filename, payload if info.filename == name else src.read(info.filename))
        if name not in src.namelist():
            z.writestr(name, payload)
    return out.getvalue()


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("case, fault", [
    ("pickle", "expected float32"),
    ("extra member", "not an FTI file"),
    ("bad id", "does not match its content"),
    ("tampered pixels", "does not match its content"),
    ("bad category", "unknown category"),
    ("transmission above 1", "within (0, 1]"),
    ("truncated", "corrupt or foreign"),
    ("not json", "invalid FTI file"),
])
def test_hostile_fti_files_are_refused_naming_the_file(tmp_path, case, fault):
    f = small_fti()
    data = fti_bytes(f)
    meta = json.loads(np.load(io.BytesIO(data))["meta"].tobytes())
    if case == "pickle":
        data = _rewrite_member(data, "transmission.npy", _npy(np.array([{"evil": 1}], dtype=object)))
    elif case == "extra member":
        data = _rewrite_member(data, "run.py", b"print('hi')")
    elif case in ("bad id", "bad category"):
        meta.update({"id": "0" * 16} if case == "bad id" else {"category": "spoon"})
        data = _rewrite_member(data, "meta.npy", _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
    elif case == "tampered pixels":
        data = _rewrite_member(data, "transmission.npy", _npy(f.transmission * 0.9))
    elif case == "transmission above 1":
        data = _rewrite_member(data, "transmission.npy", _npy(f.transmission * 1.5))
    elif case == "truncated":
        data = data[: len(data) // 2]
    else:
        data = _rewrite_member(data, "meta.npy", _npy(np.frombuffer(b"{not json", np.uint8)))
    path = tmp_path / "x.npz"
    path.write_bytes(data)
    with pytest.raises(TipError, match=re.escape(fault)) as err:
        read_fti(path)
    assert str(path) in str(err.value)


def test_a_zip_bomb_is_refused_before_decoding(tmp_path):
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.npy", b"\0" * (65 << 20))  # 65 MB of zeros compresses to ~65 kB
    path = tmp_path / "bomb.npz"
    path.write_bytes(big.getvalue())
    with pytest.raises(TipError, match="declares more than"):
        read_fti(path)


def _index(path):
    return json.loads((path / "index.json").read_text())


@pytest.mark.parametrize("edit, fault", [
    (lambda e: e.update(file="../../etc/passwd"), "is not '<id>\\.npz'"),
    (lambda e: e.update(category="handgun" if e["category"] != "handgun" else "knife"), "disagrees with the file"),
    (lambda e: e.update(id="0123456789abcdef", file="0123456789abcdef.npz"), "file not found"),
])
def test_index_entries_that_disagree_with_files_are_refused(lib_path, tmp_path, edit, fault):
    import shutil
    copy = tmp_path / "lib"
    shutil.copytree(lib_path, copy)
    doc = _index(copy)
    edit(doc["ftis"][0])
    (copy / "index.json").write_text(json.dumps(doc))
    with pytest.raises(TipError, match=fault):
        load_library(copy)


def test_a_file_swapped_under_another_id_is_refused(lib_path, tmp_path):
    import shutil
    copy = tmp_path / "lib"
    shutil.copytree(lib_path, copy)
    a, b = _index(copy)["ftis"][:2]
    (copy / a["file"]).write_bytes((copy / b["file"]).read_bytes())
    with pytest.raises(TipError, match="whose content is FTI"):
        load_library(copy)


def test_not_a_library(tmp_path):
    with pytest.raises(TipError, match="library folder not found"):
        load_library(tmp_path / "none")
    (tmp_path / "index.json").write_text("[1, 2]")
    with pytest.raises(TipError, match="not an xscreen-tip-library index"):
        load_library(tmp_path)


def test_a_declared_shape_larger_than_the_data_is_refused_before_allocating(tmp_path):
    f = small_fti()
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (2, 200000, 200000)})
    forged = b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 64
    path = tmp_path / "forged.npz"
    path.write_bytes(_rewrite_member(fti_bytes(f), "transmission.npy", forged))
    with pytest.raises(TipError, match="declared shape"):
        read_fti(path)
    path.write_bytes(_rewrite_member(fti_bytes(f), "mask.npy", _npy(np.zeros((3, 3), np.float64))))
    with pytest.raises(TipError, match="expected uint8"):
        read_fti(path)
