"""Issue 32, reader items: nothing half-loads with invented pixels (item 5), a TIFF never pulls pixels
from another file (item 6), chunk bombs are refused as memory refusals (item 8), network DICOS
objects go through the same reader and limits (item 13, reader half), no tifffile warning on stderr."""
import os
import struct
import zlib
from pathlib import Path

import cv2
import h5py
import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image

from xscreen.scan import ReadLimits, ScanError, load_scan, save_h5
from test_scan import dual, write_dx


def refused(path: Path, *faults: str, **kw) -> ScanError:
    with pytest.raises(ScanError) as err:
        load_scan(path, **kw)
    assert err.value.path.endswith(path.name), str(err.value)
    for fault in faults:
        assert fault in err.value.fault, str(err.value)
    return err.value


def noise(h: int, w: int, seed: int = 0, top: int = 60000) -> np.ndarray:
    return np.random.default_rng(seed).integers(1000, top, (h, w)).astype(np.uint16)


# --- item 5: TIFF whose ImageLength alone is raised -------------------------------------------------

def raise_image_length(path: Path, rows: int) -> None:
    """Patch tag 256/257's ImageLength (little-endian classic TIFF, first IFD) to ``rows``."""
    b = bytearray(path.read_bytes())
    ifd = struct.unpack("<I", b[4:8])[0]
    for k in range(struct.unpack("<H", b[ifd:ifd + 2])[0]):
        e = ifd + 2 + 12 * k
        tag, typ = struct.unpack("<HH", b[e:e + 4])
        if tag == 257:
            b[e + 8:e + 12] = struct.pack("<HH", rows, 0) if typ == 3 else struct.pack("<I", rows)
    path.write_bytes(bytes(b))


@pytest.mark.parametrize("compression", ["zlib", "lzw", None])
@pytest.mark.parametrize("rowsperstrip", [None, 10])
def test_tiff_with_raised_image_length_is_refused_not_zero_filled(tmp_path, compression, rowsperstrip):
    path = tmp_path / "long.tif"
    extra = {} if rowsperstrip is None else {"rowsperstrip": rowsperstrip}
    tifffile.imwrite(path, noise(100, 120), photometric="minisblack", compression=compression,
                     metadata=None, **extra)
    raise_image_length(path, 1000)  # 900 rows that no strip holds: tifffile returned them as zeros
    refused(path, "TIFF is incomplete", "1000 rows declared")


def test_tiff_pair_half_with_raised_image_length_is_refused(tmp_path):
    for tag, seed in (("high", 1), ("low", 2)):
        tifffile.imwrite(tmp_path / f"bag_{tag}.tif", noise(100, 120, seed), photometric="minisblack",
                         compression="zlib", metadata=None, rowsperstrip=20)
    for tag in ("high", "low"):
        raise_image_length(tmp_path / f"bag_{tag}.tif", 400)
    refused(tmp_path / "bag_high.tif", "TIFF is incomplete")


def test_tiled_tiff_whose_tile_byte_counts_tag_is_damaged_is_refused(tmp_path):
    """Found by fuzz_readers (seed 11, case 135): tifffile replaced the unreadable TileByteCounts
    with one count, read the first of six tiles and left the other five as zeros."""
    path = tmp_path / "tiled.tif"
    tifffile.imwrite(path, noise(64, 72), photometric="minisblack", compression="zlib", tile=(32, 32),
                     metadata=None)
    b = bytearray(path.read_bytes())
    ifd = struct.unpack("<I", b[4:8])[0]
    for k in range(struct.unpack("<H", b[ifd:ifd + 2])[0]):
        e = ifd + 2 + 12 * k
        if struct.unpack("<H", b[e:e + 2])[0] == 325:  # TileByteCounts: an invalid field type
            b[e + 2:e + 4] = struct.pack("<H", 45571)
    path.write_bytes(bytes(b))
    refused(path, "TIFF is incomplete")


def test_complete_multi_strip_and_tiled_tiffs_still_load_exactly(tmp_path):
    data = noise(130, 150)
    tifffile.imwrite(tmp_path / "s.tif", data, photometric="minisblack", compression="zlib", rowsperstrip=7)
    tifffile.imwrite(tmp_path / "t.tif", data, photometric="minisblack", compression="lzw", tile=(64, 64))
    for name in ("s.tif", "t.tif"):
        np.testing.assert_array_equal(load_scan(tmp_path / name).channels[0], data)


