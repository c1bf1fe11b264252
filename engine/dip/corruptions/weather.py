"""Weather corruptions (snow, frost, fog) on float (H, W, C) images in [0, 1]."""

from __future__ import annotations

import numpy as np

from engine.dip.corruptions.blur import motion
from engine.dip.corruptions.common import clipped_zoom, luminance
from engine.dip.corruptions.textures import frost_texture, plasma_fractal


def snow(
    x: np.ndarray,
    loc: float,
    scale: float,
    zoom: float,
    threshold: float,
    radius: float,
    sigma: float,
    blend: float,
    angle_range: tuple[float, float],
    rng: np.random.Generator,
) -> np.ndarray:
    """Snow: grey-lifted image plus a layer of motion-blurred flakes and its 180-degree rotation.

    The flakes are thresholded, zoomed Gaussian noise; the reference streaks them with ImageMagick's
    motion blur, here with the line-kernel motion blur of :func:`blur.motion`.
    """
    h, w, _ = x.shape
    layer = rng.normal(loc, scale, size=(h, w, 1)).astype(np.float32)
    layer = clipped_zoom(layer, zoom)
    layer[layer < threshold] = 0.0
    layer = np.clip(layer, 0.0, 1.0)
    layer = motion(layer, radius, sigma, float(rng.uniform(*angle_range)))
    # The scene gets lighter and greyer under falling snow.
    x = blend * x + (1 - blend) * np.maximum(x, luminance(x) * 1.5 + 0.5)
    return x + layer + np.rot90(layer, 2)


def frost(x: np.ndarray, image_weight: float, frost_weight: float, rng: np.random.Generator) -> np.ndarray:
    """Frost: weighted sum of the image and a procedural frost texture (its luminance for grey images).

    The reference uses photographs of frost; see :func:`textures.frost_texture` for how this differs.
    """
    h, w, c = x.shape
    tex = frost_texture(h, w, rng)
    if c == 1:
        tex = luminance(tex)
    return image_weight * x + frost_weight * tex


def fog(x: np.ndarray, strength: float, decay: float, min_map: int, rng: np.random.Generator) -> np.ndarray:
    """Fog: add ``strength`` times a plasma fractal, then rescale so the old maximum stays in range.

    The plasma map is ``min_map`` px (the reference's 256) or the next power of two above the image
    side, and the image takes its top-left corner, so fog features keep their pixel size.
    """
    h, w, _ = x.shape
    side = max(min_map, 1 << int(np.ceil(np.log2(max(h, w)))))
    plasma = plasma_fractal(side, decay, rng)[:h, :w, None].astype(np.float32)
    peak = float(x.max())
    return (x + strength * plasma) * (peak / (peak + strength))
