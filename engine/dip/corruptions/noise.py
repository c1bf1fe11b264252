"""Noise corruptions on float (H, W, C) images in [0, 1]; parameters are given explicitly.

The result is clipped to [0, 1] by the caller, as in ImageNet-C and the DIP benchmark.
"""

from __future__ import annotations

import numpy as np


def add_gaussian(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """x + N(0, std^2), independently per value."""
    return x + rng.normal(0.0, std, size=x.shape).astype(np.float32)


def add_shot(x: np.ndarray, photons: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson(x * photons) / photons: photon-counting noise with ``photons`` per unit intensity."""
    return rng.poisson(x.astype(np.float64) * photons).astype(np.float32) / np.float32(photons)


def add_impulse(x: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: each value independently replaced with probability ``amount``, by 0 or 1 evenly.

    For RGB the channels are hit independently, as ImageNet-C does, so impulses are coloured.
    """
    hit = rng.random(x.shape) < amount
    salt = rng.random(x.shape) < 0.5
    out = x.copy()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out


def add_speckle(x: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """x + x * N(0, std^2): multiplicative noise whose std grows with the intensity."""
    return x + x * rng.normal(0.0, std, size=x.shape).astype(np.float32)
