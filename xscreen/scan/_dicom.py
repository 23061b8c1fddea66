"""DICOS / DICOM digital X-ray (DX, CR) through pydicom.

DICOS (NEMA IIC 1) is DICOM for security screening; its DX image classes hold one projection
image, like a line-scan baggage image. CT volumes and threat reports (TDR) are not scans we
can screen, and say so. A two-frame DX object holds the two energies of one bag (frame 1 high,
frame 2 low, as the lane receiver stores them): a dual scan. Objects received over the network
are files like any other here, read under the same limits in the reader process (issue 32
item 13); a deflated object is inflated in bounded steps first, so a few kilobytes that expand
to gigabytes are refused before pydicom would inflate them whole.
"""
from __future__ import annotations

import warnings
import zlib
from pathlib import Path

import numpy as np
import pydicom

from xscreen.scan._checks import make_scan, to_counts
from xscreen.scan._limits import ReadLimits, check_size
from xscreen.scan._types import Scan, ScanError

DICOM_SUFFIXES = (".dcs", ".dcm", ".dicom")
_DX = {
    "1.2.840.10008.5.1.4.1.1.501.2.1": "DICOS DX image for presentation",
    "1.2.840.10008.5.1.4.1.1.501.2.2": "DICOS DX image for processing",
    "1.2.840.10008.5.1.4.1.1.1.1": "DX image for presentation",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "DX image for processing",
    "1.2.840.10008.5.1.4.1.1.1": "CR image",
}
_OTHER = {
    "1.2.840.10008.5.1.4.1.1.501.1": "DICOS CT image",
    "1.2.840.10008.5.1.4.1.1.501.3": "DICOS threat detection report (TDR)",
    "1.2.840.10008.5.1.4.1.1.501.4": "DICOS 2-D AIT image",
    "1.2.840.10008.5.1.4.1.1.501.5": "DICOS 3-D AIT image",
}


_DEFLATED = "1.2.840.10008.1.2.1.99"
_STEP = 1 << 20
# pydicom holds the inflated stream and then the parsed dataset: ~2 copies beside the pixels
_INFLATE_SHARE = 4


