"""Seeded procedural textures for the weather corruptions: plasma fractal (fog) and frost."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def plasma_fractal(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """Square plasma fractal in [0, 1] by the diamond-square algorithm, wrapping at the borders.

    Parameters
    ----------
    size : side, a power of two.
    decay : the random amplitude is divided by ``decay`` at each halving of the step (larger = smoother).
        Each new point is the mean of its four neighbours plus ``a * U(-a, a)`` with ``a`` starting at
        100, as in the ImageNet-C fog.
    rng : random generator.
    """
    if size < 2 or size & (size - 1):
        raise ValueError(f"plasma size must be a power of two >= 2, got {size}")
    m = np.zeros((size, size), dtype=np.float64)
    step, amp = size, 100.0
    while step >= 2:
        half = step // 2
        corners = m[0::step, 0::step]
        # Square step: the centre of each square from its four corners.
        pair = corners + np.roll(corners, -1, 0)
        centres = (pair + np.roll(pair, -1, 1)) / 4 + amp * rng.uniform(-amp, amp, corners.shape)
        m[half::step, half::step] = centres
        # Diamond step: edge midpoints from the two corners and two centres beside them.
        top = corners + np.roll(corners, -1, 1) + centres + np.roll(centres, 1, 0)
        m[0::step, half::step] = top / 4 + amp * rng.uniform(-amp, amp, corners.shape)
        left = corners + np.roll(corners, -1, 0) + centres + np.roll(centres, 1, 1)
        m[half::step, 0::step] = left / 4 + amp * rng.uniform(-amp, amp, corners.shape)
        step = half
        amp /= decay
    m -= m.min()
    return m / max(m.max(), 1e-12)


def _band_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian-smoothed white noise with unit std (a smooth random field of feature size ~sigma px)."""
    n = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return n / max(n.std(), 1e-12)


# Slightly blue-white ice, like the photographs the reference uses.
FROST_TINT = np.array([0.80, 0.90, 1.0], dtype=np.float32)


def _draw_segments(shape: tuple[int, int], x0, y0, angle, length, weight) -> np.ndarray:
    """Accumulate straight segments (start, angle, length in px, weight) into an image, 2 samples a px."""
    h, w = shape
    img = np.zeros(h * w)
    n_steps = int(np.ceil(2 * length.max())) + 1 if length.size else 0
    t = np.linspace(0.0, 1.0, max(n_steps, 2))
    xs = x0[:, None] + np.cos(angle)[:, None] * length[:, None] * t[None, :]
    ys = y0[:, None] + np.sin(angle)[:, None] * length[:, None] * t[None, :]
    # Samples are spread evenly along each segment, so each gets weight / (2 * length) per sample.
    keep = t[None, :] <= 1.0
    xi, yi = np.rint(xs).astype(int), np.rint(ys).astype(int)
    inside = keep & (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    wts = np.broadcast_to((weight * np.maximum(2 * length, 1.0) / max(t.size, 1))[:, None], xs.shape)
    np.add.at(img, (yi * w + xi)[inside], wts[inside])
    return img.reshape(h, w)


def frost_texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Procedural frost, (h, w, 3) in [0, 1], mean about 0.4.

    ImageNet-C blends the image with crops of six frost photographs that cannot be shipped here. This
    stands in for them: fern-like ice needles (straight needles 4-30 px with side branches at 60 degrees
    that shorten towards the tip), seeded more densely where a plasma fractal is high so that some areas
    stay clearer, over a faint icy haze and fine grain. Look and statistics differ from the published
    frost images, so frost results are not comparable with published frost scores.
    """
    shape = (h, w)
    side = 1 << max(int(np.ceil(np.log2(max(h, w)))), 6)
    density = plasma_fractal(side, 1.6, rng)[:h, :w]
    n = max(8, h * w // 80)
    x0, y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
    keep = rng.random(n) < 0.1 + 0.9 * density[y0.astype(int), x0.astype(int)] ** 2
    x0, y0 = x0[keep], y0[keep]
    angle = rng.uniform(0, 2 * np.pi, x0.size)
    length = np.exp(rng.uniform(np.log(4), np.log(30), x0.size))
    bright = rng.uniform(0.3, 1.0, x0.size)
    needles = _draw_segments(shape, x0, y0, angle, length, bright)
    # Side branches: k per needle at fractions f of its length, +-60 degrees, length 0.45 (1 - f) L.
    k = 6
    f = np.tile(np.linspace(0.1, 0.9, k), x0.size)
    idx = np.repeat(np.arange(x0.size), k)
    sign = rng.choice([-1.0, 1.0], size=f.size)
    bx = x0[idx] + np.cos(angle[idx]) * length[idx] * f
    by = y0[idx] + np.sin(angle[idx]) * length[idx] * f
    blen = 0.45 * (1 - f) * length[idx] * rng.uniform(0.5, 1.0, f.size)
    branches = _draw_segments(shape, bx, by, angle[idx] + sign * np.pi / 3, blen, 0.7 * bright[idx])
    crystals = gaussian_filter(needles + branches, 0.6, mode="wrap")
    crystals = 1.0 - np.exp(-1.2 * crystals)
    grain = gaussian_filter(rng.random(shape), 0.8, mode="wrap")
    haze = 0.35 * density + 0.1 * grain
    frost = np.clip(crystals + haze, 0.0, 1.0)
    frost = np.clip(frost * (0.45 / max(frost.mean(), 1e-6)), 0.0, 1.0)
    return frost[..., None].astype(np.float32) * FROST_TINT
