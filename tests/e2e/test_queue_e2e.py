"""In a real Chromium: a run submitted while another one runs shows its place in the queue, what it waits
for, no empty curves and Run off; Cancel takes it out of the queue."""

from __future__ import annotations

import re

import pytest

from tests.e2e.helpers import fill_number, select
from tests.e2e.helpers import stop_run as _stop

pytestmark = pytest.mark.e2e


def _sidebar_run(page):  # noqa: ANN001, ANN202
    return page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Run", exact=True)


def _stop_until_ended(page) -> None:  # noqa: ANN001
    """Press Stop until the run says it was stopped (a click can land on a button the fragment is redrawing)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ended = page.get_by_text("stopped by the user").first
    for _ in range(10):
        _stop(page)
        try:
            ended.wait_for(timeout=3000)
            return
        except PlaywrightTimeout:
            continue
    ended.wait_for(timeout=10_000)


def _start_long_restoration(page, app_url: str) -> None:  # noqa: ANN001
    """A 64 px restoration without early stopping and a 20,000-iteration budget, seen running."""
    page.goto(app_url)
    page.get_by_text("Restoration with the Deep Image Prior").wait_for()
    select(page, "Size", "64")
    select(page, "Preset", "fast-preview")
    page.get_by_text("Advanced").click()
    select(page, "Early stopping", "none")
    fill_number(page, "Iteration budget", 20000)
    page.wait_for_timeout(500)
    _sidebar_run(page).click()
    page.wait_for_url(re.compile(r"[?&]run="), timeout=30_000)
    page.get_by_text("running", exact=True).first.wait_for(timeout=60_000)


def test_second_run_shows_its_place_in_the_queue(page, app_url):
    # the first tab: a restoration at 64 px without early stopping, long enough to be stopped by hand
    _start_long_restoration(page, app_url)
    try:
        first = re.search(r"[?&]run=([^&]+)", page.url).group(1)
        assert _sidebar_run(page).is_disabled()  # no second run from the same page

        # the second tab: an MRI run, queued behind the first on the same worker
        second = page.context.new_page()
        try:
            second.goto(f"{app_url}/mri")
            second.get_by_text("Mask (white = measured)").first.wait_for(timeout=60_000)
            select(second, "Size", "32")
            second.wait_for_timeout(500)
            _sidebar_run(second).click()
            note = second.get_by_text(re.compile(r"queued · 1st in line on \S+: waiting for"))
            note.wait_for(timeout=30_000)
            link = second.get_by_role("link", name=first)
            assert link.count() == 1 and link.first.get_attribute("href").endswith(f"restoration?run={first}")
            assert "restore, running, iteration" in note.first.inner_text()
            assert second.locator(".js-plotly-plot").count() == 0  # no empty curves while it waits
            assert _sidebar_run(second).is_disabled()

            second.locator('[data-testid="stMain"]').get_by_role("button", name="Cancel", exact=True).click()
            second.get_by_text("cancelled: taken out of the queue before it started").wait_for(timeout=30_000)
            second.wait_for_function(  # Run is back
                """() => [...document.querySelectorAll('[data-testid="stSidebar"] button')]
                         .some(b => b.innerText.trim().endsWith('Run') && !b.disabled)""", timeout=30_000)
        finally:
            second.close()
    finally:
        page.bring_to_front()  # a background tab's timers are throttled
        _stop_until_ended(page)


def test_a_light_job_finishes_while_a_heavy_one_runs(page, app_url):
    # a long restoration in the first tab (the heavy lane) ...
    _start_long_restoration(page, app_url)
    try:
        # ... and a generalized-PR reconstruction (a light job) in the second: it runs and ends meanwhile
        second = page.context.new_page()
        try:
            second.goto(f"{app_url}/generalized-pr")
            second.get_by_text("Pick a signal, a measurement model").first.wait_for(timeout=60_000)
            second.locator('[data-testid="stMain"]').get_by_role("button", name="Run", exact=True).first.click()
            second.get_by_text("done", exact=True).first.wait_for(timeout=90_000)
            assert second.get_by_text(re.compile(r"queued · \d")).count() == 0
        finally:
            second.close()
        page.bring_to_front()
        page.get_by_text("running", exact=True).first.wait_for(timeout=10_000)  # the heavy run goes on
    finally:
        page.bring_to_front()
        _stop_until_ended(page)
