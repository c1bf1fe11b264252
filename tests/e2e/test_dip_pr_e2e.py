"""In a real Chromium: the DIP prior on the Beamline CDI page draws its loss curve live, is stopped, and
shows the object it kept."""

from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import fill_number, wait_idle
from tests.e2e.helpers import plot_last_x as _plot_last_x
from tests.e2e.helpers import select as _select
from tests.e2e.helpers import stop_run as _stop

pytestmark = pytest.mark.e2e

LOSS_TITLE = "DIP loss (measured pixels)"


def test_dip_prior_loss_grows_live_and_the_result_is_shown(page, app_url):
    page.goto(f"{app_url}/phase-retrieval")
    page.get_by_text("Beamline CDI: Fourier phase retrieval").wait_for()
    _select(page, "Detector size", "64")
    page.get_by_text("Shape (64, 64)").wait_for()
    page.locator('[data-testid="stSidebar"]').get_by_text("DIP prior (network, ES-WMV)", exact=True).click()
    wait_idle(page)
    page.get_by_label("Iterations (budget)", exact=True).wait_for()
    # a budget far beyond what the test waits for: it is stopped once the growth has been seen
    fill_number(page, "Iterations (budget)", 20000)
    # no stop detected while the test watches (a fast machine): the test stops the run itself
    page.locator('[data-testid="stSidebar"]').get_by_text("Advanced", exact=True).last.click()
    fill_number(page, "ES-WMV patience", 5000)
    page.get_by_role("button", name="Run", exact=True).click()

    seen: list[float] = []
    finished = False
    deadline = time.time() + 60  # the first step waits for torch to load in the job thread
    while time.time() < deadline and len(seen) < 4:
        n = _plot_last_x(page, LOSS_TITLE)  # the newest iteration drawn
        if n is not None and (not seen or n != seen[-1]):
            seen.append(n)
        if page.get_by_text("Result", exact=True).count():
            finished = True  # ES-WMV fired already (a fast machine)
            break
        page.wait_for_timeout(150)
    assert len(seen) >= 3 and seen == sorted(seen), f"the DIP loss curve did not grow live: {seen}"
    assert page.get_by_text("Current object, iteration").count() >= 1

    if not finished:
        _stop(page)
    page.get_by_text("Result", exact=True).wait_for(timeout=30_000)
    page.get_by_text("Amplitude (DIP prior, ").first.wait_for()
    page.get_by_text("Similarity to the truth").wait_for()
    for label in ("NPZ", "CXI", "PNG"):
        page.get_by_role("button", name=label, exact=True).wait_for()
    if not finished:
        page.get_by_text("The run was stopped by hand at iteration").first.wait_for()
