"""Compare phase-retrieval objects modulo the trivial ambiguities of |F x|.

``|F x|`` does not change under a translation ``x(r - r0)``, the conjugate flip (twin)
``x(-r)*`` and a global phase ``e^{i phi} x``. :func:`register` removes all three (the shift to a
fraction of a pixel, with :func:`skimage.registration.phase_cross_correlation`) before any comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.core.errors import InputError


@dataclass
class Registration:
    """How ``obj`` was mapped onto ``ref``: ``aligned = e^{i phase} * shift(twin?(obj))``."""

    aligned: np.ndarray
    shift: tuple[float, ...]
    twin: bool
    phase: float
    similarity: float

    def info(self) -> dict:
        return {"shift": [float(s) for s in self.shift], "twin": bool(self.twin), "phase": float(self.phase),
                "similarity": float(self.similarity)}


def twin(x: np.ndarray) -> np.ndarray:
    """The conjugate flip ``x(-r)*`` (index r -> -r modulo the size)."""
    axes = tuple(range(x.ndim))
    return np.conj(np.roll(np.flip(x, axis=axes), 1, axis=axes))


def fourier_shift(x: np.ndarray, shift: tuple[float, ...]) -> np.ndarray:
    """Translate ``x`` by ``shift`` pixels (subpixel, periodic) with a Fourier phase ramp."""
    ft = np.fft.fftn(x)
    for ax, (n, s) in enumerate(zip(x.shape, shift)):
        f = np.fft.fftfreq(n).reshape([-1 if i == ax else 1 for i in range(x.ndim)])
        ft = ft * np.exp(-2j * np.pi * f * s)
    out = np.fft.ifftn(ft)
    return out if np.iscomplexobj(x) else out.real


def similarity(ref: np.ndarray, x: np.ndarray) -> float:
    """``|<ref, x>| / (|ref| |x|)`` in [0, 1] (1: equal up to a complex scale; symmetric)."""
    na, nb = np.linalg.norm(ref), np.linalg.norm(x)
    if na == 0 or nb == 0:
        return 0.0
    return float(abs(np.vdot(ref, x)) / (na * nb))


def relative_error(ref: np.ndarray, x: np.ndarray) -> float:
    """``min_phi ||ref - e^{i phi} x|| / ||ref||`` (no registration of shift or twin)."""
    c = np.vdot(x, ref)
    phase = np.exp(1j * np.angle(c)) if c != 0 else 1.0
    return float(np.linalg.norm(ref - phase * x) / max(np.linalg.norm(ref), 1e-30))


def _same_shape(ref: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """Zero-pad or centre-crop ``obj`` to ``ref.shape``."""
    if obj.ndim != ref.ndim:
        raise InputError(f"cannot compare a {obj.ndim}D object with a {ref.ndim}D one")
    out = np.zeros(ref.shape, dtype=np.result_type(obj, np.complex64))
    src, dst = [], []
    for n, m in zip(ref.shape, obj.shape):
        k = min(n, m)
        src.append(slice((m - k) // 2, (m - k) // 2 + k))
        dst.append(slice((n - k) // 2, (n - k) // 2 + k))
    out[tuple(dst)] = obj[tuple(src)]
    return out


def register(ref: np.ndarray, obj: np.ndarray, *, upsample: int = 20, allow_twin: bool = True) -> Registration:
    """Align ``obj`` to ``ref`` modulo shift (subpixel), conjugate flip and global phase.

    Parameters
    ----------
    ref, obj : ndarray (2D or 3D, complex or real)
        ``obj`` is padded or cropped (centred) to ``ref``'s shape first.
    upsample : int
        Subpixel precision 1/upsample.
    allow_twin : bool
        Also try ``twin(obj)`` and keep the better match.
    """
    from skimage.registration import phase_cross_correlation

    ref = np.asarray(ref)
    obj = _same_shape(ref, np.asarray(obj))
    best: Registration | None = None
    for is_twin in (False, True) if allow_twin else (False,):
        cand = twin(obj) if is_twin else obj
        shift, _, _ = phase_cross_correlation(ref, cand, upsample_factor=upsample, normalization=None)
        moved = fourier_shift(cand, tuple(shift))
        c = np.vdot(moved, ref)  # <moved, ref>: the global phase that best maps moved onto ref
        phase = float(np.angle(c)) if c != 0 else 0.0
        aligned = moved * np.exp(1j * phase)
        r = Registration(aligned.astype(np.result_type(obj, np.complex64)), tuple(float(s) for s in shift),
                         is_twin, phase, similarity(ref, aligned))
        if best is None or r.similarity > best.similarity:
            best = r
    return best


def registered_error(ref: np.ndarray, obj: np.ndarray, *, scale: bool = True) -> float:
    """Relative error after :func:`register`; with ``scale`` also the best real scale factor."""
    r = register(ref, obj)
    x = r.aligned
    if scale:
        nx = np.vdot(x, x).real
        x = x * (np.vdot(x, ref).real / nx if nx > 0 else 1.0)
    return relative_error(ref, x)


def average_objects(objects: np.ndarray | list[np.ndarray], *, ref_index: int = 0,
                    upsample: int = 20) -> tuple[np.ndarray, list[Registration]]:
    """Register every object to ``objects[ref_index]`` and average them.

    Returns the average and the registrations (the reference's own is the identity).
    """
    objs = [np.asarray(o) for o in objects]
    if not objs:
        raise InputError("no objects to average")
    ref = objs[ref_index]
    regs = [register(ref, o, upsample=upsample) if i != ref_index else
            Registration(ref.astype(np.complex64), (0.0,) * ref.ndim, False, 0.0, 1.0)
            for i, o in enumerate(objs)]
    avg = np.mean([r.aligned for r in regs], axis=0).astype(np.complex64)
    return avg, regs
