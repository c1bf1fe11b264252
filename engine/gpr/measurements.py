"""Measurement models of generalized phase retrieval: y_k = |a_k^* x|^2 (plus noise).

Each operator is an :class:`engine.core.operator.Operator`: it maps signals of shape ``(..., n)`` to
measurements of shape ``(..., m)`` (``A``: z -> (a_k^* z)_k) and back (``A_adjoint``:
v -> sum_k v_k a_k); matrices and masks are buffers, so ``.to(device)`` moves them. An operator may
hold a batch of independent instances (one per trial): the leading batch dimension of the signal
then matches the operator's ``batch``.

Normalisation: the sensing vectors satisfy E[a a^*] = I, so that E|a^* x|^2 = ||x||^2 for every
model; the initialisers rely on it to estimate ||x|| from the data.

Randomness: every function that draws takes one ``seed``: an int (a fresh CPU generator seeded
with it), a ``torch.Generator`` (passed through, so several draws share one stream) or None
(torch's global generator). See :func:`engine.core.seeds.torch_rng`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from engine.core.errors import InputError
from engine.core.operator import Operator
from engine.core.seeds import TorchSeed, torch_rng

MODELS = ("complex-gaussian", "real-gaussian", "cdp")

#: what a ``seed`` argument accepts


class Measurement(Operator):
    """Base class: a linear map A with rows a_k^*, measured through its magnitudes."""

    n: int
    m: int
    shape: tuple[int, ...]
    is_complex: bool
    batch: int | None

    @property
    def dtype(self) -> torch.dtype:
        """dtype of signals and iterates."""
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        raise NotImplementedError

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """(..., n) -> (..., m): the inner products a_k^* x."""
        raise NotImplementedError

    def A_adjoint(self, v: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """(..., m) -> (..., n): sum_k v_k a_k."""
        raise NotImplementedError

    def lstsq(self, v: torch.Tensor) -> torch.Tensor:
        """argmin_z ||A z - v||_2 (for alternating minimization)."""
        raise NotImplementedError

    def row_norms_sq(self) -> torch.Tensor:
        """||a_k||^2, shape ``(m,)`` or ``(batch, m)``."""
        raise NotImplementedError

    def dense(self) -> torch.Tensor:
        """The matrix A (rows a_k^*), ``(m, n)`` or ``(batch, m, n)``; for tests and tiny cases."""
        raise NotImplementedError


class GaussianMeasurement(Measurement):
    """Explicit Gaussian sensing matrix.

    Complex model: entries of A i.i.d. N(0, 1/2) + i N(0, 1/2) (Candès, Li, Soltanolkotabi 2015);
    real model: entries i.i.d. N(0, 1).

    Parameters
    ----------
    matrix : torch.Tensor
        ``(m, n)`` or ``(batch, m, n)``; row k is a_k^*. Kept as the buffer ``matrix``.
    """

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        if matrix.ndim not in (2, 3):
            raise InputError("sensing matrix must be (m, n) or (batch, m, n); "
                             f"got shape {tuple(matrix.shape)}")
        self.register_buffer("matrix", matrix)
        # a contiguous A^* makes the adjoint ~3x faster than a view
        self.register_buffer("matrix_h", matrix.mH.contiguous(), persistent=False)
        self.m, self.n = int(matrix.shape[-2]), int(matrix.shape[-1])
        self.shape = (self.n,)
        self.batch = int(matrix.shape[0]) if matrix.ndim == 3 else None
        self.is_complex = matrix.is_complex()
        # least-squares factors, computed on first use
        self.register_buffer("_chol", None, persistent=False)
        self.register_buffer("_pinv", None, persistent=False)

    @classmethod
    def random(cls, n: int, m: int, *, batch: int | None = None, complex: bool = True,
               seed: TorchSeed = None, dtype: torch.dtype = torch.float64,
               device: torch.device | str = "cpu") -> GaussianMeasurement:
        """Draw a Gaussian operator (on the CPU generator, so results do not depend on the device).

        ``dtype`` is the real precision (float32 or float64); complex models use the matching
        complex dtype.
        """
        generator = torch_rng(seed)
        size = ((batch,) if batch else ()) + (m, n)
        if complex:
            re = torch.randn(size, generator=generator, dtype=dtype)
            im = torch.randn(size, generator=generator, dtype=dtype)
            a = torch.complex(re, im) / math.sqrt(2.0)
        else:
            a = torch.randn(size, generator=generator, dtype=dtype)
        return cls(a.to(device))

    @property
    def dtype(self) -> torch.dtype:
        return self.matrix.dtype

    @property
    def device(self) -> torch.device:
        return self.matrix.device

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return (self.matrix @ x.unsqueeze(-1)).squeeze(-1)

    def A_adjoint(self, v: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return (self.matrix_h @ v.unsqueeze(-1)).squeeze(-1)

    def lstsq(self, v: torch.Tensor) -> torch.Tensor:
        # factor once: AltMin solves one least-squares problem per step. Cholesky of A^* A is several
        # times cheaper than a pseudo-inverse (SVD); fall back to the latter when A^* A is singular.
        if self._chol is None and self._pinv is None:
            chol, info = torch.linalg.cholesky_ex(self.matrix_h @ self.matrix)
            if self.m >= self.n and not bool((info != 0).any()):
                self._chol = chol
            else:
                self._pinv = torch.linalg.pinv(self.matrix)
        if self._chol is not None:
            return torch.cholesky_solve((self.matrix_h @ v.unsqueeze(-1)), self._chol).squeeze(-1)
        return (self._pinv @ v.unsqueeze(-1)).squeeze(-1)

    def row_norms_sq(self) -> torch.Tensor:
        return (self.matrix.abs() ** 2).sum(-1)

    def dense(self) -> torch.Tensor:
        return self.matrix

    def gram(self, weights: torch.Tensor) -> torch.Tensor:
        """(1/m) sum_k w_k a_k a_k^*, shape ``(..., n, n)``; for exact spectral initialisation."""
        aw = self.matrix * weights.unsqueeze(-1)
        return (aw.mH @ self.matrix) / self.m


def octanary_masks(L: int, shape: Sequence[int], *, batch: int | None = None, seed: TorchSeed = None,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Random octanary modulation patterns of Candès, Li & Soltanolkotabi (2015).

    Each entry is b1 * b2 with b1 uniform on {1, -1, i, -i} and b2 = 1/sqrt(2) with probability
    4/5, sqrt(3) with probability 1/5 (so E|d|^2 = 1). Returns complex ``([batch,] L, *shape)``.
    """
    generator = torch_rng(seed)
    size = ((batch,) if batch else ()) + (L, *shape)
    k = torch.randint(0, 4, size, generator=generator)
    b1 = torch.polar(torch.ones(size, dtype=dtype), k.to(dtype) * (math.pi / 2))
    u = torch.rand(size, generator=generator, dtype=dtype)
    b2 = torch.where(u < 0.8, torch.full_like(u, 1 / math.sqrt(2.0)), torch.full_like(u, math.sqrt(3.0)))
    return b1 * b2


