"""Colour ramps and overlay rendering: one implementation for every page, export and CLI overlay.

Ramps are ``(n, 3)`` RGB stops in [0, 1] with linear interpolation between them (no matplotlib).
"""

from __future__ import annotations

import numpy as np

from engine.core.errors import InputError

#: ramps for unsigned maps (saliency heat, amplitudes)
COLORMAPS: dict[str, np.ndarray] = {
    "Jet": np.array([[0.0, 0.0, 0.5], [0.0, 0.2, 1.0], [0.0, 0.9, 1.0], [1.0, 1.0, 0.0], [1.0, 0.3, 0.0],
                     [0.6, 0.0, 0.0]]),
    # black - red - yellow - white at 0, 1/3, 2/3, 1: r = 3v, g = 3v - 1, b = 3v - 2
    "Hot": np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0]]),
    # viridis sampled at 0, 0.25, 0.5, 0.75, 1 (matplotlib's published stops)
    "Viridis": np.array([[0.267, 0.005, 0.329], [0.229, 0.322, 0.546], [0.128, 0.567, 0.551],
                         [0.369, 0.789, 0.383], [0.993, 0.906, 0.144]]),
}
#: signed maps (Integrated Gradients, Occlusion): evidence against is blue, for is red
DIVERGING = np.array([[0.1, 0.2, 0.8], [1.0, 1.0, 1.0], [0.8, 0.1, 0.1]])


def ramp(name: str = "Jet", *, signed: bool = False) -> np.ndarray:
    """The stops of ramp ``name``, or the diverging ramp when ``signed``."""
    if signed:
        return DIVERGING
    if name not in COLORMAPS:
        raise InputError(f"unknown colormap {name!r}; expected one of {', '.join(COLORMAPS)}")
    return COLORMAPS[name]


def colorize(values: np.ndarray, *, vmin: float = 0.0, vmax: float = 1.0,
             stops: np.ndarray | None = None) -> np.ndarray:
    """Map values to ``(..., 3)`` float32 RGB in [0, 1] along ``stops`` (default Jet) between vmin and vmax.

    NaN maps to the low end.
    """
    stops = COLORMAPS["Jet"] if stops is None else np.asarray(stops, dtype=np.float64)
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=vmin)
    t = np.clip((v - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    xs = np.linspace(0, 1, len(stops))
    return np.stack([np.interp(t, xs, stops[:, k]) for k in range(3)], -1).astype(np.float32)


def _nearest_resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of the first two axes: a coarse map keeps its true cells visible."""
    if a.shape[:2] == tuple(shape):
        return a
    ri = (np.arange(shape[0]) * a.shape[0] // shape[0])[:, None]
    ci = (np.arange(shape[1]) * a.shape[1] // shape[1])[None, :]
    return a[ri, ci]


def blend(image: np.ndarray, overlay: np.ndarray | None = None, *, opacity: float = 0.4) -> np.ndarray:
    """A grey image with an optional colour overlay, as ``(H, W, 3)`` uint8.

    Parameters
    ----------
    image : (H, W) float in [0, 1] or uint8
    overlay : None, (h, w) heat in [0, 1] (Hot ramp, alpha = heat, so cold areas leave the image
        visible), or (h, w, 3) / (h, w, 4) colours (uint8 or float in [0, 1]; alpha from the 4th channel).
        A smaller overlay is enlarged with nearest-neighbour sampling.
    opacity : float in [0, 1], multiplies the overlay's alpha
    """
    g = np.asarray(image)
    g = g.astype(np.float32) / 255.0 if g.dtype == np.uint8 else np.clip(g.astype(np.float32), 0.0, 1.0)
    if g.ndim != 2:
        raise ValueError(f"image must be 2-D grey, got shape {g.shape}")
    base = np.repeat(g[..., None], 3, axis=2)
    if overlay is None:
        return np.round(base * 255.0).astype(np.uint8)
    ov = np.asarray(overlay)
    ov = ov.astype(np.float32) / 255.0 if ov.dtype == np.uint8 else ov.astype(np.float32)
    if ov.ndim == 2:
        colours = colorize(ov, stops=COLORMAPS["Hot"])
        alpha = np.clip(np.nan_to_num(ov), 0.0, 1.0)
    elif ov.ndim == 3 and ov.shape[2] in (3, 4):
        colours = np.clip(ov[..., :3], 0.0, 1.0)
        alpha = np.clip(ov[..., 3], 0.0, 1.0) if ov.shape[2] == 4 else np.ones(ov.shape[:2], np.float32)
    else:
        raise ValueError(f"overlay must be (h, w), (h, w, 3) or (h, w, 4), got {ov.shape}")
    colours, alpha = _nearest_resize(colours, g.shape), _nearest_resize(alpha, g.shape)
    a = (float(np.clip(opacity, 0.0, 1.0)) * alpha)[..., None]
    return np.round(np.clip(base * (1.0 - a) + colours * a, 0, 1) * 255.0).astype(np.uint8)


def complex_to_rgb(obj: np.ndarray, *, max_side: int = 256) -> np.ndarray:
    """Amplitude/phase composite as uint8 RGB: phase as hue, amplitude as brightness (3D: middle slice).

    Hue 0 (red) is phase -pi, going once round the colour wheel to +pi.
    """
    from skimage.color import hsv2rgb

    a = np.asarray(obj)
    while a.ndim > 2:
        a = a[a.shape[0] // 2]
    step = max(1, int(np.ceil(max(a.shape) / max_side)))
    a = a[::step, ::step]
    amp = np.abs(a)
    v = amp / max(float(amp.max()), 1e-30)
    h = (np.angle(a) + np.pi) / (2 * np.pi)
    rgb = hsv2rgb(np.stack([h, np.ones_like(v), v], axis=-1))
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
