"""Display images: uint8 conversion and nearest-neighbour enlargement of small previews."""

from __future__ import annotations

import numpy as np

from engine.runs.store import to_uint8


def display_uint8(img: np.ndarray, min_side: int = 256) -> np.ndarray:
    """uint8 image, enlarged by an integer factor (pixel-exact) so its short side is >= ``min_side``."""
    out = to_uint8(np.asarray(img))
    s = min(out.shape[:2])
    k = max(1, int(np.ceil(min_side / max(s, 1))))
    if k > 1:
        out = np.repeat(np.repeat(out, k, axis=0), k, axis=1)
    return out
