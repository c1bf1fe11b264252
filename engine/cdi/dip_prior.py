"""The Deep Image Prior as the prior of phase retrieval (Fourier CDI and generalized PR).

A randomly initialised network ``f`` (built by :func:`engine.dip.solver.build_net` from an
:mod:`engine.dip.presets` preset) maps a fixed random code ``z`` to an object ``x = s f(z) / ||f(z)||``;
Adam fits the magnitudes of ``A x`` to the measured ones on the observed pixels only:

* amplitude loss (default): ``sum_w (|A x| - sqrt(I))^2 / sum_w I``;
* Poisson loss: :func:`engine.cdi.fourier.poisson_llk` of ``I`` given ``|A x|^2`` (per observed pixel).

``w`` is 0 on the unmeasured pixels (beamstop, gaps, dead pixels, from :func:`engine.cdi.masks.unmeasured_mask`),
so they never enter the fit. The scale ``s`` comes from the data (the measured photons, extrapolated to
the unmeasured pixels): the network only has to find the shape, and the loss has no scale to chase.

The object: ``"complex"`` (default for CDI) is two network channels, amplitude ``a`` in [0, 1] and phase
``pi (2 p - 1)``; ``"real"`` is one non-negative channel (a real, positive object: the usual prior for
generalized PR of an image, and for CDI of a weak phase object). A support (given, or the thresholded
autocorrelation when none is) multiplies the object; ``shrink_every > 0`` tightens it by shrink-wrap
(smoothed ``|x|`` above ``shrink_threshold`` of its maximum, never growing).

Early stopping: ES-WMV (:mod:`engine.dip.stopping`) on the network outputs; the kept object is the one
at ``t*``. :class:`DIPPRSolver` follows the engine's solver protocol (``step``, ``run(callback)``,
``state_dict``/``load_state_dict``, ``done``); :func:`cdi_solver` and :func:`gpr_solver` build it for
the two models; :func:`reconstruct_cdi` is the CDI pipeline (same result type as the classic one).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from engine.cdi import fourier as F
from engine.core.errors import InputError
from engine.core.seeds import torch_generator
from engine.dip.presets import Preset, get_preset
from engine.dip.solver import build_net
from engine.dip.stopping import make_detector

LOSSES = ("amplitude", "poisson")
OBJECTS = ("complex", "real")
#: the default network: the CPU preset's light skip net with four levels (small arrays: 16 to 128 px)
PR_PRESET = replace(get_preset("cpu"), name="pr", net_kwargs={"channels": (16, 32, 64, 64), "skip": 4,
                                                     "upsample": "nearest", "pad": "zero"},
                       ema=0.0, window=50, patience=150, max_iters={"default": 1500})
DEFAULT_ITERS = 1500
MAX_ITERS = 100_000
MAX_SIDE = 512


def _preset(name: str | Preset | None) -> Preset:
    if name in (None, "", "pr"):
        return PR_PRESET
    return get_preset(name)


class DIPPRSolver:
    """Fit a DIP network so that ``|A f(z)|`` matches measured magnitudes, one Adam step per :meth:`step`.

    Parameters
    ----------
    amplitudes : tensor ``(m,)`` or ``(h, w)``
        ``sqrt(I)`` of the measurements (any value on unobserved entries).
    weight : tensor like ``amplitudes``
        1 on observed entries, 0 elsewhere.
    forward : callable
        Complex object ``(H, W)`` (complex64, or complex128 when ``dtype`` says so) -> complex measurements
        shaped like ``amplitudes``.
    shape : (H, W)
        The object's shape.
    energy : float
        ``||x||^2`` the data imply; the object is scaled to it.
    obj : {"complex", "real"}
    support : bool tensor ``(H, W)`` or None (the whole array)
    loss : {"amplitude", "poisson"}
    preset : str or Preset
        A DIP preset (``"pr"``, the default, or any of :mod:`engine.dip.presets`); its lr, window and
        patience apply unless overridden.
    max_iters, lr, window, patience : budget, Adam step and ES-WMV settings.
    stopping : {"wmv", "emv", "none"}
    shrink_every : int
        Shrink-wrap every so many steps (0: never); ``shrink_threshold``, ``shrink_sigma`` its settings.
    seed : int
        Seeds the network weights and the code: same seed, same run.
    reference : complex tensor ``(H, W)`` or None
        The truth, for simulations: each step then reports ``error`` (see ``error_fn``).
    error_fn : callable(reference, x) -> float
        The error reported against ``reference``.
    """

    def __init__(self, amplitudes: torch.Tensor, weight: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor],
                 shape: tuple[int, int], *, energy: float, obj: str = "complex",
                 support: torch.Tensor | None = None, loss: str = "amplitude",
                 preset: str | Preset | None = None, max_iters: int | None = None, lr: float | None = None,
                 window: int | None = None, patience: int | None = None, stopping: str = "wmv",
                 shrink_every: int = 0, shrink_threshold: float = 0.2, shrink_sigma: float = 1.0,
                 seed: int = 0, device: torch.device | str | None = None, dtype: torch.dtype = torch.complex64,
                 reference: torch.Tensor | None = None,
                 error_fn: Callable[[torch.Tensor, torch.Tensor], float] | None = None) -> None:
        if obj not in OBJECTS:
            raise InputError(f"unknown object model {obj!r}; expected one of {', '.join(OBJECTS)}")
        if loss not in LOSSES:
            raise InputError(f"unknown loss {loss!r}; expected one of {', '.join(LOSSES)}")
        H, W = int(shape[0]), int(shape[1])
        if not (2 <= H <= MAX_SIDE and 2 <= W <= MAX_SIDE):
            raise InputError(f"object of {W}x{H} pixels; expected sides between 2 and {MAX_SIDE}")
        if not energy > 0:
            raise InputError("the measurements carry no signal (all zero on the observed pixels)")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.shape = (H, W)
        self.obj, self.loss_name, self.dtype = obj, loss, dtype
        self.preset = _preset(preset)
        self.amp = amplitudes.to(self.device)
        self.weight = (weight.to(self.device) > 0).to(self.amp.dtype)
        self.iobs = self.amp ** 2
        self._n_obs = float(self.weight.sum())
        if self._n_obs < 1:
            raise InputError("no observed pixels: the mask hides every measurement")
        self._norm_amp = float((self.iobs * self.weight).sum())
        self.forward = forward
        self.energy = float(energy)
        self.support = (torch.ones(self.shape, dtype=torch.bool) if support is None
                        else torch.as_tensor(support).bool()).to(self.device)
        if tuple(self.support.shape) != self.shape:
            raise InputError(f"support shape {tuple(self.support.shape)} does not match the object {self.shape}")
        if not bool(self.support.any()):
            raise InputError("the support is empty")
        self.support_history = [int(self.support.sum())]
        self.shrink_every, self.shrink_threshold, self.shrink_sigma = int(shrink_every), float(shrink_threshold), \
            float(shrink_sigma)
        self.seed = int(seed)
        self.max_iters = int(max_iters or DEFAULT_ITERS)
        if not 1 <= self.max_iters <= MAX_ITERS:
            raise InputError(f"iterations must be between 1 and {MAX_ITERS}; got {self.max_iters}")
        self.lr = float(lr or self.preset.lr)
        channels = 2 if obj == "complex" else 1
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = build_net(self.preset, channels)
        self.net.to(self.device)
        mult = getattr(self.net, "multiple", 1)
        self.padded = (max(2 * mult, -(-H // mult) * mult), max(2 * mult, -(-W // mult) * mult))
        self._crop = ((self.padded[0] - H) // 2, (self.padded[1] - W) // 2)
        scale = getattr(self.net, "code_scale", 1)
        zshape = (1, self.preset.z_channels, self.padded[0] // scale, self.padded[1] // scale)
        self.z = (torch.rand(zshape, generator=torch_generator(self.seed)) * self.preset.z_scale).to(self.device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        self.stopping = stopping or "none"
        self.es = make_detector(self.stopping, window=int(window or self.preset.window),
                                patience=int(patience or self.preset.patience), alpha=self.preset.alpha)
        self.reference = None if reference is None else reference.to(self.device)
        self.error_fn = error_fn
        self.iteration = 0
        self._x: torch.Tensor | None = None
        self.timing = {"step_s": 0.0, "es_s": 0.0}

    # ------------------------------------------------------------------ model
    def _object(self, out: torch.Tensor) -> torch.Tensor:
        """Network output ``(1, C, H, W)`` -> object ``(H, W)``, in the support, scaled to the energy."""
        if self.obj == "complex":
            x = torch.polar(out[0, 0], math.pi * (2 * out[0, 1] - 1))
        else:
            x = torch.complex(out[0, 0], torch.zeros_like(out[0, 0]))
        x = x.to(self.dtype) * self.support
        norm = torch.sqrt((x.real ** 2 + x.imag ** 2).sum()).clamp_min(1e-12)
        return x * (math.sqrt(self.energy) / norm)

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        psi = self.forward(x)
        ic = psi.real ** 2 + psi.imag ** 2
        if self.loss_name == "amplitude":
            # the small epsilon keeps the gradient of |psi| finite where psi = 0
            r = torch.sqrt(ic + 1e-12) - self.amp
            return (r * r * self.weight).sum() / max(self._norm_amp, 1e-30)
        ic = ic.clamp_min(1e-12)
        # I log(I / Ic) split in two: the gradient of xlogy(I, I / Ic) is 0/0 where I = 0
        term = ic - self.iobs + torch.xlogy(self.iobs, self.iobs) - torch.xlogy(self.iobs, ic)
        return (term * self.weight).sum() / self._n_obs

    def _net_out(self) -> torch.Tensor:
        (top, left), (H, W) = self._crop, self.shape
        return self.net(self.z)[:, :, top:top + H, left:left + W]

    # ------------------------------------------------------------------ stepping
    @property
    def es_fired(self) -> bool:
        return bool(self.es is not None and self.es.stopped)

    @property
    def done(self) -> bool:
        """True when the detector fired or the budget is spent."""
        return self.es_fired or self.iteration >= self.max_iters

    def step(self) -> dict:
        """One Adam step.

        Returns
        -------
        dict
            ``iteration``, ``loss``, ``es_variance`` (None until the window is full), ``es_iteration``
            (t* or None), ``patience_left``, ``stop`` (the detector fired), ``support_pixels``,
            ``error`` (with a reference) and ``object`` (the current object, complex tensor ``(H, W)``).
        """
        t0 = time.perf_counter()
        it = self.iteration + 1
        self.opt.zero_grad(set_to_none=True)
        out = self._net_out()
        x = self._object(out)
        loss = self._loss(x)
        loss.backward()
        self.opt.step()
        self._x = x.detach()
        self.iteration = it
        if self.shrink_every > 0 and it % self.shrink_every == 0:
            self.shrink_wrap()
        t1 = time.perf_counter()
        if self.es is not None and not self.es.stopped:
            # the signal is the variance of the network outputs; the object at t* is kept
            self.es.update(out.detach(), it, keep=self._x)
        t2 = time.perf_counter()
        self.timing["step_s"] += t1 - t0
        self.timing["es_s"] += t2 - t1
        es = self.es
        state = {"iteration": it, "loss": float(loss.detach()),
                 "es_variance": None if es is None else es.variance,
                 "es_iteration": None if es is None else es.best_iteration,
                 "patience_left": None if es is None else es.patience_left,
                 "stop": self.es_fired, "support_pixels": int(self.support.sum()), "object": self._x}
        if self.reference is not None and self.error_fn is not None:
            state["error"] = float(self.error_fn(self.reference, self._x))
        return state

    def run(self, callback: Callable[[dict], Any] | None = None) -> torch.Tensor:
        """Step until :attr:`done`, calling ``callback(state)`` after every step; returns :meth:`output`.

        The callback only observes (its return value is ignored); an exception it raises ends the run
        and propagates, leaving the solver consistent.
        """
        while not self.done:
            state = self.step()
            if callback is not None:
                callback(state)
        return self.output()

    def shrink_wrap(self) -> None:
        """Support <- smoothed ``|x|`` above ``shrink_threshold`` of its max, within the current support."""
        if self._x is None:
            return
        a = self._x.abs().float()
        sm = F.smooth(a, self.shrink_sigma, 2) if self.shrink_sigma > 0 else a
        new = (sm > self.shrink_threshold * sm.max()) & self.support
        # a support of a few pixels is a collapse, not an estimate: keep the old one then
        if int(new.sum()) >= max(4, int(0.05 * self.support_history[0])):
            self.support = new
        self.support_history.append(int(self.support.sum()))

    # ------------------------------------------------------------------ results
    @property
    def es_iteration(self) -> int | None:
        return None if self.es is None else self.es.best_iteration

    def output(self, which: str = "best") -> torch.Tensor:
        """The object (complex ``(H, W)``): at t* (``"best"``, falling back to the last) or ``"last"``."""
        if which == "best" and self.es is not None and self.es.best_output is not None:
            return self.es.best_output
        if self._x is None:
            raise RuntimeError("no output yet: call step() first")
        return self._x

    def stop_reason(self, *, cancelled: bool = False) -> str:
        """``"early-stop"``, ``"budget"`` or ``"cancelled"``."""
        if cancelled:
            return "cancelled"
        return "early-stop" if self.es_fired else "budget"

    def warnings(self, *, cancelled: bool = False) -> list[str]:
        """Plain sentences about how the run ended."""
        out = []
        if cancelled:
            out.append(f"The run was stopped by hand at iteration {self.iteration} of {self.max_iters}; "
                       + (f"the result is the object at t* = {self.es_iteration}." if self.es_iteration
                          else "the result is the last object (no early-stopping point yet)."))
        elif not self.es_fired and self.es is not None:
            where = f"t* = {self.es_iteration} is the lowest variance seen" if self.es_iteration else \
                "the variance window never filled"
            out.append(f"No early stop fired within the budget of {self.max_iters} iterations ({where}): "
                       f"the network may still be fitting; raise the iterations to let ES-WMV decide.")
        return out

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: tensors and plain containers only."""
        return {"iteration": self.iteration, "seed": self.seed, "net": self.net.state_dict(),
                "opt": self.opt.state_dict(), "z": self.z, "x": self._x, "support": self.support,
                "support_history": list(self.support_history),
                "es": None if self.es is None else self.es.state_dict(), "timing": dict(self.timing)}

    def load_state_dict(self, s: dict) -> None:
        """Restore a :meth:`state_dict` (e.g. from ``torch.load(..., weights_only=True)``)."""
        dev = self.device
        self.net.load_state_dict(s["net"])
        self.opt.load_state_dict(s["opt"])
        self.z = s["z"].to(dev)
        self._x = None if s["x"] is None else s["x"].to(dev)
        self.support = s["support"].to(dev, torch.bool)
        self.support_history = [int(v) for v in s["support_history"]]
        self.iteration = int(s["iteration"])
        self.timing = dict(s.get("timing", self.timing))
        if self.es is not None and s["es"] is not None:
            self.es.load_state_dict({k: (v.to(dev) if isinstance(v, torch.Tensor) else v)
                                     for k, v in s["es"].items()})


