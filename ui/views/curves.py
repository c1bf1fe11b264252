"""Plotly figures for live curves. Histories are thinned so a long run stays cheap to draw."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

MAX_POINTS = 800
_LAYOUT = dict(margin=dict(l=10, r=10, t=30, b=10), height=260, template="plotly_dark",
               legend=dict(orientation="h", y=1.12, x=0), hovermode="x unified")


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


def curve_figure(rows: Sequence[dict], keys: Sequence[str], title: str, log_y: bool = False,
                 marker: int | None = None, marker_label: str = "t*",
                 labels: dict[str, str] | None = None) -> go.Figure:
    """Line plot of ``keys`` over iterations, with an optional vertical marker."""
    rows = thin(rows)
    fig = go.Figure()
    for k in keys:
        x, y = series(rows, k)
        if x:
            fig.add_trace(go.Scattergl(x=x, y=y, mode="lines", name=(labels or {}).get(k, k)))
    if marker is not None and marker > 0:
        fig.add_vline(x=marker, line_dash="dash", line_color="#f0b429",
                      annotation_text=f"{marker_label} = {marker}", annotation_position="top left")
    fig.update_layout(title=dict(text=title, font=dict(size=14)), **_LAYOUT)
    fig.update_xaxes(title_text="iteration")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def compare_figure(runs: dict[str, Sequence[dict]], key: str, title: str, log_y: bool = False) -> go.Figure:
    """One curve per run for the same metric."""
    fig = go.Figure()
    for name, rows in runs.items():
        x, y = series(thin(rows), key)
        if x:
            fig.add_trace(go.Scattergl(x=x, y=y, mode="lines", name=name))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), **_LAYOUT)
    fig.update_xaxes(title_text="iteration")
    if log_y:
        fig.update_yaxes(type="log")
    return fig
