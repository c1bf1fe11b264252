"""Live curves (ui/views/curves.py): thinning and log axes whose ticks read as powers of ten."""

from __future__ import annotations

import numpy as np
import pytest

from ui.views import curves as cv


def _rows(n: int = 500) -> list[dict]:
    return [{"iteration": i, "loss": 0.5 / (1 + i), "psnr": 20 + i / n, "es_variance": 1e-5 * (1 + 8 * i / n)}
            for i in range(n)]


def test_power_text():
    assert cv.power_text(1000.0) == "10³"
    assert cv.power_text(1e-3) == "10⁻³"
    assert cv.power_text(1.0) == "10⁰"
    assert cv.power_text(200.0) == "2×10²"
    assert cv.power_text(5e-4) == "5×10⁻⁴"


def test_log_ticks_over_many_decades_are_decades_only():
    vals, text = cv.log_ticks(1e-3, 0.5)
    assert text == ["10⁻³", "10⁻²", "10⁻¹"] and vals == pytest.approx([1e-3, 1e-2, 1e-1])


def test_curve_figure_log_y_has_readable_ticks():
    fig = cv.curve_figure(_rows(), ["loss"], "Loss", log_y=True)
    ax = fig.layout.yaxis
    assert ax.type == "log" and ax.tickmode == "array" and ax.exponentformat == "power"
    # the loss spans 1e-3 .. 0.5: decades only, no "5, 2" labels in between
    assert list(ax.ticktext) == ["10⁻³", "10⁻²", "10⁻¹"]
    assert all(t.startswith("10") for t in ax.ticktext)
    assert np.allclose(ax.tickvals, [1e-3, 1e-2, 1e-1])


def test_curve_figure_over_one_decade_gets_2_and_5():
    fig = cv.curve_figure(_rows(), ["es_variance"], "ES variance", log_y=True, marker=40)
    assert fig.layout.yaxis.type == "log"
    # 1e-5 .. 9e-5: under two decades, so the 2 and 5 multiples are labelled too
    assert list(fig.layout.yaxis.ticktext) == ["10⁻⁵", "2×10⁻⁵", "5×10⁻⁵"]
    assert fig.layout.shapes and fig.layout.shapes[0].x0 == 40  # the t* marker stays


def test_linear_curves_are_left_alone_and_empty_log_axes_still_read_as_powers():
    lin = cv.curve_figure(_rows(), ["psnr"], "PSNR")
    assert lin.layout.yaxis.type is None and lin.layout.yaxis.ticktext is None
    empty = cv.curve_figure([], ["loss"], "Loss", log_y=True)
    assert empty.layout.yaxis.type == "log" and empty.layout.yaxis.dtick == 1
    assert empty.layout.yaxis.exponentformat == "power"


def test_compare_figure_log_y():
    runs = {"a": _rows(100), "b": [{"iteration": i, "loss": 3.0 / (1 + i)} for i in range(100)]}
    fig = cv.compare_figure(runs, "loss", "loss", log_y=True)
    assert len(fig.data) == 2 and fig.layout.yaxis.type == "log"
    assert list(fig.layout.yaxis.ticktext) == ["10⁻²", "10⁻¹", "10⁰"]


def test_thin_keeps_the_last_row():
    rows = _rows(3000)
    out = cv.thin(rows, 100)
    assert len(out) <= 100 and out[-1] is rows[-1] and out[0] is rows[0]
