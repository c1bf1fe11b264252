"""In a real Chromium: the MRI page draws the DIP loss live and ends with the three reconstructions."""

from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import fill_number
from tests.e2e.helpers import plot_points as _plot_points
from tests.e2e.helpers import stop_run as _stop

pytestmark = pytest.mark.e2e

LOSS_TITLE = "DIP data loss"


def test_mri_loss_curve_grows_live_and_reconstructions_are_shown(page, app_url):
    page.goto(f"{app_url}/mri")
    page.get_by_text("Mask (white = measured)").first.wait_for(timeout=60_000)
    page.get_by_text("k-space, log(1 + |y|)").first.wait_for()
    # a long budget, stopped once the curve has been seen to grow
    fill_number(page, "DIP budget (0 = default)", 5000)
    page.wait_for_timeout(500)
    page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Run").click()

    counts: list[int] = []
    deadline = time.time() + 120
    while time.time() < deadline and len(counts) < 4:
        n = _plot_points(page, LOSS_TITLE)
        if n and (not counts or n != counts[-1]):
            counts.append(n)
        if page.get_by_text("Reconstructions", exact=True).count():
            break  # finished already (a very fast machine)
        page.wait_for_timeout(150)
    assert len(counts) >= 3 and counts == sorted(counts), f"the loss curve did not grow live: {counts}"

    _stop(page)
    page.get_by_text("Reconstructions", exact=True).wait_for(timeout=120_000)
    for caption in ("Zero-filled", "TV"):
        page.get_by_text(caption).first.wait_for()