# --- item 5: JPEG whose SOF height is raised --------------------------------------------------------

def raise_sof_height(path: Path, factor: int = 10) -> None:
    b = bytearray(path.read_bytes())
    i = min(j for j in (b.find(b"\xff\xc0"), b.find(b"\xff\xc2")) if j > 0)
    height = struct.unpack(">H", b[i + 5:i + 7])[0]
    b[i + 5:i + 7] = struct.pack(">H", height * factor)
    path.write_bytes(bytes(b))


def rgb_noise(h: int = 100, w: int = 120, seed: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 255, (h, w, 3)).astype(np.uint8)


@pytest.mark.parametrize("how", ["baseline", "progressive", "grey", "restart_intervals"])
def test_jpeg_with_raised_sof_height_is_refused_not_filled_in(tmp_path, how):
    path, img = tmp_path / "tall.jpg", rgb_noise()
    if how == "restart_intervals":  # data end on an interval boundary: the decoder resyncs, fills grey
        assert cv2.imwrite(str(path), img[..., 0], [cv2.IMWRITE_JPEG_RST_INTERVAL, 3])
    else:
        Image.fromarray(img[..., 0] if how == "grey" else img).save(path, quality=90,
                                                                     progressive=how == "progressive")
    raise_sof_height(path)  # Pillow decoded 1000 rows, 900 of them invented grey
    refused(path, "JPEG is incomplete", "120x1000")


def test_jpeg_with_an_mpf_segment_and_raised_sof_height_is_refused(tmp_path):
    path = tmp_path / "mpo.jpg"  # Pillow reads a JPEG carrying a multi-picture (MPF) segment as MPO
    Image.fromarray(rgb_noise()).save(path, format="MPO", save_all=True,
                                      append_images=[Image.fromarray(rgb_noise(seed=4))])
    with Image.open(path) as im:
        assert im.format == "MPO"
    raise_sof_height(path)
    refused(path, "JPEG is incomplete")


def test_jpeg_whose_data_stop_at_a_stray_end_marker_is_refused(tmp_path):
    path = tmp_path / "cut.jpg"
    Image.fromarray(rgb_noise(200, 160)).save(path, quality=90)
    b = bytearray(path.read_bytes())
    middle = (b.find(b"\xff\xda") + len(b)) // 2
    b[middle:middle + 2] = b"\xff\xd9"  # an EOI in mid-scan: the rest used to come back as grey
    path.write_bytes(bytes(b))
    refused(path, "JPEG is incomplete")


def test_jpeg_whose_restart_interval_marker_is_overwritten_is_refused(tmp_path):
    """Found by fuzz_readers (seed 11, case 3593): with its DRI segment turned to junk, libjpeg
    takes the first restart marker for the end of the data and fills the rest grey."""
    path = tmp_path / "nodri.jpg"
    assert cv2.imwrite(str(path), rgb_noise(64, 72)[..., 0], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2])
    b = path.read_bytes()
    assert b.count(b"\xff\xdd\x00\x04") == 1
    path.write_bytes(b.replace(b"\xff\xdd\x00\x04\x00\x02", b"\x6f\x1d\xe7\xe0\x72\x02"))
    refused(path, "JPEG is incomplete")


