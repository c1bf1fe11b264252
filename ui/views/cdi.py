"""Pure builders for the Beamline CDI page: pattern and support overlays, colour legends, log-axis
curves and the measured-versus-model comparison. No streamlit calls; images come out as small uint8.

Arrays are centred (zero frequency / object centre in the middle); 3D arrays are shown by their
middle slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from engine.core.colors import COLORMAPS, colorize
from engine.core.errors import InputError
from ui.views.colors import PHASE_TICKTEXT, PHASE_TICKVALS, phase_color, phase_colorscale, plotly_colorscale
from ui.views.curves import apply_log_axis, series, thin
from ui.views.curves import log_ticks as log_ticks  # still importable from here

#: longest side of the pattern / support images sent to the browser
VIEW_SIDE = 512
#: not-measured pixels found on the page (zero groups, NaN, hot...) and those the user gave
FOUND_COLOR = (0.15, 0.55, 1.0)
USER_COLOR = (1.0, 0.55, 0.1)
SUPPORT_COLOR = (1.0, 0.8, 0.1)
_LAYOUT = dict(margin=dict(l=10, r=10, t=30, b=10), height=260, template="plotly_dark",
               legend=dict(orientation="h", y=1.12, x=0), hovermode="x unified")


# --------------------------------------------------------------------------------------------
# small array helpers


def middle_slice(a: np.ndarray) -> np.ndarray:
    """The middle slice of a 3D array (2D arrays unchanged)."""
    a = np.asarray(a)
    while a.ndim > 2:
        a = a[a.shape[0] // 2]
    return a


def _step(shape: tuple[int, ...], max_side: int) -> int:
    return max(1, int(np.ceil(max(shape) / max(1, max_side))))


def block_any(mask: np.ndarray, step: int) -> np.ndarray:
    """Downsample a 2D bool mask by ``step``: a block is True when any of its pixels is, so a thin
    gap or a single hot pixel stays visible on a reduced view."""
    m = np.asarray(mask, bool)
    if step <= 1:
        return m
    h, w = -(-m.shape[0] // step) * step, -(-m.shape[1] // step) * step
    pad = np.zeros((h, w), bool)
    pad[:m.shape[0], :m.shape[1]] = m
    return pad.reshape(h // step, step, w // step, step).any(axis=(1, 3))


def log_scaled(intensity: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """log10(1 + I) scaled to [0, 1] over the measured pixels (float32, same shape)."""
    a = np.nan_to_num(np.asarray(intensity, np.float64), nan=0.0)
    v = np.log10(1 + np.maximum(a, 0))
    ref = v if mask is None else v[~np.asarray(mask, bool)]
    top = float(ref.max()) if ref.size else 0.0
    return (v / max(top, 1e-12)).clip(0, 1).astype(np.float32)


def _tint(rgb: np.ndarray, where: np.ndarray, color: Sequence[float], alpha: float = 1.0) -> None:
    rgb[where] = (1 - alpha) * rgb[where] + alpha * np.asarray(color, np.float32)


def to_rgb8(rgb: np.ndarray) -> np.ndarray:
    return (np.clip(np.nan_to_num(rgb), 0, 1) * 255 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# the pattern and its unmeasured pixels


def mask_overlay(intensity: np.ndarray, mask: np.ndarray, *, user: np.ndarray | None = None,
                 max_side: int = VIEW_SIDE) -> np.ndarray:
    """The log-scaled pattern (grey) with not-measured pixels drawn over it, as uint8 RGB.

    Pixels of ``user`` (the mask given with the data) are orange; the other pixels of ``mask`` (found
    on the page: zero groups, NaN/negative, hot) are blue. Downsampled to ``max_side`` with any-pooling
    of the masks.
    """
    a, m = middle_slice(intensity), middle_slice(mask).astype(bool)
    u = np.zeros_like(m) if user is None else middle_slice(user).astype(bool)
    if u.shape != m.shape:
        raise ValueError(f"user mask shape {u.shape} does not match {m.shape}")
    s = _step(a.shape, max_side)
    v = log_scaled(a, m)[::s, ::s]
    found, given = block_any(m & ~u, s)[:v.shape[0], :v.shape[1]], block_any(u, s)[:v.shape[0], :v.shape[1]]
    rgb = np.repeat(v[..., None], 3, axis=-1)
    _tint(rgb, found, FOUND_COLOR)
    _tint(rgb, given, USER_COLOR)
    return to_rgb8(rgb)


MASK_LABELS = {
    "auto_masked": "zero groups (beamstop, gaps, dead border)",
    "zeros_total": "zero pixels in all",
    "nan": "NaN",
    "negative": "negative",
    "hot": "hot pixels",
    "saturated": "saturated",
    "user": "from the given mask",
    "masked_total": "not measured in all",
}


def mask_rows(info: dict, size: int) -> list[dict]:
    """Rows (what, pixels, % of the pattern) of an ``unmeasured_mask`` report, for a small table."""
    rows = []
    for key, label in MASK_LABELS.items():
        n = info.get(key)
        if n is None:
            continue
        n = int(n)
        if key == "auto_masked" and info.get("zero_groups") is not None:
            label = f"{label}: {int(info['zero_groups'])} group(s)"
        rows.append({"what": label, "pixels": n, "%": round(100 * n / max(size, 1), 2)})
    return rows


# --------------------------------------------------------------------------------------------
# supports drawn before the run


def autocorrelation(intensity: np.ndarray, mask: np.ndarray | None = None, *, sigma: float = 1.0) -> np.ndarray:
    """Real part of the smoothed autocorrelation ``F^-1[I]`` (unmeasured pixels as 0), centred and
    scaled so its maximum is 1: the map the solver thresholds for its initial support."""
    import torch

    from engine.cdi import fourier as F

    i = np.where(np.asarray(mask, bool), 0, intensity) if mask is not None else np.asarray(intensity)
    t = torch.from_numpy(F.to_fft_layout(np.asarray(i, np.float32)).copy())
    ac = torch.fft.ifftn(t.to(torch.complex64), dim=F.dims(t.ndim))
    ac = F.smooth(ac.real, sigma, t.ndim).numpy()
    ac = F.from_fft_layout(ac)
    return (ac / max(float(ac.max()), 1e-30)).astype(np.float32)


def autocorrelation_support(intensity: np.ndarray, mask: np.ndarray | None = None, *,
                            threshold: float = 0.1) -> np.ndarray:
    """The solver's initial support for ``autocorr_threshold=threshold`` (bool, centred)."""
    import torch

    from engine.cdi import fourier as F

    m = np.zeros(np.shape(intensity), bool) if mask is None else np.asarray(mask, bool)
    iobs = torch.from_numpy(F.to_fft_layout(np.where(m, 0, intensity).astype(np.float32)).copy())
    observed = torch.from_numpy(F.to_fft_layout(~m).copy())
    sup = F.autocorrelation_support(iobs, observed, threshold=float(threshold)).numpy()
    return F.from_fft_layout(sup).astype(bool)


