"""The review contract: the score ignores the display; ages over 89 are shown as "90+"."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.xray import workflow as wf
from engine.xray.display import PRESETS, read_xray
from engine.xray.predict import Classifier


def _films() -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:160, :160]
    chest = (120 + 60 * np.cos(xx / 25.0) * np.sin(yy / 30.0) + rng.normal(0, 8, (160, 160))).clip(0, 255)
    buf = io.BytesIO()
    Image.fromarray(chest.astype(np.uint8)).save(buf, format="PNG")
    films = [("chest.png", buf.getvalue())]
    try:
        from pydicom.data import get_testdata_file

        for name in ("RG1_J2KI.dcm", "CT_small.dcm"):
            path = get_testdata_file(name, download=False)
            if path:
                with open(str(path), "rb") as f:
                    films.append((name, f.read()))
    except Exception:  # pydicom-data is a test extra; the PNG case always runs
        pass
    return films


@pytest.mark.parametrize("name,data", _films(), ids=lambda v: v if isinstance(v, str) else "")
def test_probability_identical_across_every_window_preset_and_invert(name, data):
    xray = read_xray(data, name)
    clf = Classifier.default()
    probs = set()
    views = set()
    for preset in PRESETS:
        for invert in (False, True):
            window = xray.window_for(preset)
            grey = wf.as_float(wf.model_input(xray, window=window, invert=invert, preset=preset))
            probs.add(float(clf.predict_proba(grey)[0]))
            views.add(xray.display_uint8(window, invert, preset).tobytes())
    assert len(probs) == 1, probs
    assert len(views) > 1  # the view itself does change


def test_age_over_89_is_reported_as_90_plus_not_exactly():
    from engine.xray.domain import domain_warnings

    text = " ".join(domain_warnings({"patient_age_years": 94.0, "source": "dicom"}))
    assert "90+" in text and "94" not in text
    assert "age 64 years" in " ".join(domain_warnings({"patient_age_years": 64.0, "source": "dicom"}))
