"""Teaching panels: why Fourier phase retrieval has symmetries, and how benign generalized PR looks.

* :func:`fourier_symmetries`: circular shift, conjugate flip x(-r)^* and a global phase leave |F x|
  unchanged, while they change the image; the returned maximum differences show both.
* :func:`landscape_n2`: the loss of generalized PR for a real signal in R^2 on a grid, with its two
  global minima +x and -x.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.core.errors import InputError
from engine.core.seeds import Seed, numpy_rng


@dataclass
class SymmetryDemo:
    """Transformed images and their Fourier magnitudes.

    Attributes
    ----------
    images : dict
        name -> complex image (``original``, ``shift``, ``conj_flip``, ``global_phase``).
    magnitudes : dict
        name -> |FFT2| (unshifted, float64).
    max_magnitude_diff : dict
        name -> max | |F x_t| - |F x| | / max |F x| (zero up to rounding).
    max_image_diff : dict
        name -> max |x_t - x| / max |x| (the images themselves do change).
    params : dict
        The shift and phase used.
    """

    images: dict[str, np.ndarray]
    magnitudes: dict[str, np.ndarray]
    max_magnitude_diff: dict[str, float]
    max_image_diff: dict[str, float]
    params: dict = field(default_factory=dict)

    def log_magnitude(self, name: str) -> np.ndarray:
        """log(1 + |F x_t|), centred (fftshift), scaled to [0, 1] for display."""
        v = np.log1p(np.fft.fftshift(self.magnitudes[name]))
        return v / v.max() if v.max() > 0 else v


def conj_flip(x: np.ndarray) -> np.ndarray:
    """x(-r)^* with indices taken modulo the size (the twin image of Fourier PR)."""
    flipped = x[(-np.arange(x.shape[0])) % x.shape[0]][:, (-np.arange(x.shape[1])) % x.shape[1]]
    return np.conj(flipped)


def fourier_symmetries(image: np.ndarray, *, shift: tuple[int, int] = (5, 9),
                       phase: float = 0.7) -> SymmetryDemo:
    """Apply the three trivial ambiguities of Fourier PR to ``image`` and compare |FFT|.

    Parameters
    ----------
    image : np.ndarray
        2-D (grey) image, real or complex; RGB is converted to grey by averaging the channels.
    shift : (int, int)
        Circular shift in pixels (rows, columns).
    phase : float
        Global phase in radians.
    """
    x = np.asarray(image)
    if x.ndim == 3 and x.shape[2] in (3, 4):
        x = x[..., :3].mean(axis=2)
    if x.ndim != 2 or min(x.shape) < 2:
        raise InputError(f"the symmetry demo needs a 2-D image; got shape {x.shape}")
    if x.size > 1024 * 1024:
        raise InputError(f"image too large for the demo ({x.shape}); use at most 1024 x 1024")
    x = x.astype(np.complex128)
    images = {"original": x,
              "shift": np.roll(x, shift, axis=(0, 1)),
              "conj_flip": conj_flip(x),
              "global_phase": np.exp(1j * phase) * x}
    mags = {k: np.abs(np.fft.fft2(v)) for k, v in images.items()}
    ref, ref_img = mags["original"].max(), np.abs(x).max()
    mdiff = {k: float(np.abs(v - mags["original"]).max() / ref) for k, v in mags.items()}
    idiff = {k: float(np.abs(v - x).max() / ref_img) for k, v in images.items()}
    return SymmetryDemo(images, mags, mdiff, idiff, {"shift": list(shift), "phase": phase})


@dataclass
class Landscape:
    """Generalized-PR loss of a real signal in R^2 on a grid.

    ``values[i, j]`` is the loss at (z1[j], z2[i]) (rows follow z2, as plotly's surface expects).
    """

    z1: np.ndarray
    z2: np.ndarray
    values: np.ndarray
    minima: list[list[float]]
    a: np.ndarray
    y: np.ndarray
    loss: str

    def grid_local_minima(self) -> list[tuple[float, float]]:
        """Strict local minima among the interior grid points (8 neighbours)."""
        v = self.values
        c = v[1:-1, 1:-1]
        is_min = np.ones_like(c, dtype=bool)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di or dj:
                    is_min &= c < v[1 + di:v.shape[0] - 1 + di, 1 + dj:v.shape[1] - 1 + dj]
        ii, jj = np.nonzero(is_min)
        return [(float(self.z1[j + 1]), float(self.z2[i + 1])) for i, j in zip(ii, jj)]


def landscape_n2(x: tuple[float, float] = (1.0, 0.5), *, m: int = 20, loss: str = "intensity",
                 extent: float = 2.0, grid: int = 121, seed: Seed = 0) -> Landscape:
    """Loss of real generalized PR with n = 2 on a square grid.

    ``intensity``: f(z) = mean_k ((a_k^T z)^2 - y_k)^2 (the WF loss); ``amplitude``:
    f(z) = mean_k (|a_k^T z| - sqrt(y_k))^2 (the RWF/TAF loss); y_k = (a_k^T x)^2, a_k ~ N(0, I).
    The grid spans [-extent ||x||, extent ||x||]^2 and contains +x and -x as grid points when
    ``grid`` is odd and they lie on it; the minima are exactly +x and -x. The a_k are drawn from
    ``seed`` (an int, or a numpy Generator passed through).
    """
    if loss not in ("intensity", "amplitude"):
        raise InputError(f"unknown loss {loss!r}; expected intensity or amplitude")
    if not (2 <= m <= 10_000):
        raise InputError(f"m must be between 2 and 10000; got {m}")
    if not (11 <= grid <= 801):
        raise InputError(f"grid must be between 11 and 801 points; got {grid}")
    xv = np.asarray(x, dtype=np.float64)
    if xv.shape != (2,) or not np.isfinite(xv).all() or np.linalg.norm(xv) == 0:
        raise InputError("x must be two finite numbers, not both zero")
    if not extent > 0:
        raise InputError(f"extent must be positive; got {extent}")
    rng = numpy_rng(seed)
    a = rng.standard_normal((m, 2))
    y = (a @ xv) ** 2
    r = extent * np.linalg.norm(xv)
    z1 = np.linspace(-r, r, grid)
    z2 = np.linspace(-r, r, grid)
    Z1, Z2 = np.meshgrid(z1, z2)  # (grid, grid), rows follow z2
    proj = Z1[..., None] * a[:, 0] + Z2[..., None] * a[:, 1]  # (grid, grid, m)
    if loss == "intensity":
        values = ((proj ** 2 - y) ** 2).mean(-1)
    else:
        values = ((np.abs(proj) - np.sqrt(y)) ** 2).mean(-1)
    return Landscape(z1, z2, values, [xv.tolist(), (-xv).tolist()], a, y, loss)


def loss_at(land: Landscape, z: tuple[float, float]) -> float:
    """The landscape's loss evaluated exactly (not from the grid) at ``z``."""
    p = land.a @ np.asarray(z, dtype=np.float64)
    if land.loss == "intensity":
        return float(((p ** 2 - land.y) ** 2).mean())
    return float(((np.abs(p) - np.sqrt(land.y)) ** 2).mean())