def disc_support(shape: tuple[int, ...], radius: float) -> np.ndarray:
    """A centred disc (a ball in 3D) of ``radius`` pixels."""
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    r2 = sum((g - s // 2) ** 2 for g, s in zip(grids, shape))
    return r2 <= float(radius) ** 2


def box_support(shape: tuple[int, ...], sizes: Sequence[int]) -> np.ndarray:
    """A centred rectangle (a box in 3D) of ``sizes`` pixels per axis (last axes for fewer sizes)."""
    sizes = list(sizes)
    sizes = [sizes[0]] * (len(shape) - len(sizes)) + sizes
    out = np.zeros(shape, bool)
    out[tuple(slice(max(0, s // 2 - int(k) // 2), s // 2 - int(k) // 2 + int(k)) for s, k in zip(shape, sizes))] = True
    return out


def fit_support(image: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """An uploaded support image as a bool array of ``shape`` (nonzero / bright = inside).

    Colour images are averaged; an image smaller than the pattern is placed in the middle of it.
    """
    a = np.asarray(image, np.float32)
    if a.ndim == len(shape) + 1 and a.shape[-1] in (3, 4):
        a = a[..., :3].mean(axis=-1)
    if a.ndim != len(shape):
        raise InputError(f"the support image is {a.ndim}D (shape {a.shape}); the pattern is {len(shape)}D")
    if any(n > s for n, s in zip(a.shape, shape)):
        raise InputError(f"the support image {a.shape} is larger than the pattern {tuple(shape)}; "
                         f"it must have the pattern's shape or be smaller (it is then centred)")
    top = float(np.nanmax(a)) if a.size else 0.0
    inside = np.nan_to_num(a) > 0.5 * top if top > 0 else np.zeros(a.shape, bool)
    if not inside.any():
        raise InputError("the support image is empty: draw the object's region in white (nonzero)")
    out = np.zeros(shape, bool)
    out[tuple(slice(s // 2 - n // 2, s // 2 - n // 2 + n) for n, s in zip(a.shape, shape))] = inside
    return out


def _edge(m: np.ndarray) -> np.ndarray:
    inner = m.copy()
    inner[1:] &= m[:-1]
    inner[:-1] &= m[1:]
    inner[:, 1:] &= m[:, :-1]
    inner[:, :-1] &= m[:, 1:]
    return m & ~inner


def support_overlay(ac: np.ndarray, support: np.ndarray, *, max_side: int = VIEW_SIDE,
                    gamma: float = 0.5) -> np.ndarray:
    """The autocorrelation (grey, ``max(ac, 0) ** gamma`` so its faint extent shows) with the support
    tinted yellow and its outline drawn, as uint8 RGB."""
    a, m = middle_slice(ac), middle_slice(support).astype(bool)
    s = _step(a.shape, max_side)
    v = np.clip(a, 0, 1)[::s, ::s] ** gamma
    ms = block_any(m, s)[:v.shape[0], :v.shape[1]]
    rgb = np.repeat(v[..., None].astype(np.float32), 3, axis=-1)
    _tint(rgb, ms, SUPPORT_COLOR, alpha=0.3)
    _tint(rgb, _edge(ms), SUPPORT_COLOR)
    return to_rgb8(rgb)


# --------------------------------------------------------------------------------------------
# amplitude and phase, with their legends


def amplitude_rgb(obj: np.ndarray, *, max_side: int = 256, colormap: str = "Viridis") -> tuple[np.ndarray, float]:
    """|obj| through ``colormap`` as uint8 RGB, and the amplitude at the top of the scale."""
    a = np.abs(middle_slice(obj))
    a = a[::_step(a.shape, max_side), ::_step(a.shape, max_side)]
    top = float(a.max()) if a.size else 0.0
    return to_rgb8(colorize(a, vmin=0.0, vmax=max(top, 1e-30), stops=COLORMAPS[colormap])), top


def _hsv(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    from skimage.color import hsv2rgb

    return hsv2rgb(np.stack([h, np.ones_like(v), v], axis=-1))


def phase_rgb(obj: np.ndarray, *, max_side: int = 256, threshold: float = 0.05) -> np.ndarray:
    """The phase as hue (same wheel as the composite: red at -pi and +pi, cyan at 0) where the
    amplitude is above ``threshold`` of its max, black elsewhere; uint8 RGB."""
    a = middle_slice(obj)
    s = _step(a.shape, max_side)
    a = a[::s, ::s]
    amp = np.abs(a)
    h = (np.angle(a) + np.pi) / (2 * np.pi)
    v = (amp > threshold * max(float(amp.max()), 1e-30)).astype(np.float32)
    return to_rgb8(_hsv(h, v))


def phase_wheel(size: int = 112) -> np.ndarray:
    """The legend of the amplitude/phase composite as uint8 RGBA: hue = phase (angle, counter-clockwise
    from the right: 0 at the right, +pi/2 at the top, ±pi at the left), brightness = amplitude
    (radius); transparent outside the disc."""
    n = int(size)
    c = (n - 1) / 2
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    dx, dy = x - c, c - y  # y up
    r = np.hypot(dx, dy) / c
    h = (np.arctan2(dy, dx) + np.pi) / (2 * np.pi)
    rgb = _hsv(h, np.clip(r, 0, 1))
    alpha = (r <= 1.0).astype(np.float64)
    return to_rgb8(np.concatenate([rgb, alpha[..., None]], axis=-1))


def _image_axes(fig: go.Figure, title: str, height: int) -> None:
    # rows top-down as in the array, square pixels, no pixel-number clutter
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, showgrid=False)
    fig.update_xaxes(showticklabels=False, showgrid=False, constrain="domain")
    fig.update_layout(title=dict(text=title, font=dict(size=13)), height=height, template="plotly_dark",
                      margin=dict(l=5, r=5, t=35, b=5))


def amplitude_figure(obj: np.ndarray, *, max_side: int = 256, colormap: str = "Viridis",
                     title: str = "Amplitude", height: int = 320) -> go.Figure:
    """|obj| (middle slice, downsampled to ``max_side``) as a heatmap from 0 to its maximum, with a
    colour bar titled "amplitude"."""
    a = np.abs(middle_slice(obj))
    s = _step(a.shape, max_side)
    a = a[::s, ::s].astype(np.float64)
    top = max(float(a.max()) if a.size else 0.0, 1e-30)
    fig = go.Figure(go.Heatmap(z=a, zmin=0.0, zmax=top, colorscale=plotly_colorscale(COLORMAPS[colormap]),
                               colorbar=dict(title=dict(text="amplitude"), thickness=12),
                               hovertemplate="amplitude %{z:.3g}<extra></extra>"))
    _image_axes(fig, title, height)
    return fig


def phase_figure(obj: np.ndarray, *, max_side: int = 256, threshold: float = 0.05,
                 title: str = "Phase", height: int = 320) -> go.Figure:
    """The phase in radians (middle slice) on the cyclic scale from -pi to pi, blank where the
    amplitude is at most ``threshold`` of its maximum; colour bar "phase (rad)" ticked at -pi, -pi/2,
    0, pi/2, pi. Same hues as :func:`phase_rgb` and the composite."""
    a = middle_slice(obj)
    s = _step(a.shape, max_side)
    a = np.asarray(a)[::s, ::s]
    amp = np.abs(a)
    ph = np.where(amp > threshold * max(float(amp.max()) if amp.size else 0.0, 1e-30), np.angle(a), np.nan)
    fig = go.Figure(go.Heatmap(z=ph, zmin=-np.pi, zmax=np.pi, colorscale=phase_colorscale(),
                               colorbar=dict(title=dict(text="phase (rad)"), thickness=12, tickmode="array",
                                             tickvals=PHASE_TICKVALS, ticktext=PHASE_TICKTEXT),
                               hovertemplate="phase %{z:.2f} rad<extra></extra>"))
    _image_axes(fig, title, height)
    return fig


def phase_wheel_figure(*, wedges: int = 72, rings: int = 1, size: int = 220,
                       title: str = "phase (rad)") -> go.Figure:
    """A disc coloured by angle: the phase legend, in radians (0 at the right, pi/2 at the top, ±pi at
    the left, counter-clockwise), in the hues of :func:`phase_figure`.

    ``rings > 1`` darkens the disc towards its centre (brightness = amplitude), the legend of the
    amplitude/phase composite.
    """
    if wedges < 4 or rings < 1:
        raise InputError(f"the wheel needs at least 4 wedges and 1 ring; got {wedges} and {rings}")
    width = 360.0 / wedges
    theta = np.arange(wedges) * width  # wedge centres, degrees counter-clockwise from the right
    ang = np.deg2rad(theta)
    thetas, bases, colors = [], [], []
    for k in range(rings):
        bright = (k + 1) / rings
        rgb = phase_color(ang) * bright
        thetas += theta.tolist()
        bases += [k / rings] * wedges
        colors += ["rgb({},{},{})".format(*(int(round(255 * c)) for c in v)) for v in rgb]
    fig = go.Figure(go.Barpolar(theta=thetas, r=[1.0 / rings] * len(thetas), base=bases, width=width,
                                # an outline in the fill colour hides the anti-aliasing seams between wedges
                                marker=dict(color=colors, line=dict(color=colors, width=1)), hoverinfo="skip"))
    fig.update_layout(
        title=dict(text=title, font=dict(size=12)), height=size, width=size, showlegend=False,
        template="plotly_dark", margin=dict(l=30, r=30, t=40, b=25),
        polar=dict(bargap=0, radialaxis=dict(visible=False, range=[0, 1]),
                   angularaxis=dict(direction="counterclockwise", rotation=0, tickmode="array",
                                    tickvals=[0, 90, 180, 270], ticktext=["0", "π/2", "±π", "−π/2"],
                                    showgrid=False)))
    return fig


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # older Pillow: the fixed bitmap font
        return ImageFont.load_default()


def colorbar_image(vmin: float, vmax: float, *, colormap: str = "Viridis", height: int = 256,
                   width: int = 86, ticks: int = 5, label: str = "") -> np.ndarray:
    """A vertical colour bar (top = ``vmax``) with ``ticks`` labelled values, as uint8 RGB on a dark
    background, to place beside an image drawn with :func:`amplitude_rgb`."""
    bar_w, pad = 16, 8
    img = Image.new("RGB", (int(width), int(height)), (14, 17, 23))
    t = np.linspace(1, 0, int(height) - 2 * pad)[:, None]
    col = to_rgb8(colorize(np.repeat(t, bar_w, axis=1), stops=COLORMAPS[colormap]))
    img.paste(Image.fromarray(col), (4, pad))
    d = ImageDraw.Draw(img)
    f = _font(11)
    for k in range(ticks):
        frac = k / max(ticks - 1, 1)
        yy = pad + round((1 - frac) * (height - 2 * pad - 1))
        d.line([(4 + bar_w, yy), (4 + bar_w + 4, yy)], fill=(230, 230, 230))
        d.text((4 + bar_w + 7, yy - 6), f"{vmin + frac * (vmax - vmin):.3g}", fill=(230, 230, 230), font=f)
    if label:
        d.text((4, 0), label, fill=(200, 200, 200), font=_font(9))
    return np.asarray(img)


# --------------------------------------------------------------------------------------------
# curves with readable log axes


def log_curve_figure(rows: Sequence[dict], keys: Sequence[str], title: str, *,
                     labels: dict[str, str] | None = None, x_title: str = "cycle",
                     y_title: str = "") -> go.Figure:
    """Lines of ``keys`` over ``rows["iteration"]`` (thinned) on a log y axis with decade ticks."""
    rows = thin(rows)
    fig = go.Figure()
    ys: list[float] = []
    for k in keys:
        x, y = series(rows, k)
        if x:
            ys += y
            fig.add_trace(go.Scattergl(x=x, y=y, mode="lines", name=(labels or {}).get(k, k)))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), **_LAYOUT)
    fig.update_xaxes(title_text=x_title)
    if y_title:
        fig.update_yaxes(title_text=y_title)
    apply_log_axis(fig, ys)
    return fig


def support_figure(points: Sequence[tuple[int, float]], title: str = "Support size", *,
                   x_title: str = "cycle", reference: float | None = None,
                   reference_label: str = "") -> go.Figure:
    """Support size in pixels against the cycle (or the update number), log y with decade ticks;
    an optional dashed horizontal ``reference`` (e.g. the true object's size)."""
    pts = [(x, float(y)) for x, y in points if y is not None and float(y) > 0]
    fig = go.Figure()
    if pts:
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers",
                                 name="support (pixels)"))
    ys = [p[1] for p in pts]
    if reference is not None and reference > 0:
        fig.add_hline(y=float(reference), line_dash="dash", line_color="#f0b429",
                      annotation_text=reference_label or None)
        ys.append(float(reference))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), **_LAYOUT)
    fig.update_xaxes(title_text=x_title)
    fig.update_yaxes(title_text="pixels")
    apply_log_axis(fig, ys)
    return fig


def bar_log_figure(values: Sequence[float], title: str) -> go.Figure:
    """One bar per start on a log axis with decade ticks."""
    fig = go.Figure(go.Bar(x=list(range(len(values))), y=list(values)))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=220,
                      margin=dict(l=10, r=10, t=30, b=10), template="plotly_dark")
    fig.update_xaxes(title_text="start")
    apply_log_axis(fig, list(values))
    return fig


# --------------------------------------------------------------------------------------------
# the result against the data


def model_intensity(obj: np.ndarray, intensity: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``|F x|^2`` of ``obj`` placed in the middle of an array of the pattern's shape (centred),
    scaled so its sum over the measured pixels equals the measured photons."""
    shape = np.shape(intensity)
    o = np.asarray(obj)
    if o.ndim != len(shape):
        raise ValueError(f"object is {o.ndim}D, pattern {len(shape)}D")
    full = np.zeros(shape, np.complex64)
    src = tuple(slice((m - min(m, n)) // 2, (m - min(m, n)) // 2 + min(m, n)) for m, n in zip(o.shape, shape))
    dst = tuple(slice(n // 2 - min(m, n) // 2, n // 2 - min(m, n) // 2 + min(m, n)) for m, n in zip(o.shape, shape))
    full[dst] = o[src]
    calc = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(full)))) ** 2
    obs = np.ones(shape, bool) if mask is None else ~np.asarray(mask, bool)
    meas = float(np.asarray(intensity, np.float64)[obs].sum())
    tot = float(calc[obs].sum())
    return (calc * (meas / tot if tot > 0 else 0.0)).astype(np.float32)


def radial_profile(intensity: np.ndarray, mask: np.ndarray | None = None, *,
                   bins: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the measured pixels in rings around the centre: (radius in pixels, mean); rings with
    no measured pixel give NaN."""
    a = np.asarray(intensity, np.float64)
    grids = np.ogrid[tuple(slice(0, s) for s in a.shape)]
    r = np.sqrt(sum((g - s // 2) ** 2 for g, s in zip(grids, a.shape)))
    obs = np.ones(a.shape, bool) if mask is None else ~np.asarray(mask, bool)
    rmax = min(a.shape) // 2
    nb = int(bins or rmax)
    edges = np.linspace(0, rmax, nb + 1)
    idx = np.digitize(r, edges) - 1
    keep = obs & (idx >= 0) & (idx < nb)
    sums = np.bincount(idx[keep], weights=a[keep], minlength=nb)
    counts = np.bincount(idx[keep], minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return 0.5 * (edges[1:] + edges[:-1]), mean


def profile_figure(radius: np.ndarray, measured: np.ndarray, model: np.ndarray,
                   title: str = "Measured vs |F x|² (radial mean)") -> go.Figure:
    """The two radial profiles on a log y axis with decade ticks."""
    fig = go.Figure()
    ys: list[float] = []
    for name, y, dash in (("measured", measured, None), ("|F x|² of the result", model, "dot")):
        ok = np.isfinite(y) & (y > 0)
        ys += [float(v) for v in y[ok]]
        fig.add_trace(go.Scatter(x=radius[ok].tolist(), y=y[ok].tolist(), mode="lines", name=name,
                                 line=dict(dash=dash)))
    fig.update_layout(title=dict(text=title, font=dict(size=14)), **_LAYOUT)
    fig.update_xaxes(title_text="distance from the centre (pixels)")
    fig.update_yaxes(title_text="counts per pixel")
    apply_log_axis(fig, ys)
    return fig


def log_pair(measured: np.ndarray, model: np.ndarray, mask: np.ndarray | None = None, *,
             max_side: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """The measured pattern and the model on the same log scale (uint8 grey; unmeasured pixels of the
    measured pattern blue), for a side by side view."""
    a, b = middle_slice(measured), middle_slice(model)
    m = np.zeros(a.shape, bool) if mask is None else middle_slice(mask).astype(bool)
    s = _step(a.shape, max_side)
    la = np.log10(1 + np.maximum(np.asarray(a, np.float64), 0))
    lb = np.log10(1 + np.maximum(np.asarray(b, np.float64), 0))
    top = max(float(la[~m].max()) if (~m).any() else 0.0, float(lb.max()), 1e-12)
    ra = np.repeat((la / top)[::s, ::s, None], 3, axis=-1)
    _tint(ra, block_any(m, s)[:ra.shape[0], :ra.shape[1]], FOUND_COLOR)
    rb = np.repeat((lb / top)[::s, ::s, None], 3, axis=-1)
    return to_rgb8(ra), to_rgb8(rb)


def compare_to_truth(truth: np.ndarray, obj: np.ndarray, *, margin: int = 4) -> tuple[np.ndarray, np.ndarray, float]:
    """Register ``obj`` onto ``truth`` (shift, twin, global phase) and crop both to the truth's extent.

    Returns (truth crop, aligned result crop, similarity in [0, 1]).
    """
    from engine.cdi.registration import register

    t = np.asarray(truth)
    reg = register(t, np.asarray(obj))
    nz = np.abs(t) > 0
    if nz.any():
        sl = tuple(slice(max(0, int(ix.min()) - margin), int(ix.max()) + margin + 1) for ix in np.nonzero(nz))
    else:
        sl = tuple(slice(None) for _ in t.shape)
    return t[sl], reg.aligned[sl], float(reg.similarity)
