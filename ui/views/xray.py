"""Pure builders for the X-ray review page: the zoomed view of a film and the saliency heat figure."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from engine.core.colors import ramp
from engine.xray.saliency import SaliencyMap
from ui.views.colors import plotly_colorscale

VIEW_SIDE = 900  # longest side of the image drawn on the page; zoom crops the full-size image first


def zoom_box(shape: tuple[int, int], zoom: float, cx: float = 0.5,
             cy: float = 0.5) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the region shown at ``zoom`` x, centred at (cx, cy) in [0, 1].

    The box keeps the image's aspect ratio and is shifted to stay inside the image.
    """
    rows, cols = int(shape[0]), int(shape[1])
    z = max(1.0, float(zoom))
    h, w = max(1, round(rows / z)), max(1, round(cols / z))
    top = int(np.clip(round(cy * rows - h / 2), 0, rows - h))
    left = int(np.clip(round(cx * cols - w / 2), 0, cols - w))
    return top, top + h, left, left + w


def fit(img: np.ndarray, side: int = VIEW_SIDE, *, nearest: bool = False) -> np.ndarray:
    """Resize a 2-D float image so its longest side is ``side`` (enlarging a zoomed crop as well)."""
    a = np.ascontiguousarray(img, dtype=np.float32)
    h, w = a.shape[:2]
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == (w, h):
        return a
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(a).resize(size, method), dtype=np.float32)


def heat_figure(smap: SaliencyMap, title: str, colormap: str, height: int = 330) -> go.Figure:
    """The map at its true resolution (each cell one block) with a colour bar of its value range."""
    stops = ramp(colormap, signed=smap.signed)
    fig = go.Figure(go.Heatmap(z=smap.map, zmin=smap.vmin, zmax=smap.vmax, colorscale=plotly_colorscale(stops),
                               colorbar=dict(title=dict(text="value"), thickness=12)))
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False, constrain="domain")
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=height,
                      margin=dict(l=5, r=5, t=35, b=5))
    return fig
