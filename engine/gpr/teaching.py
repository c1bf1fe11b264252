"""Teaching panels: why Fourier phase retrieval has symmetries, and how benign generalized PR looks.

* :func:`fourier_symmetries`: circular shift, conjugate flip x(-r)^* and a global phase leave |F x|
  unchanged, while they change the image; the returned maximum differences show both.
* :func:`landscape_n2`: the loss of generalized PR for a real signal in R^2 on a grid, with its two
  global minima +x and -x.
* :meth:`Landscape.local_minima`: the true local minima of that loss, counted exactly along rays
  (not from the grid, whose flat valleys hold many spurious "minima"), and :func:`minima_caption`.

Why rays: for a fixed direction u the loss f(r u) is a convex quadratic in r (amplitude loss) or in
s = r^2 (intensity loss), with one minimiser r*(u) > 0. So the local minima of f in the plane are
exactly the points r*(u) u at the local minima of the profile h(u) = f(r*(u) u) on the circle, a
1-D search that a fine angle grid and a bounded scalar refinement settle. f(z) = f(-z), so minima
come in pairs +-z.
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


@dataclass(frozen=True)
class Minimum:
    """One local minimum of a :class:`Landscape`'s loss.

    Attributes
    ----------
    z : (float, float)
        Where it is.
    loss : float
        The loss there (exact, not from the grid).
    zero_loss : bool
        The data are fitted exactly there (loss below 1e-9 of f(0)): a global minimum.
    is_x : bool
        It is +x or -x (within 1e-6 of ||x||).
    """

    z: tuple[float, float]
    loss: float
    zero_loss: bool
    is_x: bool


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
        """Strict local minima among the interior grid points (8 neighbours).

        Along a narrow flat valley the grid has many such points that are not minima of the loss
        (22 for the default x with m = 2, seed 0, on a 121 grid): count minima with :meth:`local_minima` instead.
        """
        v = self.values
        c = v[1:-1, 1:-1]
        is_min = np.ones_like(c, dtype=bool)
        for di in (-1, 0, 1):
            for dj in (-1, 0, 1):
                if di or dj:
                    is_min &= c < v[1 + di:v.shape[0] - 1 + di, 1 + dj:v.shape[1] - 1 + dj]
        ii, jj = np.nonzero(is_min)
        return [(float(self.z1[j + 1]), float(self.z2[i + 1])) for i, j in zip(ii, jj)]

    def ray_profile(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(r*, h): the best radius along each direction (cos t, sin t) and the loss there."""
        u = np.stack([np.cos(theta), np.sin(theta)], axis=-1)
        p = u @ self.a.T  # (..., m)
        if self.loss == "intensity":
            q, t = p ** 2, self.y  # f = mean((s q - y)^2), s = r^2
        else:
            q, t = np.abs(p), np.sqrt(self.y)  # f = mean((r q - b)^2)
        qq = np.maximum((q * q).mean(-1), 1e-300)
        qt = (q * t).mean(-1)
        c = np.maximum(qt, 0.0) / qq
        # the residual form, not mean(t^2) - qt^2 / qq: no cancellation near a zero-loss minimum
        h = ((c[..., None] * q - t) ** 2).mean(-1)
        return (np.sqrt(c) if self.loss == "intensity" else c), h

    def local_minima(self, *, samples: int = 2048) -> list[Minimum]:
        """The local minima of the loss in the plane (both signs), lowest loss first.

        The profile along rays is sampled at ``samples`` angles in [0, pi), each sampled minimum is
        refined by a bounded scalar search between its neighbours, and refinements that meet (within
        1e-7 rad) are merged; each angle gives the pair +-z. Independent of the plotting grid.
        """
        from scipy.optimize import minimize_scalar

        if not 16 <= samples <= 1_000_000:
            raise InputError(f"samples must be between 16 and 1000000; got {samples}")
        d = np.pi / samples
        theta = np.arange(samples) * d
        _, h = self.ray_profile(theta)
        prev, nxt = np.roll(h, 1), np.roll(h, -1)  # h has period pi
        # strict on one side: a plateau of two equal samples counts once
        cand = np.nonzero((h < prev) & (h <= nxt))[0]

        def prof(t: float) -> float:
            return float(self.ray_profile(np.array([t]))[1][0])

        angles: list[float] = []
        for i in cand:
            t0 = theta[i]
            res = minimize_scalar(prof, bounds=(t0 - d, t0 + d), method="bounded",
                                  options={"xatol": 1e-12, "maxiter": 200})
            t = float(res.x) if res.fun <= h[i] else float(t0)
            t = t % np.pi
            if not any(min(abs(t - a), np.pi - abs(t - a)) < 1e-7 for a in angles):
                angles.append(t)
        f0 = loss_at(self, (0.0, 0.0))
        xv = np.asarray(self.minima[0], dtype=np.float64)
        out = []
        for t in angles:
            r = float(self.ray_profile(np.array([t]))[0][0])
            for sgn in (1.0, -1.0):
                z = sgn * r * np.array([np.cos(t), np.sin(t)])
                f = loss_at(self, tuple(z))
                near_x = min(np.linalg.norm(z - xv), np.linalg.norm(z + xv)) <= 1e-6 * np.linalg.norm(xv)
                out.append(Minimum((float(z[0]), float(z[1])), f, f <= 1e-9 * f0, bool(near_x)))
        return sorted(out, key=lambda mm: (round(mm.loss / max(f0, 1e-300), 9), -mm.z[0], -mm.z[1]))


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


def _pair(z: tuple[float, float]) -> str:
    return f"±({z[0]:.2f}, {z[1]:.2f})"


def minima_caption(land: Landscape, minima: list[Minimum] | None = None) -> str:
    """One sentence on the landscape's local minima: how many, which are +-x, which fit the data
    exactly and which are spurious (with their loss)."""
    mins = land.local_minima() if minima is None else minima
    pairs = [mm for mm in mins if mm.z[0] > 0 or (mm.z[0] == 0 and mm.z[1] > 0)]  # one of each +-z
    n = len(mins)
    head = f"{n} local minim{'um' if n == 1 else 'a'} (found along rays, not from the grid): "
    parts = []
    for mm in pairs:
        if mm.is_x:
            parts.append(f"{_pair(mm.z)} = ±x, global (the sign ambiguity)")
        elif mm.zero_loss:
            parts.append(f"{_pair(mm.z)}, also zero loss: {land.a.shape[0]} measurements do not determine x")
        else:
            parts.append(f"{_pair(mm.z)}, spurious (loss {mm.loss:.3g}): gradient descent started near it "
                         "stops there")
    if not any(not mm.zero_loss for mm in pairs):
        parts.append("no spurious minimum")
    return head + "; ".join(parts) + "."
