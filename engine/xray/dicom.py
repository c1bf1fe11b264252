"""DICOM radiographs: decode the pixel data with pydicom 3 and its plugins, collect the header facts.

Decoders used per transfer syntax (all MIT/BSD licensed): uncompressed, deflated and RLE by pydicom
itself (pylibjpeg-rle is faster for RLE); JPEG baseline by Pillow or python-gdcm; JPEG lossless by
python-gdcm; JPEG-LS by pyjpegls or python-gdcm; JPEG 2000 by pylibjpeg-openjpeg, python-gdcm or Pillow.
pylibjpeg-libjpeg (GPL-3.0) is deliberately not used, so 12-bit JPEG Extended files are refused with a
message saying so.

The returned header holds facts only (modality, view, body part, size, spacing, age...), never names,
IDs, dates or UIDs; the strings that could identify the patient are kept apart in ``phi_values`` so that
an exporter can check that none of them leaks.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, get_decoder, pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from engine.core.errors import InputError
from engine.core.reading import check_declared, inflate_capped, read_capped

MAX_FILE_BYTES = 256 * 2**20  # an uncompressed 16-bit CR/DX film is 10-50 MB; mammograms reach ~100 MB
MAX_PIXELS = 64 * 2**20  # rows x columns of the decoded frame (float32 copy: 256 MB)
EXPECTED = "a DICOM, PNG or JPEG file"  # what an unreadable upload should have been, for messages
MAX_INFLATED_BYTES = 128 * 2**20  # a deflated body inflates to at most this (a 16-bit 8k x 8k film)
MIN_SIDE = 2  # rows and columns: a 1xN image is no radiograph and breaks the display pipeline
PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_DEFLATED = b"1.2.840.10008.1.2.1.99"

# Which plugin decodes what, for the error message when decoding is impossible here.
_PLUGIN_HINTS: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "Pillow or python-gdcm (installed)",
    "1.2.840.10008.1.2.4.51": "python-gdcm or Pillow for 8-bit; 12-bit needs pylibjpeg-libjpeg (GPL-3.0, "
    "not used by this MIT project)",
    "1.2.840.10008.1.2.4.57": "python-gdcm (installed) or pylibjpeg-libjpeg (GPL-3.0, not used)",
    "1.2.840.10008.1.2.4.70": "python-gdcm (installed) or pylibjpeg-libjpeg (GPL-3.0, not used)",
    "1.2.840.10008.1.2.4.80": "pyjpegls or python-gdcm (installed)",
    "1.2.840.10008.1.2.4.81": "pyjpegls or python-gdcm (installed)",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg, python-gdcm or Pillow (installed)",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg, python-gdcm or Pillow (installed)",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg >= 2.0 (installed)",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg >= 2.0 (installed)",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg >= 2.0 (installed)",
    "1.2.840.10008.1.2.5": "pydicom itself or pylibjpeg-rle (installed)",
}
_NO_DECODER_HINT = (
    "pydicom 3.0 has no decoder for it (video, JPEG XL, JPIP or JPEG 2000 Part 2); convert the file to an "
    "uncompressed syntax first, e.g. with `gdcmconv --raw` or `dcmdjpeg`"
)

# Plugin order per syntax. GDCM comes last: on corrupt JPEG-LS data it aborted the whole process (an
# uncaught C++ exception, found by fuzzing). CharLS (pyjpegls) spent 11-14 s on a truncated 4 kB stream.
# So GDCM and JPEG-LS decoding run in a child process with a time limit; the rest runs in-process.
_PREFERRED_PLUGINS: dict[str, tuple[str, ...]] = {
    "1.2.840.10008.1.2.4.50": ("pillow", "gdcm"),
    "1.2.840.10008.1.2.4.51": ("pillow", "gdcm"),
    "1.2.840.10008.1.2.4.57": ("gdcm",),
    "1.2.840.10008.1.2.4.70": ("gdcm",),
    "1.2.840.10008.1.2.4.80": ("pyjpegls", "gdcm"),
    "1.2.840.10008.1.2.4.81": ("pyjpegls", "gdcm"),
    "1.2.840.10008.1.2.4.90": ("pylibjpeg", "pillow", "gdcm"),
    "1.2.840.10008.1.2.4.91": ("pylibjpeg", "pillow", "gdcm"),
    "1.2.840.10008.1.2.5": ("pylibjpeg", "pydicom", "gdcm"),
}
_ISOLATED_SYNTAXES = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
ISOLATED_TIMEOUT_S = 60.0  # a child decoding one frame: seconds for a 50 MB file even on a loaded CPU
_PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Keywords whose values identify a patient, a visit or a place (after DICOM PS3.15 Annex E, basic
# profile). Their values are collected into ``phi_values``; none is copied into the header.
PHI_KEYWORDS: frozenset[str] = frozenset(
    """PatientName PatientID OtherPatientIDs OtherPatientNames IssuerOfPatientID PatientBirthDate
    PatientBirthTime PatientBirthName PatientMotherBirthName PatientAddress PatientTelephoneNumbers
    PatientComments MedicalRecordLocator MilitaryRank BranchOfService Occupation AdditionalPatientHistory
    InstitutionName InstitutionAddress InstitutionalDepartmentName ReferringPhysicianName
    ReferringPhysicianAddress ReferringPhysicianTelephoneNumbers PerformingPhysicianName
    NameOfPhysiciansReadingStudy OperatorsName PhysiciansOfRecord RequestingPhysician AccessionNumber
    StudyID AdmissionID StationName DeviceSerialNumber StudyDescription SeriesDescription ImageComments
    ProtocolName RequestedProcedureDescription PerformedProcedureStepDescription
    PerformedProcedureStepID ScheduledProcedureStepID RequestedProcedureID
    FillerOrderNumberImagingServiceRequest
    PlacerOrderNumberImagingServiceRequest StudyDate SeriesDate AcquisitionDate ContentDate StudyTime
    SeriesTime AcquisitionTime ContentTime AcquisitionDateTime InstanceCreationDate InstanceCreationTime
    StudyInstanceUID SeriesInstanceUID SOPInstanceUID FrameOfReferenceUID MediaStorageSOPInstanceUID
    InstanceCreatorUID ReferencedSOPInstanceUID IrradiationEventUID""".split()
)
_PHI_VRS = frozenset({"PN", "DA", "DT", "TM"})
_MIN_PHI_LEN = 3  # shorter strings ('F', '1') would match everywhere and identify no one

_LATERAL = {"LL", "RL", "LAT", "LATERAL", "LLD", "RLD"}
_VIEW_WORDS = re.compile(r"\b(PA|AP|LAT|LATERAL|LL|RL)\b", re.IGNORECASE)


@dataclass
class DicomImage:
    """A decoded DICOM frame, ready for the display pipeline.

    Attributes
    ----------
    pixels : (rows, cols) float32 modality values (after RescaleSlope/Intercept or the Modality LUT);
        colour images are converted to grey luminance first.
    header : facts for the UI and the domain checks; no identifiers (see module docstring).
    warnings : one-line messages about what was assumed or dropped while reading.
    windows : (center, width) pairs from WindowCenter/WindowWidth, first = default.
    voi_function : 'LINEAR', 'LINEAR_EXACT' or 'SIGMOID' (VOILUTFunction).
    voi_image : the header VOI LUT applied to ``pixels`` and scaled to [0, 1], or None without one.
    inverted : True when the presentation inverts grey (MONOCHROME1), so that bone shows white.
    phi_values : identifying strings found in the file, for leak checks on exports.
    """

    pixels: np.ndarray
    header: dict
    warnings: list[str]
    windows: list[tuple[float, float]]
    voi_function: str = "LINEAR"
    voi_image: np.ndarray | None = field(default=None, repr=False)
    inverted: bool = False
    phi_values: frozenset[str] = field(default=frozenset(), repr=False)


def is_dicom(data: bytes) -> bool:
    """True when ``data`` has the DICOM preamble marker 'DICM' at byte 128."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def read_bytes(src: bytes | str | Path, *, max_bytes: int = MAX_FILE_BYTES, name: str | None = None) -> bytes:
    """Read a file or accept bytes, refusing anything over ``max_bytes`` before reading it.

    ``name`` labels messages (default: the file name, or "upload" for bytes).
    """
    data, _ = read_capped(src, max_bytes=max_bytes, name=name, expected=EXPECTED)
    return data


