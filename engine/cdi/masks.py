"""Which pixels of a diffraction pattern were not measured (2D or 3D, numpy / scipy).

A detector reads 0 behind the beamstop, in the gaps between modules and on a dead border; fitting those
zeros as measured counts pulls the solver towards a wrong object. Masking *every* zero is wrong too: at
low counts most zeros are real measurements (a pixel expecting 0.3 photons reads 0 three times in four).
:func:`unmeasured_mask` tells them apart by the exposure around them: a connected group of ``k`` zeros
whose bordering pixels hold ``lam`` counts each would read all zeros by chance with probability
``exp(-k * lam)``; when that is negligible the group was not measured.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from engine.core.errors import InputError

#: zero modes of :func:`unmeasured_mask`
ZERO_MODES = ("auto", "all", "none")
#: a zero group is masked only when the median count of its bordering pixels is at least this; the
#: bordering pixels are non-zero by construction, so a median of 3 means an exposure of about 3
#: photons per pixel, where a zero is already a 5 % event
MIN_BORDER_COUNTS = 3.0
#: extra evidence on top of the number of pixels tested: a group is masked when the chance of its zeros
#: is below ``1 / (pixels * SURPRISE)`` (about one false call per ``SURPRISE`` patterns)
SURPRISE = 1e3
#: groups of fewer pixels than this are the minima of the speckle pattern far more often than dead
#: pixels: near a point where the far field vanishes the intensity grows as the squared distance, so a
#: pixel reads 0 next to bright neighbours with a chance that falls only as 1 / counts, not as
#: exp(-counts); such small groups are masked only next to very bright pixels
MIN_GROUP_PIXELS = 4
#: border median above which a small group (a dead pixel) is masked anyway
SMALL_GROUP_MIN_COUNTS = 1e4
#: a dead border strip is masked when the photons expected on it (from the lines next to it) exceed this
BORDER_MIN_PHOTONS = 20.0
#: a dead border is at most this fraction of an axis (beyond that it is the pattern, not the border)
BORDER_MAX_FRACTION = 0.25
#: a hot pixel holds more than HOT_RATIO times the largest of its neighbours ...
HOT_RATIO = 10.0
#: ... and at least this many counts (a few counts over empty neighbours is Poisson noise)
HOT_MIN_COUNTS = 20.0

STAT_KEYS = ("mode", "auto_masked", "zero_groups", "zeros_total", "negative", "nan", "hot", "saturated",
             "user", "masked_total")


def _user_mask(mask, shape: tuple[int, ...]) -> np.ndarray:
    """A user mask (nonzero = not measured) as a bool array of ``shape`` (singleton axes dropped)."""
    m = np.asarray(mask)
    if m.ndim > len(shape):
        m = m.reshape([s for s in m.shape if s != 1])
    try:
        return np.broadcast_to(np.nan_to_num(m) != 0, shape).copy()
    except ValueError:
        raise InputError(f"the mask has shape {m.shape} but the pattern has shape {shape}") from None


def _zero_groups(intensity: np.ndarray, zeros: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, int]:
    """Zero groups bordered by well-exposed pixels.

    ``zeros``: candidate pixels (value 0, not otherwise masked); ``other``: pixels already not measured.
    Returns the mask of the groups found and their number.
    """
    structure = ndimage.generate_binary_structure(intensity.ndim, 1)
    labels, n = ndimage.label(zeros, structure=structure)
    if n == 0:
        return np.zeros(intensity.shape, bool), 0
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    # relabel by size so that a pixel bordering two groups is counted in the larger one's ring (the
    # ring is taken with a maximum filter over the labels, which keeps the largest label)
    order = np.argsort(sizes[1:], kind="stable")
    rank = np.zeros(n + 1, np.int64)
    rank[order + 1] = np.arange(1, n + 1)
    labels = rank[labels]
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    ring_label = ndimage.maximum_filter(labels, footprint=structure, mode="constant", cval=0)
    ring = (labels == 0) & (ring_label > 0)
    exposed = ring & ~other
    idx = np.arange(1, n + 1)
    n_exposed = np.bincount(ring_label[exposed], minlength=n + 1)[1:]
    n_unmeasured = np.bincount(ring_label[ring & other], minlength=n + 1)[1:]
    med = np.zeros(n)
    has = n_exposed > 0
    if has.any():
        med[has] = ndimage.median(intensity, labels=np.where(exposed, ring_label, 0), index=idx[has])
    threshold = math.log(intensity.size * SURPRISE)
    k = sizes[1:]
    hit = has & (med >= MIN_BORDER_COUNTS) & (k * med >= threshold) \
        & ((k >= MIN_GROUP_PIXELS) | (med >= SMALL_GROUP_MIN_COUNTS))
    # zeros enclosed by pixels that are themselves not measured (between two masked modules)
    hit |= ~has & (n_unmeasured > 0)
    keep = np.zeros(n + 1, bool)
    keep[1:] = hit
    return keep[labels], int(hit.sum())


def _dead_border(intensity: np.ndarray, zero_or_masked: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Edge slices that read nothing while the slices next to them are exposed."""
    out = np.zeros(intensity.shape, bool)
    for ax in range(intensity.ndim):
        n = intensity.shape[ax]
        flat = np.moveaxis(zero_or_masked, ax, 0).reshape(n, -1).all(axis=1)
        for side in (0, 1):
            seq = flat if side == 0 else flat[::-1]
            k = int(np.argmin(seq)) if not seq.all() else n
            if k == 0 or k > BORDER_MAX_FRACTION * n:
                continue
            nxt = min(max(k, 2), n - k)
            sl = [slice(None)] * intensity.ndim
            sl[ax] = slice(k, k + nxt) if side == 0 else slice(n - k - nxt, n - k)
            inner, inner_m = intensity[tuple(sl)], measured[tuple(sl)]
            if not inner_m.any():
                continue
            lam = float(inner[inner_m].mean())
            strip = [slice(None)] * intensity.ndim
            strip[ax] = slice(0, k) if side == 0 else slice(n - k, n)
            strip_pixels = int(np.prod(intensity.shape) // n) * k
            if lam * strip_pixels >= BORDER_MIN_PHOTONS:
                out[tuple(strip)] = True
    return out


def _hot_pixels(intensity: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Measured pixels far above every one of their neighbours (a single pixel cannot be: the pattern
    is oversampled, so neighbouring pixels are correlated)."""
    footprint = np.ones((3,) * intensity.ndim, bool)
    footprint[(1,) * intensity.ndim] = False
    vals = np.where(measured, intensity, 0)
    nb = ndimage.maximum_filter(vals, footprint=footprint, mode="constant", cval=0)
    return measured & (vals >= HOT_MIN_COUNTS) & (vals > HOT_RATIO * nb)


def unmeasured_mask(intensity: np.ndarray, *, zeros: str = "auto", mask=None,
                    saturation: float | None = None) -> tuple[np.ndarray, dict]:
    """Pixels that were not measured, and how many of each kind.

    Parameters
    ----------
    intensity : ndarray
        Counts, 2D or 3D, centred or not (NaN and negative values mark pixels not measured).
    zeros : {"auto", "all", "none"}
        "auto": groups of zeros whose bordering pixels are well exposed (beamstop, gaps, dead pixels)
        and a dead border; "all": every zero (PyNX's ``mask=zero``); "none": zeros are measured.
    mask : array_like, optional
        User mask, nonzero = not measured; OR-ed in.
    saturation : float, optional
        Pixels at or above this count are not measured.

    Returns
    -------
    mask : ndarray of bool
        True = not measured. NaN, negative and hot pixels (isolated pixels far above all their
        neighbours) are always in it.
    stats : dict
        ``mode``; ``auto_masked``: zero pixels the zero rule marked (not already masked otherwise);
        ``zero_groups``: connected groups they form; ``zeros_total``: pixels reading exactly 0;
        ``negative``, ``nan``, ``hot``, ``saturated``, ``user``: pixels of each kind (they may
        overlap); ``masked_total``: pixels in the returned mask.
    """
    if zeros not in ZERO_MODES:
        raise InputError(f"unknown zero mode {zeros!r}; expected one of {', '.join(ZERO_MODES)}")
    a = np.asarray(intensity, dtype=np.float32)
    nan = np.isnan(a)
    neg = a < 0
    user = np.zeros(a.shape, bool) if mask is None else _user_mask(mask, a.shape)
    sat = np.zeros(a.shape, bool) if saturation is None else ~nan & (a >= saturation)
    vals = np.where(nan | neg, 0, a)
    is_zero = ~nan & (a == 0)
    other = nan | neg | user | sat
    auto = np.zeros(a.shape, bool)
    groups = 0
    if zeros == "all":
        auto = is_zero & ~other
    elif zeros == "auto":
        candidates = is_zero & ~other
        auto, _ = _zero_groups(vals, candidates, other)
        border = _dead_border(vals, is_zero | other, ~other)
        auto |= border & candidates
    if auto.any():
        groups = int(ndimage.label(auto, structure=ndimage.generate_binary_structure(a.ndim, 1))[1])
    out = other | auto
    hot = _hot_pixels(vals, ~out)
    out |= hot
    stats = {"mode": zeros, "auto_masked": int(auto.sum()), "zero_groups": groups,
             "zeros_total": int(is_zero.sum()), "negative": int(neg.sum()), "nan": int(nan.sum()),
             "hot": int(hot.sum()), "saturated": int(sat.sum()), "user": int(user.sum()),
             "masked_total": int(out.sum())}
    return out, stats
