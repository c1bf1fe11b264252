"""Out-of-domain abstention: a film the header puts outside the training domain gets no label."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from engine.xray.display import read_xray
from engine.xray.domain import NO_HEADER_NOTE, NOT_ASSESSED, assess_domain, check_film, domain_warnings
from engine.xray.predict import Classifier
from engine.xray.workflow import as_float, model_input, review_report
from tests.ui.test_xray_page import chest_dicom

IN_DOMAIN = {"source": "dicom", "modality": "CR", "view_position": "PA", "body_part": "CHEST",
             "patient_age_years": 3.0}


def dicom_with(data: bytes, **tags: str) -> bytes:
    """``data`` (a DICOM file) with some header attributes replaced."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(data))
    for k, v in tags.items():
        setattr(ds, k, v)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def chest_png(side: int = 200) -> bytes:
    y, x = np.mgrid[0:side, 0:side] / side
    lungs = np.exp(-(((x - 0.3) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2)) + \
        np.exp(-(((x - 0.7) / 0.14) ** 2 + ((y - 0.5) / 0.3) ** 2))
    img = np.clip(0.75 - 0.5 * lungs, 0, 1)
    buf = io.BytesIO()
    Image.fromarray((img * 255).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _check(data: bytes | str):
    xr = read_xray(data)
    return xr, check_film(xr, as_float(model_input(xr)))


@pytest.mark.parametrize("change, word", [
    ({"patient_age_years": 64.0}, "age 64"),
    ({"patient_age_years": 0.25}, "3 months"),
    ({"view_position": "LAT"}, "lateral"),
    ({"view_position": "LL"}, "view position LL"),
    ({"modality": "CT"}, "modality CT"),
    ({"modality": "OT"}, "modality OT"),
    ({"body_part": "KNEE"}, "body part KNEE"),
])
def test_each_out_of_domain_header_fact_is_a_reason(change, word):
    d = assess_domain({**IN_DOMAIN, **change})
    assert not d.assessed and d.label("NORMAL") == NOT_ASSESSED
    assert len(d.reasons) == 1 and word in d.reasons[0]
    assert d.note is None


def test_in_domain_header_keeps_the_label_and_image_checks_do_not_abstain():
    d = assess_domain(IN_DOMAIN)
    assert d.assessed and d.reasons == () and d.label("PNEUMONIA") == "PNEUMONIA"
    tiny = assess_domain(IN_DOMAIN, {"rows": 40, "cols": 50, "aspect": 1.25, "mean": 0.48, "std": 0.22})
    assert tiny.assessed and any("only 50 x 40" in w for w in tiny.warnings)
    # the one-list form still carries everything, for older callers
    ct = {**IN_DOMAIN, "modality": "CT"}
    assert domain_warnings(ct) == list(assess_domain(ct).reasons)
    assert domain_warnings({"source": "png"}) == [NO_HEADER_NOTE]


def test_ct_small_is_not_assessed():
    xr, d = _check(get_testdata_file("CT_small.dcm"))
    assert not d.assessed and any("modality CT" in r for r in d.reasons)


def test_adult_cr_is_not_assessed():
    xr, d = _check(dicom_with(chest_dicom(age="064Y"), Modality="CR"))
    assert xr.header["modality"] == "CR"
    assert not d.assessed and d.reasons and all("age 64" in r for r in d.reasons)


def test_pediatric_pa_chest_dicom_is_assessed():
    xr, d = _check(chest_dicom())
    assert d.assessed and d.reasons == () and d.note is None
    label, _ = Classifier.default().predict(as_float(model_input(xr)))
    assert d.label(label) in ("NORMAL", "PNEUMONIA")


def test_png_is_assessed_with_one_neutral_note():
    xr, d = _check(chest_png())
    assert d.assessed and d.reasons == ()
    assert d.note == NO_HEADER_NOTE and "cannot be checked" in d.note
    assert d.messages().count(NO_HEADER_NOTE) == 1 and NO_HEADER_NOTE not in d.warnings


def test_report_of_a_not_assessed_film_has_no_label():
    import json

    xr = read_xray(dicom_with(chest_dicom(age="064Y"), Modality="CR"))
    clf = Classifier.default()
    grey = as_float(model_input(xr))
    d = check_film(xr, grey)
    _, p = clf.predict(grey)
    report = json.loads(review_report(clf, xr, p, method="none", params={}, reasons=d.reasons))
    assert report["score"]["label"] == NOT_ASSESSED and report["score"]["reasons"] == list(d.reasons)
    assert report["score"]["PNEUMONIA"] == pytest.approx(p, abs=1e-4)  # kept, for research
    ok = json.loads(review_report(clf, read_xray(chest_dicom()), p, method="none", params={}))
    assert ok["score"]["label"] in ("NORMAL", "PNEUMONIA") and "reasons" not in ok["score"]