# ---------------------------------------------------------------------------------------------- builders

def _solver_kwargs(options: dict | None) -> dict:
    """Keep the solver options that a spec may carry, with their types checked."""
    o = dict(options or {})
    allowed = {"obj", "loss", "preset", "max_iters", "lr", "window", "patience", "stopping", "shrink_every",
               "shrink_threshold", "shrink_sigma"}
    unknown = set(o) - allowed
    if unknown:
        raise InputError(f"unknown DIP-prior options {sorted(unknown)}; expected some of {sorted(allowed)}")
    for k in ("max_iters", "window", "patience", "shrink_every"):
        if o.get(k) is not None:
            o[k] = int(o[k])
    for k in ("lr", "shrink_threshold", "shrink_sigma"):
        if o.get(k) is not None:
            o[k] = float(o[k])
    return {k: v for k, v in o.items() if v is not None}


def cdi_solver(intensity: np.ndarray, mask: np.ndarray | None = None, *, support: np.ndarray | None = None,
               seed: int = 0, device: torch.device | str | None = None, reference: np.ndarray | None = None,
               autocorr_threshold: float = 0.1, **options) -> DIPPRSolver:
    """A :class:`DIPPRSolver` for a centred 2-D diffraction pattern.

    ``mask``: nonzero = not measured. ``support`` (centred, nonzero = inside); without one, the
    thresholded autocorrelation (as the classic solver starts). ``reference``: the true object
    (centred, any size up to the pattern's) for the live error. Options: see :class:`DIPPRSolver`.
    """
    inten = np.asarray(intensity, dtype=np.float64)
    if inten.ndim != 2:
        raise InputError(f"the DIP prior takes 2-D patterns; got {inten.ndim}-D")
    observed = np.isfinite(inten) & (inten >= 0)
    if mask is not None:
        if np.shape(mask) != inten.shape:
            raise InputError(f"the mask has shape {np.shape(mask)}; the pattern has {inten.shape}")
        observed &= ~(np.asarray(mask) != 0)
    inten = np.where(observed, inten, 0.0)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    # the object lives centred; its FFT magnitudes do not depend on where it sits, so only the
    # pattern is moved to the FFT layout
    iobs = torch.from_numpy(F.to_fft_layout(inten).astype(np.float32)).to(dev)
    obs = torch.from_numpy(F.to_fft_layout(observed).copy()).to(dev)
    if support is None:
        sup = F.autocorrelation_support(iobs, obs, threshold=autocorr_threshold)
        sup = torch.from_numpy(F.from_fft_layout(sup.cpu().numpy()).copy())
    else:
        if np.shape(support) != inten.shape:
            raise InputError(f"the support has shape {np.shape(support)}; the pattern has {inten.shape}")
        sup = torch.from_numpy(np.asarray(support) != 0)
    n_obs = float(obs.sum())
    energy = float(iobs.sum()) * inten.size / max(n_obs, 1.0)
    fourier = F.FourierTransform(2)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return fourier.A(x)

    ref_t = err = None
    if reference is not None:
        from engine.cdi.registration import _same_shape

        ref = _same_shape(np.zeros(inten.shape), np.asarray(reference))
        ref_t = torch.from_numpy(ref.astype(np.complex64))
        err = cdi_error
    return DIPPRSolver(torch.sqrt(iobs), obs, forward, inten.shape, energy=energy, support=sup, seed=seed,
                       device=dev, reference=ref_t, error_fn=err, **_solver_kwargs(options))


