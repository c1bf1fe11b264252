"""The Deep Image Prior as a step-wise solver.

A randomly initialised network ``f`` maps a fixed random code ``z`` to an image; Adam fits
``A(f(z + jitter))`` to the observation ``y``. The network's structure fits images before
noise, so the output passes near the clean image and then degrades: an early-stopping
detector (:mod:`engine.dip.stopping`) picks the iteration ``t*`` and keeps that output.

Any size: the network works on the size rounded up to its multiple (``2**levels``) and its
output is centre-cropped back before the operator, so the loss only sees real pixels.

:class:`DIPSolver` follows the engine's solver protocol (``step``, ``run(callback)``,
``state_dict``/``load_state_dict``); :func:`restore` is the one-call form::

    from engine import restore
    result = restore(noisy, task="denoise", reference=clean, max_iters=300)
    result.image, result.es_iteration, result.psnr
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.device import pick_device
from engine.core.errors import InputError
from engine.core.metrics import psnr
from engine.core.operator import Operator
from engine.core.seeds import torch_generator
from engine.dip.operators import make_operator, to_numpy, to_tensor
from engine.dip.presets import Preset, get_preset, task_key
from engine.dip.priors.deep_decoder import DeepDecoder
from engine.dip.priors.skip import ShuffledSkipNet, classic_skip_net, light_skip_net
from engine.dip.stopping import make_detector

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    # delta 0.1 on [0, 1] images: quadratic for errors up to the usual noise levels, linear for outliers
    "huber": lambda a, b: F.huber_loss(a, b, delta=0.1),
}

MAX_PIXELS = 4096 * 4096


def build_net(preset: Preset, out_channels: int) -> nn.Module:
    """The network of ``preset`` for images of ``out_channels`` channels."""
    kw = dict(preset.net_kwargs)
    if preset.net == "skip":
        ch = tuple(kw.get("channels", (128,) * 5))
        if preset.name == "classic" and ch == (128,) * 5 and preset.z_channels == 32:
            return classic_skip_net(out_channels, in_channels=preset.z_channels)
        return light_skip_net(out_channels, in_channels=preset.z_channels, channels=ch,
                              skip=kw.get("skip", 4), upsample=kw.get("upsample", "bilinear"),
                              pad=kw.get("pad", "reflection"), up_channels=kw.get("up_channels"))
    if preset.net == "shuffled_skip":
        return ShuffledSkipNet(preset.z_channels, out_channels, channels=tuple(kw.get("channels", (16,) * 4)),
                               skip=kw.get("skip", 4), r=int(kw.get("r", 2)),
                               upsample=kw.get("upsample", "bilinear"), pad=kw.get("pad", "reflection"))
    if preset.net == "deep_decoder":
        return DeepDecoder(preset.z_channels, out_channels, channels=int(kw.get("channels", 64)),
                           levels=int(kw.get("levels", 5)))
    raise ValueError(f"unknown network {preset.net!r}")


class DIPSolver:
    """Fit a DIP network to one observation, one Adam step per :meth:`step`.

    Parameters
    ----------
    observed : array ``(h, w)`` / ``(h, w, C)`` in [0, 1], or tensor ``(1, C, h, w)``
    operator : Operator or None
        The forward operator ``A`` (any module mapping the image to the observation); None builds
        it from ``task`` (and ``mask``, ``factor``, ``kernel``).
    preset : str or Preset
        ``"cpu"``, ``"classic"``, ``"fast-preview"``, ``"deep-decoder"`` or a :class:`Preset`.
    task : {"denoise", "inpaint", "sr", "deblur", "jpeg"}
        Picks the jitter and budget of the preset (and the operator when ``operator`` is None).
    factor : int
        Super-resolution factor; the output is ``factor`` times the observation.
    kernel : 2-D array
        Blur PSF for ``deblur``.
    loss : {"mse", "l1", "huber"} or None (the preset's)
    seed : int
        Seeds the network weights, the code ``z`` and the jitter: same seed, same run.
    device : torch.device or str or None (CPU)
    mask : array ``(h, w)`` or ``(h, w, C)``, 1 = known pixel
        The inpainting mask; for the other tasks, a weight on the loss (pixels to ignore = 0).
    stopping : {"wmv", "emv", "none"}
    window, patience, alpha, max_iters : override the preset's W, P, EMV alpha and budget.
    out_shape : (H, W) or None
        Size of the restored image; default: the observation's size (times ``factor`` for sr).
    """

    def __init__(self, observed: np.ndarray | torch.Tensor, *, operator: Operator | None = None,
                 preset: str | Preset = "cpu", task: str = "denoise", factor: int = 4,
                 kernel: np.ndarray | None = None, loss: str | None = None, seed: int = 0,
                 device: torch.device | str | None = None, mask: np.ndarray | torch.Tensor | None = None,
                 stopping: str = "wmv", window: int | None = None, patience: int | None = None,
                 alpha: float | None = None, max_iters: int | None = None,
                 out_shape: tuple[int, int] | None = None) -> None:
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.preset = get_preset(preset)
        self.task = task
        self.task_key = task_key(task, factor=factor)
        y = observed if isinstance(observed, torch.Tensor) else to_tensor(_check_image(observed))
        self.y = y.float().to(self.device)
        c, h, w = self.y.shape[1:]
        if c not in (1, 3):
            raise InputError(f"image has {c} channels; expected grey (1) or RGB (3)")
        if out_shape is None:
            out_shape = (h * factor, w * factor) if task == "sr" else (h, w)
        self.out_shape = (int(out_shape[0]), int(out_shape[1]))
        if self.out_shape[0] * self.out_shape[1] > MAX_PIXELS:
            raise InputError(f"output of {self.out_shape[0]}x{self.out_shape[1]} pixels is too large; "
                             f"expected at most {MAX_PIXELS} pixels")
        self.seed = int(seed)
        self.loss_name = loss or self.preset.loss
        if self.loss_name not in LOSSES:
            raise InputError(f"unknown loss {self.loss_name!r}; expected one of {', '.join(LOSSES)}")
        self._loss = LOSSES[self.loss_name]

        m = None if mask is None else (mask if isinstance(mask, torch.Tensor) else to_tensor(mask))
        if operator is None:
            operator = make_operator(task, mask=m, factor=factor, kernel=kernel, device=self.device)
            m = None if task == "inpaint" else m
        self.operator = operator.to(self.device)
        self.weight = None if m is None else (m.to(self.device) > 0.5).float()

        # network, code and jitter, all from the seed without touching the global RNG
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.net = build_net(self.preset, c)
        # channels-last convolutions run 1.1-1.2x faster on this CPU at 256^2 with no warm-up
        # (bench/step_speed.py, bench/results/step_speed_cpu.json); the numbers differ from NCHW
        # only in rounding
        self._memory_format = torch.channels_last if self.device.type == "cpu" else torch.contiguous_format
        self.net.to(self.device, memory_format=self._memory_format)
        mult = getattr(self.net, "multiple", 1)
        H, W = self.out_shape
        # at least two cells at the coarsest level: BatchNorm and reflection padding need them
        self.padded = (max(2 * mult, -(-H // mult) * mult), max(2 * mult, -(-W // mult) * mult))
        self._crop = ((self.padded[0] - H) // 2, (self.padded[1] - W) // 2)
        scale = getattr(self.net, "code_scale", 1)
        zshape = (1, self.preset.z_channels, self.padded[0] // scale, self.padded[1] // scale)
        self.z = (torch.rand(zshape, generator=torch_generator(self.seed)) * self.preset.z_scale).to(self.device)
        self.z = self.z.contiguous(memory_format=self._memory_format)
        self._gen = torch_generator(self.seed + 1, self.device)
        self.sigma_reg = self.preset.jitter(self.task_key)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=self.preset.lr)

        self.max_iters = int(max_iters if max_iters is not None else self.preset.budget(self.task_key))
        self.stopping = stopping or "none"
        self.es = make_detector(self.stopping, window=window or self.preset.window,
                                patience=patience or self.preset.patience, alpha=alpha or self.preset.alpha)
        self.iteration = 0
        self._raw: torch.Tensor | None = None
        self._ema: torch.Tensor | None = None
        self.timing = {"step_s": 0.0, "es_s": 0.0}   # wall seconds in steps, and in the detector

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
            ``iteration``, ``loss`` (float), ``lr``, ``output`` (tensor ``(1, C, H, W)``: the
            current image, the output average when the preset has ``ema``), ``raw`` (the network
            output of this step), ``es_variance`` (None until the window is full),
            ``es_iteration`` (t*, or None), ``patience_left``, ``stop`` (the detector fired).
        """
        t0 = time.perf_counter()
        it = self.iteration + 1
        lr = self.preset.lr_at(it)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        z = self.z
        if self.sigma_reg > 0:
            z = z + self.sigma_reg * torch.randn(z.shape, generator=self._gen, device=self.device)
        out = self._crop_out(self.net(z))
        pred = self.operator(out)
        if self.weight is not None:
            loss = self._loss(pred * self.weight, self.y * self.weight)
        else:
            loss = self._loss(pred, self.y)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            raw = out.detach()
            if self.preset.ema > 0:
                if self._ema is None:
                    self._ema = raw.clone()
                else:
                    self._ema.mul_(self.preset.ema).add_(raw, alpha=1 - self.preset.ema)
            shown = self._ema if self._ema is not None else raw
        self._raw = raw
        self.iteration = it
        t1 = time.perf_counter()
        if self.es is not None and not self.es.stopped:
            self.es.update(raw, it, keep=shown)
        t2 = time.perf_counter()
        self.timing["step_s"] += t1 - t0
        self.timing["es_s"] += t2 - t1
        es = self.es
        return {"iteration": it, "loss": float(loss.detach()), "lr": lr, "output": shown, "raw": raw,
                "es_variance": None if es is None else es.variance,
                "es_iteration": None if es is None else es.best_iteration,
                "patience_left": None if es is None else es.patience_left,
                "stop": self.es_fired}

    def run(self, callback: Callable[[dict], Any] | None = None) -> np.ndarray:
        """Step until :attr:`done`, calling ``callback(state)`` after every step; returns :meth:`output`.

        The callback only observes: its return value is ignored (the budget and the detector decide
        when to stop). An exception it raises, e.g. ``engine.jobs.Cancelled``, ends the run and
        propagates; the solver stays consistent, so it can be saved or stepped on.
        """
        while not self.done:
            state = self.step()
            if callback is not None:
                callback(state)
        return self.output()

    def _crop_out(self, x: torch.Tensor) -> torch.Tensor:
        (top, left), (H, W) = self._crop, self.out_shape
        if x.shape[2:] == (H, W):
            return x
        return x[:, :, top:top + H, left:left + W]

    # ------------------------------------------------------------------ results
    def current(self) -> torch.Tensor | None:
        """The current image (output average when on), tensor ``(1, C, H, W)``."""
        return self._ema if self._ema is not None else self._raw

    def best(self) -> torch.Tensor | None:
        """The image kept at t* (None without a detector or before the signal exists)."""
        return None if self.es is None else self.es.best_output

    def output(self, which: str = "best") -> np.ndarray:
        """The restored image as ``(H, W)`` or ``(H, W, C)`` float32 in [0, 1].

        ``which="best"``: the image at t* (falls back to the current one when there is no t*);
        ``"last"``: the current image.
        """
        t = self.best() if which == "best" else None
        if t is None:
            t = self.current()
        if t is None:
            raise RuntimeError("no output yet: call step() first")
        return np.clip(to_numpy(t), 0, 1).astype(np.float32)

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: tensors and plain containers only."""
        return {"iteration": self.iteration, "preset": self.preset.name, "seed": self.seed,
                "net": self.net.state_dict(), "opt": self.opt.state_dict(), "z": self.z,
                "gen": self._gen.get_state(), "ema": self._ema, "raw": self._raw,
                "es": None if self.es is None else self.es.state_dict(),
                "timing": dict(self.timing)}

    def load_state_dict(self, s: dict) -> None:
        """Restore a :meth:`state_dict` (e.g. from ``torch.load(..., weights_only=True)``)."""
        dev = self.device
        self.net.load_state_dict(s["net"])
        self.opt.load_state_dict(s["opt"])
        self.z = s["z"].to(dev).contiguous(memory_format=self._memory_format)
        self._gen.set_state(s["gen"].cpu())
        self._ema = None if s["ema"] is None else s["ema"].to(dev)
        self._raw = None if s["raw"] is None else s["raw"].to(dev)
        self.iteration = int(s["iteration"])
        self.timing = dict(s.get("timing", self.timing))
        if self.es is not None and s["es"] is not None:
            es = {k: (v.to(dev) if isinstance(v, torch.Tensor) else v) for k, v in s["es"].items()}
            self.es.load_state_dict(es)


def reference_tensor(solver: DIPSolver, reference: np.ndarray) -> torch.Tensor:
    """A clean reference as a tensor on the solver's device, checked against its output's size and channels."""
    ref = _check_image(reference)
    if ref.shape[:2] != solver.out_shape:
        raise InputError(f"reference is {ref.shape[1]}x{ref.shape[0]} but the output is "
                         f"{solver.out_shape[1]}x{solver.out_shape[0]}; they must match")
    ref_t = to_tensor(ref, device=solver.device)
    if ref_t.shape[1] != solver.y.shape[1]:
        raise InputError("reference and image differ in channels (grey vs RGB); give matching images")
    return ref_t


@dataclass
class RestoreResult:
    """What :func:`restore` returns.

    Attributes
    ----------
    image : float32 ``(H, W)`` or ``(H, W, C)`` in [0, 1]
        The image kept at t* (the variance minimum); the last image when ``stopping="none"``.
    es_iteration : int or None
        t*, the iteration of ``image`` (None without a detector, or before its window filled).
    stopped_iteration : int
        The iteration the run ended at (the detector fired, or the budget was spent).
    es_fired : bool
        Whether the detector ended the run.
    psnr, peak_psnr, peak_iteration : float, float, int, or None without a reference
        The PSNR of ``image``, and the best PSNR of the current image along the run and its
        iteration (the reference only measures; it never steers the run), in dB.
    metrics : list of dict
        One row per iteration: ``iteration``, ``loss``, ``lr``, ``es_variance`` (None until the
        window is full) and, with a reference, ``psnr``.
    """

    image: np.ndarray
    es_iteration: int | None
    stopped_iteration: int
    es_fired: bool = False
    psnr: float | None = None
    peak_psnr: float | None = None
    peak_iteration: int | None = None
    metrics: list[dict] = field(default_factory=list)


def restore(observed: np.ndarray | torch.Tensor, *, task: str = "denoise", reference: np.ndarray | None = None,
            preset: str | Preset = "cpu", stopping: str = "wmv", seed: int = 0,
            device: torch.device | str | None = None, callback: Callable[[dict], Any] | None = None,
            **options: Any) -> RestoreResult:
    """Restore one image with the Deep Image Prior and early stopping.

    Parameters
    ----------
    observed : array ``(h, w)`` / ``(h, w, C)`` in [0, 1]
    task : {"denoise", "inpaint", "sr", "deblur", "jpeg"}
    reference : array of the output's size, optional
        A clean image: PSNR is then measured along the run (it never steers it).
    preset, stopping, seed : as for :class:`DIPSolver`
    device : str or torch.device, optional
        :func:`engine.core.device.pick_device`: None picks CUDA when present, else the CPU.
    callback : callable, optional
        ``callback(state)`` after every step (the dict of :meth:`DIPSolver.step`); it only
        observes. An exception it raises (a cancel) propagates.
    **options
        Any other keyword of :class:`DIPSolver`: ``mask``, ``factor``, ``kernel``, ``operator``,
        ``loss``, ``window``, ``patience``, ``alpha``, ``max_iters``, ``out_shape``.

    Returns
    -------
    RestoreResult
    """
    dev = torch.device(pick_device(None if device is None else str(device)))
    solver = DIPSolver(observed, task=task, preset=preset, stopping=stopping, seed=seed, device=dev, **options)
    ref_t = None if reference is None else reference_tensor(solver, reference)
    rows: list[dict] = []
    peak: list = [None, None]  # best PSNR and its iteration

    def observe(state: dict) -> None:
        row = {"iteration": state["iteration"], "loss": state["loss"], "lr": state["lr"],
               "es_variance": state["es_variance"]}
        if ref_t is not None:
            row["psnr"] = psnr(ref_t, state["output"])
            if peak[0] is None or row["psnr"] > peak[0]:
                peak[:] = [row["psnr"], state["iteration"]]
        rows.append(row)
        if callback is not None:
            callback(state)

    solver.run(callback=observe)
    image = solver.output("best" if solver.es is not None else "last")
    return RestoreResult(
        image=image, es_iteration=None if solver.es is None else solver.es.best_iteration,
        stopped_iteration=solver.iteration, es_fired=solver.es_fired,
        psnr=None if ref_t is None else psnr(ref_t, to_tensor(image, device=dev)),
        peak_psnr=peak[0], peak_iteration=peak[1], metrics=rows)


def _check_image(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3)):
        raise InputError(f"image has shape {a.shape}; expected (H, W) grey or (H, W, 3) RGB")
    if min(a.shape[:2]) < 4:
        raise InputError(f"image of {a.shape[0]}x{a.shape[1]} pixels is too small; expected at least 4x4")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise InputError("image has NaN or infinite values; expected finite values in [0, 1]")
    return a
