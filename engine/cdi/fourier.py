"""The Fourier model of phase retrieval and its helpers (torch; CPU or GPU; 2D or 3D; batched).

:class:`FourierTransform` is the forward model ``psi = F x`` (an :class:`~engine.core.operator.Operator`);
the measurement is ``I ~ |F x|^2``. Arrays are "fftshift-free": the zero frequency is at index 0, as
``torch.fft`` expects. Patterns are shifted once when they are loaded (:func:`to_fft_layout`), never
inside a loop. The last ``ndim`` axes are the spatial ones; any leading axes (e.g. the starts of a
batch) are batch axes. Transforms are unitary (``norm="ortho"``), so ``sum |x|^2 = sum |F x|^2`` and a converged object
carries the measured photons.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from engine.core.operator import Operator


def dims(ndim: int) -> tuple[int, ...]:
    """The last ``ndim`` axes."""
    return tuple(range(-ndim, 0))


def fftn(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Unitary FFT over the last ``ndim`` axes."""
    return torch.fft.fftn(x, dim=dims(ndim), norm="ortho")


def ifftn(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """Unitary inverse FFT over the last ``ndim`` axes."""
    return torch.fft.ifftn(x, dim=dims(ndim), norm="ortho")


class FourierTransform(Operator):
    """Unitary FFT over the last ``ndim`` axes: ``A = F``, ``A_adjoint = F^-1`` (= ``F^*``, as F is unitary).

    Leading axes are batch axes (the starts of a batch); arrays are in FFT layout (zero frequency at
    index 0), so no shift happens here.

    Parameters
    ----------
    ndim : int
        Number of spatial axes (2 or 3).
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        if ndim not in (1, 2, 3):
            raise ValueError(f"ndim must be 1, 2 or 3, got {ndim}")
        self.ndim = int(ndim)

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """``F x``: the far field of ``x``."""
        return fftn(x, self.ndim)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """``F^* y = F^-1 y``: back to the object plane."""
        return ifftn(y, self.ndim)

    def extra_repr(self) -> str:
        return f"ndim={self.ndim}"


def to_fft_layout(a: np.ndarray) -> np.ndarray:
    """Detector layout (zero frequency in the middle) -> FFT layout (zero frequency at index 0)."""
    return np.fft.ifftshift(a)


def from_fft_layout(a: np.ndarray, ndim: int | None = None) -> np.ndarray:
    """FFT layout -> centred layout over the last ``ndim`` axes (all axes by default)."""
    axes = None if ndim is None else dims(ndim)
    return np.fft.fftshift(a, axes=axes)


def friedel_mate(m: torch.Tensor, ndim: int) -> torch.Tensor:
    """``m(-k)`` in FFT layout (index k maps to -k modulo the size)."""
    return torch.roll(torch.flip(m, dims=dims(ndim)), shifts=(1,) * ndim, dims=dims(ndim))


def gaussian_ft(shape: tuple[int, ...], sigma: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Fourier transform of a periodic, unit-sum Gaussian of std ``sigma`` pixels (FFT layout)."""
    out = torch.ones((), device=device)
    for ax, n in enumerate(shape):
        f = torch.fft.fftfreq(n, device=device)
        g = torch.exp(-2.0 * (math.pi * sigma * f) ** 2)
        out = out.unsqueeze(-1) * g if ax else g
    return out.reshape(shape).to(torch.float32)


def smooth(x: torch.Tensor, sigma: float, ndim: int, *, kernel: torch.Tensor | None = None) -> torch.Tensor:
    """Periodic Gaussian smoothing of a real tensor over its last ``ndim`` axes (via the FFT)."""
    if sigma <= 0:
        return x
    k = gaussian_ft(tuple(x.shape[-ndim:]), sigma, x.device) if kernel is None else kernel
    return torch.fft.ifftn(torch.fft.fftn(x, dim=dims(ndim)) * k, dim=dims(ndim)).real


def autocorrelation_support(intensity: torch.Tensor, observed: torch.Tensor, *, threshold: float = 0.1,
                            sigma: float = 1.0, part: str = "real") -> torch.Tensor:
    """Initial support: the thresholded, smoothed autocorrelation ``F^-1[I]``, holes filled.

    The autocorrelation of an object spans the object's difference set, which holds a copy of the
    object wherever it sits. Unmeasured pixels count as 0 (FFT layout in and out). A beamstop removes
    the low frequencies, which subtracts a broad positive bump from the autocorrelation: the real part
    (``part="real"``, the default) keeps that from inflating the support, where the modulus
    (``part="abs"``) would turn it into a plateau above the threshold; the dip it digs in the middle is
    filled, since the support of an autocorrelation has no holes.
    """
    from scipy.ndimage import binary_fill_holes

    ndim = intensity.ndim
    ac = torch.fft.ifftn(torch.where(observed, intensity, 0).to(torch.complex64), dim=dims(ndim))
    ac = smooth(ac.real if part == "real" else ac.abs(), sigma, ndim)
    sup = ac > threshold * ac.max()
    axes = dims(ndim)
    filled = binary_fill_holes(np.fft.fftshift(sup.cpu().numpy(), axes=axes))
    return torch.from_numpy(np.fft.ifftshift(filled, axes=axes).copy()).to(intensity.device)


def amplitude_projection_(psi: torch.Tensor, amp: torch.Tensor, free_one: torch.Tensor, *,
                          eps: float = 1e-12) -> torch.Tensor:
    """In place: set ``|psi|`` to ``amp`` where constrained, leave it where ``free_one`` is 1.

    ``amp`` is sqrt(I) on constrained pixels and 0 elsewhere; ``free_one`` is 1 on pixels left free
    (not measured, or held out as free pixels) and 0 elsewhere. One pass, no boolean indexing.
    """
    a = psi.abs()
    a.add_(eps)
    torch.div(amp, a, out=a)
    a.add_(free_one)
    psi.mul_(a)
    return psi


def poisson_llk(iobs: torch.Tensor, icalc: torch.Tensor, weight: torch.Tensor, *, ndim: int) -> torch.Tensor:
    """Poisson negative log-likelihood per weighted pixel, relative to the perfect model.

    ``sum w * (Ic - Io + Io*log(Io/Ic)) / sum w`` over the last ``ndim`` axes (0 for a perfect fit;
    about 0.5 per pixel for a correct model under Poisson noise at high counts).
    """
    ic = icalc.clamp_min(1e-12)
    io = iobs
    # the log of the ratio keeps float32 precise when Ic ~ Io at large counts
    term = (ic - io) + torch.xlogy(io, io / ic)
    return (term * weight).sum(dim=dims(ndim), dtype=torch.float64) / weight.sum().clamp_min(1)


def gaussian_llk(iobs: torch.Tensor, icalc: torch.Tensor, weight: torch.Tensor, *, ndim: int) -> torch.Tensor:
    """Gaussian negative log-likelihood per weighted pixel, variance ``Io + 1``.

    ``sum w * (Ic - Io)^2 / (2 (Io + 1)) / sum w`` (about 0.5 per pixel for a correct model).
    """
    term = (icalc - iobs) ** 2 / (2.0 * (iobs + 1.0))
    return (term * weight).sum(dim=dims(ndim), dtype=torch.float64) / weight.sum().clamp_min(1)


def llk(iobs: torch.Tensor, icalc: torch.Tensor, weight: torch.Tensor, *, ndim: int,
        noise: str = "poisson") -> torch.Tensor:
    """Dispatch to :func:`poisson_llk` or :func:`gaussian_llk` (measured counts first)."""
    if noise == "poisson":
        return poisson_llk(iobs, icalc, weight, ndim=ndim)
    if noise == "gaussian":
        return gaussian_llk(iobs, icalc, weight, ndim=ndim)
    raise ValueError(f"unknown noise model {noise!r}; expected 'poisson' or 'gaussian'")
