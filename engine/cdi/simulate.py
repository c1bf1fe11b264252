"""Simulated coherent diffraction patterns with a known object (2D or 3D).

The object is complex: its amplitude comes from an image (or a smooth random volume in 3D), inside an
irregular compact support, with a smooth phase. The pattern is ``|F x|^2`` of the object padded to
``oversampling`` times its extent along each axis, scaled to a photon budget, drawn with Poisson noise,
then given the defects of a real detector: a beamstop (a radius, or the fraction of the photons it
hides), module gaps, a dead border, saturation and hot pixels, and a direct beam off the array centre by
a few pixels. The returned mask is the truth (True = not measured) for scoring; the counts read 0 on the
unmeasured pixels, as a real detector does, except hot pixels, which read far too high.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.cdi.readers import mark_beamstop, mark_gap
from engine.core.errors import InputError
from engine.core.seeds import Seed, numpy_rng


@dataclass
class SimulatedPattern:
    """A simulated pattern and its truth, all centred (zero frequency / object in the middle)."""

    intensity: np.ndarray
    mask: np.ndarray
    obj: np.ndarray
    support: np.ndarray
    params: dict = field(default_factory=dict)


def _smooth_field(shape: tuple[int, ...], rng: np.random.Generator, scale: float) -> np.ndarray:
    """A smooth random field in [-1, 1] with correlation length ~ ``scale`` pixels."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), scale, mode="wrap")
    f -= f.mean()
    return f / max(np.abs(f).max(), 1e-12)


def blob_support(shape: tuple[int, ...], *, roughness: float = 0.15, seed: Seed = 0) -> np.ndarray:
    """An irregular compact particle filling most of ``shape``: a wobbly ellipse / ellipsoid.

    ``seed``: an int, or a numpy Generator passed through (drawn from in place).
    """
    rng = numpy_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(sum(g ** 2 for g in grids))
    wobble = _smooth_field(shape, rng, max(min(shape) / 6, 1.0))
    return r <= 0.95 * (1 - roughness + roughness * wobble)


def complex_object(image: np.ndarray | None, extent: tuple[int, ...], *, phase_range: float = 1.5,
                   seed: Seed = 0) -> tuple[np.ndarray, np.ndarray]:
    """A complex object of shape ``extent`` and its support.

    Parameters
    ----------
    image : ndarray, optional
        2D (grey or RGB) for a 2D object, 3D for a 3D object; resized to ``extent``. None: a smooth
        random amplitude.
    extent : tuple of int
        Object size in pixels per axis.
    phase_range : float
        Peak-to-peak phase in radians (smooth).
    seed : int or numpy Generator
        Draws the amplitude (without an image), the support and the phase, in that order.
    """
    from skimage.transform import resize

    rng = numpy_rng(seed)
    extent = tuple(int(e) for e in extent)
    if image is None:
        amp = 0.5 + 0.5 * _smooth_field(extent, rng, max(min(extent) / 12, 1.0))
    else:
        img = np.asarray(image, dtype=np.float64)
        if img.ndim == 3 and len(extent) == 2 and img.shape[-1] in (3, 4):
            img = img[..., :3].mean(axis=-1)
        if img.ndim != len(extent):
            raise InputError(f"a {img.ndim}D image cannot make a {len(extent)}D object")
        img = resize(img, extent, anti_aliasing=True)
        lo, hi = float(img.min()), float(img.max())
        amp = (img - lo) / (hi - lo) if hi > lo else np.ones(extent)
    support = blob_support(extent, seed=rng)
    amp = (0.2 + 0.8 * amp) * support  # a particle has density everywhere inside it
    phase = 0.5 * phase_range * _smooth_field(extent, rng, max(min(extent) / 5, 1.0))
    return (amp * np.exp(1j * phase)).astype(np.complex64), support


def _object_extent(shape: tuple[int, ...], oversampling: float, object_fraction: float | None) -> tuple[int, ...]:
    if object_fraction is None:
        return tuple(max(4, int(s / oversampling)) for s in shape)
    if not 0 < object_fraction < 0.25:
        raise InputError(f"object_fraction must be in (0, 0.25), got {object_fraction}")
    # a blob fills about half (2D) / 0.3 (3D) of its bounding box
    fill = 0.49 if len(shape) == 2 else 0.3
    side = (object_fraction / fill) ** (1 / len(shape))
    return tuple(max(4, int(round(s * side))) for s in shape)


def beamstop_radius(expected: np.ndarray, fraction: float, center: tuple[int, ...]) -> float:
    """The radius (pixels) of the disc around ``center`` that holds ``fraction`` of the photons of ``expected``."""
    grids = np.ogrid[tuple(slice(0, s) for s in expected.shape)]
    r = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, center))).ravel()
    order = np.argsort(r, kind="stable")
    cum = np.cumsum(expected.ravel()[order], dtype=np.float64)
    i = int(np.searchsorted(cum, fraction * cum[-1]))
    return float(r[order[min(i, r.size - 1)]])


