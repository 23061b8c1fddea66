"""Scan readers and writers: round trips for every writable format, foreign files, folders, DICOS."""
import hashlib

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image

from xscreen.scan import (Scan, ScanError, file_sha256, list_scans, load_scan, save_h5, save_image,
                          save_scan, save_tiff_pair)

META = {"operator": "A. N. Other", "belt": 3, "ratio": 0.5, "tags": ["x", "y"], "nested": {"k": [1, 2]}}


def dual(h=70, w=90, seed=0, **kw) -> Scan:
    rng = np.random.default_rng(seed)
    ch = rng.integers(500, 60000, size=(2, h, w)).astype(np.uint16)
    ch[:, :5, :] = 61000  # an air strip, the brightest values
    return Scan(kw.pop("scan_id", "bag-001"), "dual", ch, kw.pop("i0", 61000.0), **kw)


def single(kind, dtype, h=66, w=72, seed=1, **kw) -> Scan:
    top = np.iinfo(dtype).max
    ch = np.random.default_rng(seed).integers(1, top, size=(3 if kind == "rgb" else 1, h, w)).astype(dtype)
    return Scan(kw.pop("scan_id", "img-7"), kind, ch, kw.pop("i0", float(top)), **kw)


def assert_same(got: Scan, want: Scan, *, meta=True):
    assert got.kind == want.kind
    assert got.channels.dtype == want.channels.dtype
    np.testing.assert_array_equal(got.channels, want.channels)
    assert got.i0 == pytest.approx(want.i0)
    assert got.scan_id == want.scan_id
    assert got.pixel_pitch_mm == (pytest.approx(want.pixel_pitch_mm) if want.pixel_pitch_mm else None)
    if meta:
        assert got.metadata == want.metadata


def test_h5_round_trip(tmp_path):
    scan = dual(pixel_pitch_mm=0.8, metadata=META, i0=60123.5)
    out = save_h5(scan, tmp_path / "bag.h5")
    got = load_scan(out)
    assert_same(got, scan)
    assert got.path == out and got.high.shape == (70, 90)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag.h5"]  # no temp file left behind


def test_h5_foreign_attrs_become_metadata_and_i0_is_estimated(tmp_path):
    import h5py
    scan = dual()
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["high"], f["low"] = scan.high, scan.low
        f.attrs["vendor"] = "ACME"
        f.attrs["energies_kev"] = np.array([60, 140])
    got = load_scan(tmp_path / "foreign.h5")
    assert got.scan_id == "foreign"
    assert got.metadata == {"vendor": "ACME", "energies_kev": [60, 140]}
    assert got.i0 == 61000.0  # the air strip (> 0.5 % of pixels) sets the 99.5th percentile
    assert got.pixel_pitch_mm is None


@pytest.mark.parametrize("opener", ["pair_high.tif", "pair_low.tif", "pair", "pair.tif"])
def test_tiff_pair_round_trip_opened_any_way(tmp_path, opener):
    scan = dual(pixel_pitch_mm=0.5, metadata=META)
    high, low = save_tiff_pair(scan, tmp_path / "pair")
    assert (high.name, low.name) == ("pair_high.tif", "pair_low.tif")
    got = load_scan(tmp_path / opener)
    assert_same(got, scan)
    assert got.path == high


def test_tiff_pair_foreign_files_use_the_stem_as_id(tmp_path):
    scan = dual(h=64, w=64)
    tifffile.imwrite(tmp_path / "B12_high.tiff", scan.high)
    tifffile.imwrite(tmp_path / "B12_low.tiff", scan.low)
    got = load_scan(tmp_path / "B12_low.tiff")
    assert got.scan_id == "B12" and got.kind == "dual" and got.i0 == 61000.0
    np.testing.assert_array_equal(got.channels, scan.channels)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("kind,dtype", [("gray", np.uint8), ("gray", np.uint16), ("rgb", np.uint8),
                                        ("rgb", np.uint16)])
def test_image_round_trip(tmp_path, suffix, kind, dtype):
    scan = single(kind, dtype, pixel_pitch_mm=1.25, metadata=META, i0=200.0 if dtype == np.uint8 else 50000.0)
    if suffix == ".png" and kind == "rgb" and dtype == np.uint16:
        with pytest.raises(ScanError, match="16-bit RGB"):
            save_image(scan, tmp_path / f"s{suffix}")
        return
    got = load_scan(save_image(scan, tmp_path / f"s{suffix}"))
    assert_same(got, scan)
    assert got.channels.shape == ((3 if kind == "rgb" else 1), 66, 72)


