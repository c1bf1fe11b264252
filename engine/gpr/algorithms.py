"""Generalized phase retrieval: recover x from y_k = |a_k^* x|^2, up to a global phase.

Algorithms work on a batch of independent trials at once: the intensities ``y`` have shape
``(B, m)`` and iterates ``(B, n)``; the operator holds either one instance shared by all trials or
one per trial (see :mod:`engine.gpr.measurements`). Initialisers live in
:mod:`engine.gpr.initializers`.

:class:`GPRSolver` runs one algorithm: ``step()`` takes one iteration, ``run(callback)`` goes to the
end, ``state_dict()`` / ``load_state_dict()`` resume exactly. :func:`recover` is the one-call form.
Algorithms (:data:`ALGORITHMS`): ``wf``, ``twf``, ``rwf``, ``af``, ``taf``, ``gs``; each is an
:class:`Update`, an explicit rule z_t = rule(z_{t-1}, t) whose constants are computed once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from engine.core.errors import InputError
from engine.core.seeds import TorchSeed
from engine.gpr.initializers import initialize
from engine.gpr.measurements import Measurement

# ----------------------------------------------------------------------------- metrics

def _unit_phase(inner: torch.Tensor) -> torch.Tensor:
    """sgn(inner), with 1 where inner is 0 (any phase is optimal there)."""
    s = torch.sgn(inner)
    return torch.where(inner == 0, torch.ones_like(s), s)


def align_phase(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """``estimate`` times the global phase (a sign for real data) that brings it closest to ``reference``.

    Per trial: the last axis is the signal.
    """
    inner = (reference.conj() * estimate).sum(-1, keepdim=True)  # x^* z
    return estimate * _unit_phase(inner).conj()


def relative_error(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """min over phi of ||estimate - e^{i phi} reference|| / ||reference||, per trial (last axis: signal).

    Computed from the aligned difference, not from norms and inner products, so that errors far
    below sqrt(machine epsilon) are still resolved.
    """
    return (align_phase(reference, estimate) - reference).norm(dim=-1) / reference.norm(dim=-1)


def amplitude_residual(op: Measurement, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """|| |Az| - sqrt(y) || / || sqrt(y) ||: the loss reported for every algorithm, so curves compare."""
    psi = y.clamp_min(0).sqrt()
    return (op.A(z).abs() - psi).norm(dim=-1) / psi.norm(dim=-1).clamp_min(1e-30)


# ----------------------------------------------------------------------------- algorithms

class Update:
    """One iteration rule. Built once from the operator, the data and the starting point; then
    ``rule(z, t)`` returns iterate ``t`` (t = 1, 2, ...) from iterate ``t - 1``.

    What a rule keeps beyond ``op`` and ``y`` (e.g. the starting norm of WF) is in
    :meth:`state_dict`, so a solver restores it on resume.
    """

    def __init__(self, op: Measurement, y: torch.Tensor, z0: torch.Tensor) -> None:
        self.op, self.y = op, y

    def __call__(self, z: torch.Tensor, t: int) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class WirtingerFlow(Update):
    """Wirtinger flow (Candès, Li & Soltanolkotabi 2015).

    z <- z - (mu_t / ||z_0||^2) (1/m) sum_k (|a_k^* z|^2 - y_k) a_k a_k^* z, with the paper's step
    mu_t = min(1 - exp(-t / t0), mu_max), t0 = 330, mu_max = 0.2 (the paper's Gaussian setting; pass
    ``mu_max`` for a more aggressive cap on CDP).
    """

    def __init__(self, op: Measurement, y: torch.Tensor, z0: torch.Tensor, *, mu_max: float = 0.2,
                 t0: float = 330.0) -> None:
        super().__init__(op, y, z0)
        self.mu_max, self.t0 = mu_max, t0
        self.norm0 = (z0.abs() ** 2).sum(-1, keepdim=True)

    def __call__(self, z: torch.Tensor, t: int) -> torch.Tensor:
        op = self.op
        az = op.A(z)
        grad = op.A_adjoint((az.abs() ** 2 - self.y) * az) / op.m
        return z - (min(1.0 - math.exp(-t / self.t0), self.mu_max) / self.norm0) * grad

    def state_dict(self) -> dict[str, Any]:
        return {"norm0": self.norm0}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.norm0 = state["norm0"].to(self.norm0)


class TruncatedWirtingerFlow(Update):
    """Truncated Wirtinger flow (Chen & Candès 2015), Poisson log-likelihood gradient.

    z <- z + (2 mu / m) sum_{k in E1 and E2} (y_k - |a_k^* z|^2) / conj(a_k^* z) a_k, with
    E1: alpha_lb <= sqrt(n) |a_k^* z| / (||a_k|| ||z||) <= alpha_ub and
    E2: |y_k - |a_k^* z|^2| <= alpha_h mean_l |y_l - |a_l^* z|^2| sqrt(n) |a_k^* z| / (||a_k|| ||z||);
    paper defaults mu = 0.2, alpha_lb = 0.3, alpha_ub = 5, alpha_h = 5.
    """

    def __init__(self, op: Measurement, y: torch.Tensor, z0: torch.Tensor, *, mu: float = 0.2,
                 alpha_lb: float = 0.3, alpha_ub: float = 5.0, alpha_h: float = 5.0) -> None:
        super().__init__(op, y, z0)
        self.mu, self.alpha_lb, self.alpha_ub, self.alpha_h = mu, alpha_lb, alpha_ub, alpha_h
        self.anorm = op.row_norms_sq().sqrt()
        self.root_n = math.sqrt(op.n)

    def __call__(self, z: torch.Tensor, t: int) -> torch.Tensor:
        op, y = self.op, self.y
        az = op.A(z)
        mag = az.abs()
        ratio = self.root_n * mag / (self.anorm * z.norm(dim=-1, keepdim=True))
        resid = y - mag ** 2
        K = resid.abs().mean(-1, keepdim=True)
        keep = ((ratio >= self.alpha_lb) & (ratio <= self.alpha_ub)
                & (resid.abs() <= self.alpha_h * K * ratio))
        safe = torch.where(keep, az, torch.ones_like(az))
        coef = torch.where(keep, resid / safe.conj(), torch.zeros_like(az))
        return z + (2 * self.mu / op.m) * op.A_adjoint(coef)


class _AmplitudeUpdate(Update):
    """Gradient step on the amplitude loss, optionally truncated (TAF)."""

    gamma: float | None = None

    def __init__(self, op: Measurement, y: torch.Tensor, z0: torch.Tensor, *, mu: float) -> None:
        super().__init__(op, y, z0)
        self.mu = mu
        self.psi = y.clamp_min(0).sqrt()

    def __call__(self, z: torch.Tensor, t: int) -> torch.Tensor:
        op, psi = self.op, self.psi
        az = op.A(z)
        g = az - psi * torch.sgn(az)
        if self.gamma is not None:  # TAF: drop terms whose sign/phase is likely wrong
            g = torch.where(az.abs() >= psi / (1 + self.gamma), g, torch.zeros_like(g))
        return z - (self.mu / op.m) * op.A_adjoint(g)


class ReshapedWirtingerFlow(_AmplitudeUpdate):
    """Reshaped Wirtinger flow (Zhang & Liang 2016): gradient descent on the amplitude loss
    (1/2m) sum_k (|a_k^* z| - psi_k)^2, z <- z - (mu/m) sum_k (a_k^* z - psi_k sgn(a_k^* z)) a_k,
    fixed step mu = 0.8 (paper)."""

    def __init__(self, op: Measurement, y: torch.Tensor, z0: torch.Tensor, *, mu: float = 0.8) -> None:
        super().__init__(op, y, z0, mu=mu)


class AmplitudeFlow(_AmplitudeUpdate):
    """Amplitude flow (Wang, Giannakis & Eldar 2017, AF): the untruncated TAF update with mu = 0.6,
    started (by default) from the orthogonality-promoting initialisation."""

    def __init__(self, op: Measurement, y: torch.Tensor, z0: torch.Tensor, *, mu: float = 0.6) -> None:
        super().__init__(op, y, z0, mu=mu)


class TruncatedAmplitudeFlow(_AmplitudeUpdate):
    """Truncated amplitude flow (Wang, Giannakis & Eldar 2017, TAF).

    z <- z - (mu/m) sum_{k: |a_k^* z| >= psi_k / (1 + gamma)} (a_k^* z - psi_k sgn(a_k^* z)) a_k,
    mu = 0.6, gamma = 0.7 (paper), from the orthogonality-promoting initialisation.
    """

    def __init__(self, op: Measurement, y: torch.Tensor, z0: torch.Tensor, *, mu: float = 0.6,
                 gamma: float = 0.7) -> None:
        super().__init__(op, y, z0, mu=mu)
        self.gamma = gamma


class GerchbergSaxton(Update):
    """Alternating minimization / Gerchberg-Saxton (Netrapalli, Jain & Sanghavi 2013, AltMinPhase).

    Alternate the phases c = sgn(A z) and the least-squares fit z = argmin ||A z - psi * c||; no step
    size. The paper's analysis draws fresh measurements for each step; in practice, and here, all
    measurements are reused. Least squares uses a Cholesky factor of A^* A computed once (Gaussian)
    or the diagonal A^* A (CDP).
    """

    def __init__(self, op: Measurement, y: torch.Tensor, z0: torch.Tensor) -> None:
        super().__init__(op, y, z0)
        self.psi = y.clamp_min(0).sqrt()

    def __call__(self, z: torch.Tensor, t: int) -> torch.Tensor:
        return self.op.lstsq(self.psi * _unit_phase(self.op.A(z)))


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its update rule, default initialiser and iteration budget, and its reference."""

    name: str
    label: str
    update: type[Update]
    default_init: str
    default_iters: int
    reference: str


