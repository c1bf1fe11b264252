"""Digital corruptions (brightness, contrast, elastic, pixelate, JPEG) on float (H, W, C) in [0, 1]."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from scipy.ndimage import affine_transform, gaussian_filter, map_coordinates
from skimage.color import hsv2rgb, rgb2hsv


def brightness(x: np.ndarray, amount: float) -> np.ndarray:
    """Add ``amount`` to the HSV value (for grey, to the grey level), keeping hue and saturation."""
    if x.shape[2] == 1:
        return x + amount
    hsv = rgb2hsv(x)
    hsv[..., 2] = np.clip(hsv[..., 2] + amount, 0.0, 1.0)
    return hsv2rgb(hsv)


def contrast(x: np.ndarray, factor: float) -> np.ndarray:
    """Scale each channel's deviation from its mean by ``factor``."""
    mean = x.mean(axis=(0, 1), keepdims=True)
    return (x - mean) * factor + mean


def _affine_from_points(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 affine matrix mapping three (x, y) points ``src`` onto ``dst``."""
    a = np.hstack([src, np.ones((3, 1))])
    m = np.linalg.solve(a, dst).T  # (2, 3)
    return np.vstack([m, [0.0, 0.0, 1.0]])


def elastic(x: np.ndarray, alpha: float, sigma: float, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Elastic transform: a random affine warp, then a smooth random displacement field.

    The affine moves three points around the centre (at a third of the short side) by up to ``jitter`` px
    each (mirrored borders); the displacement is uniform noise in [-1, 1] smoothed by a Gaussian of std
    ``sigma`` px (truncated at 3 std) and scaled by ``alpha`` px; bilinear resampling throughout.
    """
    h, w, c = x.shape
    centre = np.array([w // 2, h // 2], dtype=np.float64)  # (x, y)
    r = min(h, w) // 3
    src = np.array([centre + r, [centre[0] + r, centre[1] - r], centre - r])
    dst = src + rng.uniform(-jitter, jitter, size=src.shape)
    inv = np.linalg.inv(_affine_from_points(src, dst))  # output (x, y) -> input (x, y)
    # The same map in (row, col) order for scipy.
    matrix = np.array([[inv[1, 1], inv[1, 0]], [inv[0, 1], inv[0, 0]]])
    offset = np.array([inv[1, 2], inv[0, 2]])
    warped = np.stack(
        [affine_transform(x[..., k], matrix, offset, order=1, mode="mirror") for k in range(c)], axis=-1
    )
    dx = gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    dy = gaussian_filter(rng.uniform(-1, 1, size=(h, w)), sigma, mode="reflect", truncate=3) * alpha
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    coords = np.stack([yy + dy, xx + dx])
    return np.stack(
        [map_coordinates(warped[..., k], coords, order=1, mode="reflect") for k in range(c)], axis=-1
    )


def pixelate(x: np.ndarray, fraction: float) -> np.ndarray:
    """Box-downsample each side to ``fraction`` of its length, then box-upsample back (Pillow BOX)."""
    h, w, c = x.shape
    small = (max(1, int(w * fraction)), max(1, int(h * fraction)))
    out = np.empty_like(x, dtype=np.float32)
    for k in range(c):
        im = Image.fromarray(np.ascontiguousarray(x[..., k], dtype=np.float32))  # mode "F": no 8-bit rounding
        out[..., k] = np.asarray(im.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.BOX))
    return out


def jpeg(x: np.ndarray, quality: int) -> np.ndarray:
    """Round trip through an 8-bit JPEG of the given Pillow ``quality`` (Pillow's default subsampling)."""
    u8 = np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)
    im = Image.fromarray(u8[..., 0] if x.shape[2] == 1 else u8)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as back:
        arr = np.asarray(back.convert("L" if x.shape[2] == 1 else "RGB"), dtype=np.float32) / 255.0
    return arr.reshape(x.shape)