def test_save_scan_dispatches_by_extension(tmp_path):
    d, g = dual(), single("gray", np.uint8)
    assert [p.name for p in save_scan(d, tmp_path / "a.h5")] == ["a.h5"]
    assert [p.name for p in save_scan(d, tmp_path / "b.tif")] == ["b_high.tif", "b_low.tif"]
    assert [p.name for p in save_scan(g, tmp_path / "c.png")] == ["c.png"]
    with pytest.raises(ScanError, match="dual-energy"):
        save_h5(g, tmp_path / "g.h5")
    with pytest.raises(ScanError, match="two images"):
        save_image(d, tmp_path / "d.png")
    with pytest.raises(ScanError, match="cannot write"):
        save_image(g, tmp_path / "g.jpg")


def test_foreign_8bit_images_have_i0_255_and_file_stem_id(tmp_path):
    rgb = np.full((80, 100, 3), 255, np.uint8)
    rgb[20:60, 30:70] = (230, 120, 20)  # an orange (organic) block on white air
    Image.fromarray(rgb).save(tmp_path / "vendor.jpg", quality=95)
    got = load_scan(tmp_path / "vendor.jpg")
    assert (got.kind, got.i0, got.scan_id, got.channels.shape) == ("rgb", 255.0, "vendor", (3, 80, 100))
    err = np.abs(got.channels.astype(int) - np.moveaxis(rgb, -1, 0))
    assert err.mean() < 2 and err[:, 30:50, 40:60].max() < 8  # JPEG loss only (chroma blurs edges)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.bmp")
    got = load_scan(tmp_path / "grey.bmp")
    assert (got.kind, got.i0) == ("gray", 255.0)
    np.testing.assert_array_equal(got.channels[0], rgb[..., 0])


def test_rgba_drops_alpha_and_palette_becomes_rgb(tmp_path):
    rgba = np.random.default_rng(2).integers(1, 255, (64, 64, 4)).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    got = load_scan(tmp_path / "a.png")
    np.testing.assert_array_equal(got.channels, np.moveaxis(rgba[..., :3], -1, 0))
    Image.fromarray(rgba[..., :3]).quantize(16).save(tmp_path / "p.png")
    got = load_scan(tmp_path / "p.png")
    assert got.kind == "rgb" and got.channels.shape == (3, 64, 64) and got.i0 == 255.0


def test_16bit_colour_png_keeps_16_bits(tmp_path):
    import cv2
    rgb = np.random.default_rng(3).integers(1, 65535, (64, 70, 3)).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "c16.png"), rgb[..., ::-1])
    got = load_scan(tmp_path / "c16.png")
    assert got.kind == "rgb" and got.channels.dtype == np.uint16
    np.testing.assert_array_equal(got.channels, np.moveaxis(rgb, -1, 0))


def test_16bit_gray_i0_is_estimated_from_the_air(tmp_path):
    img = np.full((100, 100), 20000, np.uint16)
    img[:, :20] = np.random.default_rng(4).normal(58000, 250, (100, 20)).astype(np.uint16)  # air
    Image.fromarray(img).save(tmp_path / "g16.png")
    got = load_scan(tmp_path / "g16.png")
    assert got.kind == "gray" and got.channels.dtype == np.uint16
    assert 58000 < got.i0 < 59000


def test_float_data_are_mapped_when_unambiguous(tmp_path):
    import h5py
    t = np.linspace(0.01, 1.0, 64 * 64, dtype=np.float32).reshape(64, 64)
    with h5py.File(tmp_path / "t.h5", "w") as f:
        f["high"], f["low"] = t, t * 0.5
    got = load_scan(tmp_path / "t.h5")
    assert got.channels.dtype == np.uint16 and got.channels[0].max() == 65535
    assert got.channels[1, -1, -1] == round(0.5 * 65535)
    tifffile.imwrite(tmp_path / "counts.tif", (t * 40000).astype(np.float64))
    got = load_scan(tmp_path / "counts.tif")
    assert got.channels.dtype == np.uint16 and got.channels.max() == 40000


def test_miniswhite_tiff_is_inverted_so_air_is_bright(tmp_path):
    img = np.zeros((64, 64), np.uint8)
    img[:, 32:] = 200
    tifffile.imwrite(tmp_path / "mw.tif", img, photometric="miniswhite")
    got = load_scan(tmp_path / "mw.tif")
    assert got.channels[0, 0, 0] == 255 and got.channels[0, 0, 40] == 55


