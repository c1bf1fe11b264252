"""Generalized phase retrieval: recover x from y_k = |a_k^* x|^2, up to a global phase.

Initialisers and iterative algorithms work on a batch of independent trials at once: the
intensities ``y`` have shape ``(B, m)`` and iterates ``(B, n)``; the operator holds either one
instance shared by all trials or one per trial (see :mod:`engine.gpr.measurements`).

Use :func:`solve` (a generator yielding a :class:`GPRState` every ``every`` iterations) or
:func:`recover` (runs to the end). Names:

* initialisers (:data:`INITIALIZERS`): ``spectral``, ``truncated-spectral``, ``reshaped``,
  ``orthogonality``, ``optimal``, ``random``;
* algorithms (:data:`ALGORITHMS`): ``wf``, ``twf``, ``rwf``, ``af``, ``taf``, ``gs``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from engine.core.errors import InputError
from engine.gpr.measurements import GaussianMeasurement, Measurement

#: largest n for which spectral initialisers form the n x n matrix and call eigh (Gaussian models);
#: above it power iterations are cheaper (forming the matrix costs m n^2)
DENSE_EIG_MAX = 256


# ----------------------------------------------------------------------------- metrics

def _unit_phase(inner: torch.Tensor) -> torch.Tensor:
    """sgn(inner), with 1 where inner is 0 (any phase is optimal there)."""
    s = torch.sgn(inner)
    return torch.where(inner == 0, torch.ones_like(s), s)


def align_phase(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Multiply each z by the global phase (a sign for real data) that brings it closest to x."""
    inner = (x.conj() * z).sum(-1, keepdim=True)  # x^* z
    return z * _unit_phase(inner).conj()


