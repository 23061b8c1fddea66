"""Declared sizes against the memory budget (issue 16 item 4), broken files that used to load as if
fine (item 5) and page-count bombs (item 6): each refused with a ScanError naming the file."""
import os
import struct
import zlib
from pathlib import Path

import h5py
import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image

from xscreen.scan import ReadLimits, ScanError, load_scan, save_h5
from xscreen.scan import _isolated
from xscreen.scan._limits import parse_bytes
from test_scan import dual, write_dx


def refused(path: Path, fault: str, **kw) -> ScanError:
    with pytest.raises(ScanError) as err:
        load_scan(path, **kw)
    assert err.value.path.endswith(path.name) and fault in err.value.fault, str(err.value)
    return err.value


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, rows: np.ndarray, depth: int = 8) -> bytes:
    """A PNG whose header says width x height, holding exactly ``rows`` (a complete zlib stream)."""
    raw = b"".join(b"\0" + r.tobytes() for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --- item 4: declared sizes -------------------------------------------------------------------------

def test_tiny_hdf5_declaring_14000_squared_is_refused_from_its_header(tmp_path):
    with h5py.File(tmp_path / "big.h5", "w") as f:
        for name in ("high", "low"):
            f.create_dataset(name, shape=(14000, 14000), dtype=np.uint16, chunks=(1000, 1000),
                             compression="gzip")
        f.attrs["i0"] = 60000.0
    assert (tmp_path / "big.h5").stat().st_size < 20_000
    err = refused(tmp_path / "big.h5", "over the memory budget of 4.0 GiB (XSCREEN_MEMORY_BUDGET)")
    assert "14000x14000x2" in err.fault


@pytest.mark.parametrize("depth", [8, 16])
def test_png_with_patched_header_dimensions_is_refused(tmp_path, depth):
    rows = np.full((64, 64), 200, np.uint8 if depth == 8 else ">u2")
    (tmp_path / "p.png").write_bytes(png_bytes(14000, 14000, rows, depth))
    refused(tmp_path / "p.png", "over the memory budget")


def test_jpeg_with_patched_header_dimensions_is_refused(tmp_path):
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(tmp_path / "j.jpg")
    data = bytearray((tmp_path / "j.jpg").read_bytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 14000, 14000)  # height, width
    (tmp_path / "j.jpg").write_bytes(bytes(data))
    refused(tmp_path / "j.jpg", "over the memory budget")


def test_compressed_tiff_and_dicos_follow_the_budget_setting(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "t.tif", np.full((2000, 2000), 3000, np.uint16), compression="zlib")
    write_dx(tmp_path / "d.dcs", np.full((2000, 2000), 3000, np.uint16))
    assert load_scan(tmp_path / "t.tif").height == 2000  # fine under the default budget
    monkeypatch.setenv("XSCREEN_MEMORY_BUDGET", "64M")
    refused(tmp_path / "t.tif", "2000x2000x1 would need ~0.2 GiB to read and screen, over the memory "
                                "budget of 0.1 GiB")
    refused(tmp_path / "d.dcs", "over the memory budget")


def test_dicos_with_patched_rows_and_columns_is_refused(tmp_path):
    path = write_dx(tmp_path / "d.dcs", np.full((64, 64), 3000, np.uint16))
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 14000
    ds.save_as(path)
    refused(path, "over the memory budget")


def test_budget_setting_is_parsed_and_typos_are_errors(tmp_path, monkeypatch):
    assert parse_bytes("4G") == 4 << 30 and parse_bytes("512MiB") == 512 << 20 and parse_bytes("") == 0
    assert ReadLimits.from_env(environ={}).memory_bytes == 4 << 30
    monkeypatch.setenv("XSCREEN_MEMORY_BUDGET", "lots")
    with pytest.raises(ScanError, match="XSCREEN_MEMORY_BUDGET.*a size"):
        load_scan(save_h5(dual(), tmp_path / "d.h5"))
    for wild in ("inf", "1e30", "nan"):
        with pytest.raises(ValueError, match="XSCREEN_MEMORY_BUDGET"):
            parse_bytes(wild, "XSCREEN_MEMORY_BUDGET")


def test_reader_process_address_space_is_capped(tmp_path):
    reader = _isolated.ReaderProcess(_isolated_read())
    try:
        reader.load(save_h5(dual(), tmp_path / "d.h5"), ReadLimits(memory_bytes=512 << 20))
        limits = Path(f"/proc/{reader.pid}/limits").read_text()
    finally:
        reader.close()
    soft = next(line for line in limits.splitlines() if line.startswith("Max address space")).split()[3]
    assert soft != "unlimited" and int(soft) < (512 << 20) + (4 << 30)


def _isolated_read():
    from xscreen.scan import read_in_process
    return read_in_process


# --- item 5: broken files that loaded as if fine ----------------------------------------------------

def test_png_missing_half_its_rows_is_refused(tmp_path):
    (tmp_path / "half.png").write_bytes(png_bytes(128, 128, np.full((64, 128), 200, np.uint8)))
    refused(tmp_path / "half.png", "PNG is truncated: pixel data hold 8,256 of 16,512 bytes")


def test_complete_and_interlaced_pngs_still_load(tmp_path):
    img = np.random.default_rng(0).integers(1, 255, (100, 90)).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "i.png", interlace=1)
    Image.fromarray(img).save(tmp_path / "p.png")
    for name in ("i.png", "p.png"):
        np.testing.assert_array_equal(load_scan(tmp_path / name).channels[0], img)