ALGORITHMS: dict[str, Algorithm] = {
    "wf": Algorithm("wf", "Wirtinger flow", WirtingerFlow, "spectral", 2500,
                    "Candès, Li, Soltanolkotabi, IEEE Trans. Inf. Theory 2015"),
    "twf": Algorithm("twf", "Truncated Wirtinger flow", TruncatedWirtingerFlow, "truncated-spectral", 2500,
                     "Chen, Candès, NeurIPS 2015 / CPAM 2017"),
    "rwf": Algorithm("rwf", "Reshaped Wirtinger flow", ReshapedWirtingerFlow, "reshaped", 2500,
                     "Zhang, Liang, NeurIPS 2016"),
    "af": Algorithm("af", "Amplitude flow", AmplitudeFlow, "orthogonality", 2500,
                    "Wang, Giannakis, Eldar, IEEE Trans. Inf. Theory 2018"),
    "taf": Algorithm("taf", "Truncated amplitude flow", TruncatedAmplitudeFlow, "orthogonality", 2500,
                     "Wang, Giannakis, Eldar, IEEE Trans. Inf. Theory 2018"),
    "gs": Algorithm("gs", "Gerchberg-Saxton / alternating minimization", GerchbergSaxton, "spectral", 2000,
                    "Netrapalli, Jain, Sanghavi, NeurIPS 2013"),
}