def write_dx(path, pixels, photometric="MONOCHROME2", sop="1.2.840.10008.5.1.4.1.1.501.2.2", **extra):
    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds = pydicom.dataset.FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop, meta.MediaStorageSOPInstanceUID, "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for key, value in extra.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_dicom_dx_monochrome1_is_inverted_and_spacing_read(tmp_path):
    px = np.zeros((64, 80), np.uint16)
    px[:, 40:] = 4000
    got = load_scan(write_dx(tmp_path / "m1.dcm", px, "MONOCHROME1", ImagerPixelSpacing=[0.7, 0.7]))
    assert got.kind == "gray" and got.pixel_pitch_mm == pytest.approx(0.7)
    assert got.channels[0, 0, 0] == 4095 and got.channels[0, 0, 50] == 95
    assert got.metadata["format"] == "DICOS" and got.scan_id == "m1"
    got = load_scan(write_dx(tmp_path / "m2.dcs", px))
    np.testing.assert_array_equal(got.channels[0], px)


def test_dicos_sample_dx_loads(realdata):
    got = load_scan(realdata / "dicos_samples" / "SimpleProcessingDX.dcs")
    assert (got.kind, got.channels.shape, got.channels.dtype) == ("gray", (1, 128, 256), np.uint16)
    assert got.scan_id == "SimpleProcessingDX" and got.channels.max() == 32767
    assert 30000 < got.i0 <= 32767
    assert got.metadata["sop_class"] == "DICOS DX image for processing"


def test_dicos_samples_that_are_not_dx_say_so(realdata):
    folder = realdata / "dicos_samples"
    for name, fault in [("SimpleCT0000.dcs", "not a DX image: DICOS CT"),
                        ("SimpleBaggageTDR.dcs", "not a DX image: DICOS threat detection report")]:
        with pytest.raises(ScanError, match=fault) as err:
            load_scan(folder / name)
        assert name in str(err.value)
    # The JPEG Lossless sample is read (python-gdcm is a dependency): tests/test_scan_compressed.py.


def test_list_scans_groups_pairs_and_skips_other_files(tmp_path):
    save_h5(dual(), tmp_path / "b.h5")
    save_tiff_pair(dual(), tmp_path / "a")
    save_image(single("gray", np.uint8), tmp_path / "c.png")
    tifffile.imwrite(tmp_path / "lonely_low.tif", dual().low)
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".hidden.h5").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    save_h5(dual(), tmp_path / "sub" / "d.h5")
    names = [p.relative_to(tmp_path).as_posix() for p in list_scans(tmp_path)]
    assert names == ["a_high.tif", "b.h5", "c.png", "lonely_low.tif"]
    deep = [p.relative_to(tmp_path).as_posix() for p in list_scans(tmp_path, recursive=True)]
    assert deep == ["a_high.tif", "b.h5", "c.png", "lonely_low.tif", "sub/d.h5"]
    with pytest.raises(ScanError, match="not a folder"):
        list_scans(tmp_path / "b.h5")


def test_file_sha256(tmp_path):
    high, _ = save_tiff_pair(dual(), tmp_path / "p")
    want = hashlib.sha256(high.read_bytes()).hexdigest()
    assert file_sha256(high) == want
    assert file_sha256(tmp_path / "p") == want  # a pair's stem hashes its _high file
    with pytest.raises(ScanError, match="nope.h5"):
        file_sha256(tmp_path / "nope.h5")


@pytest.mark.parametrize("suffix", [".h5", ".tif", ".png"])
def test_numpy_metadata_is_stored_as_plain_json(tmp_path, suffix):
    meta = {"kv": np.float32(140.0), "lines": np.arange(3), "when": "2026-11-28"}
    scan = dual(metadata=meta) if suffix == ".h5" else single("gray", np.uint16, metadata=meta)
    got = load_scan(save_scan(scan, tmp_path / f"m{suffix}")[0])
    assert got.metadata == {"kv": 140.0, "lines": [0, 1, 2], "when": "2026-11-28"}


def test_upper_case_pair_names(tmp_path):
    scan = dual()
    tifffile.imwrite(tmp_path / "SCAN_HIGH.TIF", scan.high)
    tifffile.imwrite(tmp_path / "SCAN_LOW.TIF", scan.low)
    assert [p.name for p in list_scans(tmp_path)] == ["SCAN_HIGH.TIF"]
    got = load_scan(tmp_path / "SCAN")
    assert got.scan_id == "SCAN"
    np.testing.assert_array_equal(got.channels, scan.channels)


def test_our_pixel_limit_replaces_pillows_bomb_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow alone would refuse 100x100
    Image.fromarray(np.full((100, 100), 9, np.uint8)).save(tmp_path / "p.png")
    assert load_scan(tmp_path / "p.png").channels.shape == (1, 100, 100)
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored for everyone else
    with pytest.raises(ScanError, match="exceeds the limit of 5,000 pixels"):
        load_scan(tmp_path / "p.png", max_pixels=5000)
