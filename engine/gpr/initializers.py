"""Initialisers of generalized phase retrieval: a first estimate of x from the intensities alone.

All work on a batch of trials: intensities ``y`` of shape ``(B, m)`` give estimates ``(B, n)``, scaled
to the norm estimated from the data. Names (:data:`INITIALIZERS`): ``spectral``,
``truncated-spectral``, ``reshaped``, ``orthogonality``, ``optimal``, ``random``.

Randomness (the random direction, and the start of power iterations) comes from one ``seed``: an
int, a ``torch.Generator`` passed through, or None (see :func:`engine.gpr.measurements.torch_rng`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from engine.core.errors import InputError
from engine.core.seeds import TorchSeed, torch_rng
from engine.gpr.measurements import GaussianMeasurement, Measurement

#: largest n for which spectral initialisers form the n x n matrix and call eigh (Gaussian models);
#: above it power iterations are cheaper (forming the matrix costs m n^2)
DENSE_EIG_MAX = 256


def estimate_norm(op: Measurement, y: torch.Tensor) -> torch.Tensor:
    """||x|| estimated from the data: E|a^* x|^2 = ||x||^2 ||a||^2 / n. Shape ``(B, 1)``."""
    mean_row = op.row_norms_sq().mean(-1, keepdim=True) / op.n
    return (y.clamp_min(0).mean(-1, keepdim=True) / mean_row).sqrt()


def _random_signal(op: Measurement, batch: int, generator: torch.Generator | None) -> torch.Tensor:
    real = torch.float64 if op.dtype in (torch.float64, torch.complex128) else torch.float32
    if op.is_complex:
        z = torch.complex(torch.randn(batch, op.n, generator=generator, dtype=real),
                          torch.randn(batch, op.n, generator=generator, dtype=real))
    else:
        z = torch.randn(batch, op.n, generator=generator, dtype=real)
    return z.to(device=op.device, dtype=op.dtype)


def leading_eigenvector(op: Measurement, weights: torch.Tensor, *, power_iters: int = 100,
                        seed: TorchSeed = None) -> torch.Tensor:
    """Unit leading eigenvector (largest algebraic eigenvalue) of (1/m) sum_k w_k a_k a_k^*.

    Exact (eigh) for Gaussian operators with n <= :data:`DENSE_EIG_MAX`; otherwise shifted power
    iterations applied through ``A``/``A_adjoint`` (the shift makes negative weights safe), started
    from a random direction drawn from ``seed``.
    """
    if isinstance(op, GaussianMeasurement) and op.n <= DENSE_EIG_MAX:
        M = op.gram(weights.to(op.dtype))
        M = (M + M.mH) / 2
        return torch.linalg.eigh(M)[1][..., -1]
    z = _random_signal(op, weights.shape[0], torch_rng(seed))
    z = z / z.norm(dim=-1, keepdim=True)
    w = weights.to(op.dtype)
    neg = weights.clamp_max(0).abs().amax(-1, keepdim=True)
    shift = torch.zeros_like(neg)
    if bool((neg > 0).any()):  # shift by a bound on the negative part: max|w_-| ||A^* A / m||
        v = z
        for _ in range(20):
            v = op.A_adjoint(op.A(v)) / op.m
            top = v.norm(dim=-1, keepdim=True)
            v = v / top
        shift = 1.1 * neg * top
    for _ in range(power_iters):
        z = op.A_adjoint(w * op.A(z)) / op.m + shift * z
        z = z / z.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    return z


def init_spectral(op: Measurement, y: torch.Tensor, **kw) -> torch.Tensor:
    """Spectral initialisation of Candès, Li & Soltanolkotabi (2015): leading eigenvector of
    (1/m) sum_k y_k a_k a_k^*, scaled to the estimated norm."""
    return estimate_norm(op, y) * leading_eigenvector(op, y, **kw)


def init_truncated_spectral(op: Measurement, y: torch.Tensor, *, alpha_y: float = 3.0, **kw) -> torch.Tensor:
    """Truncated spectral initialisation of Chen & Candès (2015, TWF): keep only y_k <= alpha_y^2 lambda0^2,
    lambda0^2 = mean(y) (alpha_y = 3), so heavy-tailed large y_k do not dominate the eigenvector."""
    lam2 = y.mean(-1, keepdim=True)
    w = y * (y.abs() <= alpha_y ** 2 * lam2)
    return estimate_norm(op, y) * leading_eigenvector(op, w, **kw)


def init_reshaped(op: Measurement, y: torch.Tensor, *, alpha_l: float = 1.0, alpha_u: float = 5.0,
                  **kw) -> torch.Tensor:
    """Initialisation of reshaped WF (Zhang & Liang 2016): eigenvector of (1/m) sum_k psi_k a_k a_k^*
    over alpha_l lambda0 < psi_k < alpha_u lambda0 (alpha_l = 1, alpha_u = 5, lambda0 ~ ||x||)."""
    psi = y.clamp_min(0).sqrt()
    lam = estimate_norm(op, y)
    w = psi * ((psi > alpha_l * lam) & (psi < alpha_u * lam))
    return lam * leading_eigenvector(op, w, **kw)


def init_orthogonality(op: Measurement, y: torch.Tensor, *, fraction: float = 1 / 6, **kw) -> torch.Tensor:
    """Orthogonality-promoting initialisation of Wang, Giannakis & Eldar (2017, TAF).

    The a_k with the smallest normalised |a_k^* x| / ||a_k|| are nearly orthogonal to x; equivalently
    x is close to the leading eigenvector of sum over the ceil(m/6) largest ones of a_k a_k^* / ||a_k||^2.
    Scaled by sqrt(mean(y)).
    """
    rn = op.row_norms_sq().expand_as(y)
    score = y.clamp_min(0) / rn
    k = max(1, math.ceil(fraction * op.m))
    idx = score.topk(k, dim=-1).indices
    w = torch.zeros_like(y).scatter(-1, idx, 1.0) / rn
    return estimate_norm(op, y) * leading_eigenvector(op, w, **kw)


def init_optimal(op: Measurement, y: torch.Tensor, **kw) -> torch.Tensor:
    """Spectral initialisation with the preprocessing T(s) = (s - 1) / (s + sqrt(delta) - 1),
    s = y / mean(y), delta = m/n: the weak-recovery-optimal function of Mondelli & Montanari (2019),
    used here as is for real and complex data. It gives small measurements negative weight instead
    of dropping them; empirically (bench/gpr_sweep.py) the best initialiser of this module."""
    delta = op.m / op.n
    s = y / y.mean(-1, keepdim=True).clamp_min(1e-30)
    denom = (s + math.sqrt(delta) - 1).clamp_min(1e-3)  # only matters for delta ~ 1
    return estimate_norm(op, y) * leading_eigenvector(op, (s - 1) / denom, **kw)


def init_random(op: Measurement, y: torch.Tensor, *, seed: TorchSeed = None, **kw) -> torch.Tensor:
    """A random Gaussian direction scaled to the estimated norm (the landscape-only baseline)."""
    z = _random_signal(op, y.shape[0], torch_rng(seed))
    return estimate_norm(op, y) * z / z.norm(dim=-1, keepdim=True)


INITIALIZERS: dict[str, Callable[..., torch.Tensor]] = {
    "spectral": init_spectral,
    "truncated-spectral": init_truncated_spectral,
    "reshaped": init_reshaped,
    "orthogonality": init_orthogonality,
    "optimal": init_optimal,
    "random": init_random,
}


def initialize(name: str, op: Measurement, y: torch.Tensor, *, power_iters: int = 100,
               seed: TorchSeed = None) -> torch.Tensor:
    """Run the initialiser ``name`` on intensities ``y`` of shape ``(B, m)``; returns ``(B, n)``."""
    if name not in INITIALIZERS:
        raise InputError(f"unknown initializer {name!r}; expected one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name](op, y, power_iters=power_iters, seed=torch_rng(seed))
