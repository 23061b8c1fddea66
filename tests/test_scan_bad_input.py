"""Bad input: every case raises ScanError naming the file and the fault - never another exception,
never a Scan. One test per case (DESIGN.md 'Scan formats in', issue 2 item 3)."""
import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

from xscreen.scan import Scan, ScanError, load_scan, save_h5, save_image, save_tiff_pair
from test_scan import dual, write_dx

SUFFIXES = [".h5", ".tif", ".png", ".jpg", ".bmp", ".dcs"]


def expect(path, fault, name=None, **kw) -> ScanError:
    with pytest.raises(ScanError) as err:
        load_scan(path, **kw)
    msg = str(err.value)
    assert (name or path.name) in msg, msg
    assert fault in msg, msg
    return err.value


def h5(path, high, low=None, **attrs):
    with h5py.File(path, "w") as f:
        f["high"] = high
        if low is not None:
            f["low"] = low
        f.attrs.update(attrs)
    return path


def png(path, array, mode=None):
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(path)
    return path


def grey(h=64, w=64, dtype=np.uint8):
    return np.random.default_rng(0).integers(1, np.iinfo(dtype).max, (h, w)).astype(dtype)


def cut(path, keep: float | int):
    data = path.read_bytes()
    path.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    return path


def test_missing_file(tmp_path):
    err = expect(tmp_path / "nowhere.h5", "file not found")
    assert err.path.endswith("nowhere.h5") and err.fault == "file not found"


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_empty_file(tmp_path, suffix):
    (tmp_path / f"e{suffix}").touch()
    expect(tmp_path / f"e{suffix}", "empty file")


def test_truncated_hdf5(tmp_path):
    expect(cut(save_h5(dual(), tmp_path / "t.h5"), 0.5), "corrupt or unreadable HDF5 file")


def test_corrupt_hdf5(tmp_path):
    (tmp_path / "c.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 4)
    expect(tmp_path / "c.h5", "corrupt or unreadable HDF5 file")


def test_truncated_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "t.tif", grey(100, 100, np.uint16))  # uncompressed: cut = missing rows
    expect(cut(tmp_path / "t.tif", 0.6), "TIFF is truncated")


def test_truncated_jpeg(tmp_path):
    Image.fromarray(grey(128, 128)).save(tmp_path / "t.jpg")
    expect(cut(tmp_path / "t.jpg", 0.5), "corrupt or unreadable JPG file")


def test_truncated_png(tmp_path):
    expect(cut(png(tmp_path / "t.png", grey(128, 128)), 0.5), "corrupt or unreadable PNG file")


def test_corrupt_png_body(tmp_path):
    path = png(tmp_path / "c.png", grey(128, 128))
    data = bytearray(path.read_bytes())
    data[60:200] = bytes(140)  # zeros over compressed pixel data: the CRC/zlib check must catch it
    path.write_bytes(bytes(data))
    expect(path, "corrupt or unreadable PNG file")


def test_hdf5_without_low(tmp_path):
    expect(h5(tmp_path / "h.h5", grey(64, 64, np.uint16)), "no 'low' dataset")


def test_hdf5_high_low_shape_mismatch(tmp_path):
    expect(h5(tmp_path / "s.h5", grey(64, 80, np.uint16), grey(64, 81, np.uint16)), "differ in shape")


def test_tiff_pair_shape_mismatch(tmp_path):
    tifffile.imwrite(tmp_path / "p_high.tif", grey(64, 80, np.uint16))
    tifffile.imwrite(tmp_path / "p_low.tif", grey(70, 80, np.uint16))
    expect(tmp_path / "p_high.tif", "differ in shape")


@pytest.mark.parametrize("present,opened", [("high", "p_high.tif"), ("low", "p_low.tif"), ("high", "p")])
def test_tiff_pair_half_missing(tmp_path, present, opened):
    tifffile.imwrite(tmp_path / f"p_{present}.tif", grey(64, 64, np.uint16))
    missing = "p_low.tif" if present == "high" else "p_high.tif"
    expect(tmp_path / opened, f"TIFF pair is incomplete: {missing} is missing")


def test_float_nan(tmp_path):
    data = grey(64, 64).astype(np.float32)
    data[3, 3] = np.nan
    expect(h5(tmp_path / "n.h5", data, data), "NaN or Inf")


def test_float_inf(tmp_path):
    data = grey(64, 64).astype(np.float32)
    data[5, 9] = np.inf
    tifffile.imwrite(tmp_path / "i.tif", data)
    expect(tmp_path / "i.tif", "NaN or Inf")


def test_float_out_of_any_sensible_range(tmp_path):
    data = np.linspace(-5, 5, 64 * 64, dtype=np.float32).reshape(64, 64)
    expect(h5(tmp_path / "f.h5", data, data), "maps neither to transmission")


def test_all_zero_dual(tmp_path):
    zeros = np.zeros((64, 64), np.uint16)
    expect(h5(tmp_path / "z.h5", zeros, zeros), "all pixels are zero")


def test_all_zero_image(tmp_path):
    expect(png(tmp_path / "z.png", np.zeros((64, 64), np.uint8)), "all pixels are zero")


def test_smaller_than_one_patch(tmp_path):
    expect(png(tmp_path / "s.png", grey(100, 63)), "63x100 is smaller than one 64x64 patch")


def test_smaller_than_one_patch_dual(tmp_path):
    expect(h5(tmp_path / "s.h5", grey(50, 90, np.uint16), grey(50, 90, np.uint16)), "smaller than one 64x64")


