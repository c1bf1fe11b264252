"""De-identified export: no identifying value of the source DICOM reaches the PNG or the JSON report."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image, PngImagePlugin
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from engine.core.colors import blend
from engine.xray.deid import (
    build_report,
    encode_png,
    export_png,
    is_identifier_key,
    leaks,
    png_chunks,
    report_json,
    sanitise,
)
from engine.xray.display import read_xray
from engine.xray.domain import check_xray

PHI = {
    "PatientName": "Doe^Jane^Quinn",
    "PatientID": "PID-778899",
    "PatientBirthDate": "19781224",
    "PatientAddress": "12 Elm Street, Springfield",
    "InstitutionName": "Saint Example Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "OperatorsName": "Tech^Terry",
    "StationName": "XR-ROOM-7",
    "DeviceSerialNumber": "SN-99887766",
    "StudyDate": "20230415",
    "StudyTime": "101530",
    "AccessionNumber": "ACC445566",
    "StudyID": "ST-31337",
    "StudyDescription": "Chest for Jane Doe",
}
UIDS = {k: generate_uid() for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}


@pytest.fixture(scope="module")
def dicom_with_phi() -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = UIDS["SOPInstanceUID"]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    for k, v in {**PHI, **UIDS}.items():
        setattr(ds, k, v)
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined, ds.Manufacturer = "DX", "PA", "CHEST", "Acme Imaging"
    ds.Rows, ds.Columns = 48, 40
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(48 * 40, dtype="<u2").reshape(48, 40) % 4096).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


SECRETS = [*PHI.values(), *UIDS.values(), "Jane", "Quinn", "Gregory"]


def assert_clean(data: str | bytes) -> None:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    for s in SECRETS:
        assert s.lower() not in text.lower(), s


def test_header_holds_no_identifiers(dicom_with_phi):
    x = read_xray(dicom_with_phi, "Doe_Jane.dcm")
    assert_clean(json.dumps(x.header, default=str))
    assert_clean(" ".join(x.warnings))
    assert {
        PHI["PatientName"],
        PHI["PatientID"],
        PHI["AccessionNumber"],
        UIDS["SOPInstanceUID"],
    } <= x.phi_values
    assert x.header["patient_age_years"] == pytest.approx(44.3, abs=0.1)  # from birth and study dates


def test_png_export_has_pixels_only(dicom_with_phi):
    x = read_xray(dicom_with_phi)
    heat = np.linspace(0, 1, 12 * 10).reshape(12, 10)  # coarse saliency map, enlarged 4x
    data = export_png(x.display(), heat, opacity=0.5)
    assert png_chunks(data) == ["IHDR", "IDAT", "IEND"]
    assert leaks(data, x.phi_values) == []
    assert_clean(data)
    im = Image.open(io.BytesIO(data))
    assert im.info == {} and im.mode == "RGB" and im.size == (40, 48)
    np.testing.assert_array_equal(np.asarray(im), blend(x.display(), heat, opacity=0.5))


def test_report_strips_identifiers_even_when_passed_in(dicom_with_phi):
    x = read_xray(dicom_with_phi, "Doe_Jane.dcm")
    raw_header = {**PHI, **UIDS, **x.header}  # a careless caller merges the DICOM fields in
    report = build_report(
        model={"name": "cxr-resnet-small", "version": "1.0", "trained_on": "pediatric CXR, ages 1-5"},
        score={"PNEUMONIA": np.float32(0.83), "NORMAL": 0.17},
        method="Grad-CAM",
        params={"layer": "block4", "opacity": 0.5, "run_id": "r-001"},
        header=raw_header,
        warnings=[*x.warnings, *check_xray(x)],
        extra={
            "dicom": {**PHI, **UIDS},
            "notes": f"read for {PHI['PatientName']} on 2023-04-15, study {UIDS['StudyInstanceUID']}",
            "file_name": "Doe_Jane.dcm",
            "PatientSex": "F",
        },
        forbid=x.phi_values,
    )
    text = report_json(report, forbid=x.phi_values)
    assert_clean(text)
    out = json.loads(text)
    assert out["model"]["name"] == "cxr-resnet-small"
    assert out["score"]["PNEUMONIA"] == pytest.approx(0.83)
    assert out["saliency"] == {
        "method": "Grad-CAM",
        "params": {"layer": "block4", "opacity": 0.5, "run_id": "r-001"},
    }
    assert out["image"]["view_position"] == "PA" and out["image"]["modality"] == "DX"
    assert out["image"]["manufacturer"] == "Acme Imaging"
    assert "PatientName" not in out["image"] and not out["extra"]["dicom"] and "file_name" not in out["extra"]
    assert "PatientSex" not in out["extra"]
    assert out["deidentification"]["removed"]


def test_sanitise_rules():
    clean, removed = sanitise(
        {
            "PatientName": "X",
            "patient_id": 5,
            "study_date": "x",
            "institution": "y",
            "AccessionNumber": "z",
            "SOPInstanceUID": "1.2.3.4.5.6",
            "StudyID": "s",
            "run_id": "r-1",
            "model": {"name": "net"},
            "uid_list": ["1"],
            "comment": "ids 1.2.840.113619.2.55.3.604688119 and Smith^John, 19991231",
            "age_years": 95,
            "nan": float("nan"),
            "arr": np.arange(3),
            "big": np.zeros(10_000),
            "blob": b"\x00",
            "n": np.int64(7),
            "version": "3.0.2",
        },
        forbid=["Secret Clinic"],
    )
    assert set(clean) == {"run_id", "model", "comment", "age_years", "nan", "arr", "n", "version"}
    assert clean["comment"] == "ids [removed] and [removed], [removed]"
    assert clean["age_years"] == 90 and clean["nan"] is None and clean["arr"] == [0, 1, 2] and clean["n"] == 7
    assert clean["version"] == "3.0.2"
    assert "big" in removed and "blob" in removed
    assert sanitise({"note": "seen at secret clinic"}, forbid=["Secret Clinic"])[0] == {
        "note": "seen at [removed]"
    }
    assert is_identifier_key("ReferringPhysicianName") and not is_identifier_key("model_id")


def test_report_json_refuses_leaks():
    assert leaks('{"a": "JANE DOE"}', ["Jane Doe"]) == ["Jane Doe"]
    text = report_json({"a": "Jane Doe"}, forbid=["Jane Doe"])  # scrubbed, so accepted
    assert "Jane" not in text


@pytest.mark.parametrize("shape", [(7, 5), (7, 5, 3), (7, 5, 4)])
def test_encode_png_round_trip(shape):
    a = np.random.default_rng(1).integers(0, 256, size=shape).astype(np.uint8)
    im = Image.open(io.BytesIO(encode_png(a)))
    np.testing.assert_array_equal(np.asarray(im), a)
    assert png_chunks(encode_png(a.astype(np.float32) / 255.0)) == ["IHDR", "IDAT", "IEND"]


def test_chunk_checker_sees_metadata():
    info = PngImagePlugin.PngInfo()
    info.add_text("PatientName", "Doe^Jane")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buf, "PNG", pnginfo=info)
    assert "tEXt" in png_chunks(buf.getvalue())


def test_overlay_blending():
    g = np.full((8, 8), 0.5, np.float32)
    np.testing.assert_array_equal(blend(g, np.zeros((2, 2))), blend(g))  # cold = transparent
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    out = blend(g, rgba, opacity=1.0)
    assert tuple(out[0, 0]) == (255, 0, 0) and tuple(out[3, 3]) == (255, 0, 0)  # nearest: 4x4 block
    assert tuple(out[4, 4]) == (128, 128, 128)
