"""In a real Chromium: upload a DICOM on the X-ray review page, see the prediction, switch the overlay."""

from __future__ import annotations

import time

import pytest

from tests.ui.test_xray_page import chest_dicom

pytestmark = pytest.mark.e2e

MAIN_IMAGES = '[data-testid="stMain"] [data-testid="stImage"] img'


def _srcs(page) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all(MAIN_IMAGES, "els => els.map(e => e.getAttribute('src'))")


def _wait_for(page, cond, timeout: float = 30.0) -> None:  # noqa: ANN001
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        page.wait_for_timeout(150)
    raise AssertionError("condition not met in time")


def test_upload_dicom_predict_and_toggle_overlay(page, app_url, tmp_path):
    path = tmp_path / "chest.dcm"
    path.write_bytes(chest_dicom())
    page.goto(f"{app_url}/xray")
    page.get_by_text("Drop one or more chest X-rays").wait_for()
    page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(path))
    page.get_by_text("Calibrated P(pneumonia)").wait_for(timeout=60_000)
    assert page.get_by_text("PNEUMONIA", exact=True).count() + page.get_by_text("NORMAL", exact=True).count()
    _wait_for(page, lambda: len(_srcs(page)) == 1)
    blended = _srcs(page)

    page.locator('[data-testid="stSidebar"]').get_by_text("Side by side").click()
    _wait_for(page, lambda: len(_srcs(page)) == 2)
    side = _srcs(page)
    assert blended[0] not in side  # the film is drawn without the blended map, and the map beside it

    page.locator('[data-testid="stSidebar"]').get_by_text("Show saliency overlay").click()
    _wait_for(page, lambda: len(_srcs(page)) == 1)
    assert _srcs(page)[0] != blended[0]
