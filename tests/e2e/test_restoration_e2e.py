"""In a real Chromium: run a short restoration, see the live curves grow and the ES marker appear."""

from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import fill_number, plot_has_marker, plot_points, select

pytestmark = pytest.mark.e2e


def test_restoration_live_curve_and_stop_marker(page, app_url):
    page.goto(app_url)
    page.get_by_text("Restoration with the Deep Image Prior").wait_for()
    select(page, "Size", "128")
    select(page, "Preset", "fast-preview")
    page.get_by_text("Advanced").click()
    fill_number(page, "Iteration budget", 400)
    fill_number(page, "Window W", 10)
    fill_number(page, "Patience P", 40)
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Run").click()

    seen: list[int] = []
    deadline = time.time() + 240
    while time.time() < deadline:
        n = plot_points(page, "Loss")
        if n and (not seen or n != seen[-1]):
            seen.append(n)
        if page.get_by_text("Output at t*").count():
            break
        page.wait_for_timeout(150)
    assert len(seen) >= 3 and seen == sorted(seen), f"the loss curve did not grow live: {seen}"
    page.get_by_text("Output at t*").wait_for(timeout=60_000)
    assert plot_has_marker(page, "ES variance"), "no t* marker on the ES variance curve"
    page.get_by_text("Metrics CSV").wait_for(timeout=30_000)  # the downloads are offered