def simulate_pattern(image: np.ndarray | None = None, *, shape: tuple[int, ...] = (512, 512),
                     oversampling: float = 2.5, photons: float = 1e9, beamstop: float = 4.0,
                     gaps: list[tuple[int, int, int]] | None = None, saturation: float | None = None,
                     phase_range: float = 1.5, noise: bool = True, seed: Seed = 0,
                     object_fraction: float | None = None, beamstop_fraction: float | None = None,
                     center_offset: tuple[int, ...] | None = None, dead_border: int = 0,
                     hot_pixels: int = 0) -> SimulatedPattern:
    """Simulate a CDI pattern.

    Parameters
    ----------
    image : ndarray, optional
        Source of the amplitude (see :func:`complex_object`).
    shape : tuple of int
        Detector shape (2D or 3D).
    oversampling : float
        Array size over object size, per axis (>= 2 for a unique solution).
    photons : float
        Expected total counts before the detector defects.
    beamstop : float
        Radius in pixels of the blocked centre (0: none).
    gaps : list of (axis, offset_from_centre, width), optional
        Module gaps.
    saturation : float, optional
        Counts at which pixels saturate: they are clipped and marked not measured.
    noise : bool
        Draw Poisson counts (False: the exact expected intensity).
    seed : int or numpy Generator
        An int gives the object from ``seed`` and the counts from the stream ``(seed, 1)``; a
        Generator is drawn from for both, in that order.
    object_fraction : float, optional
        Fraction of the array the object's support covers (about; e.g. 0.02); replaces ``oversampling``.
    beamstop_fraction : float, optional
        The beamstop is the disc around the direct beam that hides this fraction of the photons
        (replaces ``beamstop``; the radius used is in ``params["beamstop"]``).
    center_offset : tuple of int, optional
        Pixels the direct beam sits off the array centre, per axis. The object then carries the phase
        ramp that shifts its pattern, so ``obj`` is what the counts describe in the array's layout.
    dead_border : int
        Pixels at every edge that read 0 (not measured).
    hot_pixels : int
        Isolated pixels away from the centre reading far above their neighbours (not measured).
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3) or min(shape) < 8:
        raise InputError(f"detector shape {shape} must be 2D or 3D with at least 8 pixels per axis")
    if not 1.0 <= oversampling <= min(shape) / 4:
        raise InputError(f"oversampling {oversampling} must be >= 1 (>= 2 for a unique solution) and leave "
                         f"an object of at least 4 pixels")
    if not photons > 0:
        raise InputError(f"photons must be > 0, got {photons}")
    extent = _object_extent(shape, oversampling, object_fraction)
    obj_small, sup_small = complex_object(image, extent, phase_range=phase_range, seed=seed)
    obj = np.zeros(shape, np.complex64)
    support = np.zeros(shape, bool)
    sl = tuple(slice(s // 2 - e // 2, s // 2 - e // 2 + e) for s, e in zip(shape, extent))
    obj[sl], support[sl] = obj_small, sup_small
    offset = tuple(int(v) for v in center_offset) if center_offset is not None else (0,) * len(shape)
    if len(offset) != len(shape):
        raise InputError(f"center_offset {offset} needs one value per axis of {shape}")
    if any(offset):
        # a phase ramp in the object is a shift of its pattern (exact for whole pixels, periodic)
        grids = np.ogrid[tuple(slice(0, n) for n in shape)]
        obj = obj * np.exp(2j * np.pi * sum(k * g / n for k, g, n in zip(offset, grids, shape)))
        obj = obj.astype(np.complex64)
    ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(obj)))
    expected = np.abs(ft) ** 2
    expected *= photons / expected.sum()
    obj *= np.sqrt(photons / (np.abs(obj) ** 2).sum())  # unitary FFT: the object carries the photons
    rng = numpy_rng(seed, 1)
    counts = rng.poisson(expected).astype(np.float32) if noise else expected.astype(np.float32)
    mask = np.zeros(shape, bool)
    beam = tuple(s // 2 + o for s, o in zip(shape, offset))
    if beamstop_fraction is not None:
        if not 0 <= beamstop_fraction < 1:
            raise InputError(f"beamstop_fraction must be in [0, 1), got {beamstop_fraction}")
        beamstop = beamstop_radius(expected, beamstop_fraction, beam) if beamstop_fraction > 0 else 0.0
    if beamstop > 0:
        mask = mark_beamstop(mask, radius=beamstop, center=beam)
    for axis, off, width in gaps or []:
        mask = mark_gap(mask, axis=axis, start=shape[axis] // 2 + off, width=width)
    if dead_border > 0:
        edge = np.ones(shape, bool)
        edge[tuple(slice(dead_border, n - dead_border) for n in shape)] = False
        mask |= edge
    if saturation is not None:
        sat = counts >= saturation
        counts = np.minimum(counts, saturation)
        mask |= sat
    counts[mask] = 0
    hot = np.zeros(shape, bool)
    if hot_pixels > 0:
        hot_rng = numpy_rng(seed if not isinstance(seed, np.random.Generator) else rng, 2)
        far = ~mask & (np.sqrt(sum((g - c) ** 2 for g, c in zip(np.ogrid[tuple(slice(0, n) for n in shape)],
                                                                  beam))) > min(shape) / 4)
        idx = np.flatnonzero(far)
        pick = hot_rng.choice(idx, size=min(int(hot_pixels), idx.size), replace=False)
        hot.flat[pick] = True
        counts.flat[pick] = np.float32(max(float(counts.max()), 1e3)) * hot_rng.uniform(0.2, 1.0, pick.size)
        mask |= hot
    params = {"shape": list(shape), "oversampling": oversampling, "photons": photons, "beamstop": beamstop,
              "gaps": [list(g) for g in gaps or []], "saturation": saturation, "phase_range": phase_range,
              "noise": noise, "seed": seed if not isinstance(seed, np.random.Generator) else None,
              "object_extent": list(extent), "object_fraction": float(support.mean()),
              "beamstop_fraction": beamstop_fraction, "center_offset": list(offset),
              "dead_border": int(dead_border), "hot_pixels": int(hot.sum()),
              "photons_hidden_fraction": float(1 - counts[~mask].sum() / max(float(expected.sum()), 1e-30))}
    return SimulatedPattern(intensity=counts, mask=mask, obj=obj, support=support, params=params)
