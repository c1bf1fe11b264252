"""Colour ramps of :mod:`engine.core.colors` in the forms the page's figures take."""

from __future__ import annotations

import numpy as np


def plotly_colorscale(stops: np.ndarray) -> list[list]:
    """Colour stops as a plotly colorscale ``[[t, 'rgb(r,g,b)'], ...]``."""
    ts = np.linspace(0, 1, len(stops))
    return [[float(t), "rgb({},{},{})".format(*(int(round(255 * c)) for c in s))] for t, s in zip(ts, stops)]