def read_dicom(path: Path, limits: ReadLimits) -> Scan:
    """(1, H, W) grey, (3, H, W) RGB or (2, H, W) dual (two frames) from a DX file; the header is
    checked before decoding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about every vendor quirk
        _check_deflated(path, limits)
        # Large elements (the pixel data) stay on disk until asked for, after the size check.
        ds = pydicom.dcmread(path, defer_size="64 KB")
        _check_dx(path, ds)
        rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
        samples = int(ds.get("SamplesPerPixel") or 1)
        frames = int(ds.get("NumberOfFrames") or 1)
        itemsize = max(1, -(-int(ds.get("BitsAllocated") or 16) // 8))
        check_size(path, rows, cols, limits, samples * frames, itemsize)
        channels = _to_channels(path, ds, _pixel_array(path, ds), frames)
        spacing = ds.get("ImagerPixelSpacing") or ds.get("PixelSpacing")
        metadata = _metadata(ds)
    kind = "dual" if frames == 2 else "gray" if channels.shape[0] == 1 else "rgb"
    return make_scan(path, kind, channels, pixel_pitch_mm=float(spacing[0]) if spacing else None,
                     metadata=metadata)


def _check_deflated(path: Path, limits: ReadLimits) -> None:
    """Deflated Explicit VR (a transfer syntax the network offers): count what the stream inflates
    to, 1 MiB at a time, and refuse it past a share of the memory budget."""
    try:
        with open(path, "rb") as fh:
            pydicom.filereader.read_preamble(fh, False)
            meta = pydicom.filereader._read_file_meta_info(fh)
            if str(meta.get("TransferSyntaxUID", "")) != _DEFLATED:
                return
            inflater, total, cap = zlib.decompressobj(-zlib.MAX_WBITS), 0, limits.memory_bytes // _INFLATE_SHARE
            while block := fh.read(_STEP):
                while block and total <= cap:
                    total += len(inflater.decompress(block, _STEP))
                    block = inflater.unconsumed_tail
                if total > cap:
                    raise ScanError(path, f"deflated DICOM data expand to over {cap / (1 << 30):.2f} GiB, "
                                          f"beyond the memory budget of {limits.memory_bytes / (1 << 30):.1f} "
                                          f"GiB (XSCREEN_MEMORY_BUDGET); refused before decoding")
    except ScanError:
        raise
    except Exception:  # (zlib.error, pydicom's InvalidDicomError, ...): dcmread names the fault
        return


def _check_dx(path: Path, ds: pydicom.Dataset) -> None:
    sop = str(ds.get("SOPClassUID", ""))
    modality = str(ds.get("Modality", ""))
    if sop in _DX or (sop not in _OTHER and modality in ("DX", "CR")):
        frames = int(ds.get("NumberOfFrames") or 1)
        if frames > 2 or (frames == 2 and int(ds.get("SamplesPerPixel") or 1) != 1):
            raise ScanError(path, f"DX file holds {ds.NumberOfFrames} frames of "
                                  f"{ds.get('SamplesPerPixel') or 1} sample(s); expected one image "
                                  f"or two grey frames (high and low energy)")
        if "PixelData" not in ds:
            raise ScanError(path, "DX file has no pixel data")
        return
    what = _OTHER.get(sop) or f"SOP class {sop or 'unknown'}, modality {modality or 'unknown'}"
    raise ScanError(path, f"not a DX image: {what}")


def _pixel_array(path: Path, ds: pydicom.Dataset) -> np.ndarray:
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    try:
        return ds.pixel_array
    except Exception as exc:  # pydicom raises RuntimeError/ValueError/NotImplementedError here
        if syntax is not None and syntax.is_compressed and not _decoder_available(syntax):
            raise ScanError(path, f"pixel data are compressed ({syntax.name}) and cannot be decoded "
                                  f"here: no decoder installed (pip install python-gdcm, "
                                  f"or pylibjpeg pylibjpeg-libjpeg) [{type(exc).__name__}]") from exc
        detail = " ".join(str(exc).split())[:300]  # pydicom's plugin reports span several lines
        raise ScanError(path, f"cannot decode DICOM pixel data ({type(exc).__name__}: {detail})") from exc


def _decoder_available(syntax: pydicom.uid.UID) -> bool:
    """Whether a plugin for this transfer syntax is installed: a corrupt stream that a working
    decoder rejects must not be reported as a missing package."""
    try:
        from pydicom.pixels import get_decoder  # pydicom >= 3
        return bool(get_decoder(syntax).is_available)
    except Exception:  # older pydicom, or a syntax pydicom has no decoder class for
        return False


def _to_channels(path: Path, ds: pydicom.Dataset, pixels: np.ndarray, frames: int = 1) -> np.ndarray:
    """(C, H, W) counts, bright = air: MONOCHROME1 (white = attenuating) is inverted."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if frames == 1 and pixels.ndim == 3 and pixels.shape[2] == 3:
        return np.moveaxis(to_counts(path, pixels), -1, 0)
    if pixels.shape != ((2,) if frames == 2 else ()) + (int(ds.Rows), int(ds.Columns)):
        raise ScanError(path, f"unsupported DX pixel layout {pixels.shape} for {frames} frame(s) "
                              f"({photometric})")
    counts = to_counts(path, pixels)
    if photometric == "MONOCHROME1":
        top = min(2 ** int(ds.get("BitsStored") or 8 * counts.itemsize) - 1, np.iinfo(counts.dtype).max)
        counts = (top - np.minimum(counts, top)).astype(counts.dtype)
    return counts if frames == 2 else counts[None]


def _metadata(ds: pydicom.Dataset) -> dict[str, str]:
    sop = str(ds.get("SOPClassUID", ""))
    meta = {"format": "DICOS" if ".501." in sop else "DICOM", "sop_class": _DX.get(sop, sop)}
    for key in ("Modality", "Manufacturer", "PhotometricInterpretation", "SOPInstanceUID",
                "SeriesDescription", "BitsStored"):
        value = ds.get(key)
        if value not in (None, ""):
            meta[key] = str(value)
    return meta
