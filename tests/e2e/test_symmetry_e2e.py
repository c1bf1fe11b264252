"""In a real Chromium: the symmetry-breaking page shows the error table and redraws the failure mode."""

from __future__ import annotations

import re

import pytest

from tests.e2e.helpers import select

pytestmark = pytest.mark.e2e


def _copies_title(page) -> str:  # noqa: ANN001
    """The title of the 'mean of the k symmetric copies' panel, as drawn."""
    return page.evaluate(
        r"""() => {
            for (const g of document.querySelectorAll('.js-plotly-plot')) {
                for (const a of (g.layout && g.layout.annotations) || []) {
                    if ((a.text || '').startsWith('mean of the')) return a.text;
                }
            }
            return '';
        }""")


def test_table_and_failure_mode_redraw(page, app_url):
    page.goto(f"{app_url}/symmetry")
    page.get_by_text("Test error modulo the symmetries").first.wait_for(timeout=60_000)
    page.get_by_text("without restriction (error").first.wait_for(timeout=30_000)
    # the default setting (shift) has many copies: every valid shift of the object
    n = int(re.search(r"mean of the (\d+)", _copies_title(page)).group(1))
    assert n > 10, n
    page.get_by_text("Identical inputs, distant outputs").first.wait_for()
    select(page, "Symmetries in the data", "flip")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')].some(g => ((g.layout && g.layout.annotations)"
        " || []).some(a => (a.text || '').startsWith('mean of the 2 symmetric')))", timeout=30_000)