class CodedDiffraction(Measurement):
    """Coded diffraction patterns: y_{l,k} = |(F D_l x)_k|^2 for L masks d_l, with F the unnormalised
    DFT (1-D or 2-D by the signal ``shape``). Applied by FFTs; the matrix is never formed.

    Parameters
    ----------
    masks : torch.Tensor
        Complex ``(L, *shape)`` or ``(batch, L, *shape)``. Kept as the buffer ``masks``.
    shape : tuple
        Signal shape, ``(n,)`` or ``(h, w)``; signals are passed flattened, ``(..., n)``.
    """

    def __init__(self, masks: torch.Tensor, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) not in (1, 2):
            raise InputError(f"CDP signals must be 1-D or 2-D; got shape {self.shape}")
        d = len(self.shape)
        if tuple(masks.shape[-d:]) != self.shape or masks.ndim not in (d + 1, d + 2):
            raise InputError(f"masks must be (L, *{self.shape}) or (batch, L, *{self.shape}); "
                             f"got {tuple(masks.shape)}")
        self.register_buffer("masks", masks)
        self.batch = int(masks.shape[0]) if masks.ndim == d + 2 else None
        self.L = int(masks.shape[-d - 1])
        self.n = math.prod(self.shape)
        self.m = self.L * self.n
        self.is_complex = True
        self._dims = tuple(range(-d, 0))
        # A^* A = n sum_l |D_l|^2 is diagonal, so least squares is a pointwise division
        ata = (self.n * (masks.abs() ** 2).sum(-d - 1)).reshape(*masks.shape[:-d - 1], self.n)
        self.register_buffer("_ata", ata, persistent=False)

    @classmethod
    def random(cls, shape: Sequence[int] | int, L: int, *, batch: int | None = None,
               seed: TorchSeed = None, dtype: torch.dtype = torch.float64,
               device: torch.device | str = "cpu") -> CodedDiffraction:
        """Draw ``L`` octanary masks (see :func:`octanary_masks`)."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return cls(octanary_masks(L, shape, batch=batch, seed=seed, dtype=dtype).to(device), shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.masks.dtype

    @property
    def device(self) -> torch.device:
        return self.masks.device

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        lead = x.shape[:-1]
        xs = x.reshape(*lead, 1, *self.shape)
        out = torch.fft.fftn(self.masks * xs, dim=self._dims)
        return out.reshape(*out.shape[:-len(self.shape) - 1], self.m)

    def A_adjoint(self, v: torch.Tensor) -> torch.Tensor:  # noqa: N802
        lead = v.shape[:-1]
        vs = v.reshape(*lead, self.L, *self.shape)
        # the adjoint of the unnormalised DFT is n times the inverse DFT
        back = torch.fft.ifftn(vs, dim=self._dims) * self.n
        out = (self.masks.conj() * back).sum(-len(self.shape) - 1)
        return out.reshape(*out.shape[:-len(self.shape)], self.n)

    def lstsq(self, v: torch.Tensor) -> torch.Tensor:
        return self.A_adjoint(v) / self._ata

    def row_norms_sq(self) -> torch.Tensor:
        per_mask = (self.masks.abs() ** 2).flatten(-len(self.shape)).sum(-1)  # ([batch,] L)
        return per_mask.repeat_interleave(self.n, dim=-1)

    def dense(self) -> torch.Tensor:
        eye = torch.eye(self.n, dtype=self.dtype, device=self.device)
        if self.batch:  # basis index first, then the operator's batch: (n, batch, n) -> (n, batch, m)
            cols = self.A(eye[:, None, :].expand(self.n, self.batch, self.n))
            return cols.permute(1, 2, 0)
        return self.A(eye).mT  # the image of each basis vector is one column


def make_measurement(model: str, n: int | Sequence[int], ratio: float, *, L: int | None = None,
                     batch: int | None = None, seed: TorchSeed = None,
                     dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> Measurement:
    """Build a measurement operator by name.

    Parameters
    ----------
    model : {"complex-gaussian", "real-gaussian", "cdp"}
    n : int or shape
        Signal length, or a signal shape (CDP keeps it for 2-D FFTs; Gaussians flatten it).
    ratio : float
        m/n for the Gaussian models (m = ceil(ratio * n)); for CDP the number of masks L is
        ``L`` when given, else ``round(ratio)``.
    seed : int, torch.Generator or None
        See :func:`engine.core.seeds.torch_rng`.
    """
    shape = (int(n),) if isinstance(n, int) else tuple(int(s) for s in n)
    size = math.prod(shape)
    if size < 2:
        raise InputError(f"signal length must be at least 2; got {size}")
    if model in ("complex-gaussian", "real-gaussian"):
        if not ratio > 0:
            raise InputError(f"m/n must be positive; got {ratio}")
        m = math.ceil(ratio * size)
        return GaussianMeasurement.random(size, m, batch=batch, complex=model == "complex-gaussian",
                                          seed=seed, dtype=dtype, device=device)
    if model == "cdp":
        masks = int(L) if L is not None else int(round(ratio))
        if masks < 1 or (L is None and abs(ratio - masks) > 1e-9):
            raise InputError(f"CDP takes a whole number of masks L >= 1 (m/n = L); got m/n = {ratio}")
        return CodedDiffraction.random(shape, masks, batch=batch, seed=seed, dtype=dtype, device=device)
    raise InputError(f"unknown measurement model {model!r}; expected one of {', '.join(MODELS)}")


def measure(op: Measurement, x: torch.Tensor, noise: float = 0.0, *, seed: TorchSeed = None) -> torch.Tensor:
    """Intensities y = |A x|^2 plus Gaussian noise of relative size ``noise`` (||e|| = noise ||y||).

    The noise is drawn on the CPU from ``seed`` (see :func:`torch_rng`). Noisy intensities can be
    negative; the amplitude-based solvers clip them at zero.
    """
    y = op.A(x).abs() ** 2
    if noise < 0:
        raise InputError(f"noise must be >= 0; got {noise}")
    if noise > 0:
        e = torch.randn(y.shape, generator=torch_rng(seed), dtype=y.dtype).to(y.device)
        scale = y.norm(dim=-1, keepdim=True) / e.norm(dim=-1, keepdim=True)
        y = y + noise * scale * e
    return y