def parse(data: bytes, force: bool = False, max_bytes: int = MAX_FILE_BYTES) -> Dataset:
    """Parse DICOM bytes (pixel data not decoded yet).

    ``force`` accepts files without the 128-byte preamble and file meta (older ACR-NEMA style); the
    result must still hold image or identity attributes, else it is not taken for DICOM. A deflated
    body may inflate to at most ``max_bytes``.
    """
    _check_deflated_size(data, max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), force=force)
            # Touch every top-level element now so that a broken file fails here, not later.
            for _ in ds:
                pass
    except MemoryError:
        raise
    except Exception as e:  # pydicom, zlib and struct raise many types on damaged files; all are bad input
        raise InputError(
            f"cannot parse DICOM ({_one_line(e)}); the file may be truncated or not DICOM"
        ) from e
    if force and not any(k in ds for k in ("SOPClassUID", "Modality", "Rows", *PIXEL_KEYWORDS)):
        raise InputError("not a DICOM, PNG or JPEG file")
    return ds


def _check_deflated_size(data: bytes, limit: int = MAX_FILE_BYTES) -> None:
    """Refuse a Deflated Explicit VR file whose body inflates past the cap (pydicom inflates it whole).

    Found with or without the 128-byte preamble: the file meta group is located by its group length
    element (0002,0000) wherever it starts. The body is inflated in bounded chunks and only counted,
    so the check itself holds a few hundred KiB at most.
    """
    head = bytes(data[:8192])
    if _DEFLATED not in head:
        return
    at = head.find(b"\x02\x00\x00\x00UL\x04\x00")  # (0002,0000) UL, explicit VR little endian
    if at < 0:
        raise InputError("deflated DICOM without a file meta group length; the file is corrupt")
    start = at + 12 + int.from_bytes(head[at + 8 : at + 12], "little")
    cap = min(limit, MAX_INFLATED_BYTES)
    inflate_capped(memoryview(data)[start:], limit=cap, keep=False, name="deflated DICOM")