def test_larger_than_default_limit_from_hdf5_header(tmp_path):
    with h5py.File(tmp_path / "big.h5", "w") as f:  # 900 MP declared, nothing written: a tiny file
        for name in ("high", "low"):
            f.create_dataset(name, shape=(30000, 30000), dtype=np.uint16, chunks=(256, 256))
    assert (tmp_path / "big.h5").stat().st_size < 100_000
    expect(tmp_path / "big.h5", "exceeds the limit of 200,000,000 pixels")


@pytest.mark.parametrize("fmt", ["png", "jpg", "tif", "dcs", "pair"])
def test_larger_than_limit_is_checked_before_pixels(tmp_path, fmt):
    """Pixel data cut away: a limit error (not 'truncated') proves the header was checked first."""
    image = grey(100, 120, np.uint16)
    if fmt == "png":
        path = png(tmp_path / "b.png", image)
        cut(path, path.read_bytes().index(b"IDAT") + 10)  # header chunks only, pixel data cut
    elif fmt == "jpg":
        Image.fromarray(grey(100, 120)).save(tmp_path / "b.jpg")
        path = cut(tmp_path / "b.jpg", 700)
    elif fmt == "tif":
        tifffile.imwrite(tmp_path / "b.tif", image)
        path = cut(tmp_path / "b.tif", 0.3)
    elif fmt == "dcs":
        path = cut(write_dx(tmp_path / "b.dcs", image), 0.3)
    else:
        save_tiff_pair(Scan("b", "dual", np.stack([image, image]), 65535.0), tmp_path / "b")
        cut(tmp_path / "b_high.tif", 0.3)
        path = tmp_path / "b_high.tif"
    expect(path, "120x100 = 12,000 pixels exceeds the limit of 5,000 pixels", max_pixels=5000)


def test_unsupported_extension(tmp_path):
    Image.fromarray(grey()).save(tmp_path / "a.gif")
    expect(tmp_path / "a.gif", "unsupported file type '.gif'")


def test_folder_instead_of_file(tmp_path):
    (tmp_path / "bags.h5").mkdir()
    expect(tmp_path / "bags.h5", "is a folder, not a scan file")


def test_two_channel_png(tmp_path):
    expect(png(tmp_path / "la.png", np.stack([grey(), grey()], -1), "LA"), "2 channels (grey + alpha)")


def test_two_channel_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "two.tif", np.stack([grey(), grey()], -1), photometric="minisblack",
                     planarconfig="contig")
    expect(tmp_path / "two.tif", "unsupported TIFF layout")


def test_hdf5_high_low_dtype_mismatch(tmp_path):
    expect(h5(tmp_path / "d.h5", grey(64, 64, np.uint16), grey(64, 64, np.uint8)), "differ in pixel type")


def test_tiff_pair_dtype_mismatch(tmp_path):
    tifffile.imwrite(tmp_path / "q_high.tif", grey(64, 64, np.uint16))
    tifffile.imwrite(tmp_path / "q_low.tif", grey(64, 64, np.uint8))
    expect(tmp_path / "q", "differ in pixel type", name="q")


def test_tiff_pair_half_is_colour(tmp_path):
    tifffile.imwrite(tmp_path / "c_high.tif", grey(64, 64))
    tifffile.imwrite(tmp_path / "c_low.tif", np.stack([grey()] * 3, -1), photometric="rgb")
    expect(tmp_path / "c_high.tif", "must be one grey channel", name="c_low.tif")


def test_32bit_integer_tiff(tmp_path):
    tifffile.imwrite(tmp_path / "i32.tif", grey().astype(np.int32) * 1000)
    expect(tmp_path / "i32.tif", "unsupported bit depth: 32-bit integer")


def test_32bit_integer_hdf5(tmp_path):
    data = grey().astype(np.uint32)
    expect(h5(tmp_path / "u32.h5", data, data), "unsupported bit depth: 32-bit integer")


def test_one_bit_png(tmp_path):
    Image.fromarray(grey() > 128).save(tmp_path / "b.png")
    expect(tmp_path / "b.png", "1-bit")


def test_signed_negative_values(tmp_path):
    data = grey().astype(np.int16) - 100
    expect(h5(tmp_path / "neg.h5", data, data), "signed 16-bit with negative values")


def test_bad_i0_attribute(tmp_path):
    data = grey(64, 64, np.uint16)
    expect(h5(tmp_path / "i0.h5", data, data, i0=-3.0), "air level i0 = -3.0 is not a positive number")


def test_dicom_that_is_not_dx(tmp_path):
    path = write_dx(tmp_path / "ct.dcs", grey(64, 64, np.uint16), sop="1.2.840.10008.5.1.4.1.1.501.1")
    expect(path, "not a DX image: DICOS CT image")


def test_random_bytes_dicom(tmp_path):
    (tmp_path / "r.dcm").write_bytes(b"not dicom at all" * 50)
    expect(tmp_path / "r.dcm", "corrupt or unreadable DICOM file")


def test_writers_refuse_and_leave_nothing_behind(tmp_path):
    gray = Scan("g", "gray", grey()[None], 255.0)
    with pytest.raises(ScanError, match="dual-energy"):
        save_tiff_pair(gray, tmp_path / "g")
    with pytest.raises(ScanError, match="cannot write"):
        save_image(gray, tmp_path / "g.bmp")
    assert list(tmp_path.iterdir()) == []