def test_complete_jpegs_with_white_margins_load_in_every_encoding(tmp_path):
    img = np.full((160, 200, 3), 255, np.uint8)
    img[40:100, 50:150] = rgb_noise(60, 100)  # a bag on a white belt: flat blocks the encoder coded
    writers = {
        "plain.jpg": lambda p: Image.fromarray(img).save(p, quality=90),
        "prog.jpg": lambda p: Image.fromarray(img).save(p, progressive=True, optimize=True),
        "444.jpg": lambda p: Image.fromarray(img).save(p, subsampling=0, quality=100),
        "rst.jpg": lambda p: cv2.imwrite(str(p), img[..., ::-1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 2]),
        "cvprog.jpg": lambda p: cv2.imwrite(str(p), img[..., ::-1], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
    }
    for name, write in writers.items():
        write(tmp_path / name)
        got = load_scan(tmp_path / name)
        assert got.kind == "rgb" and got.channels.shape == (3, 160, 200), name
        assert got.channels[:, :30].min() >= 240, name  # the white margin is there, as white


def test_real_sixray_images_with_white_margins_still_load(realdata):
    paths = sorted((realdata / "sixray_subset").rglob("*.jpg"))[::12]
    assert len(paths) >= 20
    for path in paths:
        with Image.open(path) as im:
            want = np.moveaxis(np.asarray(im.convert("RGB")), -1, 0)
        got = load_scan(path, isolated=False)  # the reader's code, without 20 pipe round trips
        np.testing.assert_array_equal(got.channels, want)


def test_real_dicos_dx_samples_still_load(realdata):
    for name in ("SimpleProcessingDX.dcs", "SimplePresentationDX.dcs"):
        got = load_scan(realdata / "dicos_samples" / name)
        assert got.kind == "gray" and got.channels.shape[1] >= 64 and got.channels.any(), name


# --- item 5: HDF5 storage allocated but never written -----------------------------------------------

def write_h5_raw(path: Path, *, layout: str = "contiguous", rows_written: int = 0, fill: int | None = 30000):
    """'high' and 'low' created through the low-level API (early allocation, a fill value, a layout),
    with only their first ``rows_written`` rows ever written."""
    shape = (100, 120) if layout == "compact" else (200, 240)
    with h5py.File(path, "w") as f:
        for name in ("high", "low"):
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            if layout == "compact":
                dcpl.set_layout(h5py.h5d.COMPACT)
            elif layout == "chunked":
                dcpl.set_chunk((50, 60))
                dcpl.set_deflate(4)
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            if fill is not None:
                dcpl.set_fill_value(np.array(fill, np.uint16))
            dsid = h5py.h5d.create(f.id, name.encode(), h5py.h5t.STD_U16LE, h5py.h5s.create_simple(shape),
                                   dcpl=dcpl)
            if rows_written:
                h5py.Dataset(dsid)[:rows_written] = noise(rows_written, shape[1])
        f.attrs["i0"] = 60000.0


@pytest.mark.parametrize("layout", ["contiguous", "chunked", "compact"])
def test_hdf5_allocated_early_and_never_written_is_refused(tmp_path, layout):
    write_h5_raw(tmp_path / "u.h5", layout=layout)  # used to load as a flat image of 30000s
    refused(tmp_path / "u.h5", "'high'", "fill value 30000", "never written")


@pytest.mark.parametrize("layout, fill", [("contiguous", 30000), ("chunked", 30000), ("contiguous", None)])
def test_hdf5_written_half_way_is_refused(tmp_path, layout, fill):
    write_h5_raw(tmp_path / "half.h5", layout=layout, rows_written=100, fill=fill)
    refused(tmp_path / "half.h5", "'high' was never fully written: rows 100 to 199",
            f"fill value {fill or 0}")


def test_hdf5_early_chunk_left_unwritten_in_the_middle_is_refused(tmp_path):
    write_h5_raw(tmp_path / "hole.h5", layout="chunked", rows_written=200)
    with h5py.File(tmp_path / "hole.h5", "r+") as f:
        f["high"][50:100, 60:120] = 30000  # one chunk back to the fill value, as if never written
    refused(tmp_path / "hole.h5", "'high' chunk at row 50, column 60 holds only the fill value 30000")


def test_fully_written_early_allocated_hdf5_and_native_files_load(tmp_path):
    write_h5_raw(tmp_path / "full.h5", layout="chunked", rows_written=200)
    assert load_scan(tmp_path / "full.h5").channels.shape == (2, 200, 240)
    scan = dual()
    np.testing.assert_array_equal(load_scan(save_h5(scan, tmp_path / "bag.h5")).channels, scan.channels)


# --- item 6: a TIFF that names another file for its pixels ------------------------------------------

def ome_pointing_at(other: Path) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/'
            '2016-06" UUID="urn:uuid:11111111-1111-1111-1111-111111111111"><Image ID="Image:0">'
            '<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="400" SizeY="300" SizeC="1" '
            'SizeZ="1" SizeT="1"><Channel ID="Channel:0:0" SamplesPerPixel="1"/>'
            f'<TiffData IFD="0" PlaneCount="1"><UUID FileName="{other}">'
            'urn:uuid:22222222-2222-2222-2222-222222222222</UUID></TiffData></Pixels></Image></OME>')


