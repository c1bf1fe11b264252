"""Blur corruptions on float (H, W, C) images; sizes are in pixels, as in ImageNet-C (224-pixel images).

The kernels are defined at the pixel scale of the reference, so on a larger image the same severity
blurs less of the content; this matches how ImageNet-C corruptions are applied to other image sizes.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d, gaussian_filter
from scipy.signal import fftconvolve

from engine.dip.corruptions.common import clipped_zoom


def _gauss_taps(ksize: int, sigma: float) -> np.ndarray:
    """Normalised sampled Gaussian of odd length ``ksize``."""
    r = np.arange(ksize) - (ksize - 1) / 2
    taps = np.exp(-(r**2) / (2 * sigma**2))
    return taps / taps.sum()


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """Flat disk of ``radius`` px, softened by a small Gaussian of std ``alias_blur`` (sums to 1).

    As in the reference, the support is 17 x 17 for radius <= 8 (3-tap softening), else 2r + 1 (5 taps).
    """
    half, ksize = (8, 3) if radius <= 8 else (int(radius), 5)
    r = np.arange(-half, half + 1)
    disk = ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    taps = _gauss_taps(ksize, alias_blur)
    for axis in (0, 1):
        disk = correlate1d(disk, taps, axis=axis, mode="mirror")
    return disk


def filter_mirror(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Correlate each channel of (H, W, C) with a 2-D kernel, mirror borders (edge not repeated)."""
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(x, ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    flipped = kernel[::-1, ::-1, None]
    return fftconvolve(padded, flipped, mode="valid", axes=(0, 1)).astype(np.float32)


def defocus(x: np.ndarray, radius: float, alias_blur: float) -> np.ndarray:
    """Defocus (out-of-focus lens): convolution with an anti-aliased disk."""
    return filter_mirror(x, disk_kernel(radius, alias_blur))


def glass(x: np.ndarray, sigma: float, delta: int, passes: int, rng: np.random.Generator) -> np.ndarray:
    """Frosted glass: Gaussian blur, ``passes`` sweeps of local pixel swaps, Gaussian blur again.

    Each sweep visits the pixels from the bottom-right corner (a ``delta`` border excluded) and swaps each
    one with a pixel at a random offset in [-delta, delta) per axis, in order, so pixels can travel
    further than ``delta``. The reference quantises to 8 bits between the steps; this keeps floats.
    """
    h, w, c = x.shape
    x = gaussian_filter(x, (sigma, sigma, 0), mode="nearest")
    rows = np.arange(h - delta, delta, -1)
    cols = np.arange(w - delta, delta, -1)
    perm = list(range(h * w))
    for _ in range(passes):
        n = rows.size * cols.size
        if n == 0:
            break
        off = rng.integers(-delta, delta, size=(n, 2))  # (dx, dy) per visited pixel
        p = (rows[:, None] * w + cols[None, :]).ravel()
        q = p + off[:, 1] * w + off[:, 0]
        # Sequential swaps: a later swap can move a pixel an earlier one has already moved.
        for i, j in zip(p.tolist(), q.tolist()):
            perm[i], perm[j] = perm[j], perm[i]
    x = x.reshape(h * w, c)[np.asarray(perm)].reshape(h, w, c)
    return gaussian_filter(x, (sigma, sigma, 0), mode="nearest")


def motion_taps(radius: float, sigma: float, angle_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights and (dy, dx) pixel offsets of a one-sided Gaussian line kernel.

    Follows the kernel ImageMagick documents for ``-motion-blur radius x sigma + angle``: 2 ceil(r) + 1
    taps at distances i = 0, 1, ... along the angle (x to the right, y down), weights exp(-i^2 / 2 sigma^2)
    normalised, offsets rounded to whole pixels.
    """
    width = 2 * math.ceil(radius) + 1
    i = np.arange(width, dtype=np.float64)
    weights = np.exp(-(i**2) / (2 * sigma**2))
    weights /= weights.sum()
    theta = math.radians(angle_deg)
    dx = np.ceil(i * math.cos(theta) - 0.5).astype(int)
    dy = np.ceil(i * math.sin(theta) - 0.5).astype(int)
    return weights, dy, dx


def motion(x: np.ndarray, radius: float, sigma: float, angle_deg: float) -> np.ndarray:
    """Motion blur: each output pixel averages the pixels along a line behind it (edge pixels repeated).

    The ImageNet-C reference calls ImageMagick through Wand; this is a line-kernel reimplementation with
    the same radius / sigma / angle parameters (see :func:`motion_taps`), not a call to ImageMagick.
    """
    weights, dy, dx = motion_taps(radius, sigma, angle_deg)
    h, w = x.shape[:2]
    p = int(max(np.abs(dy).max(), np.abs(dx).max()))
    padded = np.pad(x, ((p, p), (p, p), (0, 0)), mode="edge")
    out = np.zeros_like(x, dtype=np.float32)
    for wt, oy, ox in zip(weights, dy, dx):
        out += np.float32(wt) * padded[p + oy : p + oy + h, p + ox : p + ox + w]
    return out


def zoom_factors(first: float, last: float, step: float) -> np.ndarray:
    """Zoom factors first, first + step, ..., last (inclusive)."""
    n = int(round((last - first) / step)) + 1
    return first + step * np.arange(n)


def zoom(x: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Zoom blur: mean of the image and its centre zooms by each factor (a camera moving forward)."""
    out = x.astype(np.float32, copy=True)
    for z in factors:
        out += clipped_zoom(x, float(z))
    return out / (len(factors) + 1)