def read_dicom(
    src: bytes | str | Path, *, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS
) -> DicomImage:
    """Read a DICOM file (bytes or path) and decode its first frame.

    Raises
    ------
    InputError
        For files over the size limit, unparsable or truncated files, non-image objects (RT plan,
        structured report, waveform), missing pixel data, frames over ``max_pixels`` and transfer
        syntaxes no installed plugin decodes (the message names the syntax and the plugin that would).
    """
    data = read_bytes(src, max_bytes=max_bytes)
    ds = parse(data, force=not is_dicom(data), max_bytes=max_bytes)
    return decode(ds, max_pixels=max_pixels)


def decode(ds: Dataset, *, max_pixels: int = MAX_PIXELS) -> DicomImage:
    """Decode the first frame of a parsed dataset into a :class:`DicomImage`."""
    # pydicom warns about non-conforming values (common in real files); they are not the user's concern.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _decode(ds, max_pixels)
    except (InputError, MemoryError):
        raise
    except Exception as e:  # broken headers fail in many ways inside pydicom and numpy; all are bad input
        msg = f"cannot read this DICOM image ({_one_line(e)}); the file is corrupt or non-standard"
        raise InputError(msg) from e


def _decode(ds: Dataset, max_pixels: int) -> DicomImage:
    notes: list[str] = []
    if not any(k in ds for k in PIXEL_KEYWORDS):
        raise InputError(
            f"DICOM file holds no image: {_describe(ds)} without pixel data; expected a radiograph"
        )
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows <= 0 or cols <= 0:
        raise InputError(f"DICOM image has no valid size (Rows={rows}, Columns={cols}); the header is broken")
    if rows * cols > max_pixels:
        raise InputError(
            f"DICOM image is {cols} x {rows} pixels, over the {max_pixels / 2**20:.0f} Mpixel limit"
        )
    if min(rows, cols) < MIN_SIDE:
        raise InputError(f"image is {cols}x{rows} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    # rows x columns x samples x bits of one frame, from the header, before any decoding
    samples_hdr = _int(ds.get("SamplesPerPixel")) or 1
    bits_hdr = _int(ds.get("BitsAllocated")) or 16
    if not 1 <= samples_hdr <= 4 or bits_hdr not in (1, 8, 16, 32, 64):
        raise InputError(f"DICOM header declares {samples_hdr} samples of {bits_hdr} bits per pixel; "
                         f"expected 1 or 3 samples of 8, 16 or 32 bits")
    check_declared((rows, cols, samples_hdr), max(bits_hdr // 8, 1), max_bytes=max_pixels * 4,
                   name="DICOM image", what="header")
    for kw in ("RescaleSlope", "RescaleIntercept"):
        v = ds.get(kw)
        if v not in (None, "") and not np.isfinite(_float(v) if _float(v) is not None else np.nan):
            raise InputError(f"DICOM {kw} is {v}, not a finite number; the header is broken")
    tsyntax = _transfer_syntax(ds, notes)
    _check_decoder(tsyntax)
    frames = _int(ds.get("NumberOfFrames")) or 1
    if frames > 1:
        notes.append(f"file holds {frames} frames; only the first is shown and analysed")
    arr = _decode_first_frame(ds, tsyntax)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    samples = int(ds.get("SamplesPerPixel") or 1)
    monochrome = photometric in ("MONOCHROME1", "MONOCHROME2")

    voi_image = None
    windows: list[tuple[float, float]] = []
    if photometric == "PALETTE COLOR":
        arr = _luminance(apply_color_lut(arr, ds), notes, "palette colour")
    elif samples > 1 or arr.ndim == 3:
        arr = _luminance(arr, notes, f"colour ({photometric})")
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arr = apply_modality_lut(arr, ds)
        windows = _windows(ds, notes)
        voi_image = _voi_lut_image(arr, ds, notes)
    pixels = np.asarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(pixels)):
        notes.append("non-finite pixel values set to the minimum")
        pixels = np.where(
            np.isfinite(pixels), pixels, np.nanmin(np.where(np.isfinite(pixels), pixels, np.nan))
        )
    shape = str(ds.get("PresentationLUTShape", "")).strip().upper()
    inverted = photometric == "MONOCHROME1"
    if photometric == "MONOCHROME2" and shape == "INVERSE":
        inverted = True
        notes.append("Presentation LUT Shape INVERSE on a MONOCHROME2 image: grey is inverted for display")
    header = header_facts(ds, tsyntax, frames)
    header["presentation_inverted"] = inverted
    header["voi_lut"] = voi_image is not None
    if windows:
        header["window_center"], header["window_width"] = windows[0]
    if not monochrome and photometric != "PALETTE COLOR" and samples == 1:
        notes.append(f"unexpected photometric interpretation {photometric}; read as MONOCHROME2")
    if header["pixel_spacing_note"]:
        notes.append(header["pixel_spacing_note"])
    fn = str(ds.get("VOILUTFunction", "LINEAR")).strip().upper() or "LINEAR"
    if fn not in ("LINEAR", "LINEAR_EXACT", "SIGMOID"):
        notes.append(f"unknown VOI LUT function {fn}; LINEAR used")
        fn = "LINEAR"
    return DicomImage(pixels, header, notes, windows, fn, voi_image, inverted, phi_values(ds))


def header_facts(ds: Dataset, tsyntax: UID | None, frames: int) -> dict:
    """Facts from the header for display and domain checks; 'unknown'/None where absent. No identifiers."""
    spacing, source, note = pixel_spacing(ds)
    age, age_source = patient_age_years(ds)
    view, view_source = view_position(ds)
    body = _text(ds.get("BodyPartExamined")).upper() or _region(ds)
    lossy = _text(ds.get("LossyImageCompression"))
    sop = ds.get("SOPClassUID")
    return {
        "source": "dicom",
        "modality": _text(ds.get("Modality")).upper() or "unknown",
        "sop_class": UID(str(sop)).name if sop else "unknown",
        "transfer_syntax": tsyntax.name if tsyntax else "unknown",
        "lossy_compression": {"01": True, "00": False}.get(lossy),
        "view_position": view,
        "view_source": view_source,
        "body_part": body or "unknown",
        "rows": int(ds.Rows),
        "cols": int(ds.Columns),
        "frames": frames,
        "bits_stored": _int(ds.get("BitsStored")),
        "bits_allocated": _int(ds.get("BitsAllocated")),
        "samples_per_pixel": _int(ds.get("SamplesPerPixel")) or 1,
        "photometric": _text(ds.get("PhotometricInterpretation")).upper() or "unknown",
        "pixel_spacing_mm": spacing,
        "pixel_spacing_source": source,
        "pixel_spacing_note": note,
        "patient_age_years": age,
        "age_source": age_source,
        "manufacturer": _text(ds.get("Manufacturer")) or "unknown",
        "manufacturer_model": _text(ds.get("ManufacturerModelName")) or "unknown",
        "rescale_slope": _float(ds.get("RescaleSlope")),
        "rescale_intercept": _float(ds.get("RescaleIntercept")),
        "rescale_type": _text(ds.get("RescaleType")) or None,
        "window_center": None,
        "window_width": None,
    }


def pixel_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None, str]:
    """Return ((row, col) spacing in mm, which attribute it came from, note).

    PixelSpacing (0028,0030) is preferred, then ImagerPixelSpacing (0018,1164: at the detector, so
    patient distances are smaller by the magnification), then NominalScannedPixelSpacing (0018,2010:
    digitised film). Missing, zero or negative values give None: no millimetres are reported then.
    """
    notes = []
    for kw in ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        if kw not in ds:
            continue
        raw = ds.get(kw)
        try:
            vals = [
                float(v)
                for v in (raw if isinstance(raw, (list, tuple, pydicom.multival.MultiValue)) else [raw])
            ]
        except (TypeError, ValueError):
            vals = []
        if len(vals) == 2 and all(np.isfinite(v) and v > 0 for v in vals):
            note = ""
            if kw == "ImagerPixelSpacing":
                note = (
                    "pixel spacing is ImagerPixelSpacing (at the detector): sizes in the patient are smaller"
                )
            elif kw == "NominalScannedPixelSpacing":
                note = "pixel spacing is NominalScannedPixelSpacing (of the digitised film)"
            if notes:
                note = "; ".join([*notes, note] if note else notes)
            return (vals[0], vals[1]), kw, note
        notes.append(f"{kw} is {vals or raw!s}, not a valid spacing")
    if notes:
        return None, None, "; ".join(notes) + ": no physical scale, sizes are in pixels"
    return None, None, ""


