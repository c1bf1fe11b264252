"""Plotly figures for live curves. Histories are thinned so a long run stays cheap to draw.

Log axes get explicit ticks read as powers of ten (``10⁻³``, ``10⁻²``, ... and, over less than two
decades, ``2×10²``, ``5×10²``), never plotly's bare minor labels ("1000, 5, 2, 100").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

MAX_POINTS = 800
_LAYOUT = dict(margin=dict(l=10, r=10, t=30, b=10), height=260, template="plotly_dark",
               legend=dict(orientation="h", y=1.12, x=0), hovermode="x unified")
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def thin(rows: Sequence[dict], max_points: int = MAX_POINTS) -> list[dict]:
    """Keep at most ``max_points`` rows, evenly spaced, always keeping the last one."""
    n = len(rows)
    if n <= max_points:
        return list(rows)
    idx = np.unique(np.linspace(0, n - 1, max_points).astype(int))
    return [rows[i] for i in idx]


def series(rows: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    """(iterations, values) of the rows that have a finite ``key``."""
    xs, ys = [], []
    for r in rows:
        v = r.get(key)
        if isinstance(v, (int, float)) and np.isfinite(v):
            xs.append(r["iteration"])
            ys.append(float(v))
    return xs, ys


# --------------------------------------------------------------------------------------------
# log axes


def power_text(v: float) -> str:
    """A positive tick value as a power of ten: ``10³``, ``10⁻²``, ``2×10²``."""
    e = int(np.floor(np.log10(v) + 1e-9))
    m = int(round(v / 10.0 ** e))
    p = "10" + str(e).translate(_SUPERSCRIPT)
    return p if m == 1 else f"{m}×{p}"


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Tick values and labels for a log axis spanning [lo, hi].

    Decades (``10²``, ``10³``) and, when the range holds fewer than two decades, also the 2 and 5
    multiples (``2×10²``, ``5×10²``); a range narrower than two ticks gets the ticks around it.
    """
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= 0:
        return [], []
    lo = max(lo, hi * 1e-12) if lo <= 0 else lo
    lo, hi = min(lo, hi), max(lo, hi)
    e0, e1 = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))
    mults = (1,) if np.log10(hi / lo) >= 2 else (1, 2, 5)
    vals = [m * 10.0 ** e for e in range(e0 - 1, e1 + 1) for m in mults]
    inside = [v for v in vals if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]
    if len(inside) < 2:  # a very narrow range: keep the nearest ticks around it
        below = [v for v in vals if v < lo and v not in inside][-1:]
        above = [v for v in vals if v > hi and v not in inside][:1]
        inside = below + inside + above
    return inside, [power_text(v) for v in inside]


def apply_log_axis(fig: go.Figure, values: Sequence[float], *, axis: str = "y") -> None:
    """Make ``axis`` of ``fig`` logarithmic with :func:`log_ticks` over the positive ``values``.

    Without a positive value the axis is still log, with plotly's own ticks written as powers.
    """
    update = fig.update_yaxes if axis == "y" else fig.update_xaxes
    update(type="log", exponentformat="power")
    pos = [float(v) for v in values if v is not None and np.isfinite(v) and v > 0]
    if not pos:
        update(dtick=1)  # one tick per decade: no "5, 2" labels between them
        return
    lo, hi = min(pos), max(pos)
    vals, text = log_ticks(lo, hi)
    update(tickmode="array", tickvals=vals, ticktext=text)
    if vals[0] < lo or vals[-1] > hi:  # a narrow range: widen it so the outer ticks show
        lo, hi = min(lo, vals[0]), max(hi, vals[-1])
        pad = 0.02 * max(np.log10(hi / lo), 1e-3)
        update(range=[np.log10(lo) - pad, np.log10(hi) + pad])


# --------------------------------------------------------------------------------------------
# figures


def curve_figure(rows: Sequence[dict], keys: Sequence[str], title: str, log_y: bool = False,
                 marker: int | None = None, marker_label: str = "t*",
                 labels: dict[str, str] | None = None) -> go.Figure:
    """Line plot of ``keys`` over iterations, with an optional vertical marker.

    ``log_y``: a log y axis with ticks read as powers of ten (see :func:`apply_log_axis`).
    """
    rows = thin(rows)
    fig = go.Figure()
    ys: list[float] = []
    for k in keys:
        x, y = series(rows, k)
        if x:
            ys += y
            fig.add_trace(go.Scattergl(x=x, y=y, mode="lines", name=(labels or {}).get(k, k)))
    if marker is not None and marker > 0:
        fig.add_vline(x=marker, line_dash="dash", line_color="#f0b429",
                      annotation_text=f"{marker_label} = {marker}", annotation_position="top left")
    fig.update_layout(title=dict(text=title, font=dict(size=14)), **_LAYOUT)
    fig.update_xaxes(title_text="iteration")
    if log_y:
        apply_log_axis(fig, ys)
    return fig


def compare_figure(runs: dict[str, Sequence[dict]], key: str, title: str, log_y: bool = False) -> go.Figure:
    """One curve per run for the same metric (``log_y`` as in :func:`curve_figure`)."""
    fig = go.Figure()
    ys: list[float] = []
    for name, rows in runs.items():
        x, y = series(thin(rows), key)
        if x:
            ys += y
            fig.add_trace(go.Scattergl(x=x, y=y, mode="lines", name=name))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), **_LAYOUT)
    fig.update_xaxes(title_text="iteration")
    if log_y:
        apply_log_axis(fig, ys)
    return fig
