"""Display pipeline (windows, presets, MONOCHROME1, invert), PNG/JPEG reading and domain warnings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from engine.core.errors import InputError
from engine.xray import XrayImage, read_xray
from engine.xray.display import AUTO, DEFAULT, FULL, PRESETS, apply_window, to_uint8
from engine.xray.domain import TRAINING_REFERENCE, check_xray, domain_warnings, image_stats


def dicom_bytes(pixels: np.ndarray, photometric: str = "MONOCHROME2", **tags) -> bytes:
    """Minimal uncompressed DICOM holding uint16 ``pixels``."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # DX for presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    for k, v in tags.items():
        setattr(ds, k, v)
    ds.PixelData = np.asarray(pixels).astype("<u2").tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def png_bytes(arr: np.ndarray, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt, **save)
    return buf.getvalue()


RNG = np.random.default_rng(0)
DATA = RNG.integers(0, 4096, size=(40, 50)).astype(np.uint16)


# ------------------------------------------------------------------------------------------ windows
def test_linear_window_follows_dicom_formula():
    x = np.array([44.5, 45.0, 49.5, 54.5, 55.0], np.float32)
    y = apply_window(x, center=50, width=11)  # edges at c - 0.5 -/+ (w - 1) / 2 = 44.5, 54.5
    np.testing.assert_allclose(y, [0.0, 0.05, 0.5, 1.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(apply_window(x, 50, 10, "LINEAR_EXACT"), np.clip((x - 50) / 10 + 0.5, 0, 1))
    assert apply_window(np.array([50.0]), 50, 10, "SIGMOID")[0] == pytest.approx(0.5)
    with pytest.raises(InputError):
        apply_window(x, 50, 0)


def test_header_window_is_default_and_user_window_overrides():
    x = read_xray(dicom_bytes(DATA, WindowCenter=[2000, 1000], WindowWidth=[1000, 500]))
    assert x.window_for() == (2000.0, 1000.0)  # first of several
    np.testing.assert_allclose(x.display(), apply_window(DATA, 2000, 1000))
    np.testing.assert_allclose(x.display(window=(1000, 500)), apply_window(DATA, 1000, 500))
    assert x.header["window_center"] == 2000.0


def test_monochrome1_is_inverted_relative_to_monochrome2():
    m1 = read_xray(dicom_bytes(DATA, "MONOCHROME1", WindowCenter=2048, WindowWidth=3000))
    m2 = read_xray(dicom_bytes(DATA, "MONOCHROME2", WindowCenter=2048, WindowWidth=3000))
    assert m1.inverted and not m2.inverted
    np.testing.assert_allclose(m1.display(), 1.0 - m2.display(), atol=1e-6)
    np.testing.assert_allclose(
        m1.display(window=(1000, 800)), 1.0 - m2.display(window=(1000, 800)), atol=1e-6
    )
    np.testing.assert_allclose(m1.display(invert=True), m2.display(), atol=1e-6)  # viewer's invert button
    np.testing.assert_array_equal(m1.pixels, m2.pixels)  # modality values are never inverted


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_look_the_same_for_both_encodings(preset):
    # The same picture stored as MONOCHROME2 (v) and as MONOCHROME1 (4095 - v) must display alike.
    m2 = read_xray(dicom_bytes(DATA, "MONOCHROME2"))
    m1 = read_xray(dicom_bytes(4095 - DATA, "MONOCHROME1"))
    d1, d2 = m1.display(preset=preset), m2.display(preset=preset)
    assert d1.dtype == np.float32 and d1.min() >= 0 and d1.max() <= 1
    np.testing.assert_allclose(d1, d2, atol=2e-3)


def test_auto_full_and_ct_presets():
    x = read_xray(dicom_bytes(DATA))  # no header window: default = auto percentiles
    lo, hi = np.percentile(DATA, [0.5, 99.5])
    assert x.window_for(DEFAULT) == x.window_for(AUTO) == pytest.approx(((lo + hi) / 2, hi - lo))
    assert x.window_for(FULL) == pytest.approx(((DATA.min() + DATA.max()) / 2, DATA.max() - DATA.min()))
    with pytest.raises(InputError, match="preset"):
        x.display(preset="Brain")
    ct = read_xray(get_testdata_file("CT_small.dcm"))
    assert ct.window_for("Lung") == (-600.0, 1500.0) and ct.window_for("Bone") == (400.0, 1800.0)


def test_uint8_output():
    x = read_xray(dicom_bytes(DATA, WindowCenter=2048, WindowWidth=4096))
    u = x.display_uint8()
    assert u.dtype == np.uint8 and u.shape == DATA.shape
    np.testing.assert_array_equal(u, to_uint8(x.display()))


# ------------------------------------------------------------------------------------------ PNG / JPEG
def test_png_grey_8bit():
    img = RNG.integers(0, 256, size=(30, 20)).astype(np.uint8)
    x = read_xray(png_bytes(img), "a.dcm")  # the content decides, not the suffix
    assert isinstance(x, XrayImage)
    np.testing.assert_array_equal(x.pixels, img)
    np.testing.assert_allclose(x.display(), img / 255.0, atol=1e-6)
    h = x.header
    assert h["source"] == "png" and h["modality"] == "unknown" and h["view_position"] == "unknown"
    assert h["pixel_spacing_mm"] is None and h["patient_age_years"] is None
    assert x.warnings == []


def test_png_16bit_uses_its_range():
    img = (RNG.integers(100, 3000, size=(16, 16))).astype(np.uint16)
    x = read_xray(png_bytes(img))
    np.testing.assert_array_equal(x.pixels, img)
    d = x.display()
    assert d.min() == 0.0 and d.max() == 1.0 and x.header["bits_stored"] == 16


def test_jpeg_colour_and_exif_orientation():
    grey_rgb = np.repeat(RNG.integers(0, 256, size=(24, 32, 1)).astype(np.uint8), 3, axis=2)
    assert read_xray(png_bytes(grey_rgb, "JPEG", quality=95)).warnings == []  # grey stored as RGB
    colour = np.zeros((24, 32, 3), np.uint8)
    colour[..., 0] = 255
    x = read_xray(png_bytes(colour))
    assert any("colour" in w for w in x.warnings)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    rotated = read_xray(png_bytes(grey_rgb, "JPEG", exif=exif.tobytes()))
    assert rotated.pixels.shape == (32, 24) and rotated.header["source"] == "jpeg"


def test_truncated_and_other_pictures():
    data = png_bytes(RNG.integers(0, 256, size=(64, 64)).astype(np.uint8))
    with pytest.raises(InputError, match="truncated"):
        read_xray(data[: len(data) // 2])
    with pytest.raises(InputError, match="not a DICOM, PNG or JPEG"):
        read_xray(png_bytes(np.zeros((8, 8), np.uint8), "BMP"))
    with pytest.raises(InputError, match="Mpixel"):
        read_xray(data, max_pixels=100)


# ------------------------------------------------------------------------------------------ domain
def test_domain_warnings_from_header():
    base = {
        "modality": "CR",
        "view_position": "PA",
        "body_part": "CHEST",
        "patient_age_years": 3.0,
        "source": "dicom",
    }
    assert domain_warnings(base) == []
    assert any("age 64" in w for w in domain_warnings({**base, "patient_age_years": 64.0}))
    assert any("lateral" in w for w in domain_warnings({**base, "view_position": "LAT"}))
    assert any("modality CT" in w for w in domain_warnings({**base, "modality": "CT"}))
    assert any("body part KNEE" in w for w in domain_warnings({**base, "body_part": "KNEE"}))
    assert any("no DICOM header" in w for w in domain_warnings({"source": "png"}))


def test_domain_warnings_from_image_stats():
    ref = TRAINING_REFERENCE
    # a smooth ramp (resizing to the model size keeps its statistics) with the training mean and std
    ramp = ref.mean_mean + np.sqrt(3) * ref.std_mean * np.linspace(-1, 1, 300, dtype=np.float32)
    typical = np.tile(ramp, (300, 1))
    assert domain_warnings({}, image_stats(typical)) == []
    inverted = 1.0 - typical * 0.4  # bright, low contrast
    w = domain_warnings({}, image_stats(inverted))
    assert any("mean grey level" in m for m in w) and any("contrast" in m for m in w)
    assert any("aspect" in m for m in domain_warnings({}, image_stats(typical[:, :100])))
    assert any("only 50 x 40" in m for m in domain_warnings({}, image_stats(typical[:40, :50])))


def test_real_adult_cr_is_flagged():
    path = get_testdata_file("RG1_J2KI.dcm", download=False)
    if path is None:
        pytest.skip("pydicom-data is not installed")
    w = check_xray(read_xray(path))
    assert any("age 64" in m for m in w)
    assert not any("lateral" in m or "modality" in m or "body part" in m for m in w)
