"""Single-coil 2-D Cartesian k-space: the centred orthonormal FFT, sampling masks, simulation.

The forward model is ``y = M ⊙ F x``: ``F`` the centred, orthonormal 2-D FFT (DC at ``(H//2, W//2)``)
and ``M`` a mask of fully sampled k-space columns (phase-encoding lines). ``F`` is unitary, so the
adjoint is ``F^H (M ⊙ y)`` and the zero-filled reconstruction is the adjoint applied to the data.

Masks follow the fastMRI conventions (Zbontar et al., "fastMRI: An open dataset and benchmarks for
accelerated MRI", 2018): a fully sampled centre of ``center_fraction`` of the columns (0.08 at x4,
0.04 at x8) plus columns drawn at random, or equispaced, so that about ``1/acceleration`` of the
columns are measured in all.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.core.errors import InputError
from engine.core.operator import Operator
from engine.core.seeds import Seed, numpy_rng

MASK_KINDS = ("random", "equispaced")
ACCELERATIONS = (2, 4, 8)
#: fully sampled centre, fraction of the columns, per acceleration (fastMRI's 0.08 / 0.04; 0.16 at x2)
CENTER_FRACTIONS = {2: 0.16, 4: 0.08, 8: 0.04}
MIN_SIDE = 8
MAX_SIDE = 1024


# ----------------------------------------------------------------------------- centred FFT
def fft2c(x: torch.Tensor) -> torch.Tensor:
    """Centred orthonormal 2-D FFT over the last two axes (DC moved to ``(H//2, W//2)``)."""
    x = torch.fft.ifftshift(x, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.fft2(x, norm="ortho"), dim=(-2, -1))


def ifft2c(y: torch.Tensor) -> torch.Tensor:
    """The inverse (and adjoint) of :func:`fft2c`."""
    y = torch.fft.ifftshift(y, dim=(-2, -1))
    return torch.fft.fftshift(torch.fft.ifft2(y, norm="ortho"), dim=(-2, -1))


def fft2c_np(x: np.ndarray) -> np.ndarray:
    """:func:`fft2c` for numpy arrays (complex128)."""
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def ifft2c_np(y: np.ndarray) -> np.ndarray:
    """:func:`ifft2c` for numpy arrays (complex128)."""
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(y, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


# ----------------------------------------------------------------------------- operators
def _mask_tensor(mask: np.ndarray | torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, torch.Tensor) else mask)
    if m.ndim != 2:
        raise InputError(f"k-space mask has shape {tuple(m.shape)}; expected (H, W)")
    return (m.float() > 0.5).float()


class KSpace(Operator):
    """``A x = M ⊙ F (e^{iφ} x)``: complex k-space of a real or complex image, tensors ``(..., H, W)``.

    Parameters
    ----------
    mask : array ``(H, W)``, nonzero = measured
    phase : array ``(H, W)`` of radians, optional
        A known smooth image phase (measured data): the image is then ``e^{iφ} x`` with ``x`` real.
    """

    def __init__(self, mask: np.ndarray | torch.Tensor, *, phase: np.ndarray | torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("mask", _mask_tensor(mask))
        ph = None if phase is None else torch.as_tensor(np.asarray(phase, np.float64))
        if ph is not None and ph.shape != self.mask.shape:
            raise InputError(f"phase map is {tuple(ph.shape)} but the mask is {tuple(self.mask.shape)}")
        self.register_buffer("phase", ph)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)  # type: ignore[return-value]

    def _carrier(self, like: torch.Tensor) -> torch.Tensor | None:
        if self.phase is None:
            return None
        return torch.polar(torch.ones_like(self.phase), self.phase).to(
            torch.complex128 if like.dtype in (torch.float64, torch.complex128) else torch.complex64)

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        c = self._carrier(x)
        if c is not None:
            x = x * c
        return fft2c(x) * self.mask.to(x.real.dtype if x.is_complex() else x.dtype)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        m = self.mask.to(y.real.dtype if y.is_complex() else y.dtype)
        x = ifft2c(y * m)
        c = self._carrier(x)
        return x if c is None else x * c.conj()


class KSpaceStacked(Operator):
    """The real form of :class:`KSpace` for a real image: ``x (N, 1, H, W) -> [Re A x; Im A x] (N, 1, 2H, W)``.

    Real and imaginary parts are stacked along the rows, so the observation keeps one channel and the
    Deep Image Prior solver fits it with a real loss unchanged. The adjoint, for the real inner product,
    is ``Re(A^H (top + i bottom))``.
    """

    def __init__(self, mask: np.ndarray | torch.Tensor, *, phase: np.ndarray | torch.Tensor | None = None) -> None:
        super().__init__()
        self.inner = KSpace(mask, phase=phase)

    @property
    def shape(self) -> tuple[int, int]:
        return self.inner.shape

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        y = self.inner.A(x)
        return torch.cat([y.real, y.imag], dim=-2)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        h = y.shape[-2] // 2
        return self.inner.A_adjoint(torch.complex(y[..., :h, :], y[..., h:, :])).real


def stack_complex(k: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Complex k-space ``(H, W)`` -> the stacked real observation ``(1, 1, 2H, W)`` of :class:`KSpaceStacked`."""
    t = torch.as_tensor(np.asarray(k, np.complex64) if not isinstance(k, torch.Tensor) else k)
    return torch.cat([t.real, t.imag], dim=-2).float().reshape(1, 1, 2 * t.shape[-2], t.shape[-1])


# ----------------------------------------------------------------------------- masks
def check_shape(shape: tuple[int, ...], what: str = "image") -> tuple[int, int]:
    """``(H, W)`` between MIN_SIDE and MAX_SIDE, or InputError."""
    if len(shape) != 2:
        raise InputError(f"{what} has shape {tuple(shape)}; expected a 2-D (H, W) array")
    h, w = int(shape[0]), int(shape[1])
    if min(h, w) < MIN_SIDE or max(h, w) > MAX_SIDE:
        raise InputError(f"{what} is {w}x{h}; expected sides between {MIN_SIDE} and {MAX_SIDE} pixels")
    return h, w


def make_mask(shape: tuple[int, int], *, kind: str = "random", acceleration: int = 4,
              center_fraction: float | None = None, seed: Seed = 0) -> np.ndarray:
    """A Cartesian mask of whole k-space columns, bool ``(H, W)``.

    Parameters
    ----------
    shape : (H, W)
    kind : {"random", "equispaced"}
        The columns outside the centre: drawn uniformly without replacement, or evenly spaced from a
        seeded offset.
    acceleration : int
        About ``W / acceleration`` columns are measured, the centre included.
    center_fraction : float, optional
        Fraction of the columns in the fully sampled centre (default :data:`CENTER_FRACTIONS`, or
        ``0.32 / acceleration`` for other factors).
    seed : int or numpy Generator
    """
    h, w = check_shape(shape, "mask")
    if kind not in MASK_KINDS:
        raise InputError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")
    acc = int(acceleration)
    if not 1 <= acc <= w // 2:
        raise InputError(f"acceleration {acceleration} for {w} columns; expected 1 to {w // 2}")
    cf = CENTER_FRACTIONS.get(acc, 0.32 / acc) if center_fraction is None else float(center_fraction)
    if not 0 <= cf <= 1:
        raise InputError(f"centre fraction {cf}; expected 0 to 1")
    total = max(1, int(round(w / acc)))
    n_center = min(total, max(2, int(round(w * cf)))) if acc > 1 else w
    cols = np.zeros(w, bool)
    start = w // 2 - n_center // 2  # the DC column w // 2 is inside
    cols[start:start + n_center] = True
    need = total - n_center
    others = np.flatnonzero(~cols)
    rng = numpy_rng(seed)
    if need > 0 and others.size:
        if kind == "random":
            cols[rng.choice(others, size=min(need, others.size), replace=False)] = True
        else:
            step = others.size / need
            pos = np.floor(rng.uniform(0, step) + step * np.arange(need)).astype(int)
            cols[others[np.clip(pos, 0, others.size - 1)]] = True
    return np.broadcast_to(cols, (h, w)).copy()


def acceleration_of(mask: np.ndarray) -> float:
    """Measured acceleration: all k-space samples over the measured ones."""
    m = np.asarray(mask) > 0
    return float(m.size / max(1, int(m.sum())))


def center_is_sampled(mask: np.ndarray, n: int = 2) -> bool:
    """Whether the ``n`` columns around the DC column are fully measured."""
    m = np.asarray(mask) > 0
    w = m.shape[1]
    return bool(m[:, w // 2 - n // 2: w // 2 - n // 2 + n].all())


# ----------------------------------------------------------------------------- simulation
def simulate_kspace(image: np.ndarray, mask: np.ndarray, *, noise_sigma: float = 0.0,
                    seed: Seed = 0) -> np.ndarray:
    """Measured k-space of a grey image: ``M ⊙ (F x + n)``, complex64 ``(H, W)``.

    ``noise_sigma`` is the standard deviation of the complex Gaussian noise per k-space sample (each of
    the real and imaginary parts gets ``noise_sigma / sqrt(2)``); the FFT is orthonormal, so it equals the
    noise level a zero-filled image would show per pixel at full sampling.
    """
    x = np.asarray(image, np.float64)
    check_shape(x.shape, "image")
    m = np.asarray(mask) > 0
    if m.shape != x.shape:
        raise InputError(f"mask is {m.shape[1]}x{m.shape[0]} but the image is {x.shape[1]}x{x.shape[0]}")
    if noise_sigma < 0:
        raise InputError(f"noise sigma {noise_sigma}; expected >= 0")
    k = fft2c_np(x)
    if noise_sigma > 0:
        rng = numpy_rng(seed, 1)
        k = k + (noise_sigma / np.sqrt(2)) * (rng.standard_normal(k.shape) + 1j * rng.standard_normal(k.shape))
    return (k * m).astype(np.complex64)


def zero_filled(kspace: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The zero-filled reconstruction ``|F^H (M ⊙ y)|``, float32 ``(H, W)``."""
    k = np.asarray(kspace, np.complex128)
    if mask is not None:
        k = k * (np.asarray(mask) > 0)
    return np.abs(ifft2c_np(k)).astype(np.float32)


def log_magnitude(kspace: np.ndarray) -> np.ndarray:
    """``log(1 + |y|)`` scaled to [0, 1], for display."""
    v = np.log1p(np.abs(np.asarray(kspace)))
    top = float(v.max())
    return (v / top if top > 0 else v).astype(np.float32)


def low_res_phase(kspace: np.ndarray, mask: np.ndarray, *, n_center: int | None = None) -> np.ndarray:
    """The image phase from the fully sampled centre only (smooth), for measured k-space with phase.

    A Hann window over the centre columns keeps the estimate free of ringing.
    """
    m = np.asarray(mask) > 0
    cols = m.all(axis=0)
    w = m.shape[1]
    if n_center is None:  # the contiguous run of measured columns around DC
        lo = hi = w // 2
        while lo - 1 >= 0 and cols[lo - 1]:
            lo -= 1
        while hi + 1 < w and cols[hi + 1]:
            hi += 1
        n_center = hi - lo + 1 if cols[w // 2] else 0
    if n_center < 2:
        return np.zeros(m.shape)
    win = np.zeros(w)
    start = w // 2 - n_center // 2
    win[start:start + n_center] = np.hanning(n_center + 2)[1:-1]
    low = ifft2c_np(np.asarray(kspace, np.complex128) * m * win[None, :])
    return np.angle(low)
