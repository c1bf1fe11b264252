"""DICOM reading: every transfer syntax decodes, broken and non-image files give clear errors."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_fragments
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from engine.core.errors import InputError
from engine.xray.dicom import choose_plugin
from engine.xray.display import read_xray


def tf(name: str) -> str:
    """Path of a pydicom test file (bundled, or from the pydicom-data package); skip when absent."""
    try:
        path = get_testdata_file(name, download=False)
    except Exception:  # pydicom raises various errors when an external source is broken
        path = None
    if path is None:
        pytest.skip(f"{name} is not installed (pydicom test files / pydicom-data)")
    return path


def make_dicom(
    pixels: np.ndarray, photometric: str = "MONOCHROME2", tsyntax=ExplicitVRLittleEndian, **tags
) -> bytes:
    """A minimal DICOM file (secondary capture) holding ``pixels`` (uint16) and ``tags``."""
    pixels = np.asarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = tsyntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for k, v in tags.items():
        setattr(ds, k, v)
    if tsyntax == ExplicitVRLittleEndian:
        ds.PixelData = pixels.astype("<u2").tobytes()
    else:  # encapsulated bytes for syntaxes tested only for their error message
        ds.PixelData = encapsulate([pixels.astype("<u2").tobytes()])
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def raw_array(name: str) -> np.ndarray:
    return pydicom.dcmread(tf(name)).pixel_array


# ------------------------------------------------------------------------------------------ good files
def test_ct_modality_lut_and_spacing():
    x = read_xray(tf("CT_small.dcm"))
    ref = apply_modality_lut(raw_array("CT_small.dcm"), pydicom.dcmread(tf("CT_small.dcm")))
    np.testing.assert_array_equal(x.pixels, ref.astype(np.float32))
    assert x.pixels.dtype == np.float32 and x.pixels.min() < 0  # Hounsfield units
    h = x.header
    assert h["modality"] == "CT" and (h["rows"], h["cols"]) == (128, 128)
    assert h["pixel_spacing_mm"] == pytest.approx((0.661468, 0.661468))
    assert h["pixel_spacing_source"] == "PixelSpacing"
    assert h["patient_age_years"] is None  # '000Y' is a placeholder, not an age


@pytest.mark.parametrize(
    "reference, compressed",
    [
        ("MR_small.dcm", "MR_small_RLE.dcm"),  # RLE
        ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),  # JPEG-LS
        ("MR_small.dcm", "MR_small_jp2klossless.dcm"),  # JPEG 2000 lossless
        ("SC_rgb.dcm", "SC_rgb_jpeg_gdcm.dcm"),  # JPEG lossless (process 14 SV1), colour
        ("SC_rgb.dcm", "SC_rgb_rle.dcm"),
        ("US1_UNCR.dcm", "US1_J2KR.dcm"),  # JPEG 2000 lossless, YBR_RCT
    ],
)
def test_lossless_syntaxes_match_uncompressed(reference, compressed):
    a, b = read_xray(tf(reference)), read_xray(tf(compressed))
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.header["transfer_syntax"] != b.header["transfer_syntax"]


def test_jpeg_baseline_close_to_uncompressed():
    a, b = read_xray(tf("SC_rgb.dcm")), read_xray(tf("SC_rgb_jpeg_dcmtk.dcm"))
    assert b.header["transfer_syntax"] == "JPEG Baseline (Process 1)"
    assert np.abs(a.pixels - b.pixels).max() < 4  # lossy, grey levels 0-255
    assert any("colour" in w for w in b.warnings)


def test_jpeg_lossless_16bit_and_deflate_decode():
    x = read_xray(tf("JPEG-LL.dcm"))
    assert x.header["transfer_syntax"].startswith("JPEG Lossless")
    assert x.pixels.shape == (1024, 256) and x.pixels.max() > 0
    y = read_xray(tf("image_dfl.dcm"))
    assert y.header["transfer_syntax"] == "Deflated Explicit VR Little Endian"


def test_multiframe_takes_first_frame_with_warning():
    x = read_xray(tf("emri_small.dcm"))
    np.testing.assert_array_equal(x.pixels, raw_array("emri_small.dcm")[0].astype(np.float32))
    assert x.header["frames"] == 10
    assert any("10 frames" in w for w in x.warnings)


def test_modality_lut_sequence_and_voi_lut_sequence():
    ds = pydicom.dcmread(tf("mlut_18.dcm"))
    x = read_xray(tf("mlut_18.dcm"))
    np.testing.assert_array_equal(x.pixels, apply_modality_lut(ds.pixel_array, ds).astype(np.float32))
    ds = pydicom.dcmread(tf("vlut_04.dcm"))
    v = read_xray(tf("vlut_04.dcm"))
    assert v.header["voi_lut"] and v.window_for() is None
    ref = apply_voi_lut(ds.pixel_array, ds).astype(np.float32)
    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
    np.testing.assert_allclose(v.display(), np.clip(ref / max(2**bits - 1, ref.max()), 0, 1), atol=1e-6)


def test_real_chest_cr_monochrome1_j2k():
    x = read_xray(tf("RG1_J2KI.dcm"))  # pydicom-data: adult chest CR, JPEG 2000 lossy, MONOCHROME1
    h = x.header
    assert (h["modality"], h["view_position"], h["body_part"], h["photometric"]) == (
        "CR",
        "PA",
        "CHEST",
        "MONOCHROME1",
    )
    assert h["transfer_syntax"] == "JPEG 2000 Image Compression"
    assert h["pixel_spacing_mm"] is None and h["pixel_spacing_source"] is None  # PixelSpacing [0, 0]
    assert any("PixelSpacing" in w and "pixels" in w for w in x.warnings)
    assert h["patient_age_years"] > 60 and h["age_source"].startswith("PatientBirthDate")
    assert x.inverted and h["presentation_inverted"]
    d = x.display()
    spine, lung = d[1500:1700, 880:960].mean(), d[600:900, 300:500].mean()
    assert spine > lung + 0.15  # bone white, lung dark after inversion
    assert x.pixels[1500:1700, 880:960].mean() < x.pixels[600:900, 300:500].mean()  # stored the other way
    # lossy J2K decodes to the uncompressed copy pydicom-data ships (decoded once by the makers)
    unc = pydicom.dcmread(tf("RG1_UNCI.dcm")).pixel_array
    np.testing.assert_array_equal(x.pixels, unc.astype(np.float32))


def test_path_and_bytes_and_content_dispatch(tmp_path):
    data = open(tf("MR_small.dcm"), "rb").read()
    p = tmp_path / "scan.png"  # wrong suffix: content decides
    p.write_bytes(data)
    a, b = read_xray(p), read_xray(data, "whatever.jpg")
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.header["modality"] == "MR"


def test_file_without_preamble_is_parsed():
    data = make_dicom(np.arange(16, dtype=np.uint16).reshape(4, 4))
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta, ds.preamble = FileMetaDataset(), None
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, implicit_vr=True, little_endian=True)  # no preamble, no file meta
    raw = buf.getvalue()
    assert raw[128:132] != b"DICM"
    x = read_xray(raw)
    np.testing.assert_array_equal(x.pixels, np.arange(16).reshape(4, 4))


# ------------------------------------------------------------------------------------------ bad files
@pytest.mark.parametrize(
    "name, words",
    [
        ("MR_truncated.dcm", ["truncated"]),
        ("rtplan.dcm", ["no image", "RT Plan"]),
        ("test-SR.dcm", ["no image", "SR"]),
        ("waveform_ecg.dcm", ["no image", "ECG"]),
        ("emri_small_jpeg_2k_lossless_too_short.dcm", ["no image"]),
        ("JPEG-lossy.dcm", ["JPEG Extended", "pylibjpeg-libjpeg"]),  # 12-bit: needs the GPL plugin
    ],
)
def test_broken_and_non_image_files(name, words):
    with pytest.raises(InputError) as e:
        read_xray(tf(name), name)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(name)
    for w in words:
        assert w in msg


def test_decoder_choice_avoids_gdcm_in_process():
    # GDCM aborted the process on a corrupt JPEG-LS stream while fuzzing: prefer the other plugins.
    assert choose_plugin(pydicom.uid.JPEGLSLossless) == "pyjpegls"
    assert choose_plugin(pydicom.uid.JPEG2000) == "pylibjpeg"
    assert choose_plugin(pydicom.uid.JPEGBaseline8Bit) == "pillow"
    assert choose_plugin(pydicom.uid.JPEGLosslessSV1) == "gdcm"  # only choice: run in a child process


@pytest.mark.parametrize(
    "name", ["SC_rgb_jpeg_gdcm.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm"]
)
def test_corrupt_compressed_data_is_an_input_error(name, monkeypatch):
    # CharLS spends ~11 s on this truncated stream; the child process is stopped at the time limit.
    monkeypatch.setattr("engine.xray.dicom.ISOLATED_TIMEOUT_S", 4.0)
    ds = pydicom.dcmread(tf(name))
    frame = b"".join(generate_fragments(ds.PixelData))
    ds.PixelData = encapsulate([frame[: len(frame) // 3]])
    buf = io.BytesIO()
    ds.save_as(buf)
    with pytest.raises(InputError, match="corrupt"):
        read_xray(buf.getvalue())


def test_unsupported_transfer_syntax_is_named():
    data = make_dicom(np.zeros((4, 4), np.uint16), tsyntax="1.2.840.10008.1.2.4.100")  # MPEG2 video
    with pytest.raises(
        InputError, match=r"MPEG2 .*\(1\.2\.840\.10008\.1\.2\.4\.100\) is not supported.*convert"
    ):
        read_xray(data)


@pytest.mark.parametrize("data", [b"", b"hello world" * 30, b"\x00" * 300])
def test_not_an_image(data):
    with pytest.raises(InputError):
        read_xray(data)


def test_size_limits(tmp_path):
    data = make_dicom(np.zeros((64, 64), np.uint16))
    with pytest.raises(InputError, match="the limit is"):
        read_xray(data, max_bytes=1000)
    p = tmp_path / "big.dcm"
    p.write_bytes(data)
    with pytest.raises(InputError, match="^big.dcm: file is .* the limit is"):
        read_xray(p, max_bytes=1000)
    with pytest.raises(InputError, match="^scan.dcm: .*the limit is"):
        read_xray(data, "scan.dcm", max_bytes=1000)  # the name appears once
    with pytest.raises(InputError, match="^missing.dcm: no such file; expected a DICOM, PNG or JPEG file"):
        read_xray(tmp_path / "missing.dcm")
    with pytest.raises(InputError, match="empty; expected a DICOM, PNG or JPEG file"):
        read_xray(b"")
    with pytest.raises(InputError, match="Mpixel limit"):
        read_xray(data, max_pixels=1000)


def test_deflate_bomb_is_refused():
    ds = pydicom.dcmread(io.BytesIO(make_dicom(np.zeros((1024, 1024), np.uint16))))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf)
    data = buf.getvalue()
    assert len(data) < 20_000  # 2 MB of zeros
    assert read_xray(data).pixels.shape == (1024, 1024)
    with pytest.raises(InputError, match="inflates to over"):
        read_xray(data, max_bytes=1_000_000)


# ------------------------------------------------------------------------------------------ header facts
@pytest.mark.parametrize(
    "tags, spacing, source",
    [
        ({}, None, None),
        ({"PixelSpacing": [0, 0]}, None, None),
        ({"ImagerPixelSpacing": [0.15, 0.16]}, (0.15, 0.16), "ImagerPixelSpacing"),
        ({"PixelSpacing": [0, 0], "ImagerPixelSpacing": [0.2, 0.2]}, (0.2, 0.2), "ImagerPixelSpacing"),
        ({"PixelSpacing": [0.1, 0.1], "ImagerPixelSpacing": [0.2, 0.2]}, (0.1, 0.1), "PixelSpacing"),
        ({"NominalScannedPixelSpacing": [0.3, 0.3]}, (0.3, 0.3), "NominalScannedPixelSpacing"),
    ],
)
def test_pixel_spacing_source(tags, spacing, source):
    h = read_xray(make_dicom(np.zeros((4, 4), np.uint16), **tags)).header
    assert h["pixel_spacing_mm"] == (pytest.approx(spacing) if spacing else None)
    assert h["pixel_spacing_source"] == source


@pytest.mark.parametrize(
    "tags, view, age",
    [
        ({"ViewPosition": "AP", "PatientAge": "004Y"}, "AP", 4.0),
        ({"ViewPosition": "LL", "PatientAge": "018M"}, "LAT", 1.5),
        (
            {"PatientOrientation": ["A", "F"], "PatientBirthDate": "20200101", "StudyDate": "20230101"},
            "LAT",
            3.0,
        ),
        ({"SeriesDescription": "Chest PA"}, "PA", None),
        ({}, "unknown", None),
    ],
)
def test_view_and_age(tags, view, age):
    h = read_xray(make_dicom(np.zeros((4, 4), np.uint16), **tags)).header
    assert h["view_position"] == view
    assert h["patient_age_years"] == (pytest.approx(age, abs=0.01) if age is not None else None)