def patient_age_years(ds: Dataset) -> tuple[float | None, str | None]:
    """Age in years from PatientAge ('045Y', '006M', '010W', '003D'), else birth date and study date."""
    txt = _text(ds.get("PatientAge")).upper()
    m = re.fullmatch(r"(\d{1,3})\s*([YMWD])?", txt)
    if m and int(m.group(1)) > 0:  # '000Y' is a common placeholder, so zero falls through to the dates
        per_year = {"Y": 1.0, "M": 12.0, "W": 365.25 / 7, "D": 365.25}[m.group(2) or "Y"]
        return round(int(m.group(1)) / per_year, 2), "PatientAge"
    birth = _dicom_date(ds.get("PatientBirthDate"))
    seen = next(
        (
            d
            for k in ("StudyDate", "AcquisitionDate", "SeriesDate", "ContentDate")
            if (d := _dicom_date(ds.get(k)))
        ),
        None,
    )
    if birth and seen and seen >= birth:
        return round((seen - birth).days / 365.25, 2), "PatientBirthDate and study date"
    return None, None


def view_position(ds: Dataset) -> tuple[str, str | None]:
    """('PA' | 'AP' | 'LAT' | other code | 'unknown', the attribute it came from)."""
    vp = _text(ds.get("ViewPosition")).upper()
    if vp:
        return ("LAT" if vp in _LATERAL else vp), "ViewPosition"
    seq = ds.get("ViewCodeSequence")
    if seq:
        meaning = _text(seq[0].get("CodeMeaning")).lower()
        for key, view in (("postero-anterior", "PA"), ("antero-posterior", "AP"), ("lateral", "LAT")):
            if key in meaning:
                return view, "ViewCodeSequence"
    for kw in (
        "SeriesDescription",
        "ProtocolName",
        "AcquisitionDeviceProcessingDescription",
        "StudyDescription",
    ):
        m = _VIEW_WORDS.search(_text(ds.get(kw)))
        if m:
            word = m.group(1).upper()
            return ("LAT" if word in _LATERAL else word), kw
    orient = ds.get("PatientOrientation")
    if orient and len(orient) == 2 and str(orient[0]).upper()[:1] in ("A", "P"):
        # Rows running anterior/posterior only happen in a lateral projection.
        return "LAT", "PatientOrientation"
    return "unknown", None


