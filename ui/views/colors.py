"""Colour ramps of :mod:`engine.core.colors` in the forms the page's figures take."""

from __future__ import annotations

import numpy as np


def plotly_colorscale(stops: np.ndarray) -> list[list]:
    """Colour stops as a plotly colorscale ``[[t, 'rgb(r,g,b)'], ...]``."""
    ts = np.linspace(0, 1, len(stops))
    return [[float(t), "rgb({},{},{})".format(*(int(round(255 * c)) for c in s))] for t, s in zip(ts, stops)]


#: the phase hue wheel of :func:`engine.core.colors.complex_to_rgb` at every 60 degrees, from -pi (red)
#: through 0 (cyan) back to +pi (red); full-saturation HSV is linear in RGB between these stops, so
#: plotly's interpolation reproduces the wheel exactly.
PHASE_STOPS = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0],
                        [1.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
#: phase ticks in radians and their labels
PHASE_TICKVALS = [-np.pi, -np.pi / 2, 0.0, np.pi / 2, np.pi]
PHASE_TICKTEXT = ["−π", "−π/2", "0", "π/2", "π"]


def phase_colorscale() -> list[list]:
    """The cyclic phase colour scale for ``zmin=-pi, zmax=pi`` (red at ±pi, cyan at 0)."""
    return plotly_colorscale(PHASE_STOPS)


def phase_color(angle: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] of phase ``angle`` (radians) on the same wheel, shape ``angle.shape + (3,)``."""
    t = (np.mod(np.asarray(angle, np.float64) + np.pi, 2 * np.pi)) / (2 * np.pi) * 6
    k = np.minimum(np.floor(t).astype(int), 5)
    f = (t - k)[..., None]
    return (1 - f) * PHASE_STOPS[k] + f * PHASE_STOPS[k + 1]
