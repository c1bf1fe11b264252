"""Plain-language warnings about a pattern's mask and a reconstruction's outcome.

Each warning is one or two sentences that name the cause (the beamstop, the support, the fit) and say
what to do. :func:`beamstop_warning` looks at the data before solving; :func:`result_warnings` reads the
summary of a finished reconstruction.
"""

from __future__ import annotations

import math

import numpy as np

#: the flat inward extrapolation (see :func:`beamstop_info`) says at least this fraction of the photons
#: is hidden: the centre of the pattern, which fixes the object's size and the autocorrelation
#: support, is missing. The bound reads about half the true fraction: 0.13-0.23 on simulated 512^2
#: patterns whose beamstop hides 28-52 % of the photons (bench/cdi_realistic.py), 0.08 for a 1-pixel
#: beamstop that hides 8 %.
HIDDEN_FRACTION_WARN = 0.1
#: expected Poisson log-likelihood per pixel of a correct model (half the deviance of one count, which
#: tends to 0.5 at high counts and is below it at low counts; :func:`engine.cdi.fourier.poisson_llk`)
POISSON_LLK = 0.5
#: a fit this many times worse than Poisson noise is poor whatever the counts
POISSON_FACTOR = 10.0
#: real data are never fitted to Poisson noise (coherence, background, detector response): a relative
#: misfit ``e`` on a pixel of ``I`` counts costs ``I (e - log(1 + e))``; a fit worse than a 50 % misfit
#: on every pixel is wrong, not just imperfect (a good fit of bright data gives 10-30 % of that bound)
MAX_RELATIVE_MISFIT = 0.5
#: support collapse: the final support is below a third of what was expected from the start (the
#: autocorrelation spans twice the object along each axis, so it shrinks by 2**ndim when right)
COLLAPSE_FACTOR = 3.0
#: a support smaller than this many pixels holds no object
MIN_SUPPORT_PIXELS = 16
#: support explosion: a support this large a fraction of the array leaves an oversampling ratio below
#: 2.5, under which the phases are not determined
EXPLODE_FRACTION = 0.4
#: ... or it more than tripled and passed half of 1/2**ndim of the array (an oversampling ratio below
#: about 2.8 per axis): a support that grows that much from its start is chasing the noise
GROWTH_FACTOR = 3.0
GROWN_FRACTION = 0.5
#: stall: over the last half of the support updates the size moved by less than this fraction
STALL_CHANGE = 0.02


