"""Property tests: random, truncated and corrupted bytes fed to every reader give a ScanError or a
fully valid Scan - never another exception, never a half-loaded Scan. 620 hypothesis examples, plus
60 seeded mutations through the reader process (benchmarks/fuzz_readers.py; seed printed) and 90
header dimensions raised, judged by the half-load detector (issue 32 item 5)."""
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from xscreen.scan import Scan, ScanError, load_scan, save_h5, save_image, save_tiff_pair
from test_scan import write_dx

LIMIT = 1_000_000  # keeps a header that claims a huge image from allocating much, whatever it says
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _corpus() -> dict[str, tuple[bytes, np.ndarray]]:
    """name -> (bytes of a small valid file, the channels it must load as). Names end in the suffix."""
    rng = np.random.default_rng(7)
    g8 = rng.integers(1, 255, (64, 72)).astype(np.uint8)
    g16 = rng.integers(1, 65535, (64, 72)).astype(np.uint16)
    rgb = rng.integers(1, 255, (3, 64, 72)).astype(np.uint8)
    rgb16 = rng.integers(1, 65535, (64, 72, 3)).astype(np.uint16)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        files = {
            "dual.h5": (save_h5(Scan("d", "dual", np.stack([g16, g16 // 2]), 65535.0), d / "dual.h5"),),
            "pair_high.tif": save_tiff_pair(Scan("p", "dual", np.stack([g16, g16 // 3]), 65535.0),
                                            d / "pair"),
            "g16.tif": (save_image(Scan("g", "gray", g16[None], 65535.0), d / "g16.tif"),),
            "rgb.tif": (save_image(Scan("r", "rgb", rgb, 255.0), d / "rgb.tif"),),
            "g8.png": (save_image(Scan("g", "gray", g8[None], 255.0), d / "g8.png"),),
            "rgb.png": (save_image(Scan("r", "rgb", rgb, 255.0), d / "rgb.png"),),
            "dx.dcs": (write_dx(d / "dx.dcs", g16 % 4096),),
        }
        Image.fromarray(np.moveaxis(rgb, 0, -1)).save(d / "rgb.bmp")
        Image.fromarray(g8).save(d / "g8.jpg", quality=90)
        cv2.imwrite(str(d / "c16.png"), rgb16)
        for name in ("rgb.bmp", "g8.jpg", "c16.png"):
            files[name] = (d / name,)
        for name, written in files.items():
            out[name] = (written[0].read_bytes(), load_scan(written[0]).channels)
        out["pair_low.tif"] = ((d / "pair_low.tif").read_bytes(), out["pair_high.tif"][1])
    return out


CORPUS = _corpus()
NAMES = sorted(CORPUS)
SUFFIX_OF = {name: Path(name).suffix for name in NAMES}
MAGICS = [b"", b"\x89HDF\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff",
          b"BM", b"\0" * 128 + b"DICM"]


def _load_bytes(name: str, data: bytes) -> Scan:
    """Write ``data`` as ``name`` (the other pair half stays valid) and load it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        if name.startswith("pair_"):
            other = "pair_low.tif" if name == "pair_high.tif" else "pair_high.tif"
            (Path(tmp) / other).write_bytes(CORPUS[other][0])
        path.write_bytes(data)
        return load_scan(path, max_pixels=LIMIT)


def _check_valid(scan: Scan) -> None:
    c, h, w = scan.channels.shape
    assert {"dual": 2, "rgb": 3, "gray": 1}[scan.kind] == c
    assert scan.channels.dtype in (np.uint8, np.uint16)
    assert h >= 64 and w >= 64 and h * w <= LIMIT
    assert np.isfinite(scan.i0) and scan.i0 > 0 and scan.channels.any()


@settings(max_examples=250, **SETTINGS)
@given(suffix=st.sampled_from(sorted({s for s in SUFFIX_OF.values()} | {".hdf5", ".tiff", ".jpeg", ".dcm"})),
       magic=st.sampled_from(MAGICS), tail=st.binary(max_size=3000))
def test_random_bytes_give_only_scan_error(suffix, magic, tail):
    try:
        _check_valid(_load_bytes(f"r{suffix}", magic + tail))
    except ScanError as err:
        assert err.path.endswith(f"r{suffix}") and err.fault


@settings(max_examples=220, **SETTINGS)
@given(name=st.sampled_from(NAMES), frac=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_files_never_half_load(name, frac):
    data, want = CORPUS[name]
    try:
        got = _load_bytes(name, data[: int(len(data) * frac)])
    except ScanError as err:
        assert name in str(err)
        return
    np.testing.assert_array_equal(got.channels, want)  # loads only when nothing was lost


@settings(max_examples=150, **SETTINGS)
@given(name=st.sampled_from(NAMES), flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                                             st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_bytes_give_scan_error_or_valid_scan(name, flips):
    data = bytearray(CORPUS[name][0])
    for where, value in flips:
        data[int(where * len(data))] = value
    try:
        _check_valid(_load_bytes(name, bytes(data)))
    except ScanError as err:
        assert name in str(err) or "pair" in str(err)


def test_corpus_covers_every_reader():
    assert {SUFFIX_OF[n] for n in NAMES} == {".h5", ".tif", ".png", ".jpg", ".bmp", ".dcs"}
    assert CORPUS["c16.png"][1].dtype == np.uint16 and CORPUS["dual.h5"][1].shape == (2, 64, 72)


@pytest.mark.parametrize("name", NAMES)
def test_corpus_files_load_unchanged(name):
    data, want = CORPUS[name]
    np.testing.assert_array_equal(_load_bytes(name, data).channels, want)


def _fuzz_module():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import fuzz_readers
    return fuzz_readers


def test_half_load_detector_measures_flat_trailing_rows_and_columns():
    decoded_area = _fuzz_module().decoded_area
    rng = np.random.default_rng(0)
    rgb = rng.integers(1, 255, (3, 100, 120)).astype(np.uint8)
    assert decoded_area(rgb, "rgb") == (12000, 12000)
    grey_tail = rgb.copy()
    grey_tail[:, 10:] = 128  # libjpeg's grey after its data ran out
    assert decoded_area(grey_tail, "rgb") == (10 * 120, 12000)
    zero_cols = rgb.copy()
    zero_cols[:, :, 100:] = 0  # absent tiles at the right edge
    assert decoded_area(zero_cols, "rgb") == (100 * 100, 12000)
    saturated = rgb.copy()
    saturated[2, 90:] = 255  # one channel clipped by a corrupt (but complete) decode: not missing
    assert decoded_area(saturated, "rgb") == (12000, 12000)
    dual = rng.integers(1000, 60000, (2, 100, 120)).astype(np.uint16)
    dual[0, 50:] = 30000  # one energy's dataset left at its fill value
    assert decoded_area(dual, "dual") == (50 * 120, 12000)


def test_raised_header_dimensions_never_half_load(capsys):
    """The issue's reproductions as a mutation: a header integer equal to the seed's height or
    width multiplied 2-16x, in every format, through the reader process. Before the fix this seed
    gave half-loads (TIFF zeros, JPEG grey); now each is refused or complete."""
    report = _fuzz_module().fuzz(90, 32, mutations=("grow_dims",))
    assert report.failures == [], report.failures[:5]
    assert report.outcomes["refused"] > 0 and report.outcomes["ok"] > 0


def test_seeded_mutation_fuzz_through_the_reader_process(capsys):
    """A small run of benchmarks/fuzz_readers.py (the big one is that script): XSCREEN_FUZZ_SEED
    replays a run; the seed is printed so a failure can be replayed."""
    import os
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from fuzz_readers import fuzz

    seed = int(os.environ.get("XSCREEN_FUZZ_SEED") or np.random.SeedSequence().entropy % 2**32)
    with capsys.disabled():
        print(f"\nreader fuzz seed {seed} (replay: XSCREEN_FUZZ_SEED={seed})")
    report = fuzz(60, seed)
    assert report.failures == [], f"seed {seed}: {report.failures[:5]}"
    assert sum(report.outcomes.values()) == 60 and report.outcomes["ok"] + report.outcomes["refused"] > 0