def phi_values(ds: Dataset) -> frozenset[str]:
    """Identifying strings of the dataset (PHI keywords, person names, dates, times), nested too."""
    found: set[str] = set()

    def walk(d: Dataset) -> None:
        for el in d:
            if el.VR == "SQ":
                for item in el.value or []:
                    walk(item)
                continue
            if el.keyword in PHI_KEYWORDS or el.VR in _PHI_VRS:
                vals = (
                    el.value
                    if isinstance(el.value, (list, tuple, pydicom.multival.MultiValue))
                    else [el.value]
                )
                for v in vals:
                    s = str(v).strip() if v is not None else ""
                    if len(s) >= _MIN_PHI_LEN:
                        found.add(s)
                        if el.VR == "PN":
                            found.update(p for p in re.split(r"[\^=]", s) if len(p) >= _MIN_PHI_LEN)

    walk(ds)
    if getattr(ds, "file_meta", None) is not None:
        walk(ds.file_meta)
    return frozenset(found)


# ---------------------------------------------------------------------------------------------------------
def _transfer_syntax(ds: Dataset, notes: list[str]) -> UID:
    meta = getattr(ds, "file_meta", None)
    ts = meta.get("TransferSyntaxUID") if meta is not None else None
    if ts:
        return UID(str(ts))
    # No file meta (old files): pydicom knows how the body was encoded; record it for the decoder.
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if not little:
        raise InputError(
            "big-endian DICOM without file meta is not supported; expected a standard DICOM file"
        )
    ts = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta = ds.file_meta if meta is not None else pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    notes.append("file has no DICOM file meta header; read as " + ts.name)
    return ts