def cdi_error(reference: torch.Tensor, x: torch.Tensor) -> float:
    """1 - similarity after registration (shift, twin, global phase): 0 = the truth."""
    from engine.cdi.registration import register

    return 1.0 - float(register(reference.cpu().numpy(), x.detach().cpu().numpy(), upsample=1).similarity)


def gpr_solver(op, y: torch.Tensor, shape: tuple[int, ...], *, seed: int = 0,
               reference: torch.Tensor | None = None, **options) -> DIPPRSolver:
    """A :class:`DIPPRSolver` for generalized PR: ``y = |A x|^2`` with an :mod:`engine.gpr.measurements` operator.

    ``y``: intensities ``(m,)`` or ``(1, m)``; ``shape``: the 2-D image shape (``n = h w``); the object
    defaults to ``"real"`` (a non-negative image). ``reference``: the truth ``(n,)`` or ``(1, n)``; the
    error is :func:`engine.gpr.algorithms.relative_error` (modulo the global phase).
    """
    from engine.gpr.algorithms import relative_error

    if len(shape) != 2 or shape[0] * shape[1] != op.n:
        raise InputError(f"the DIP prior needs a 2-D image of {op.n} pixels; got shape {tuple(shape)}")
    yy = y.reshape(-1).clamp_min(0)
    dtype = op.dtype if op.dtype.is_complex else {torch.float64: torch.complex128,
                                                  torch.float32: torch.complex64}[op.dtype]
    amp = yy.sqrt().to(torch.float64 if dtype == torch.complex128 else torch.float32)

    def forward(x: torch.Tensor) -> torch.Tensor:
        v = x.reshape(-1)
        if not op.dtype.is_complex:
            return op.A(v.real.to(op.dtype)).to(dtype)
        return op.A(v.to(op.dtype))

    def err(ref: torch.Tensor, x: torch.Tensor) -> float:
        r = ref.reshape(1, -1)
        z = x.reshape(1, -1).to(r.dtype) if r.is_complex() else x.reshape(1, -1).real.to(r.dtype)
        return float(relative_error(r, z)[0])

    options.setdefault("obj", "real")
    return DIPPRSolver(amp, torch.ones_like(amp), forward, (int(shape[0]), int(shape[1])),
                       energy=float(yy.mean()), seed=seed, device=op.device, dtype=dtype,
                       reference=reference, error_fn=err if reference is not None else None,
                       **_solver_kwargs(options))