def test_multi_file_ome_tiff_is_refused_and_the_other_file_never_read(tmp_path, capfd):
    other = tmp_path / "elsewhere" / "secret.tif"
    other.parent.mkdir()
    tifffile.imwrite(other, np.full((300, 400), 1234, np.uint16), photometric="minisblack",
                     compression="zlib", metadata=None)
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, noise(64, 64), photometric="minisblack", description=ome_pointing_at(other),
                     metadata=None)
    refused(small, "multi-file OME-TIFF", str(other))
    # the reader's path through tifffile used to end in "reading array from closed file" on stderr
    assert "closed file" not in capfd.readouterr().err
    with _no_warnings():
        refused(small, "multi-file OME-TIFF", isolated=False)


class _no_warnings:
    """Fails the block when it emits any warning (pytest.warns cannot assert absence)."""

    def __enter__(self):
        import warnings
        self._ctx = warnings.catch_warnings(record=True)
        self.seen = self._ctx.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        assert not [str(w.message) for w in self.seen]


def test_multi_file_ome_pointing_at_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)  # opened by a reader that follows the name, it would block until the time limit
    small = tmp_path / "small.tif"
    tifffile.imwrite(small, noise(64, 64), photometric="minisblack", description=ome_pointing_at(fifo),
                     metadata=None)
    refused(small, "multi-file OME-TIFF", limits=ReadLimits(seconds=10.0))


def test_single_file_ome_tiff_naming_itself_loads(tmp_path):
    path = tmp_path / "self.tif"
    data = noise(80, 90)
    tifffile.imwrite(path, data, photometric="minisblack", description=ome_pointing_at(Path("self.tif")),
                     metadata=None)
    np.testing.assert_array_equal(load_scan(path).channels[0], data)
    # renamed since it was written: the UUID element names the file's own (root) UUID
    renamed = tmp_path / "renamed.tif"
    own = ome_pointing_at(Path("self.tif")).replace("22222222-2222-2222-2222-222222222222",
                                                    "11111111-1111-1111-1111-111111111111")
    tifffile.imwrite(renamed, data, photometric="minisblack", description=own, metadata=None)
    np.testing.assert_array_equal(load_scan(renamed).channels[0], data)


# --- item 8: chunk bombs ----------------------------------------------------------------------------

def zeros_deflated(n_bytes: int) -> bytes:
    """A zlib stream of ``n_bytes`` zero bytes, made in 1 MiB steps (never holding them all)."""
    comp, block, out = zlib.compressobj(4), bytes(1 << 20), []
    for _ in range(n_bytes >> 20):
        out.append(comp.compress(block))
    return b"".join(out) + comp.flush()


def test_hdf5_small_dataset_in_huge_gzip_chunks_is_a_memory_refusal(tmp_path):
    path = tmp_path / "bomb.h5"
    chunk = (8192, 8192)  # 128 MiB per chunk for a 128x160 image (the file: 40000x40000, 3.2 GB)
    blob = zeros_deflated(chunk[0] * chunk[1] * 2)  # ~130 KB on disk
    with h5py.File(path, "w") as f:
        for name in ("high", "low"):
            ds = f.create_dataset(name, shape=(128, 160), maxshape=(None, None), dtype=np.uint16,
                                  chunks=chunk, compression="gzip")
            ds.id.write_direct_chunk((0, 0), blob)
        f.attrs["i0"] = 60000.0
    err = refused(path, "'high' is stored in 8192x8192 chunks", "memory budget", "XSCREEN_MEMORY_BUDGET",
                  limits=ReadLimits(memory_bytes=64 << 20))
    assert "corrupt" not in err.fault