def test_hdf5_with_unwritten_chunks_is_refused(tmp_path):
    with h5py.File(tmp_path / "c.h5", "w") as f:
        high = f.create_dataset("high", shape=(128, 128), dtype=np.uint16, chunks=(64, 64))
        high[:64, :] = 40000  # two of four chunks: the rest would read back as the fill value 0
        f["low"] = np.full((128, 128), 30000, np.uint16)
        f.attrs["i0"] = 60000.0
    refused(tmp_path / "c.h5", "'high' is incomplete: 2 of 4 chunks were written")


def test_hdf5_never_written_contiguous_dataset_is_refused(tmp_path):
    with h5py.File(tmp_path / "u.h5", "w") as f:
        f.create_dataset("high", shape=(128, 128), dtype=np.uint16, fillvalue=40000)
        f["low"] = np.full((128, 128), 30000, np.uint16)
    refused(tmp_path / "u.h5", "'high' is incomplete: its pixel data were never written")


@pytest.mark.parametrize("i0, fault", [(1.0, "every pixel would read as air"),
                                       (1e9, "nothing would read as air")])
def test_implausible_air_level_is_refused(tmp_path, i0, fault):
    refused(save_h5(dual(i0=i0), tmp_path / "d.h5"), f"air level i0 = {i0:g} is implausible")
    refused(tmp_path / "d.h5", fault)


# --- item 6: page counts ----------------------------------------------------------------------------

def test_tiff_with_thousands_of_pages_is_refused_before_parsing(tmp_path):
    with tifffile.TiffWriter(tmp_path / "many.tif") as tw:
        for i in range(2000):
            tw.write(np.full((1, 1 + i % 2), 7, np.uint8), photometric="minisblack", metadata=None)
    refused(tmp_path / "many.tif", "TIFF has more than 16 pages; a scan is one image")


def test_tiff_pages_walk_stops_on_a_loop(tmp_path):
    tifffile.imwrite(tmp_path / "one.tif", np.full((64, 64), 9, np.uint16), metadata=None)
    data = bytearray((tmp_path / "one.tif").read_bytes())
    first = struct.unpack("<I", data[4:8])[0]
    n = struct.unpack("<H", data[first:first + 2])[0]
    data[first + 2 + 12 * n:first + 6 + 12 * n] = struct.pack("<I", first)  # next IFD = itself
    (tmp_path / "loop.tif").write_bytes(bytes(data))
    from xscreen.scan._tiff import count_pages
    assert count_pages(tmp_path / "loop.tif", 16) == 1
