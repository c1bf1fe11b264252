"""Fourier phase retrieval for coherent diffraction imaging (CDI): ER, HIO, RAAR and shrink-wrap.

All random starts run together as one batched tensor of shape ``(S, *shape)`` on the device (GPU when
present). :class:`CDISolver` follows the engine's solver protocol: :meth:`~CDISolver.step` runs one
operation of the recipe (see :mod:`engine.cdi.recipe`; ``*`` applies right to left) and returns a
:class:`CDIState`, :meth:`~CDISolver.run` steps to the end with an observing callback, and
:meth:`~CDISolver.state_dict` / :meth:`~CDISolver.load_state_dict` resume exactly.

Model: ``I ~ |F x|^2`` with ``F`` the unitary FFT (:class:`engine.cdi.fourier.FourierTransform`).
Pixels that are not measured (mask) and the free pixels (a few percent of the measured ones, held out
with their Friedel mates) are left free: the Fourier constraint is applied only on the other measured
pixels. The free log-likelihood, computed on the free pixels, ranks the starts without rewarding
over-fitting.

Updates, with ``p = P_M x`` the Fourier-amplitude projection and ``S`` the support (intersected with
``Re p >= 0`` under positivity):

* ER: ``x <- P_S p``
* HIO: ``x <- p`` in S, ``x - beta p`` outside (beta 0.9)
* RAAR: ``x <- p`` in S, ``beta x + (1 - 2 beta) p`` outside (beta 0.85); this is
  ``[beta/2 (R_S R_M + I) + (1 - beta) P_M] x``
* Sup (shrink-wrap): support <- smoothed ``|P_M x|`` over the whole array (``support_mode="fourier"``,
  the default) above ``threshold`` times its rms over the current support (or its max); the smoothing
  sigma goes from ``sigma_start`` to ``sigma_end`` over the recipe's updates. One update changes the
  support size by at most the factor ``support_growth``, and the support fraction is kept within guards.
  ``P_M x`` is the object the data ask for: where the support is too small, it carries the missing part
  of the object outside it, so the support can grow; where it is too large, the part outside the object
  fades and the support shrinks. ``support_mode="inside"`` smooths ``|x|`` inside the current support
  only (it can only shrink, or grow by the smoothing width).
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from engine.cdi import fourier as F
from engine.cdi.recipe import PROJECTIONS, Recipe, parse_recipe
from engine.core.errors import InputError
from engine.core.seeds import numpy_rng

#: default recipe: support from the autocorrelation, HIO with shrink-wrap, RAAR, then ER to settle
DEFAULT_RECIPE = "ER**200*(Sup*ER**10*RAAR**40)**12*(Sup*HIO**50)**8"
#: default recipe with a support given (PyNX's example): HIO**200, then 20 times (HIO**40, ER**5, Sup)
#: with the smoothing going 2 -> 0.5, then ER**100 (right to left)
SUPPORT_RECIPE = "ER**100*(Sup*ER**5*HIO**40)**20*HIO**200"


def default_recipe(support_given: bool) -> str:
    """The default recipe: :data:`SUPPORT_RECIPE` when a support is given, else :data:`DEFAULT_RECIPE`."""
    return SUPPORT_RECIPE if support_given else DEFAULT_RECIPE


@dataclass
class CDIOptions:
    """Options of :class:`CDISolver` (all plain values, so they go into JSON summaries)."""

    beta_hio: float = 0.9
    beta_raar: float = 0.85
    positivity: bool = False
    real: bool = False
    threshold: float = 0.25
    threshold_method: str = "rms"
    sigma_start: float = 2.0
    sigma_end: float = 0.5
    min_support_fraction: float = 1e-3
    max_support_fraction: float = 0.5
    autocorr_threshold: float = 0.1
    shrink_only: bool = False
    zero_mask: float = 0.0
    free_fraction: float = 0.03
    noise: str = "poisson"
    init: str = "auto"
    support_mode: str = "fourier"
    support_growth: float = 2.0

    @classmethod
    def from_dict(cls, d: dict | None) -> CDIOptions:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"unknown CDI options {sorted(unknown)}; expected some of "
                             f"{sorted(cls.__dataclass_fields__)}")
        o = cls(**d)
        o.check()
        return o

    def check(self) -> None:
        for name in ("beta_hio", "beta_raar"):
            if not 0 < getattr(self, name) <= 1:
                raise InputError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if not 0 < self.threshold < 1:
            raise InputError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.threshold_method not in ("rms", "max"):
            raise InputError(f"threshold_method must be 'rms' or 'max', got {self.threshold_method!r}")
        if not 0 < self.min_support_fraction < self.max_support_fraction <= 1:
            raise InputError("support guards must satisfy "
                             "0 < min_support_fraction < max_support_fraction <= 1")
        if not 0 <= self.free_fraction < 0.5:
            raise InputError(f"free_fraction must be in [0, 0.5), got {self.free_fraction}")
        if self.noise not in ("poisson", "gaussian"):
            raise InputError(f"noise must be 'poisson' or 'gaussian', got {self.noise!r}")
        if self.init not in ("auto", "flat", "random"):
            raise InputError(f"init must be 'auto', 'flat' or 'random', got {self.init!r}")
        if self.support_mode not in ("fourier", "inside"):
            raise InputError(f"support_mode must be 'fourier' or 'inside', got {self.support_mode!r}")
        if not self.support_growth > 1:
            raise InputError(f"support_growth must be > 1, got {self.support_growth}")
        if not 0 < self.autocorr_threshold < 1:
            raise InputError(f"autocorr_threshold must be in (0, 1), got {self.autocorr_threshold}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CDIState:
    """What one step reports (numpy arrays have one value per start)."""

    operation: int
    cycle: int
    cycles: int
    op: str
    llk: np.ndarray | None = None
    llk_free: np.ndarray | None = None
    support_fraction: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


class CDISolver:
    """Batched Fourier phase retrieval.

    Loop ``while not solver.done: solver.step()``, or call :meth:`run`. Every parameter after
    ``intensity`` is keyword-only.

    Parameters
    ----------
    intensity : ndarray (H, W) or (D, H, W)
        Counts in detector layout (zero frequency in the middle) unless ``centered=False``.
    mask : ndarray of bool, optional
        True = not measured (left free).
    recipe : str or Recipe
        Operator chain, e.g. ``"ER**100*(Sup*HIO**50)**8"``.
    starts : int
        Number of random starts, run as one batch.
    seed : int
        Start ``s`` is initialised from the stream ``(seed, first_start + s)``, so a batch and single
        runs match (hence an integer: a generator could not be split per start).
    options : CDIOptions or dict, optional
    device : str or torch.device
    support : ndarray of bool, optional
        Initial support (same layout as ``intensity``); default: from the autocorrelation. With a
        support and ``options.init="auto"`` the starts are flat and real (see :meth:`_initial_objects`).
    centered : bool
        ``intensity``, ``mask`` and ``support`` are centred (False: already in FFT layout).
    first_start : int
        Index of the first start (to reproduce one start of a batch alone).
    """

    def __init__(self, intensity: np.ndarray, *, mask: np.ndarray | None = None,
                 recipe: str | Recipe = DEFAULT_RECIPE, starts: int = 1, seed: int = 0,
                 options: CDIOptions | dict | None = None,
                 device: str | torch.device = "cpu", support: np.ndarray | None = None,
                 centered: bool = True, first_start: int = 0) -> None:
        self.options = options if isinstance(options, CDIOptions) else CDIOptions.from_dict(options)
        self.options.check()
        self.recipe = recipe if isinstance(recipe, Recipe) else parse_recipe(recipe)
        intensity = np.asarray(intensity, dtype=np.float32)
        if intensity.ndim not in (2, 3):
            raise InputError(f"the pattern is {intensity.ndim}D; expected 2D or 3D")
        if not 1 <= int(starts) <= 4096:
            raise InputError(f"starts must be between 1 and 4096, got {starts}")
        self.ndim = intensity.ndim
        self.shape = intensity.shape
        self.starts = int(starts)
        if seed is None or isinstance(seed, np.random.Generator):
            raise InputError("CDISolver needs an integer seed: start s draws from the stream (seed, s)")
        numpy_rng(seed, 0)  # the same checks as every seed (non-negative integer)
        self.seed = int(seed)
        self.first_start = int(first_start)
        self.device = torch.device(device)
        self.fourier = F.FourierTransform(self.ndim)
        # cumulative operation counts of the recipe's steps: operation i belongs to the first step
        # whose end is above i (recipes may hold up to a million operations, so no flat list)
        self._op_ends = list(itertools.accumulate(st.count for st in self.recipe.steps))
        m = np.zeros(self.shape, bool) if mask is None else np.asarray(mask, bool)
        if m.shape != self.shape:
            raise InputError(f"mask shape {m.shape} does not match the pattern {self.shape}")
        m = m | ~np.isfinite(intensity) | (intensity < 0)
        if centered:  # the only shift: everything below stays in FFT layout
            intensity, m = F.to_fft_layout(intensity), F.to_fft_layout(m)
            support = None if support is None else F.to_fft_layout(np.asarray(support, bool))
        dev = self.device
        iobs = torch.from_numpy(np.where(m, 0, intensity).astype(np.float32)).to(dev)
        observed = torch.from_numpy(~m).to(dev)
        if not bool(observed.any()):
            raise InputError("no measured pixel in the pattern")
        self.iobs = iobs
        self.observed = observed
        self.free = self._free_pixels(observed)
        constrained = observed & ~self.free
        self.w_obs = constrained.to(torch.float32)
        self.w_free = self.free.to(torch.float32)
        self.amp = torch.sqrt(iobs) * self.w_obs
        self.free_one = 1.0 - self.w_obs  # pixels the Fourier constraint leaves alone
        self.free_one_zero = self.w_free  # the same while not-measured pixels are held at zero
        if support is None:
            sup = F.autocorrelation_support(iobs, observed, threshold=self.options.autocorr_threshold)
        else:
            sup = torch.from_numpy(np.asarray(support, bool)).to(dev)
            if tuple(sup.shape) != self.shape:
                raise InputError(f"support shape {tuple(sup.shape)} does not match the pattern {self.shape}")
        if not bool(sup.any()):
            raise InputError("the initial support is empty; lower autocorr_threshold")
        self.support = sup.expand((self.starts,) + self.shape).clone()
        init = self.options.init
        self.init = ("flat" if support is not None else "random") if init == "auto" else init
        self.x = self._initial_objects()
        #: support size (pixels) of every start after each update, first entry = the initial support
        self.support_history: list[list[int]] = [self._support_sizes()]
        self.operation = 0
        self.cycle = 0
        self._sup_done = 0
        self._kernels: dict[float, torch.Tensor] = {}
        self.guard_hits = 0

    # ----------------------------------------------------------------------------------------
    def _free_pixels(self, observed: torch.Tensor) -> torch.Tensor:
        """A random few % of measured pixels, with their Friedel mates, held out of the constraint."""
        frac = self.options.free_fraction
        if frac <= 0:
            return torch.zeros_like(observed)
        rng = numpy_rng(self.seed, 7919)
        pick = torch.from_numpy(rng.random(self.shape) < frac / 2).to(self.device)
        free = (pick | F.friedel_mate(pick, self.ndim)) & observed
        # keep the very centre constrained: it carries most of the photons and the scale
        free.view(-1)[0] = False
        return free

    def _support_sizes(self) -> list[int]:
        return [int(v) for v in self.support.reshape(self.starts, -1).sum(dim=1).tolist()]

    def _initial_objects(self) -> torch.Tensor:
        """Starts inside the support, scaled to the measured photons.

        ``init="random"``: uniform amplitude, random phases. ``"flat"`` (PyNX's start for a given
        support): real, amplitude uniform random in [0.8, 1], no phase.
        """
        xs = []
        for s in range(self.starts):
            rng = numpy_rng(self.seed, self.first_start + s)
            if self.init == "flat":
                xs.append((0.8 + 0.2 * rng.random(self.shape)).astype(np.complex64))
            else:
                xs.append(np.exp(2j * np.pi * rng.random(self.shape)).astype(np.complex64))
        x = torch.from_numpy(np.stack(xs)).to(self.device) * self.support
        n_obs = float(self.observed.sum())
        photons = float(self.iobs.sum()) * (np.prod(self.shape) / max(n_obs, 1.0))
        norm = (x.abs() ** 2).sum(dim=F.dims(self.ndim), keepdim=True).clamp_min(1e-12)
        return (x * torch.sqrt(photons / norm)).to(torch.complex64)

    # ----------------------------------------------------------------------------------------
    def _fourier(self, want_llk: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """``P_M x`` for all starts, and the LLKs of the current estimate when asked."""
        llk = llk_free = None
        if want_llk:
            # HIO/RAAR iterates are not solutions outside the support: score the supported part
            llk, llk_free = self._llk(self.x * self.support)
        psi = self.fourier.A(self.x)
        zero = self.cycle <= self.options.zero_mask * self.recipe.cycles
        F.amplitude_projection_(psi, self.amp, self.free_one_zero if zero else self.free_one)
        return self.fourier.A_adjoint(psi), llk, llk_free

    def _llk(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        psi = self.fourier.A(x)
        ic = psi.real ** 2 + psi.imag ** 2
        llk = F.llk(self.iobs, ic, self.w_obs, ndim=self.ndim, noise=self.options.noise)
        free = None
        if self.options.free_fraction > 0:
            free = F.llk(self.iobs, ic, self.w_free, ndim=self.ndim, noise=self.options.noise)
        return llk, free

    def _inside(self, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The object constraint: the pixels where ``p`` is kept, and ``p`` projected there."""
        o = self.options
        if o.positivity or o.real:
            p_in = torch.complex(p.real.clamp_min(0) if o.positivity else p.real, torch.zeros_like(p.real))
            keep = self.support & (p.real >= 0) if o.positivity else self.support
            return keep, p_in
        return self.support, p

    def _project(self, name: str, kw: dict,
                 want_llk: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        p, llk, llk_free = self._fourier(want_llk)
        keep, p_in = self._inside(p)
        if name == "ER":
            self.x = torch.where(keep, p_in, torch.zeros((), dtype=p.dtype, device=p.device))
        elif name == "HIO":
            beta = kw.get("beta", self.options.beta_hio)
            self.x.sub_(p, alpha=beta)
            self.x = torch.where(keep, p_in, self.x)
        else:  # RAAR
            beta = kw.get("beta", self.options.beta_raar)
            self.x.mul_(beta).add_(p, alpha=1.0 - 2.0 * beta)
            self.x = torch.where(keep, p_in, self.x)
        return llk, llk_free

    def _kernel(self, sigma: float) -> torch.Tensor:
        key = round(float(sigma), 4)
        if key not in self._kernels:
            self._kernels[key] = F.gaussian_ft(self.shape, key, self.device)
        return self._kernels[key]

    def sigma_for_update(self, k: int) -> float:
        """Smoothing sigma of the k-th support update (0-based): linear from sigma_start to sigma_end."""
        n = max(self.recipe.support_updates, 1)
        o = self.options
        return o.sigma_start if n == 1 else o.sigma_start + (o.sigma_end - o.sigma_start) * k / (n - 1)

    def update_support(self, *, threshold: float | None = None, sigma: float | None = None) -> None:
        """Shrink-wrap every start (see the module docstring); sizes are appended to ``support_history``."""
        o = self.options
        thr = o.threshold if threshold is None else threshold
        sig = self.sigma_for_update(self._sup_done) if sigma is None else sigma
        if o.support_mode == "fourier":
            a = self._fourier(False)[0].abs()
        else:
            # HIO/RAAR leave a residue outside the support: only the part inside is an estimate
            a = self.x.abs() * self.support
        sm = F.smooth(a, sig, self.ndim, kernel=self._kernel(sig)) if sig > 0 else a
        d = F.dims(self.ndim)
        if o.threshold_method == "rms":
            ref = torch.sqrt((sm ** 2 * self.support).sum(dim=d) / self.support.sum(dim=d).clamp_min(1))
        else:
            ref = sm.amax(dim=d)
        new = sm > (thr * ref).reshape((-1,) + (1,) * self.ndim)
        n = int(np.prod(self.shape))
        size = new.reshape(self.starts, -1).sum(dim=1)
        old = self.support.reshape(self.starts, -1).sum(dim=1)
        lo, hi = o.min_support_fraction * n, o.max_support_fraction * n
        if o.support_mode == "fourier":
            g = o.support_growth
            lo_s = torch.clamp(old.double() / g, min=lo)
            hi_s = torch.clamp(old.double() * g, max=hi)
        else:
            lo_s = torch.full_like(old, lo, dtype=torch.float64)
            hi_s = torch.full_like(old, hi, dtype=torch.float64)
        for s in torch.nonzero((size < lo_s) | (size > hi_s)).flatten().tolist():
            # out of bounds: keep the k strongest pixels instead, k at the violated bound
            bound = float(lo_s[s]) if float(size[s]) < float(lo_s[s]) else float(hi_s[s])
            k = min(max(1, int(round(bound))), n)
            flat = sm[s].reshape(-1)
            cut = torch.topk(flat, k, sorted=True).values[-1]
            new[s] = (sm[s] >= cut)
            if bound in (lo, hi):
                self.guard_hits += 1
        if o.shrink_only:
            new &= self.support
        self.support = new
        self._sup_done += 1
        self.support_history.append(self._support_sizes())

    # ----------------------------------------------------------------------------------------
    @property
    def total_operations(self) -> int:
        """Operations in the recipe (projections and support updates)."""
        return self._op_ends[-1] if self._op_ends else 0

    @property
    def done(self) -> bool:
        """True when every operation of the recipe has run."""
        return self.operation >= self.total_operations

    def step(self, *, llk_every: int = 1) -> CDIState:
        """Run the next operation of the recipe and report it.

        Parameters
        ----------
        llk_every : int
            Compute the likelihoods when this cycle is a multiple of ``llk_every`` (and on the last
            cycle); 0: never. They come from the FFT the cycle does anyway, so the cost is one log per
            pixel.

        Raises
        ------
        RuntimeError
            When the recipe is already finished (see :attr:`done`).
        """
        if self.done:
            raise RuntimeError(f"the recipe is finished ({self.total_operations} operations)")
        st = self.recipe.steps[bisect.bisect_right(self._op_ends, self.operation)]
        name, kw = st.name, st.kwargs
        total = self.recipe.cycles
        self.operation += 1
        llk = llk_free = None
        if name == "Sup":
            self.update_support(threshold=kw.get("threshold"), sigma=kw.get("sigma"))
        elif name in PROJECTIONS:
            self.cycle += 1
            want = llk_every > 0 and (self.cycle % llk_every == 0 or self.cycle == total)
            llk, llk_free = self._project(name, kw, want)
        frac = self.support_fraction() if name == "Sup" or llk is not None else None
        return CDIState(self.operation, self.cycle, total, name,
                        llk=None if llk is None else llk.cpu().numpy(),
                        llk_free=None if llk_free is None else llk_free.cpu().numpy(),
                        support_fraction=frac)

    def run(self, callback: Callable[[CDIState], Any] | None = None, *, llk_every: int = 0) -> CDIState:
        """Step until :attr:`done`; return the last state, with the final likelihoods and support fraction.

        ``callback(state)`` is called after every operation. It only observes: its return value is
        ignored. An exception it raises (e.g. ``engine.jobs.Cancelled``) ends the run and propagates;
        the solver stays consistent, so it can be saved or stepped on. ``llk_every`` is passed to
        :meth:`step` (0, the default: likelihoods of the final state only).
        """
        state = None
        while not self.done:
            state = self.step(llk_every=llk_every)
            if callback is not None:
                callback(state)
        if state is None:  # nothing left to run (e.g. a finished checkpoint)
            last = self.recipe.steps[-1].name if self.recipe.steps else ""
            state = CDIState(self.operation, self.cycle, self.recipe.cycles, last)
        llk, llk_free = self.likelihoods()
        state.llk, state.llk_free = llk, llk_free
        state.support_fraction = self.support_fraction()
        return state

    def state_dict(self) -> dict:
        """What a checkpoint needs to continue the recipe (CPU tensors and ints)."""
        return {"x": self.x.cpu(), "support": self.support.cpu(), "operation": self.operation,
                "cycle": self.cycle, "sup_done": self._sup_done, "recipe": self.recipe.text,
                "starts": self.starts, "support_history": [list(h) for h in self.support_history]}

    def load_state_dict(self, d: dict) -> None:
        """Continue from :meth:`state_dict` (same pattern, recipe and number of starts)."""
        if d.get("recipe") != self.recipe.text or int(d.get("starts", -1)) != self.starts:
            raise InputError("the checkpoint was made with another recipe or number of starts")
        self.x = d["x"].to(self.device, torch.complex64)
        self.support = d["support"].to(self.device, torch.bool)
        self.operation, self.cycle, self._sup_done = int(d["operation"]), int(d["cycle"]), int(d["sup_done"])
        if "support_history" in d:
            self.support_history = [list(h) for h in d["support_history"]]

    def likelihoods(self) -> tuple[np.ndarray, np.ndarray | None]:
        """LLK and free LLK of the current objects (one extra FFT), one value per start."""
        llk, free = self._llk(self.x * self.support)
        return llk.cpu().numpy(), None if free is None else free.cpu().numpy()

    def support_fraction(self) -> np.ndarray:
        return self.support.reshape(self.starts, -1).float().mean(dim=1).cpu().numpy()

    def ranking(self) -> np.ndarray:
        """Start indices, best first (lowest free LLK, or LLK when there are no free pixels)."""
        llk, free = self.likelihoods()
        return np.argsort(free if free is not None else llk, kind="stable")

    def objects(self) -> np.ndarray:
        """All objects, centred for display: complex64 array (S, *shape)."""
        return F.from_fft_layout(self.x.cpu().numpy(), self.ndim)

    def supports(self) -> np.ndarray:
        """All supports, centred: bool array (S, *shape)."""
        return F.from_fft_layout(self.support.cpu().numpy(), self.ndim)


def support_bbox(support: np.ndarray, *, margin: int = 4) -> tuple[slice, ...]:
    """Bounding box of a support plus ``margin`` pixels, clipped to the array."""
    idx = np.nonzero(support)
    if not idx[0].size:
        return tuple(slice(0, n) for n in support.shape)
    return tuple(slice(max(int(i.min()) - margin, 0), min(int(i.max()) + margin + 1, n))
                 for i, n in zip(idx, support.shape))


def center_object(obj: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Roll an object (and its support) so the support's centre of mass sits at the array centre."""
    w = support.astype(np.float64)
    if not w.any():
        return obj, support
    shifts = []
    for ax, n in enumerate(support.shape):
        # circular mean: the support may straddle the array edge
        ang = 2 * np.pi * np.arange(n) / n
        prof = w.sum(axis=tuple(j for j in range(w.ndim) if j != ax))
        c = np.angle((prof * np.exp(1j * ang)).sum()) * n / (2 * np.pi)
        shifts.append(int(round(n // 2 - c)) % n)
    axes = tuple(range(support.ndim))
    return np.roll(obj, shifts, axis=axes), np.roll(support, shifts, axis=axes)


def crop_to_support(obj: np.ndarray, support: np.ndarray, *, margin: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Centre on the support and crop both to its bounding box plus ``margin``."""
    obj, support = center_object(obj, support)
    bb = support_bbox(support, margin=margin)
    return obj[bb], support[bb]