# ---------------------------------------------------------------------------------------------- CDI pipeline

def reconstruct_cdi(intensity: np.ndarray, mask: np.ndarray | None = None, *, support: np.ndarray | None = None,
                    seed: int = 0, options: dict | None = None, device: str = "cpu",
                    publish_every: int = 10, on_state: Callable[[DIPPRSolver, dict], None] | None = None,
                    cancelled: Callable[[], bool] | None = None, resume_state: dict | None = None,
                    on_checkpoint: Callable[[dict], None] | None = None, checkpoint_every: int = 100,
                    mask_stats: dict | None = None, autocorr_threshold: float = 0.1):
    """Fit the DIP prior to a pattern and return a :class:`engine.cdi.workflow.CDIResult`.

    ``on_state(solver, state)`` every ``publish_every`` steps and on the last one; ``cancelled()`` is
    checked every step (a stopped run is still analysed). The summary has ``solver: "dip"``,
    ``es_iteration`` (t*), ``stop`` ("early-stop", "budget" or "cancelled"), ``iterations``,
    ``llk_per_pixel`` (Poisson, of the kept object) and ``warnings`` (plain sentences).
    """
    from engine.cdi.diagnostics import beamstop_info, result_warnings
    from engine.cdi.prtf import prtf, resolution_at
    from engine.cdi.solver import crop_to_support
    from engine.cdi.workflow import CDIResult

    t0 = time.time()
    opts = dict(options or {})
    solver = cdi_solver(intensity, mask, support=support, seed=seed, device=device,
                        autocorr_threshold=autocorr_threshold, **opts)
    if resume_state is not None:
        solver.load_state_dict(resume_state)
    every = max(1, int(publish_every))
    stopped = False
    while not solver.done:
        st = solver.step()
        if on_state is not None and (st["iteration"] % every == 0 or solver.done):
            on_state(solver, st)
        if cancelled is not None and cancelled():
            stopped = True
            break
        if on_checkpoint is not None and st["iteration"] % checkpoint_every == 0 and not solver.done:
            on_checkpoint(solver.state_dict())
    if stopped and on_checkpoint is not None:
        on_checkpoint(solver.state_dict())
    x = solver.output("best")
    obj_c = x.detach().cpu().numpy().astype(np.complex64)
    sup_c = solver.support.cpu().numpy()
    # Poisson LLK of the kept object on the measured pixels, as the classic summary reports it
    with torch.no_grad():
        psi = solver.forward(x)
        ic = psi.real ** 2 + psi.imag ** 2
        llk = float(F.poisson_llk(solver.iobs, ic, solver.weight, ndim=2))
    q, curve = prtf(intensity, [obj_c], mask=mask)
    obj, sup = crop_to_support(obj_c, sup_c, margin=4)
    photons = float(np.sum(np.where(np.asarray(mask, bool), 0, intensity) if mask is not None else intensity))
    summary = {
        "solver": "dip", "solver_label": "DIP prior (ES-WMV)", "preset": solver.preset.name,
        "object_model": solver.obj, "loss": solver.loss_name, "iterations": solver.iteration,
        "max_iters": solver.max_iters, "es_iteration": solver.es_iteration,
        "stop": solver.stop_reason(cancelled=stopped), "stopped": stopped, "seed": int(seed),
        "options": opts, "starts": 1, "averaged": 1, "ranking": [0], "chosen_start": 0, "llk": [llk],
        "llk_free": None, "registration": [], "llk_per_pixel": llk, "shape": list(np.shape(intensity)),
        "object_shape": list(obj.shape), "device": str(solver.device),
        "support_source": "user" if support is not None else "autocorrelation",
        "support_history": list(solver.support_history), "photons": photons,
        "cycles_done": solver.iteration, "prtf_starts": 1, "prtf_resolution_nyquist": resolution_at(q, curve),
        "timing": {k: round(v, 3) for k, v in solver.timing.items()},
    }
    if mask_stats is not None:
        summary["mask"] = dict(mask_stats)
    unmeasured = np.zeros(np.shape(intensity), bool) if mask is None else np.asarray(mask, bool)
    summary["beamstop"] = beamstop_info(intensity, unmeasured)
    summary["warnings"] = solver.warnings(cancelled=stopped) + result_warnings(summary)
    summary["wall_seconds"] = round(time.time() - t0, 3)
    return CDIResult(object=obj.astype(np.complex64), support=sup, top_objects=obj[None].astype(np.complex64),
                     llk=[llk], llk_free=None, ranking=[0], prtf_q=[float(v) for v in q],
                     prtf=[None if not np.isfinite(v) else float(v) for v in curve], summary=summary)


