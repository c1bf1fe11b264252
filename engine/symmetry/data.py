"""Data for learned Fourier phase retrieval: small non-negative objects in a zero-padded canvas,
the symmetries of ``|F x|`` (circular shift, conjugate flip) and the symmetry-breaking restriction.

An object of side ``object_size`` sits in a ``canvas`` x ``canvas`` field of zeros. For a real
image, ``|F x|`` (the 2-D DFT) is unchanged by a circular shift and by the flip
``x(r) -> x(-r)`` (indices taken modulo the canvas side), so a network that sees only ``|F x|``
cannot tell these copies apart.

The base objects are centred (centre of mass at the canvas centre) and carry a light ramp (brighter
toward the top), so that the base set has a natural orientation: the setting ``none`` holds no
symmetric pairs. The four settings add the symmetric copies: ``flip`` flips half of the objects,
``shift`` moves each to a random position inside the canvas, ``shift+flip`` does both.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from engine.core.errors import InputError
from engine.core.seeds import Seed, numpy_rng

#: the symmetry settings: which symmetric copies appear in a data set
SETTINGS = ("none", "flip", "shift", "shift+flip")
#: the symmetry group each setting's data carry
GROUPS = {"none": (), "flip": ("flip",), "shift": ("shift",), "shift+flip": ("shift", "flip")}
#: scikit-image's bundled grey images used for textured objects (no download needed)
SKIMAGE_IMAGES = ("camera", "coins", "moon", "text", "page", "clock", "brick", "grass", "gravel", "cell")


@dataclass(frozen=True)
class DataConfig:
    """Sizes of the generated data.

    Attributes
    ----------
    canvas : side of the zero-padded canvas (the DFT size)
    object_size : side of the box each object is drawn in
    ramp : brightness lost from the top to the bottom row of an object (its natural orientation)
    """

    canvas: int = 32
    object_size: int = 16
    ramp: float = 0.6

    def __post_init__(self) -> None:
        if not 4 <= self.object_size <= self.canvas // 2 + self.canvas // 4:
            raise InputError(f"object_size must be between 4 and 3/4 of the canvas ({self.canvas}), "
                             f"not {self.object_size}")
        if not 0.0 <= self.ramp < 1.0:
            raise InputError(f"ramp must be in [0, 1), not {self.ramp}")


def check_setting(setting: str) -> str:
    """``setting`` if it is one of :data:`SETTINGS`, else an InputError."""
    if setting not in SETTINGS:
        raise InputError(f"unknown symmetry setting {setting!r}; expected one of {', '.join(SETTINGS)}")
    return setting


# ----------------------------------------------------------------------------- objects

@lru_cache(maxsize=1)
def _skimage_bank() -> tuple[np.ndarray, ...]:
    import skimage.data

    out = []
    for name in SKIMAGE_IMAGES:
        img = np.asarray(getattr(skimage.data, name)(), dtype=np.float32)
        if img.ndim == 3:
            img = img[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        out.append(img / 255.0)
    return tuple(out)


def _shape_mask(rng: np.random.Generator, s: int) -> np.ndarray:
    """A union of one to three random ellipses, rectangles and triangles in an ``s`` x ``s`` box."""
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) + 0.5
    mask = np.zeros((s, s), dtype=bool)
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.integers(3)
        cy, cx = rng.uniform(0.25 * s, 0.75 * s, size=2)
        if kind == 0:  # rotated ellipse
            a, b = rng.uniform(0.12 * s, 0.45 * s, size=2)
            t = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
            v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
            mask |= (u / a) ** 2 + (v / b) ** 2 <= 1
        elif kind == 1:  # axis-aligned rectangle
            h, w = rng.uniform(0.2 * s, 0.7 * s, size=2)
            mask |= (np.abs(yy - cy) <= h / 2) & (np.abs(xx - cx) <= w / 2)
        else:  # triangle from three random vertices
            p = rng.uniform(0, s, size=(3, 2))
            d = [(xx - p[i, 0]) * (p[(i + 1) % 3, 1] - p[i, 1]) - (yy - p[i, 1]) * (p[(i + 1) % 3, 0] - p[i, 0])
                 for i in range(3)]
            mask |= ((d[0] >= 0) & (d[1] >= 0) & (d[2] >= 0)) | ((d[0] <= 0) & (d[1] <= 0) & (d[2] <= 0))
    if not mask.any():
        mask[s // 2, s // 2] = True
    return mask


def _object(rng: np.random.Generator, cfg: DataConfig) -> np.ndarray:
    """One object in an ``object_size`` box: a random shape, flat-shaded or textured by an image crop."""
    s = cfg.object_size
    mask = _shape_mask(rng, s)
    if rng.random() < 0.5:
        bank = _skimage_bank()
        img = bank[int(rng.integers(len(bank)))]
        k = int(rng.integers(1, 4))  # crop k*s pixels and average k x k blocks: textures of several scales
        y0 = int(rng.integers(img.shape[0] - k * s + 1))
        x0 = int(rng.integers(img.shape[1] - k * s + 1))
        crop = img[y0:y0 + k * s, x0:x0 + k * s].reshape(s, k, s, k).mean(axis=(1, 3))
        tex = 0.3 + 0.7 * crop
    else:
        tex = np.full((s, s), rng.uniform(0.5, 1.0), dtype=np.float32)
    ramp = 1.0 - cfg.ramp * np.linspace(0.0, 1.0, s, dtype=np.float32)[:, None]
    return (mask * tex * ramp).astype(np.float32)


def base_objects(n: int, *, config: DataConfig | None = None, seed: Seed = 0) -> np.ndarray:
    """``n`` centred objects on the canvas, shape ``(n, canvas, canvas)``, float32 in [0, 1].

    The set has one natural orientation (the ramp) and one position (centre of mass at the canvas
    centre): the setting ``none``.
    """
    cfg = config or DataConfig()
    if n < 1:
        raise InputError(f"n must be a positive number of objects, not {n}")
    rng = numpy_rng(seed)
    out = np.zeros((n, cfg.canvas, cfg.canvas), dtype=np.float32)
    s, c = cfg.object_size, cfg.canvas
    for i in range(n):
        out[i, (c - s) // 2:(c - s) // 2 + s, (c - s) // 2:(c - s) // 2 + s] = _object(rng, cfg)
    return centre(out)


# ----------------------------------------------------------------------------- symmetries

def flip(x: np.ndarray) -> np.ndarray:
    """The conjugate flip ``x(-r)`` with indices modulo the canvas (last two axes); same ``|F x|``."""
    return np.roll(x[..., ::-1, ::-1], 1, axis=(-2, -1))


def shift(x: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Circular shift by ``(dy, dx)`` pixels (last two axes); same ``|F x|``."""
    return np.roll(x, (int(dy), int(dx)), axis=(-2, -1))