def relative_error(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """min over phi of ||z - e^{i phi} x|| / ||x||, per trial (last axis is the signal).

    Computed from the aligned difference, not from norms and inner products, so that errors far
    below sqrt(machine epsilon) are still resolved.
    """
    return (align_phase(z, x) - x).norm(dim=-1) / x.norm(dim=-1)


def amplitude_residual(op: Measurement, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|| |Az| - sqrt(y) || / || sqrt(y) ||: the loss reported for every algorithm, so curves compare."""
    psi = y.clamp_min(0).sqrt()
    return (op.forward(z).abs() - psi).norm(dim=-1) / psi.norm(dim=-1).clamp_min(1e-30)


# ----------------------------------------------------------------------------- initialisers

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
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit leading eigenvector (largest algebraic eigenvalue) of (1/m) sum_k w_k a_k a_k^*.

    Exact (eigh) for Gaussian operators with n <= :data:`DENSE_EIG_MAX`; otherwise shifted power
    iterations applied through ``forward``/``adjoint`` (the shift makes negative weights safe).
    """
    if isinstance(op, GaussianMeasurement) and op.n <= DENSE_EIG_MAX:
        M = op.gram(weights.to(op.dtype))
        M = (M + M.mH) / 2
        return torch.linalg.eigh(M)[1][..., -1]
    z = _random_signal(op, weights.shape[0], generator)
    z = z / z.norm(dim=-1, keepdim=True)
    w = weights.to(op.dtype)
    neg = weights.clamp_max(0).abs().amax(-1, keepdim=True)
    shift = torch.zeros_like(neg)
    if bool((neg > 0).any()):  # shift by a bound on the negative part: max|w_-| ||A^* A / m||
        v = z
        for _ in range(20):
            v = op.adjoint(op.forward(v)) / op.m
            top = v.norm(dim=-1, keepdim=True)
            v = v / top
        shift = 1.1 * neg * top
    for _ in range(power_iters):
        z = op.adjoint(w * op.forward(z)) / op.m + shift * z
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


def init_random(op: Measurement, y: torch.Tensor, *, generator: torch.Generator | None = None,
                **kw) -> torch.Tensor:
    """A random Gaussian direction scaled to the estimated norm (the landscape-only baseline)."""
    z = _random_signal(op, y.shape[0], generator)
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
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Run the initialiser ``name`` on intensities ``y`` of shape ``(B, m)``; returns ``(B, n)``."""
    if name not in INITIALIZERS:
        raise InputError(f"unknown initializer {name!r}; expected one of {', '.join(INITIALIZERS)}")
    return INITIALIZERS[name](op, y, power_iters=power_iters, generator=generator)


# ----------------------------------------------------------------------------- algorithms
# Each yields the next iterate forever; :func:`solve` decides when to stop.

def wirtinger_flow(op: Measurement, y: torch.Tensor, z: torch.Tensor, *, mu_max: float = 0.2,
                   t0: float = 330.0) -> Iterator[torch.Tensor]:
    """Wirtinger flow (Candès, Li & Soltanolkotabi 2015).

    z <- z - (mu_t / ||z_0||^2) (1/m) sum_k (|a_k^* z|^2 - y_k) a_k a_k^* z, with the paper's step
    mu_t = min(1 - exp(-t / t0), mu_max), t0 = 330, mu_max = 0.2 (the paper's Gaussian setting; pass
    ``mu_max`` for a more aggressive cap on CDP).
    """
    norm0 = (z.abs() ** 2).sum(-1, keepdim=True)
    t = 0
    while True:
        t += 1
        az = op.forward(z)
        grad = op.adjoint((az.abs() ** 2 - y) * az) / op.m
        z = z - (min(1.0 - math.exp(-t / t0), mu_max) / norm0) * grad
        yield z


def truncated_wirtinger_flow(op: Measurement, y: torch.Tensor, z: torch.Tensor, *, mu: float = 0.2,
                             alpha_lb: float = 0.3, alpha_ub: float = 5.0,
                             alpha_h: float = 5.0) -> Iterator[torch.Tensor]:
    """Truncated Wirtinger flow (Chen & Candès 2015), Poisson log-likelihood gradient.

    z <- z + (2 mu / m) sum_{k in E1 and E2} (y_k - |a_k^* z|^2) / conj(a_k^* z) a_k, with
    E1: alpha_lb <= sqrt(n) |a_k^* z| / (||a_k|| ||z||) <= alpha_ub and
    E2: |y_k - |a_k^* z|^2| <= alpha_h mean_l |y_l - |a_l^* z|^2| sqrt(n) |a_k^* z| / (||a_k|| ||z||);
    paper defaults mu = 0.2, alpha_lb = 0.3, alpha_ub = 5, alpha_h = 5.
    """
    anorm = op.row_norms_sq().sqrt()
    root_n = math.sqrt(op.n)
    while True:
        az = op.forward(z)
        mag = az.abs()
        ratio = root_n * mag / (anorm * z.norm(dim=-1, keepdim=True))
        resid = y - mag ** 2
        K = resid.abs().mean(-1, keepdim=True)
        keep = (ratio >= alpha_lb) & (ratio <= alpha_ub) & (resid.abs() <= alpha_h * K * ratio)
        safe = torch.where(keep, az, torch.ones_like(az))
        coef = torch.where(keep, resid / safe.conj(), torch.zeros_like(az))
        z = z + (2 * mu / op.m) * op.adjoint(coef)
        yield z


def _amplitude_step(op: Measurement, psi: torch.Tensor, z: torch.Tensor, mu: float,
                    gamma: float | None) -> torch.Tensor:
    az = op.forward(z)
    g = az - psi * torch.sgn(az)
    if gamma is not None:  # TAF: drop terms whose sign/phase is likely wrong
        g = torch.where(az.abs() >= psi / (1 + gamma), g, torch.zeros_like(g))
    return z - (mu / op.m) * op.adjoint(g)


def reshaped_wirtinger_flow(op: Measurement, y: torch.Tensor, z: torch.Tensor, *,
                            mu: float = 0.8) -> Iterator[torch.Tensor]:
    """Reshaped Wirtinger flow (Zhang & Liang 2016): gradient descent on the amplitude loss
    (1/2m) sum_k (|a_k^* z| - psi_k)^2, z <- z - (mu/m) sum_k (a_k^* z - psi_k sgn(a_k^* z)) a_k,
    fixed step mu = 0.8 (paper)."""
    psi = y.clamp_min(0).sqrt()
    while True:
        z = _amplitude_step(op, psi, z, mu, None)
        yield z


def amplitude_flow(op: Measurement, y: torch.Tensor, z: torch.Tensor, *,
                   mu: float = 0.6) -> Iterator[torch.Tensor]:
    """Amplitude flow (Wang, Giannakis & Eldar 2017, AF): the untruncated TAF update with mu = 0.6,
    started (by default) from the orthogonality-promoting initialisation."""
    psi = y.clamp_min(0).sqrt()
    while True:
        z = _amplitude_step(op, psi, z, mu, None)
        yield z


def truncated_amplitude_flow(op: Measurement, y: torch.Tensor, z: torch.Tensor, *, mu: float = 0.6,
                             gamma: float = 0.7) -> Iterator[torch.Tensor]:
    """Truncated amplitude flow (Wang, Giannakis & Eldar 2017, TAF).

    z <- z - (mu/m) sum_{k: |a_k^* z| >= psi_k / (1 + gamma)} (a_k^* z - psi_k sgn(a_k^* z)) a_k,
    mu = 0.6, gamma = 0.7 (paper), from the orthogonality-promoting initialisation.
    """
    psi = y.clamp_min(0).sqrt()
    while True:
        z = _amplitude_step(op, psi, z, mu, gamma)
        yield z


def gerchberg_saxton(op: Measurement, y: torch.Tensor, z: torch.Tensor) -> Iterator[torch.Tensor]:
    """Alternating minimization / Gerchberg-Saxton (Netrapalli, Jain & Sanghavi 2013, AltMinPhase).

    Alternate the phases c = sgn(A z) and the least-squares fit z = argmin ||A z - psi * c||; no step
    size. The paper's analysis draws fresh measurements for each step; in practice, and here, all
    measurements are reused. Least squares uses a Cholesky factor of A^* A computed once (Gaussian)
    or the diagonal A^* A (CDP).
    """
    psi = y.clamp_min(0).sqrt()
    while True:
        az = op.forward(z)
        z = op.lstsq(psi * _unit_phase(az))
        yield z


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its update, default initialiser and iteration budget, and its reference."""

    name: str
    label: str
    step: Callable[..., Iterator[torch.Tensor]]
    default_init: str
    default_iters: int
    reference: str


ALGORITHMS: dict[str, Algorithm] = {
    "wf": Algorithm("wf", "Wirtinger flow", wirtinger_flow, "spectral", 2500,
                    "Candès, Li, Soltanolkotabi, IEEE Trans. Inf. Theory 2015"),
    "twf": Algorithm("twf", "Truncated Wirtinger flow", truncated_wirtinger_flow, "truncated-spectral", 2500,
                     "Chen, Candès, NeurIPS 2015 / CPAM 2017"),
    "rwf": Algorithm("rwf", "Reshaped Wirtinger flow", reshaped_wirtinger_flow, "reshaped", 2500,
                     "Zhang, Liang, NeurIPS 2016"),
    "af": Algorithm("af", "Amplitude flow", amplitude_flow, "orthogonality", 2500,
                    "Wang, Giannakis, Eldar, IEEE Trans. Inf. Theory 2018"),
    "taf": Algorithm("taf", "Truncated amplitude flow", truncated_amplitude_flow, "orthogonality", 2500,
                     "Wang, Giannakis, Eldar, IEEE Trans. Inf. Theory 2018"),
    "gs": Algorithm("gs", "Gerchberg-Saxton / alternating minimization", gerchberg_saxton, "spectral", 2000,
                    "Netrapalli, Jain, Sanghavi, NeurIPS 2013"),
}


# ----------------------------------------------------------------------------- driver

@dataclass
class GPRState:
    """What :func:`solve` yields.

    Attributes
    ----------
    iteration : int
        0 for the initial estimate.
    z : torch.Tensor
        Iterates, ``(B, n)``.
    loss : torch.Tensor
        Relative amplitude residual per trial, ``(B,)`` (see :func:`amplitude_residual`).
    error : torch.Tensor or None
        Relative error modulo global phase per trial when the truth was given.
    change : torch.Tensor or None
        ||z_t - z_{t-1}|| / ||z_t|| per trial.
    done : bool
        True on the last state.
    """

    iteration: int
    z: torch.Tensor
    loss: torch.Tensor
    error: torch.Tensor | None
    change: torch.Tensor | None
    done: bool = False


def solve(op: Measurement, y: torch.Tensor, algorithm: str = "taf", *, init: str | None = None,
          iters: int | None = None, x_true: torch.Tensor | None = None, z0: torch.Tensor | None = None,
          every: int = 1, stop_tol: float = 0.0, power_iters: int = 100,
          generator: torch.Generator | None = None, **params: float) -> Iterator[GPRState]:
    """Run ``algorithm`` step by step, yielding a :class:`GPRState` every ``every`` iterations.

    Parameters
    ----------
    op : Measurement
    y : torch.Tensor
        Intensities ``(B, m)`` (a 1-D ``(m,)`` is treated as one trial).
    algorithm : str
        A key of :data:`ALGORITHMS`.
    init : str, optional
        A key of :data:`INITIALIZERS`; the algorithm's own by default. Ignored when ``z0`` is given.
    iters : int, optional
        Iteration budget (the algorithm's default when None).
    x_true : torch.Tensor, optional
        Truth ``(B, n)``, only to report the error; never used by the algorithm.
    stop_tol : float
        Stop early once every trial's relative change is below this (0: never).
    **params
        Algorithm parameters (e.g. ``mu``, ``gamma``, ``mu_max``) overriding the paper's values.
    """
    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    info = ALGORITHMS[algorithm]
    iters = info.default_iters if iters is None else int(iters)
    if iters < 0:
        raise InputError(f"iterations must be >= 0; got {iters}")
    every = max(1, int(every))
    if y.ndim == 1:
        y = y.unsqueeze(0)
        x_true = x_true.unsqueeze(0) if x_true is not None and x_true.ndim == 1 else x_true
        z0 = z0.unsqueeze(0) if z0 is not None and z0.ndim == 1 else z0
    y = y.to(device=op.device, dtype=torch.float64 if op.dtype in (torch.float64, torch.complex128)
             else torch.float32)
    if z0 is None:
        z = initialize(init or info.default_init, op, y, power_iters=power_iters, generator=generator)
    else:
        z = z0.to(device=op.device, dtype=op.dtype)

    def state(t: int, z: torch.Tensor, change: torch.Tensor | None, done: bool) -> GPRState:
        err = relative_error(z, x_true.to(z)) if x_true is not None else None
        return GPRState(t, z, amplitude_residual(op, z, y), err, change, done)

    yield state(0, z, None, iters == 0)
    steps = info.step(op, y, z, **params)
    for t in range(1, iters + 1):
        z_new = next(steps)
        change = (z_new - z).norm(dim=-1) / z_new.norm(dim=-1).clamp_min(1e-300)
        z = z_new
        stop = t == iters or (stop_tol > 0 and bool((change < stop_tol).all()))
        if stop or t % every == 0:
            yield state(t, z, change, stop)
        if stop:
            break


def recover(op: Measurement, y: torch.Tensor, algorithm: str = "taf", **kw) -> GPRState:
    """Run :func:`solve` to the end and return the last state (intermediate states are not kept)."""
    last = None
    for state in solve(op, y, algorithm, every=10 ** 9, **kw):
        last = state
    assert last is not None
    return last
