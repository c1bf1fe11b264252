"""Shared helpers of the corruptions: input checks, random generators, grey/colour handling."""

from __future__ import annotations

import numpy as np

from engine.core.errors import InputError
from engine.core.seeds import Seed, numpy_rng

MIN_SIDE = 8
MAX_SIDE = 8192


def make_rng(seed: Seed) -> np.random.Generator:
    """A numpy Generator from a Generator (used as is), an integer seed or None (fresh entropy).

    The one seed policy of the engine (:func:`engine.core.seeds.numpy_rng`): an integer ``s`` gives
    ``numpy.random.default_rng(s)``.
    """
    return numpy_rng(seed)


def check_image(img: np.ndarray) -> np.ndarray:
    """Validate an image and return it as float32 (H, W, C) with C = 1 or 3.

    Parameters
    ----------
    img : (H, W) grey or (H, W, 3) RGB (or (H, W, 1)) float array with values in [0, 1].
    """
    if not isinstance(img, np.ndarray):
        raise InputError(f"image must be a numpy array, got {type(img).__name__}")
    if img.ndim == 2:
        arr = img[..., None]
    elif img.ndim == 3 and img.shape[2] in (1, 3):
        arr = img
    else:
        raise InputError(f"image shape {img.shape} is not supported; expected (H, W) or (H, W, 3)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"image dtype {arr.dtype} is not supported; expected float values in [0, 1]")
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise InputError(f"image size {h}x{w} is not supported; expected sides from {MIN_SIDE} to {MAX_SIDE}")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise InputError("image has NaN or infinite values; expected finite values in [0, 1]")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise InputError(f"image values span [{lo:.3g}, {hi:.3g}]; expected values in [0, 1]")
    return np.clip(arr, 0.0, 1.0)


def finish(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """Clip to [0, 1], cast to float32 and give ``out`` (H, W, C) the shape of the input ``like``."""
    out = np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)
    return out.reshape(like.shape)


def luminance(x: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma of (H, W, 3) as (H, W, 1); a grey (H, W, 1) image is returned as is."""
    if x.shape[2] == 1:
        return x
    return (x @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]


def clipped_zoom(x: np.ndarray, zoom: float) -> np.ndarray:
    """Zoom into the centre of (H, W, C) by ``zoom`` >= 1 and crop back to (H, W) (bilinear)."""
    from scipy.ndimage import zoom as nd_zoom

    h, w = x.shape[:2]
    ch, cw = int(np.ceil(h / zoom)), int(np.ceil(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    big = nd_zoom(x[top : top + ch, left : left + cw], (zoom, zoom, 1), order=1)
    t, s = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return big[t : t + h, s : s + w]