# ----------------------------------------------------------------------------- solver

@dataclass
class GPRState:
    """The solver's picture after an iteration.

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
        ||z_t - z_{t-1}|| / ||z_t|| per trial (None at iteration 0).
    done : bool
        True once the solver is done (budget spent, or every trial's change below ``stop_tol``).
    """

    iteration: int
    z: torch.Tensor
    loss: torch.Tensor
    error: torch.Tensor | None
    change: torch.Tensor | None
    done: bool = False


class GPRSolver:
    """Run one generalized-PR algorithm on a batch of trials, one iteration per :meth:`step`.

    Parameters
    ----------
    op : Measurement
    y : torch.Tensor
        Intensities ``(B, m)`` (a 1-D ``(m,)`` is treated as one trial).
    algorithm : str
        A key of :data:`ALGORITHMS`.
    init : str, optional
        A key of :data:`engine.gpr.initializers.INITIALIZERS`; the algorithm's own by default.
        Ignored when ``z0`` is given.
    iters : int, optional
        Iteration budget (the algorithm's default when None).
    x_true : torch.Tensor, optional
        Truth ``(B, n)``, only to report the error; never used by the algorithm.
    z0 : torch.Tensor, optional
        Starting point ``(B, n)`` instead of an initialiser.
    stop_tol : float
        Done early once every trial's relative change is below this (0: never).
    seed : int, torch.Generator or None
        Randomness of the initialiser (random direction, start of power iterations); a generator
        is passed through. The iterations themselves draw nothing.
    power_iters : int
        Power iterations of the spectral initialisers when no dense eigensolver is used.
    **params
        Algorithm parameters (e.g. ``mu``, ``gamma``, ``mu_max``) overriding the paper's values.
    """

    def __init__(self, op: Measurement, y: torch.Tensor, *, algorithm: str = "taf", init: str | None = None,
                 iters: int | None = None, x_true: torch.Tensor | None = None,
                 z0: torch.Tensor | None = None, stop_tol: float = 0.0, seed: TorchSeed = None,
                 power_iters: int = 100, **params: float) -> None:
        if algorithm not in ALGORITHMS:
            raise InputError(f"unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
        info = ALGORITHMS[algorithm]
        self.algorithm = algorithm
        self.iters = info.default_iters if iters is None else int(iters)
        if self.iters < 0:
            raise InputError(f"iterations must be >= 0; got {self.iters}")
        self.stop_tol = float(stop_tol)
        if y.ndim == 1:
            y = y.unsqueeze(0)
            x_true = x_true.unsqueeze(0) if x_true is not None and x_true.ndim == 1 else x_true
            z0 = z0.unsqueeze(0) if z0 is not None and z0.ndim == 1 else z0
        self.op = op
        self.y = y.to(device=op.device, dtype=torch.float64 if op.dtype in (torch.float64, torch.complex128)
                      else torch.float32)
        self.x_true = x_true
        self.init = None if z0 is not None else (init or info.default_init)
        if z0 is None:
            self.z = initialize(self.init, op, self.y, power_iters=power_iters, seed=seed)
        else:
            self.z = z0.to(device=op.device, dtype=op.dtype)
        self.params = dict(params)
        self.update = info.update(op, self.y, self.z, **params)
        self.iteration = 0
        self.change: torch.Tensor | None = None

    # ------------------------------------------------------------------ stepping
    @property
    def done(self) -> bool:
        """True when the budget is spent or every trial's last change is below ``stop_tol``."""
        if self.iteration >= self.iters:
            return True
        return self.stop_tol > 0 and self.change is not None and bool((self.change < self.stop_tol).all())

    def _advance(self) -> None:
        t = self.iteration + 1
        z_new = self.update(self.z, t)
        self.change = (z_new - self.z).norm(dim=-1) / z_new.norm(dim=-1).clamp_min(1e-300)
        self.z = z_new
        self.iteration = t

    def state(self) -> GPRState:
        """The current iterate with its loss, error (when the truth is known) and last change."""
        z = self.z
        err = relative_error(self.x_true.to(z), z) if self.x_true is not None else None
        return GPRState(self.iteration, z, amplitude_residual(self.op, z, self.y), err, self.change, self.done)

    def step(self) -> GPRState:
        """Take one iteration and return the new state (loop ``while not solver.done``)."""
        self._advance()
        return self.state()

    def run(self, callback: Callable[[GPRState], Any] | None = None, *, every: int = 1) -> GPRState:
        """Step until :attr:`done` and return the last state.

        ``callback(state)`` sees the starting state when no iteration has been taken yet, then every
        ``every``-th iteration and the last one. It only observes: its return value is ignored.
        An exception it raises (e.g. ``engine.jobs.Cancelled``) ends the run and propagates; the
        solver stays consistent, so it can be saved or stepped on.
        """
        every = max(1, int(every))
        last = None
        if callback is not None and self.iteration == 0:
            last = self.state()
            callback(last)
        while not self.done:
            self._advance()
            if callback is not None and (self.done or self.iteration % every == 0):
                last = self.state()
                callback(last)
        if last is None or last.iteration != self.iteration:
            last = self.state()
        return last

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors and plain containers only."""
        return {"algorithm": self.algorithm, "iteration": self.iteration, "z": self.z,
                "change": self.change, "update": self.update.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (e.g. from ``torch.load(..., weights_only=True)``) into a
        solver built on the same operator and data."""
        if state["algorithm"] != self.algorithm:
            raise InputError(f"checkpoint is of algorithm {state['algorithm']!r}, not {self.algorithm!r}")
        z = state["z"]
        if tuple(z.shape) != tuple(self.z.shape):
            raise InputError(f"checkpoint iterate has shape {tuple(z.shape)}; expected {tuple(self.z.shape)}")
        self.z = z.to(self.z)
        self.change = None if state["change"] is None else state["change"].to(self.z.device)
        self.iteration = int(state["iteration"])
        self.update.load_state_dict(state["update"])


def recover(op: Measurement, y: torch.Tensor, algorithm: str = "taf", **kw: Any) -> GPRState:
    """Build a :class:`GPRSolver` with ``kw``, run it to the end and return the last state."""
    return GPRSolver(op, y, algorithm=algorithm, **kw).run()