# ---------------------------------------------------------------------------------------------- CLI glue

def add_cli_arguments(parser) -> None:  # noqa: ANN001
    """The ``--solver`` choice and the DIP-prior options of ``inverse-studio pr``."""
    g = parser.add_argument_group("DIP prior (--solver dip)")
    g.add_argument("--solver", choices=("classic", "dip"), default="classic",
                   help="classic: the recipe (ER/HIO/RAAR + shrink-wrap); dip: a Deep Image Prior network "
                        "fitted to the measured magnitudes, with ES-WMV early stopping")
    g.add_argument("--dip-iters", type=int, default=DEFAULT_ITERS, help="iteration budget of the DIP prior")
    g.add_argument("--dip-object", choices=OBJECTS, default="complex",
                   help="complex: amplitude and phase channels; real: one non-negative channel")
    g.add_argument("--dip-loss", choices=LOSSES, default="amplitude")
    g.add_argument("--dip-lr", type=float, default=None, help="Adam learning rate (default: the preset's)")
    g.add_argument("--dip-shrink-every", type=int, default=0,
                   help="shrink-wrap the support every N iterations (0: keep it)")
    g.add_argument("--dip-patience", type=int, default=None, help="ES-WMV patience (default 150)")


def params_from_args(args) -> dict:  # noqa: ANN001
    """Workflow params for ``engine.cdi.workflow`` from parsed arguments: ``{"solver": ..., "dip": {...}}``."""
    if getattr(args, "solver", "classic") != "dip":
        return {"solver": "classic"}
    if not 1 <= int(args.dip_iters) <= MAX_ITERS:
        raise InputError(f"--dip-iters must be between 1 and {MAX_ITERS}; got {args.dip_iters}")
    dip = {"max_iters": int(args.dip_iters), "obj": args.dip_object, "loss": args.dip_loss,
           "shrink_every": int(args.dip_shrink_every)}
    if args.dip_lr is not None:
        dip["lr"] = float(args.dip_lr)
    if args.dip_patience is not None:
        dip["patience"] = int(args.dip_patience)
    return {"solver": "dip", "dip": dip}