def _check_decoder(ts: UID) -> None:
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        raise InputError(f"transfer syntax {ts.name} ({ts}) is not supported: {_NO_DECODER_HINT}") from None
    if not decoder.is_available:
        hint = _PLUGIN_HINTS.get(str(ts), "no installed plugin")
        raise InputError(f"no installed plugin decodes {ts.name} ({ts}); it needs {hint}")


def choose_plugin(ts: UID) -> str:
    """Plugin used to decode ``ts``: the first available preferred one, or '' (pydicom's own choice)."""
    try:
        available = get_decoder(ts).available_plugins
    except NotImplementedError:
        return ""
    return next((p for p in _PREFERRED_PLUGINS.get(str(ts), ()) if p in available), "")


def _decode_first_frame(ds: Dataset, ts: UID) -> np.ndarray:
    plugin = choose_plugin(ts)
    if plugin == "gdcm" or str(ts) in _ISOLATED_SYNTAXES:
        return _decode_isolated(ds, ts, plugin)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pixel_array(ds, index=0, decoding_plugin=plugin)
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except (RuntimeError, NotImplementedError) as e:
        hint = _PLUGIN_HINTS.get(str(ts), _NO_DECODER_HINT)
        msg = (
            f"cannot decode {ts.name} pixel data ({_one_line(e)}): the data is corrupt or a variant the "
            f"installed decoders do not handle; decoders for it: {hint}"
        )
        raise InputError(msg) from e
    except BaseException as e:  # compiled decoders (Rust, C++) may raise panics that are not Exceptions
        msg = f"cannot decode the pixel data ({_one_line(e)}); the file is truncated or corrupt"
        raise InputError(msg) from e


def _decode_isolated(ds: Dataset, ts: UID, plugin: str) -> np.ndarray:
    """Decode the first frame in a child process, so that a decoder crash or hang cannot stop this one."""
    buf = io.BytesIO()
    ds.save_as(buf)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    code = "from engine.xray.dicom import isolated_decode_main; isolated_decode_main()"
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, plugin],
            input=buf.getvalue(),
            capture_output=True,
            timeout=ISOLATED_TIMEOUT_S,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise InputError(
            f"decoding {ts.name} pixel data took over {ISOLATED_TIMEOUT_S:.0f} s; the file may be corrupt"
        ) from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = lines[-1][:200] if proc.returncode > 0 and lines else "the decoder crashed"
        raise InputError(f"cannot decode {ts.name} pixel data ({why}); the file is truncated or corrupt")
    arr = np.load(io.BytesIO(proc.stdout), allow_pickle=False)
    if arr.shape[:2] != (int(ds.Rows), int(ds.Columns)):
        raise InputError(
            f"decoded {ts.name} frame has shape {arr.shape}, not Rows x Columns; the file is corrupt"
        )
    return arr