def fourier_magnitude(x: np.ndarray) -> np.ndarray:
    """``|F x|`` over the last two axes (unnormalised DFT), DC at index (0, 0)."""
    return np.abs(np.fft.fft2(x, axes=(-2, -1))).astype(np.float32)


def centre_of_mass(x: np.ndarray) -> np.ndarray:
    """Circular centre of mass ``(row, col)`` of each image (last two axes), in [0, side).

    Circular means are exactly equivariant under circular shifts, so centring does not depend on
    where an object wraps around the canvas edge.
    """
    out = []
    for axis, other in ((-2, -1), (-1, -2)):
        n = x.shape[axis]
        profile = x.sum(axis=other)
        phase = np.exp(2j * np.pi * np.arange(n) / n)
        ang = np.angle(profile @ phase)
        out.append(np.mod(ang * n / (2 * np.pi), n))
    return np.stack(out, axis=-1)


def centre(x: np.ndarray) -> np.ndarray:
    """Shift each image (last two axes) so that its centre of mass rounds to the canvas centre."""
    x = np.asarray(x, dtype=np.float32)
    single = x.ndim == 2
    xs = x[None] if single else x.reshape(-1, *x.shape[-2:])
    n = np.array(xs.shape[-2:])
    com = centre_of_mass(xs)
    # signed offset in [-n/2, n/2): the short way round; rounded to 1e-4 first, so that float noise in
    # the centre of mass of a shifted copy cannot tip a half-pixel tie the other way
    d = np.round(np.mod(n // 2 - com + n / 2, n) - n / 2, 4)
    # floor(d + 1/2), not round-half-even: it commutes with integer shifts, ties included
    steps = np.floor(d + 0.5).astype(int)
    out = np.stack([shift(img, dy, dx) for img, (dy, dx) in zip(xs, steps)])
    return out[0] if single else out.reshape(x.shape)


def _flip_score(img: np.ndarray) -> tuple[float, float]:
    """Mass above minus mass below the centre-of-mass row (then left minus right): negated by a flip."""
    com = centre_of_mass(img)
    scores = []
    for axis, other, c in ((0, 1, com[0]), (1, 0, com[1])):
        n = img.shape[axis]
        d = np.mod(np.arange(n) - c + n / 2, n) - n / 2  # signed circular distance to the centre
        profile = img.sum(axis=other)
        scores.append(float(profile @ np.tanh(-d)))
    return scores[0], scores[1]


def _choose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Of two flip-related images, the one heavier above its centre of mass (a rule the pair agrees on:
    the score of one is minus the other's). Ties go to the left half, then to the lexicographically
    larger array."""
    tol = 1e-6 * max(float(a.sum()), 1e-12)
    for s in _flip_score(a):
        if s > tol:
            return a
        if s < -tol:
            return b
    fa, fb = a.ravel(), b.ravel()
    diff = np.nonzero(fa != fb)[0]
    return a if not diff.size or fa[diff[0]] > fb[diff[0]] else b


def canonical_flip(img: np.ndarray) -> np.ndarray:
    """One of ``img`` and ``flip(img)``, the same for both: the one heavier above its centre of mass."""
    return _choose(img, flip(img))


def canonicalize(x: np.ndarray, setting: str) -> np.ndarray:
    """The symmetry-breaking restriction: map each image to its class representative under ``setting``.

    ``shift``: centre of mass at the canvas centre; ``flip``: :func:`canonical_flip`; ``shift+flip``:
    of the centred image and the centred flipped image, the one :func:`canonical_flip`'s rule picks.
    Symmetric copies map to the same representative, and the map is idempotent.
    """
    group = GROUPS[check_setting(setting)]
    x = np.asarray(x, dtype=np.float32)
    if not group:
        return x
    flat = x.reshape(-1, *x.shape[-2:])
    if group == ("shift",):
        return centre(x)
    if group == ("flip",):
        out = [canonical_flip(img) for img in flat]
    else:  # centring and flipping need not commute at half-pixel ties: centre both copies
        a, b = centre(flat), centre(flip(flat))
        out = [_choose(ai, bi) for ai, bi in zip(a, b)]
    return np.stack(out).reshape(x.shape)


def symmetric_copies(x: np.ndarray, setting: str, *, config: DataConfig | None = None) -> np.ndarray:
    """Every copy of the centred image ``x`` that the setting's data can hold, ``(k, canvas, canvas)``.

    Their mean is what a network trained without the restriction tends to output.
    """
    del config  # the copies depend on the setting only; kept for a uniform signature
    group = GROUPS[check_setting(setting)]
    base = [x]
    if "flip" in group:
        base.append(flip(x))
    if "shift" not in group:
        return np.stack(base)
    out = []
    for b in base:
        for dy, dx in _valid_shifts(b):
            out.append(shift(b, dy, dx))
    return np.stack(out)


def _valid_shifts(img: np.ndarray) -> list[tuple[int, int]]:
    """The circular shifts that keep the object's bounding box inside the canvas (no wrap)."""
    n0, n1 = img.shape
    rows, cols = np.nonzero(img.sum(axis=1))[0], np.nonzero(img.sum(axis=0))[0]
    if not rows.size:
        return [(0, 0)]
    return [(dy, dx) for dy in range(-int(rows.min()), n0 - int(rows.max()))
            for dx in range(-int(cols.min()), n1 - int(cols.max()))]


def apply_setting(x: np.ndarray, setting: str, *, seed: Seed = 0) -> np.ndarray:
    """Copies of the base objects ``x`` as the setting's data hold them: flipped with probability 1/2
    (``flip``), moved to a uniform random position that keeps the object inside the canvas (``shift``)."""
    group = GROUPS[check_setting(setting)]
    rng = numpy_rng(seed)
    out = np.array(x, dtype=np.float32, copy=True)
    for i in range(out.shape[0]):
        # draw both choices for every setting, so that the settings share one stream of objects
        do_flip = rng.random() < 0.5
        u = rng.random(2)
        if "flip" in group and do_flip:
            out[i] = flip(out[i])
        if "shift" in group:
            shifts = _valid_shifts(out[i])
            ys = sorted({s[0] for s in shifts})
            xs = sorted({s[1] for s in shifts})
            out[i] = shift(out[i], ys[int(u[0] * len(ys))], xs[int(u[1] * len(xs))])
    return out


def network_input(x: np.ndarray) -> np.ndarray:
    """What a network sees of ``x``: ``log(1 + |F x|)``, DC moved to the centre, scaled to about [0, 1]."""
    mag = fourier_magnitude(x)
    n = x.shape[-1] * x.shape[-2]
    return (np.log1p(np.fft.fftshift(mag, axes=(-2, -1))) / np.log1p(n)).astype(np.float32)


def make_split(n: int, setting: str, *, restricted: bool, config: DataConfig | None = None,
               seed: int = 0, split: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One data split of a setting: ``(inputs, targets, truth)``.

    ``truth`` holds the objects as the setting draws them; ``targets`` are the same objects, or their
    class representatives when ``restricted`` (the symmetry-breaking restriction); ``inputs`` are
    :func:`network_input` of the truth (identical for every copy of a class). Every setting draws
    the same base objects for one ``(seed, split)``; ``split`` numbers independent sets (train, test).
    """
    cfg = config or DataConfig()
    base = base_objects(n, config=cfg, seed=numpy_rng(seed, split, 0))
    truth = apply_setting(base, setting, seed=numpy_rng(seed, split, 1))
    targets = canonicalize(truth, setting) if restricted else truth
    return network_input(truth), targets, truth
