"""Compressed files other tools write: TIFF (LZW + predictor as OpenCV writes, Deflate, JPEG) and
the JPEG Lossless DICOS sample. Each needs a decoder outside the standard library (imagecodecs,
python-gdcm); these tests fail if one is missing from the environment."""
import cv2
import numpy as np
import pytest
import tifffile

from xscreen.scan import ScanError, load_scan


def counts16(seed: int, h: int = 70, w: int = 90) -> np.ndarray:
    return np.random.default_rng(seed).integers(500, 60000, size=(h, w)).astype(np.uint16)


def smooth_rgb(h: int = 72, w: int = 96) -> np.ndarray:
    """(H, W, 3) uint8 gradients: lossy JPEG keeps them within a few grey levels (noise it would not)."""
    y, x = np.mgrid[0:h, 0:w]
    planes = [x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (h + w - 2)]
    return np.stack(planes, -1).astype(np.uint8)


def tiff_codec(path) -> tuple[str, int]:
    with tifffile.TiffFile(path) as tif:
        return tif.pages[0].compression.name, int(tif.pages[0].predictor)


def test_opencv_tiff_pair_lzw_with_predictor_reads_exactly(tmp_path):
    high, low = counts16(0), counts16(1)
    # OpenCV's default TIFF writer: LZW with horizontal differencing (predictor 2).
    assert cv2.imwrite(str(tmp_path / "bag_high.tif"), high)
    assert cv2.imwrite(str(tmp_path / "bag_low.tif"), low)
    assert tiff_codec(tmp_path / "bag_high.tif") == ("LZW", 2)
    got = load_scan(tmp_path / "bag")
    assert got.kind == "dual" and got.scan_id == "bag"
    np.testing.assert_array_equal(got.channels, np.stack([high, low]))


def test_opencv_colour_tiff_is_rgb_not_bgr(tmp_path):
    rgb = smooth_rgb()
    assert cv2.imwrite(str(tmp_path / "colour.tif"), rgb[..., ::-1])
    assert tiff_codec(tmp_path / "colour.tif")[0] == "LZW"
    got = load_scan(tmp_path / "colour.tif")
    assert got.kind == "rgb"
    np.testing.assert_array_equal(np.moveaxis(got.channels, 0, -1), rgb)


@pytest.mark.parametrize("compression", ["deflate", "lzw", "zstd", "packbits"])
@pytest.mark.parametrize("what", ["gray16", "gray8", "rgb8"])
def test_lossless_tiff_compressions_read_exactly(tmp_path, compression, what):
    data = {"gray16": counts16(2), "gray8": (counts16(3) >> 8).astype(np.uint8), "rgb8": smooth_rgb()}[what]
    path = tmp_path / f"{what}.tif"
    tifffile.imwrite(path, data, photometric="rgb" if data.ndim == 3 else "minisblack",
                     compression=compression, predictor=compression != "packbits")
    assert tiff_codec(path)[0] == compression.upper()
    got = load_scan(path)
    assert got.channels.dtype == data.dtype
    np.testing.assert_array_equal(got.channels[0] if data.ndim == 2 else np.moveaxis(got.channels, 0, -1),
                                  data)


def test_jpeg_tiff_grey_8bit_reads_within_lossy_tolerance(tmp_path):
    grey = smooth_rgb()[..., 0]
    tifffile.imwrite(tmp_path / "g.tif", grey, photometric="minisblack", compression="jpeg")
    got = load_scan(tmp_path / "g.tif")
    assert got.kind == "gray" and got.channels.dtype == np.uint8
    assert np.abs(got.channels[0].astype(int) - grey).max() <= 8


def test_jpeg_tiff_colour_stored_as_ycbcr_reads_as_rgb(tmp_path):
    rgb = smooth_rgb()
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb", compression="jpeg")
    with tifffile.TiffFile(tmp_path / "c.tif") as tif:
        assert tif.pages[0].photometric.name == "YCBCR"  # what tifffile (like libtiff) writes
    got = load_scan(tmp_path / "c.tif")
    assert got.kind == "rgb"
    # Channel order is right (an RGB/BGR or raw-YCbCr mix-up would be off by ~100 levels).
    assert np.abs(np.moveaxis(got.channels, 0, -1).astype(int) - rgb).mean() < 3


def test_jpeg_lossless_16bit_tiff_pair_reads_exactly(tmp_path):
    high, low = counts16(4), counts16(5)
    for name, data in (("b_high.tif", high), ("b_low.tif", low)):
        tifffile.imwrite(tmp_path / name, data, photometric="minisblack", compression="jpeg",
                         compressionargs={"lossless": True, "bitspersample": 16})
    assert tiff_codec(tmp_path / "b_high.tif")[0] == "JPEG"
    np.testing.assert_array_equal(load_scan(tmp_path / "b_low.tif").channels, np.stack([high, low]))


def test_uncompressed_ycbcr_stays_refused(tmp_path):
    ycc = smooth_rgb()
    tifffile.imwrite(tmp_path / "y.tif", ycc, photometric="ycbcr", subsampling=(1, 1))
    with pytest.raises(ScanError, match="YCBCR"):
        load_scan(tmp_path / "y.tif")


def test_dicos_jpeg_lossless_sample_decodes_to_the_uncompressed_twin(realdata):
    folder = realdata / "dicos_samples"
    compressed = load_scan(folder / "SimplePresentationDX.dcs")
    plain = load_scan(folder / "SimpleProcessingDX.dcs")
    assert compressed.metadata["sop_class"] == "DICOS DX image for presentation"
    assert compressed.kind == "gray" and compressed.channels.shape == (1, 128, 256)
    # The sample pair holds one test pattern twice: lossless decoding must give it bit for bit.
    np.testing.assert_array_equal(compressed.channels, plain.channels)


def write_jpeg_lossless_dx(path, pixels: np.ndarray, stream: bytes | None = None):
    """A DICOS DX file with JPEG Lossless SV1 pixel data, as scanner software writes them."""
    import imagecodecs
    import pydicom
    from pydicom.encaps import encapsulate

    meta = pydicom.dataset.FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.501.2.1"
    meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    meta.TransferSyntaxUID = pydicom.uid.JPEGLosslessSV1
    ds = pydicom.dataset.FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if stream is None:
        stream = imagecodecs.jpeg8_encode(pixels, lossless=True, bitspersample=12, predictor=1)
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_jpeg_lossless_dicos_dx_reads_exactly(tmp_path):
    px = np.random.default_rng(6).integers(100, 4000, size=(64, 80)).astype(np.uint16)
    got = load_scan(write_jpeg_lossless_dx(tmp_path / "bag.dcs", px))
    assert got.kind == "gray" and got.metadata["format"] == "DICOS"
    np.testing.assert_array_equal(got.channels[0], px)


def test_corrupt_jpeg_lossless_dicom_is_not_blamed_on_a_missing_decoder(tmp_path):
    px = np.full((64, 80), 1000, np.uint16)
    path = write_jpeg_lossless_dx(tmp_path / "bad.dcs", px, stream=b"\xff\xd8" + b"\x00" * 64 + b"\xff\xd9")
    with pytest.raises(ScanError, match="cannot decode DICOM pixel data") as err:
        load_scan(path)
    assert "no decoder installed" not in str(err.value) and "bad.dcs" in str(err.value)
