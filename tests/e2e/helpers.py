"""Small Playwright helpers for Streamlit widgets."""

from __future__ import annotations

import time


def wait_idle(page, timeout_ms: int = 30_000) -> None:  # noqa: ANN001
    """Wait until the app has finished its current script run (stale widgets are gone)."""
    page.wait_for_timeout(300)
    page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=timeout_ms)
    page.wait_for_timeout(200)


def select(page, label: str, option: str) -> None:  # noqa: ANN001
    """Pick ``option`` in the selectbox labelled ``label``."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.scroll_into_view_if_needed()
    opt = page.get_by_role("option", name=option, exact=True).first
    for _ in range(3):
        box.click()
        try:
            opt.wait_for(timeout=3000)
            break
        except PlaywrightTimeout:  # a click that first scrolls the sidebar can leave the list closed
            continue
    opt.click()
    wait_idle(page)


def fill_number(page, label: str, value: int | float) -> None:  # noqa: ANN001
    """Type ``value`` into the number input labelled ``label`` and commit it."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    wait_idle(page)


def plot_points(page, title: str) -> int:  # noqa: ANN001
    """Number of x values of the first trace of the plotly chart titled ``title`` (0 if absent)."""
    return page.evaluate(
        r"""(title) => {
            for (const g of document.querySelectorAll('.js-plotly-plot')) {
                const t = g.layout && g.layout.title && (g.layout.title.text || '').replace(/<\/?b>/g, '');
                if (t === title && g.data && g.data.length) return g.data[0].x.length;
            }
            return 0;
        }""", title)


def plot_has_marker(page, title: str) -> bool:  # noqa: ANN001
    """Whether the plotly chart titled ``title`` has a vertical marker (shape)."""
    return page.evaluate(
        r"""(title) => {
            for (const g of document.querySelectorAll('.js-plotly-plot')) {
                const t = g.layout && g.layout.title && (g.layout.title.text || '').replace(/<\/?b>/g, '');
                if (t === title) return !!(g.layout.shapes && g.layout.shapes.length);
            }
            return false;
        }""", title)


def plot_last_x(page, title: str) -> float | None:  # noqa: ANN001
    """The last x value of the first trace of the chart titled ``title`` (None if absent).

    A thinned curve keeps a bounded number of points, so its length stops growing while the run goes
    on; its last x (the newest iteration) still moves.
    """
    return page.evaluate(
        r"""(title) => {
            for (const g of document.querySelectorAll('.js-plotly-plot')) {
                const t = g.layout && g.layout.title && (g.layout.title.text || '').replace(/<\/?b>/g, '');
                if (t === title && g.data && g.data.length && g.data[0].x.length) {
                    const x = g.data[0].x; return Number(x[x.length - 1]);
                }
            }
            return null;
        }""", title)


def stop_run(page, timeout_s: float = 30.0) -> None:  # noqa: ANN001
    """Press the run's Stop button (in the page body: the app header has its own "Stop") until the run stops.

    The live fragment redraws the button twice a second, so a click can land on one that is being replaced;
    it is pressed again until the page no longer shows the run as running. Fails when the run never stops.
    """
    import re as _re

    stop = page.locator('[data-testid="stMain"]').get_by_role("button", name="Stop", exact=True)
    running = page.locator('[data-testid="stMain"]').get_by_text(_re.compile(r"\brunning · iteration \d+ ·"))
    deadline = time.time() + timeout_s
    clicks = 0
    while time.time() < deadline:
        if not stop.count() and not running.count():
            return
        try:
            stop.first.click(timeout=2000)
            clicks += 1
        except Exception:  # detached by a redraw: take the new one
            pass
        page.wait_for_timeout(1000)
    raise AssertionError(f"the run did not stop within {timeout_s:.0f} s of pressing Stop ({clicks} clicks)")