def test_tiff_declaring_huge_tiles_for_a_small_image_is_a_memory_refusal(tmp_path):
    path = tmp_path / "tiles.tif"
    tifffile.imwrite(path, noise(64, 72), photometric="minisblack", compression="zlib", tile=(64, 80),
                     metadata=None)
    b = bytearray(path.read_bytes())
    ifd = struct.unpack("<I", b[4:8])[0]
    for k in range(struct.unpack("<H", b[ifd:ifd + 2])[0]):
        e = ifd + 2 + 12 * k
        if struct.unpack("<H", b[e:e + 2])[0] in (322, 323):  # TileWidth, TileLength (LONG)
            b[e + 8:e + 12] = struct.pack("<I", 16384)  # one tile: 512 MiB decoded, for 64x72 pixels
    path.write_bytes(bytes(b))
    err = refused(path, "16384x16384x1 tiles", "memory budget", limits=ReadLimits(memory_bytes=256 << 20))
    assert "not enough memory to load" not in err.fault  # refused from the header, not by the cap


def test_ordinary_chunked_hdf5_is_within_a_small_budget(tmp_path):
    path = save_h5(dual(200, 300), tmp_path / "ok.h5")
    assert load_scan(path, limits=ReadLimits(memory_bytes=64 << 20)).channels.shape == (2, 200, 300)


# --- item 13 (reader half): DICOS objects as the network delivers them ------------------------------

def test_deflated_dicos_bomb_is_refused_before_pydicom_inflates_it(tmp_path):
    path = tmp_path / "deflated.dcs"
    write_dx(path, noise(100, 120, top=4000))
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    ds.add_new(0x00091010, "OB", bytes(40 << 20))  # 40 MiB of zeros: ~40 KB on the wire
    ds.save_as(path)
    assert path.stat().st_size < 1 << 20
    refused(path, "deflated DICOM data expand", "memory budget", limits=ReadLimits(memory_bytes=64 << 20))


def test_small_deflated_dicos_still_loads(tmp_path):
    path, pixels = tmp_path / "deflated.dcs", noise(100, 120, top=4000)
    write_dx(path, pixels)
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    ds.save_as(path)
    np.testing.assert_array_equal(load_scan(path).channels[0], pixels)


def test_two_frame_dicos_is_a_dual_scan_read_in_the_reader_process(tmp_path):
    path = tmp_path / "two.dcs"
    high, low = noise(100, 120, 1, 4000), noise(100, 120, 2, 3000)
    write_dx(path, high, NumberOfFrames=2)
    ds = pydicom.dcmread(path)
    ds.PixelData = np.stack([high, low]).tobytes()
    ds.save_as(path)
    got = load_scan(path)
    assert got.kind == "dual"
    np.testing.assert_array_equal(got.channels, np.stack([high, low]))


def test_two_frame_dicos_with_raised_rows_is_refused(tmp_path):
    path = tmp_path / "two.dcs"
    high = noise(100, 120, 1, 4000)
    write_dx(path, high, NumberOfFrames=2)
    ds = pydicom.dcmread(path)
    ds.PixelData = np.stack([high, high]).tobytes()
    ds.Rows = 1000
    ds.save_as(path)
    refused(path, "cannot decode DICOM pixel data")


def test_three_frame_dicos_is_refused(tmp_path):
    path = tmp_path / "three.dcs"
    write_dx(path, noise(100, 120, top=4000), NumberOfFrames=3)
    refused(path, "3 frames")


# --- item 12 (reader part): nothing from the decoders on the user's stderr --------------------------

def test_damaged_jpeg_metadata_warnings_stay_off_stderr(tmp_path, capfd):
    """fuzz_readers' 50 000-case run printed Pillow's "malformed MPO file" and "Corrupt EXIF data"
    warnings from the reader process onto the terminal; the pixels are intact, so the scan loads."""
    path, img = tmp_path / "mpo.jpg", rgb_noise()
    Image.fromarray(img).save(path, format="MPO", save_all=True, append_images=[Image.fromarray(img)])
    b = bytearray(path.read_bytes())
    index = b.find(b"MPF\x00") + 12
    b[index:index + 28] = b"\xee" * 28  # the multi-picture index, not the image data
    path.write_bytes(bytes(b))
    assert load_scan(path).channels.shape == (3, 100, 120)
    assert "Warning" not in capfd.readouterr().err
    with _no_warnings():
        load_scan(path, isolated=False)
