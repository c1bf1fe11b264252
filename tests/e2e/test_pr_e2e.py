"""In a real Chromium: the phase-retrieval pages draw their curves and images live.

Each run is long enough to outlast several fragment refreshes on any machine, and is stopped once
the growth has been seen, so the tests take about the same time on a slow or a fast CPU.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.helpers import fill_number
from tests.e2e.helpers import plot_last_x as _plot_last_x
from tests.e2e.helpers import plot_points as _plot_points
from tests.e2e.helpers import select as _select
from tests.e2e.helpers import stop_run as _stop

pytestmark = pytest.mark.e2e

LLK_TITLE = "Log-likelihood per pixel"
SWEEP_TITLE = "Success rate (error < 1e-05)"


def _open(page, app_url: str, path: str) -> None:  # noqa: ANN001
    """Open ``path`` directly, as a shared link would (no "Page not found" dialog may appear)."""
    page.goto(f"{app_url}/{path}")
    page.get_by_role("link", name="Beamline CDI").wait_for()
    assert page.get_by_text("Page not found").count() == 0


def _set_recipe(page, recipe: str, caption: str) -> None:  # noqa: ANN001
    """Type a custom recipe and wait for the parsed summary (typing again if the rerun lost it)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    chain = page.get_by_label("Operator chain", exact=True)
    for attempt in range(3):
        chain.fill(recipe)
        chain.press("Enter")
        try:
            page.get_by_text(caption).wait_for(timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def _preview_src(page) -> str | None:  # noqa: ANN001
    img = page.locator('[data-testid="stImage"]').filter(has_text="Best start").locator("img")
    return img.first.get_attribute("src") if img.count() else None


def test_cdi_likelihood_and_iterate_update_live(page, app_url):
    _open(page, app_url, "phase-retrieval")
    page.get_by_text("Beamline CDI: Fourier phase retrieval").wait_for()
    _select(page, "Detector size", "128")
    page.get_by_text("Shape (128, 128)").wait_for()
    # before the run: the unmeasured pixels found and the initial support over the autocorrelation
    page.get_by_text("Pattern, log scale (blue: unmeasured pixels").first.wait_for()
    page.get_by_text("Autocorrelation threshold (yellow) over the autocorrelation").first.wait_for()
    _select(page, "Recipe", "Custom")
    # 5100 cycles: stopped long before the end
    _set_recipe(page, "ER**100*(Sup*ER**5*HIO**95)**50", "5100 cycles, 50 support updates")
    fill_number(page, "Random starts (one batch)", 2)
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Run", exact=True).click()

    counts: list[float] = []
    srcs: list[str] = []
    deadline = time.time() + 90
    while time.time() < deadline and (len(counts) < 4 or len(srcs) < 3):
        n = _plot_last_x(page, LLK_TITLE)  # the newest iteration drawn (the curve itself is thinned)
        if n is not None and (not counts or n != counts[-1]):
            counts.append(n)
        src = _preview_src(page)
        if src and (not srcs or src != srcs[-1]):
            srcs.append(src)
        if page.get_by_text("Result", exact=True).count():
            break  # finished already (a very fast machine)
        page.wait_for_timeout(150)
    assert len(counts) >= 3 and counts == sorted(counts), f"the LLK curve did not grow live: {counts}"
    assert len(srcs) >= 2, f"the iterate image did not update: {len(srcs)} distinct image(s)"

    _stop(page)
    # a stopped run is still ranked, averaged and exported
    page.get_by_text("Result", exact=True).wait_for(timeout=60_000)
    page.get_by_text("Ranked starts").wait_for()
    for label in ("NPZ", "CXI", "PNG"):  # the downloads come last: wait for each
        page.get_by_role("button", name=label, exact=True).wait_for()
    assert _plot_points(page, "PRTF of the best starts (registered)") > 0


def test_sweep_success_curve_fills_in_live(page, app_url):
    _open(page, app_url, "generalized-pr")
    page.get_by_text("Generalized phase retrieval", exact=True).wait_for()
    page.get_by_role("tab", name="Phase transition").click()
    # one algorithm, so that every cell adds a point to the (first) curve
    for name in ("Wirtinger flow", "Truncated amplitude flow"):
        page.get_by_role("button", name=f"Remove {name}", exact=True).click()
        page.get_by_role("button", name=f"Remove {name}", exact=True).wait_for(state="detached")
    fill_number(page, "n", 32)
    fill_number(page, "Trials per m/n", 4)
    # failing cells use the whole budget (seconds each, even on a fast CPU); stopped after a few
    fill_number(page, "Iterations (0 = each algorithm's)", 2000)
    ratios = page.get_by_label("m/n values", exact=True)
    ratios.fill("1,1.25,1.5,1.75,2,2.25,2.5,2.75,3,4,6")
    ratios.press("Enter")
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Run sweep", exact=True).click()

    counts: list[int] = []
    deadline = time.time() + 90
    while time.time() < deadline and len(counts) < 3:
        n = _plot_points(page, SWEEP_TITLE)
        if n and (not counts or n != counts[-1]):
            counts.append(n)
        if page.get_by_role("button", name="Sweep JSON").count():
            counts.append(_plot_points(page, SWEEP_TITLE))
            break  # finished (on a fast CPU the whole sweep can end between two redraws)
        page.wait_for_timeout(200)
    assert counts and counts[0] >= 1, "the success-rate curve never appeared"
    assert counts == sorted(counts), f"the curve lost points: {counts}"
    assert counts[-1] >= 3, f"the curve has too few points: {counts}"

    _stop(page)
    page.get_by_role("button", name="Sweep JSON").wait_for(timeout=60_000)
    assert _plot_points(page, SWEEP_TITLE) >= counts[-1]
