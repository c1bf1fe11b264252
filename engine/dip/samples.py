"""Bundled sample images.

The natural images come from scikit-image's data module, which ships inside its wheel,
so the app has samples with no download and nothing of ours to license.
"""

from __future__ import annotations

import numpy as np

#: name -> (scikit-image loader name, description)
SAMPLES: dict[str, str] = {
    "astronaut": "Eileen Collins, NASA portrait (RGB)",
    "coffee": "A cup of coffee (RGB)",
    "chelsea": "Chelsea the cat (RGB)",
    "rocket": "Falcon 9 launch (RGB)",
    "camera": "The cameraman (grey)",
}


def sample_names() -> list[str]:
    """Names accepted by :func:`load_sample`."""
    return list(SAMPLES)


def load_sample(name: str, size: int | None = 256) -> np.ndarray:
    """Load a bundled sample as float32 in [0, 1], shape (H, W) or (H, W, 3).

    Parameters
    ----------
    name : str
        One of :func:`sample_names`.
    size : int or None
        Centre-crop to a square and resize to ``size`` x ``size`` (anti-aliased);
        None keeps the original image.
    """
    from skimage import data, transform, util

    if name not in SAMPLES:
        raise ValueError(f"unknown sample {name!r}; expected one of {', '.join(SAMPLES)}")
    img = util.img_as_float32(getattr(data, name)())
    if size is not None:
        h, w = img.shape[:2]
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        img = img[top:top + s, left:left + s]
        img = transform.resize(img, (size, size) + img.shape[2:], anti_aliasing=True,
                               preserve_range=True).astype(np.float32)
    return np.clip(img, 0.0, 1.0)