def isolated_decode_main() -> None:
    """Child process: DICOM bytes on stdin -> first frame as .npy on stdout; exit 2 on error.

    The decoding plugin name is the first command-line argument ('' lets pydicom choose).
    """
    plugin = sys.argv[1] if len(sys.argv) > 1 else ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(sys.stdin.buffer.read()), force=True)
            arr = np.ascontiguousarray(pixel_array(ds, index=0, decoding_plugin=plugin))
    except Exception as e:
        print(_one_line(e), file=sys.stderr)
        raise SystemExit(2) from None
    np.save(sys.stdout.buffer, arr, allow_pickle=False)
    sys.stdout.buffer.flush()


def _luminance(arr: np.ndarray, notes: list[str], what: str) -> np.ndarray:
    rgb = np.asarray(arr, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[-1] != 3:
        raise InputError(f"unexpected colour pixel layout {rgb.shape}; expected rows x columns x 3")
    if np.any(rgb != rgb[..., :1]):
        notes.append(f"{what} image converted to grey (luminance); a radiograph is expected to be grey")
    # ITU-R BT.601 luma weights, as Pillow's 'L' conversion uses.
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _windows(ds: Dataset, notes: list[str]) -> list[tuple[float, float]]:
    centers, widths = _floats(ds.get("WindowCenter")), _floats(ds.get("WindowWidth"))
    pairs = [(c, w) for c, w in zip(centers, widths) if np.isfinite(c) and np.isfinite(w) and w >= 1]
    if len(pairs) < min(len(centers), len(widths)):
        notes.append("invalid window width in the header ignored")
    return pairs


def _voi_lut_image(arr: np.ndarray, ds: Dataset, notes: list[str]) -> np.ndarray | None:
    seq = ds.get("VOILUTSequence")
    if not seq:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = apply_voi_lut(np.asarray(arr), ds, index=0, prefer_lut=True).astype(np.float32)
        bits = int(seq[0].LUTDescriptor[2])
    except Exception as e:  # a malformed LUT should not stop the image from showing
        notes.append(f"VOI LUT in the header unusable ({_one_line(e)}); window used instead")
        return None
    top = max(float(2**bits - 1) if 1 <= bits <= 16 else 0.0, float(out.max()), 1.0)
    return np.clip(out / top, 0.0, 1.0)


def _describe(ds: Dataset) -> str:
    sop = ds.get("SOPClassUID")
    name = UID(str(sop)).name if sop else "unknown object"
    mod = _text(ds.get("Modality"))
    return f"{name}" + (f" (modality {mod})" if mod else "")


def _region(ds: Dataset) -> str:
    seq = ds.get("AnatomicRegionSequence")
    if seq:
        return _text(seq[0].get("CodeMeaning")).upper()
    return ""


def _text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, (list, tuple, pydicom.multival.MultiValue)):
        v = v[0] if len(v) else ""
    return str(v).strip()


def _int(v: object) -> int | None:
    try:
        return int(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _float(v: object) -> float | None:
    try:
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _floats(v: object) -> list[float]:
    if v is None or v == "":
        return []
    vals = v if isinstance(v, (list, tuple, pydicom.multival.MultiValue)) else [v]
    out = []
    for x in vals:
        try:
            out.append(float(x))
        except (TypeError, ValueError):
            out.append(float("nan"))
    return out


def _dicom_date(v: object) -> date | None:
    s = _text(v)
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", s) or re.fullmatch(r"(\d{4})[.-](\d{2})[.-](\d{2})", s)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    msg = msg.removeprefix("Unable to decode as exceptions were raised by all available plugins: ")
    return (msg[:200] + "...") if len(msg) > 200 else (msg or type(e).__name__)
