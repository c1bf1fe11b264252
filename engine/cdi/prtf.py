"""Phase retrieval transfer function (PRTF).

``PRTF(q) = < |mean_j F x_j(k)| / sqrt(I_obs(k)) >_{|k| in shell q}``: how consistently the retrieved
phases agree between independent starts, as a function of spatial frequency. Where the phases agree
it is 1; where they are random it falls towards 0. The objects must be registered (shift, twin,
global phase) to one another first (:func:`engine.cdi.registration.average_objects`).
"""

from __future__ import annotations

import numpy as np

from engine.core.errors import InputError


def radial_frequency(shape: tuple[int, ...]) -> np.ndarray:
    """|k| of each pixel of a centred pattern, in units of the Nyquist frequency (0 centre, 1 edge)."""
    grids = np.meshgrid(*[(np.arange(n) - n // 2) / (n / 2) for n in shape], indexing="ij")
    return np.sqrt(sum(g ** 2 for g in grids))


def prtf(intensity: np.ndarray, objects: np.ndarray | list[np.ndarray], *, mask: np.ndarray | None = None,
         nbins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """PRTF in radial shells.

    Parameters
    ----------
    intensity : centred measured counts (the reference)
    objects : (S, *shape) complex, registered to one another, centred, same shape as ``intensity``
    mask : bool, True = not measured (excluded)
    nbins : int
        Shells between 0 and the Nyquist frequency.

    Returns
    -------
    q : (nbins,) shell centres in units of Nyquist
    prtf : (nbins,) NaN where a shell has no measured pixel
    """
    intensity = np.asarray(intensity)
    objs = np.asarray(objects)
    if objs.ndim == intensity.ndim:
        objs = objs[None]
    if objs.shape[1:] != intensity.shape:
        raise InputError(f"objects of shape {objs.shape[1:]} do not match the pattern {intensity.shape}")
    axes = tuple(range(1, objs.ndim))
    ft = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(objs, axes=axes), axes=axes, norm="ortho"), axes=axes)
    mean_amp = np.abs(ft.mean(axis=0))
    obs = np.ones(intensity.shape, bool) if mask is None else ~np.asarray(mask, bool)
    obs &= intensity > 0  # no ratio where nothing was counted
    ratio = np.zeros(intensity.shape)
    ratio[obs] = mean_amp[obs] / np.sqrt(intensity[obs])
    q = radial_frequency(intensity.shape)
    edges = np.linspace(0, 1, nbins + 1)
    idx = np.clip(np.digitize(q, edges) - 1, 0, nbins)
    sums = np.bincount(idx[obs], weights=ratio[obs], minlength=nbins + 1)[:nbins]
    counts = np.bincount(idx[obs], minlength=nbins + 1)[:nbins]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return 0.5 * (edges[:-1] + edges[1:]), out


def resolution_at(q: np.ndarray, curve: np.ndarray, *, level: float = 1 / np.e) -> float | None:
    """First frequency (units of Nyquist) where the PRTF drops below ``level``; None if it never does."""
    below = np.nonzero(np.nan_to_num(curve, nan=1.0) < level)[0]
    return float(q[below[0]]) if below.size else None
