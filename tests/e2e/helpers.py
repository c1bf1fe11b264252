"""Small Playwright helpers for Streamlit widgets."""

from __future__ import annotations


def select(page, label: str, option: str) -> None:  # noqa: ANN001
    """Pick ``option`` in the selectbox labelled ``label``."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=label).first
    box.click()
    page.get_by_role("option", name=option, exact=True).first.click()


def fill_number(page, label: str, value: int | float) -> None:  # noqa: ANN001
    """Type ``value`` into the number input labelled ``label`` and commit it."""
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")


def plot_points(page, title: str) -> int:  # noqa: ANN001
    """Number of x values of the first trace of the plotly chart titled ``title`` (0 if absent)."""
    return page.evaluate(
        """(title) => {
            for (const g of document.querySelectorAll('.js-plotly-plot')) {
                const t = g.layout && g.layout.title && g.layout.title.text;
                if (t === title && g.data && g.data.length) return g.data[0].x.length;
            }
            return 0;
        }""", title)


def plot_has_marker(page, title: str) -> bool:  # noqa: ANN001
    """Whether the plotly chart titled ``title`` has a vertical marker (shape)."""
    return page.evaluate(
        """(title) => {
            for (const g of document.querySelectorAll('.js-plotly-plot')) {
                const t = g.layout && g.layout.title && g.layout.title.text;
                if (t === title) return !!(g.layout.shapes && g.layout.shapes.length);
            }
            return false;
        }""", title)
