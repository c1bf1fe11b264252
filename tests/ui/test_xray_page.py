"""AppTest of the X-ray review page: sample, viewer controls, abstention, saliency, sanity check, uploads,
batch."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine.xray.predict import DEFAULT_MODEL

PAGE = str(Path(__file__).resolve().parents[2] / "ui" / "screens" / "xray.py")
PATIENT = {"PatientName": "Doe^Jane", "PatientID": "MRN4711235", "PatientBirthDate": "20210314",
           "InstitutionName": "Saint Example Hospital", "AccessionNumber": "ACC99812"}


def chest_dicom(side: int = 256, age: str = "004Y", seed: int = 0) -> bytes:
    """A small chest-like DX DICOM (bright mediastinum and ribs, dark lungs) with patient identifiers."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

    y, x = np.mgrid[0:side, 0:side] / side
    lungs = np.exp(-(((x - 0.3) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2)) + \
        np.exp(-(((x - 0.7) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2))
    ribs = 0.15 * (np.sin(y * 40) > 0.6)
    img = 0.75 - 0.5 * lungs + ribs + 0.02 * np.random.default_rng(seed).standard_normal((side, side))
    pixels = np.clip(img * 4095, 0, 4095).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("chest.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    for k, v in PATIENT.items():
        setattr(ds, k, v)
    ds.PatientAge, ds.StudyDate = age, "20250101"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined = "DX", "PA", "CHEST"
    ds.ImagerPixelSpacing = [0.5, 0.5]
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _sample_available() -> bool:
    try:
        from pydicom.data import get_testdata_file

        return bool(get_testdata_file("RG1_J2KI.dcm", download=False))
    except Exception:
        return False


needs_sample = pytest.mark.skipif(not _sample_available(), reason="pydicom-data (test extra) not installed")


def _open() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60).run()


def _with_sample() -> AppTest:
    return _open().checkbox(key="sample").check().run()


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _image_urls(at: AppTest) -> list[str]:
    return [i.url for img in at.get("image") for i in img.proto.imgs]


def test_page_opens_with_a_hint():
    at = _open()
    assert not at.exception
    assert any("Try a sample" in i.value for i in at.info)


def _labels_shown(at: AppTest) -> list[str]:
    """Texts on the page that name a class, outside the expanders (the model card describes both classes)."""
    folded = {id(el.proto) for e in at.expander for el in [*e.markdown, *e.caption]}
    texts = [el.value for el in [*at.markdown, *at.warning, *at.caption, *at.error, *at.info]
             if id(el.proto) not in folded]
    return [t for t in texts if "NORMAL" in t or "PNEUMONIA" in t]


def _upload(name: str, data: bytes) -> AppTest:
    at = _open()
    at.sidebar.file_uploader[0].upload(name, data).run()
    return at


@needs_sample
def test_sample_adult_is_not_assessed_with_its_reason():
    at = _with_sample()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "Not assessed" in warning and "age 64" in warning  # the adult CR is refused a label
    assert any(m.value.startswith("Prediction:") and "not assessed" in m.value for m in at.markdown)
    assert _labels_shown(at) == []
    (research,) = [e for e in at.expander if e.label.startswith("Research only")]
    assert 0.0 <= float(research.metric[0].value) <= 1.0  # the score stays one click away
    assert any("adult" in c.value for c in at.sidebar.caption)
    assert any("not given" in m.value for m in at.markdown)  # PixelSpacing [0, 0]: no millimetres
    assert json.loads(at.session_state["xray_report"])["score"]["label"] == "NOT_ASSESSED"


def test_ct_film_is_not_assessed_and_shows_no_label():
    from pydicom.data import get_testdata_file

    at = _upload("CT_small.dcm", Path(get_testdata_file("CT_small.dcm")).read_bytes())
    assert not at.exception and not at.error
    text = " ".join(w.value for w in at.warning)
    assert "Not assessed" in text and "modality CT" in text
    assert any("not assessed" in m.value for m in at.markdown)
    assert _labels_shown(at) == [] and not at.get("plotly_chart")  # no saliency map either


def test_in_domain_film_has_a_label_and_the_model_facts():
    at = _upload("child.dcm", chest_dicom())
    assert not at.exception and not at.warning
    assert 0.0 <= float(_metric(at, "Calibrated P(pneumonia)")) <= 1.0
    assert any(m.value.startswith("Prediction:") and ("PNEUMONIA" in m.value or "NORMAL" in m.value)
               for m in at.markdown)
    cfg = json.loads(DEFAULT_MODEL.read_text())
    facts = cfg.get("validation", cfg.get("cross_validation"))["metrics"]
    assert any(f"threshold {cfg['threshold']:.3f}" in c.value and f"sensitivity {facts['sensitivity']:.3f}" in c.value
               for c in at.caption), [c.value for c in at.caption]
    # the figures say where they come from: cross-validation on the training folder, no independent test
    assert any("out-of-fold" in c.value and "no independent test set" in c.value for c in at.caption)
    assert not any("cannot be checked" in c.value for c in at.caption)
    assert _labels_shown(at)  # the helper the not-assessed tests rely on does see a label


def test_png_has_a_label_and_one_neutral_note():
    from tests.xray.test_abstain import chest_png

    at = _upload("film.png", chest_png())
    assert not at.exception and not at.error
    assert any(m.value.startswith("Prediction:") and ("PNEUMONIA" in m.value or "NORMAL" in m.value)
               for m in at.markdown)
    notes = [c.value for c in at.caption if "cannot be checked" in c.value]
    assert len(notes) == 1 and "no DICOM header" in notes[0]
    assert not any("cannot be checked" in w.value or "Not assessed" in w.value for w in at.warning)


def _nan_rescale_dicom() -> bytes:
    import warnings

    import pydicom

    ds = pydicom.dcmread(io.BytesIO(chest_dicom(side=64)))
    with warnings.catch_warnings():  # pydicom rightly calls 'NaN' an invalid DS; that is the point here
        warnings.simplefilter("ignore", UserWarning)
        ds.RescaleSlope, ds.RescaleIntercept = "NaN", "0"
    buf = io.BytesIO()
    ds.save_as(buf)
    return buf.getvalue()


def _one_pixel_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize("name", ["nan_rescale.dcm", "one.png", "SC_rgb_small_odd.dcm", "SC_rgb_small_odd_jpeg.dcm",
                                  "SC_rgb_small_odd_big_endian.dcm"])
def test_unusable_files_show_one_plain_error(name):
    from pydicom.data import get_testdata_file

    if name == "nan_rescale.dcm":
        data = _nan_rescale_dicom()
    elif name == "one.png":
        data = _one_pixel_png()
    else:
        data = Path(get_testdata_file(name)).read_bytes()
    at = _upload(name, data)
    assert not at.exception
    assert len(at.error) == 1 and "\n" not in at.error[0].value and name in at.error[0].value
    assert not at.metric


@needs_sample
def test_window_preset_invert_and_zoom_rerender():
    at = _with_sample()

    def prediction() -> list[str]:
        return [m.value for m in at.markdown if m.value.startswith("Prediction:")] + [
            str(m.value) for m in at.metric]

    first, first_p = _image_urls(at), prediction()
    at.selectbox(key="preset").set_value("Lung").run()
    lung, lung_p = _image_urls(at), prediction()
    at.checkbox(key="invert").check()
    at.select_slider(key="zoom").set_value(4.0).run()
    inverted, inverted_p = _image_urls(at), prediction()
    assert not at.exception and len({first[0], lung[0], inverted[0]}) == 3
    # window/level and invert are display-only: the score does not move
    assert first_p and first_p == lung_p == inverted_p
    assert "4x zoom" in at.get("image")[0].proto.imgs[0].caption
    at.selectbox(key="preset").set_value("Custom (sliders)").run()
    assert not at.exception
    assert {s.label for s in at.sidebar.slider} >= {"Center (level)", "Width", "Pan left-right"}


def test_saliency_method_target_and_layout_switch():
    at = _upload("child.dcm", chest_dicom())
    heads = lambda: [h.value for h in at.subheader] + [  # noqa: E731
        json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert any("10x10 feature map" in t for t in heads())  # Grad-CAM grid at its true resolution
    at.selectbox(key="method").set_value("occlusion")
    at.selectbox(key="target").set_value("NORMAL").run()
    assert not at.exception
    assert any("occluded patches" in t for t in heads()) and "Target class NORMAL" in heads()
    at.radio(key="layout").set_value("Side by side").run()
    assert len(at.get("image")) == 2
    at.checkbox(key="overlay").uncheck().run()
    assert not at.exception and len(at.get("image")) == 1 and not at.get("plotly_chart")


def test_sanity_check_shows_rank_correlation():
    at = _upload("child.dcm", chest_dicom())
    at.button(key="sanity").click().run()
    assert not at.exception
    shown = _metric(at, "Rank correlation")
    report = json.loads(at.session_state["xray_report"])
    if shown == "n/a":  # a flat map of the randomised model is said so in words
        assert any("randomised model's map is flat" in c.value or "constant" in c.value for c in at.caption)
        assert report["extra"].get("sanity_check_spearman") is None
    else:
        rho = float(shown)
        assert -1.0 <= rho <= 1.0
        assert report["extra"]["sanity_check_spearman"] == pytest.approx(rho, abs=0.01)


def test_uploaded_dicom_report_has_no_patient_identifiers():
    at = _open()
    at.sidebar.file_uploader[0].upload("Doe_Jane.dcm", chest_dicom()).run()
    assert not at.exception and not at.error
    assert 0.0 <= float(_metric(at, "Calibrated P(pneumonia)")) <= 1.0
    assert any("ImagerPixelSpacing" in m.value and "0.500 x 0.500 mm" in m.value for m in at.markdown)
    text = at.session_state["xray_report"]
    report = json.loads(text)
    cfg = json.loads(DEFAULT_MODEL.read_text())
    assert report["model"]["name"] == cfg["name"] and report["saliency"]["method"] == "gradcam"
    assert report["score"]["threshold"] == pytest.approx(cfg["threshold"])
    for value in [*PATIENT.values(), "Doe", "Jane", "2021", "Doe_Jane"]:
        assert value.lower() not in text.lower(), value
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["De-identified PNG", "Report JSON"]


def test_bad_upload_shows_one_line_error():
    at = _open()
    at.sidebar.file_uploader[0].upload("notes.dcm", b"this is not an image").run()
    assert not at.exception
    assert len(at.error) == 1 and "\n" not in at.error[0].value and "notes.dcm" in at.error[0].value


def test_batch_of_uploads_runs_as_a_job():
    from ui.jobs import manager

    at = _open()
    up = at.sidebar.file_uploader[0]
    up.set_value([("a.dcm", chest_dicom(seed=1), "application/dicom"),
                  ("b.dcm", chest_dicom(age="040Y", seed=2), "application/dicom")]).run()
    assert not at.exception
    at.button(key="batch").click().run()
    rid = at.query_params["run"]
    rid = rid[0] if isinstance(rid, list) else rid
    assert manager().wait(rid, 30) == "done"
    run = manager().store.get(rid)
    spec = json.dumps(run.spec)
    assert "Doe" not in spec and "MRN4711235" not in spec and "a.dcm" not in spec
    rows = run.metrics()
    assert [r["done"] for r in rows] == [1, 2] and all(0 <= r["probability"] <= 1 for r in rows)
    results = run.read_json("summary.json")["results"]
    assert results[0]["label"] in ("NORMAL", "PNEUMONIA") and results[0]["reasons"] == []
    assert results[1]["label"] == "NOT_ASSESSED" and any("age 40" in w for w in results[1]["reasons"])
    at.run()
    assert not at.exception and at.dataframe
    table = at.dataframe[0].value
    assert list(table["prediction"])[1] == "not assessed" and np.isnan(list(table["P(pneumonia)"])[1])
    # the interactive view of the first image gives the batch's probability
    assert float(_metric(at, "Calibrated P(pneumonia)")) == pytest.approx(results[0]["probability"], abs=6e-4)