def _centre_radius(shape: tuple[int, ...]) -> np.ndarray:
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    return np.sqrt(sum((g - s // 2) ** 2 for g, s in zip(grids, shape)))


def beamstop_info(intensity: np.ndarray, mask: np.ndarray | None) -> dict:
    """How much of the centre of a (centred) pattern the mask hides.

    The photons behind the mask are estimated from the mean measured count at the same distance from
    the centre; radii with no measured pixel take the value of the nearest measured radius outside
    them. The central speckle is brighter than its surroundings, so ``hidden_fraction`` is a lower
    bound.

    Returns
    -------
    dict
        ``hidden_fraction`` (estimated photons behind the mask / estimated total), ``radius`` (the
        equivalent radius in pixels, sqrt(area / pi), of the masked region at the centre; the direct
        beam is often a few pixels off the array centre, so the region nearest to it is taken; 0 when
        the centre is measured), ``centre_hidden`` (bool: ``hidden_fraction`` >=
        :data:`HIDDEN_FRACTION_WARN` and some of the centre is masked).
    """
    a = np.nan_to_num(np.asarray(intensity, dtype=np.float64))
    m = np.zeros(a.shape, bool) if mask is None else np.asarray(mask).astype(bool)
    if not m.any():
        return {"hidden_fraction": 0.0, "radius": 0.0, "centre_hidden": False}
    r = np.rint(_centre_radius(a.shape)).astype(np.int64).ravel()
    obs = ~m.ravel()
    nr = int(r.max()) + 1
    n_obs = np.bincount(r, weights=obs, minlength=nr)
    n_all = np.bincount(r, minlength=nr)
    s_obs = np.bincount(r, weights=np.where(obs, a.ravel(), 0), minlength=nr)
    mean = np.full(nr, np.nan)
    have = n_obs > 0
    mean[have] = s_obs[have] / n_obs[have]
    # inward flat extrapolation: each empty radius takes the nearest measured radius outside it
    for i in range(nr - 2, -1, -1):
        if not have[i]:
            mean[i] = mean[i + 1]
    mean = np.nan_to_num(mean)
    hidden = float(((n_all - n_obs) * mean).sum())
    measured = float(s_obs.sum())
    frac = hidden / (hidden + measured) if hidden + measured > 0 else 0.0
    radius = _central_mask_radius(m)
    return {"hidden_fraction": round(frac, 4), "radius": round(radius, 1),
            "centre_hidden": bool(frac >= HIDDEN_FRACTION_WARN and radius > 0)}


def _central_mask_radius(m: np.ndarray, *, search: int = 6) -> float:
    """Equivalent radius of the masked region nearest the array centre (within ``search`` pixels)."""
    from scipy import ndimage

    centre = tuple(s // 2 for s in m.shape)
    window = tuple(slice(max(c - search, 0), c + search + 1) for c in centre)
    if not m[window].any():
        return 0.0
    labels, _ = ndimage.label(m)
    near = labels[window]
    ids, counts = np.unique(near[near > 0], return_counts=True)
    area = float((labels == ids[np.argmax(counts)]).sum())
    return math.sqrt(area / math.pi) if m.ndim == 2 else (3 * area / (4 * math.pi)) ** (1 / 3)


def beamstop_warning(intensity: np.ndarray, mask: np.ndarray | None) -> str | None:
    """A sentence when the mask hides much of the central speckle, else None (see :func:`beamstop_info`)."""
    info = beamstop_info(intensity, mask)
    if not info["centre_hidden"]:
        return None
    return (f"The beamstop (masked centre, about {info['radius']:.0f} pixels in radius) hides at least "
            f"{100 * info['hidden_fraction']:.0f} % of the photons, including part of the central speckle "
            f"that sets the object's size, so a support estimated from the autocorrelation may be too "
            f"small or too large: check the support size history and the fit, and give a support "
            f"(--support FILE, or draw one on the page) about the size of the object if they look wrong.")


def _mean_counts(summary: dict) -> float | None:
    """Measured photons per measured pixel, from whichever fields the summary has."""
    st = summary.get("input_stats") or {}
    photons = summary.get("photons", st.get("photons"))
    if photons is None:
        return None
    observed = summary.get("observed_pixels")
    if observed is None:
        shape = summary.get("shape") or st.get("shape")
        masked = (summary.get("mask") or {}).get("masked_total", st.get("masked")) or 0
        if shape is None:
            return None
        observed = int(np.prod(shape)) - int(masked)
    return float(photons) / max(int(observed), 1)


def llk_bound(mean_counts: float | None) -> float:
    """The largest Poisson log-likelihood per pixel a usable fit gives (see the module constants)."""
    e = MAX_RELATIVE_MISFIT
    rel = 0.0 if mean_counts is None else (e - math.log1p(e)) * mean_counts
    return max(POISSON_FACTOR * POISSON_LLK, rel)


def result_warnings(summary: dict) -> list[str]:
    """Plain sentences about what went wrong in a reconstruction (empty when nothing did).

    Reads ``support_history`` (support size in pixels after each update, the initial support first),
    ``llk_per_pixel``, ``support_source`` ("autocorrelation" or "user"), ``shape``, the photon count
    (``photons``, or ``input_stats``) and, when present, ``beamstop`` (a :func:`beamstop_info` dict).
    Missing fields skip the checks that need them.
    """
    out: list[str] = []
    hist = [float(v) for v in summary.get("support_history") or []]
    source = summary.get("support_source")
    shape = summary.get("shape") or (summary.get("input_stats") or {}).get("shape")
    size = int(np.prod(shape)) if shape else None
    ndim = len(shape) if shape else 2
    llk = summary.get("llk_per_pixel")
    llk = None if llk is None or not np.isfinite(float(llk)) else float(llk)
    bound = llk_bound(_mean_counts(summary))
    poor = llk is not None and llk > bound
    beam = summary.get("beamstop") or {}
    auto = source == "autocorrelation"
    where = "give a support (--support FILE, or draw one on the page) about the size of the object"

    shape_problem = False
    if len(hist) >= 2 and hist[0] > 0:
        n0, nf = hist[0], hist[-1]
        expected = n0 / (2 ** ndim if auto else 1)
        if nf < MIN_SUPPORT_PIXELS or nf < expected / COLLAPSE_FACTOR:
            shape_problem = True
            out.append(f"The support collapsed from {n0:,.0f} to {nf:,.0f} pixels: the shrink-wrap threshold "
                       f"cut into the object. Check that the beamstop, gaps and dead pixels are masked, "
                       f"then {where}.")
        elif size and (nf >= EXPLODE_FRACTION * size
                       or (nf > GROWTH_FACTOR * n0 and nf >= GROWN_FRACTION * size / 2 ** ndim)):
            shape_problem = True
            how = f"grew from {n0:,.0f} to" if nf > n0 else f"started at {n0:,.0f} pixels and ended at"
            out.append(f"The support {how} {nf:,.0f} pixels ({100 * nf / size:.0f} % of the array), too "
                       f"large for the phases to be determined. Check that the beamstop, gaps and dead "
                       f"pixels are masked, then {where}.")
    if not shape_problem and poor and len(hist) >= 4:
        tail = hist[len(hist) // 2:]
        if max(tail) - min(tail) < STALL_CHANGE * max(max(tail), 1.0):
            out.append(f"The support stopped changing at {hist[-1]:,.0f} pixels while the fit is still poor: "
                       f"the shrink-wrap cannot recover from a wrong support. "
                       f"{where[0].upper()}{where[1:]}.")
    if poor:
        ratio = llk / POISSON_LLK
        out.append(f"The fit is poor: the log-likelihood is {llk:,.4g} per pixel, {ratio:,.0f} times what "
                   f"Poisson noise gives and above the {bound:,.4g} that a usable fit of these counts stays "
                   f"under. "
                   f"Mask the beamstop, gaps and dead pixels, {where}, or run longer.")
    if auto and beam.get("centre_hidden"):
        out.append(f"The support was estimated from the autocorrelation while the beamstop hides the "
                   f"centre of the pattern (at least {100 * float(beam.get('hidden_fraction', 0)):.0f} % "
                   f"of the photons, a lower bound), which sets the object's size: the estimate may be "
                   f"wrong even when the fit looks good. Compare the support with what you expect of the "
                   f"sample; if it differs, {where}.")
    return out
