"""Generalized phase retrieval workflow: one signal, one measurement model, one algorithm, live.

Params (all optional)
---------------------
signal : ``random`` or a sample name of :func:`engine.dip.samples.sample_names` (default ``camera``)
size : image side in pixels (default 16; the image is converted to grey)
n : length of a random signal (default 64)
model : complex-gaussian | real-gaussian | cdp (default complex-gaussian)
ratio : m/n for the Gaussian models (default 4)
L : number of coded diffraction masks for cdp (default: round(ratio))
noise : relative noise on the intensities, ||e|| / ||y|| (default 0)
init : initializer name (default: the algorithm's own)
algorithm : wf | twf | rwf | af | taf | gs | dip (default taf; dip: the Deep Image Prior, image signals
    only, see :func:`run_dip`)
iters : iteration budget (default: the algorithm's)
seed : int (default 0)
every : publish every this many iterations (default: about 400 points per run)
tol : success threshold on the error (default 1e-5)

Published: metrics ``error`` (relative error modulo global phase) and ``loss`` (relative amplitude
residual); preview = |iterate| as a uint8 image when the signal is an image. Run arrays:
``signal`` (truth), ``intensities``, ``estimate`` (phase-aligned, complex). A stopped run keeps
what it reached; runs are seconds long, so a resume starts again from the beginning.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from engine.core.errors import InputError
from engine.core.seeds import TorchSeed, torch_rng
from engine.gpr.algorithms import ALGORITHMS, GPRSolver, GPRState, align_phase
from engine.gpr.initializers import INITIALIZERS
from engine.gpr.measurements import MODELS, Measurement, make_measurement, measure
from engine.gpr.sweep import SweepCell, parse_algorithms, parse_ratios, phase_transition, success_table
from engine.jobs.context import Cancelled

PREVIEW_SIDE = 192
MAX_N = 4096
MAX_MATRIX_ENTRIES = 20_000_000


def _grey(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3:  # ITU-R BT.601 luma
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=img.dtype)
    return img.astype(np.float64)


def make_signal(params: dict, seed: TorchSeed = None) -> tuple[torch.Tensor, tuple[int, ...], bool]:
    """The truth as a float64/complex128 vector, its shape, and whether it is an image.

    A random signal is drawn from ``seed`` (an int, or a torch.Generator passed through).
    """
    from engine.dip.samples import load_sample, sample_names

    generator = torch_rng(seed)
    name = str(params.get("signal", "camera") or "camera")
    model = params.get("model", "complex-gaussian")
    if name == "random":
        n = int(params.get("n", 64))
        if not (2 <= n <= MAX_N):
            raise InputError(f"n must be between 2 and {MAX_N}; got {n}")
        if model == "real-gaussian":
            x = torch.randn(n, generator=generator, dtype=torch.float64)
        else:
            x = torch.complex(torch.randn(n, generator=generator, dtype=torch.float64),
                              torch.randn(n, generator=generator, dtype=torch.float64)) / math.sqrt(2.0)
        return x, (n,), False
    if name not in sample_names():
        raise InputError(f"unknown signal {name!r}; expected random or one of {', '.join(sample_names())}")
    size = int(params.get("size", 16))
    if not (4 <= size <= 64):
        raise InputError(f"image size must be between 4 and 64 pixels; got {size}")
    img = _grey(load_sample(name, size=size))
    x = torch.from_numpy(img.reshape(-1).copy())
    if model != "real-gaussian":
        x = x.to(torch.complex128)
    return x, (size, size), True


def build_problem(params: dict, device: torch.device | str = "cpu"
                  ) -> tuple[Measurement, torch.Tensor, torch.Tensor, tuple[int, ...], bool]:
    """Operator, truth ``(1, n)``, intensities ``(1, m)``, signal shape and is-image flag."""
    model = params.get("model", "complex-gaussian")
    if model not in MODELS:
        raise InputError(f"unknown measurement model {model!r}; expected one of {', '.join(MODELS)}")
    # one stream for the signal, the operator and the noise, in that order
    g = torch_rng(int(params.get("seed", 0) or 0))
    x, shape, is_image = make_signal(params, g)
    n = x.numel()
    ratio = float(params.get("ratio", 4.0) or 4.0)
    if model == "cdp":
        L = int(params.get("L") or round(ratio))
        if not (1 <= L <= 64):
            raise InputError(f"the number of CDP masks L must be between 1 and 64; got {L}")
        op = make_measurement("cdp", shape, float(L), L=L, seed=g, device=device)
    else:
        if not (0 < ratio <= 64):
            raise InputError(f"m/n must be in (0, 64]; got {ratio}")
        if math.ceil(ratio * n) * n > MAX_MATRIX_ENTRIES:
            raise InputError(f"m x n = {math.ceil(ratio * n) * n:,} is too large for an explicit Gaussian "
                             f"matrix; use a smaller image or ratio, or the cdp model")
        op = make_measurement(model, n, ratio, seed=g, device=device)
    noise = float(params.get("noise", 0.0) or 0.0)
    if not (0 <= noise <= 10):
        raise InputError(f"noise must be between 0 and 10 (relative); got {noise}")
    x = x.to(device=device, dtype=op.dtype).unsqueeze(0)
    y = measure(op, x, noise, seed=g)
    return op, x, y, shape, is_image


def preview_image(z: torch.Tensor, shape: tuple[int, ...], vmax: float) -> np.ndarray:
    """|z| as a uint8 image, upscaled by whole pixels to about PREVIEW_SIDE."""
    img = z.abs().reshape(shape).cpu().numpy() / max(vmax, 1e-12)
    img = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    k = max(1, PREVIEW_SIDE // max(shape))
    return np.kron(img, np.ones((k, k), dtype=np.uint8))


def run(ctx: Any) -> dict:
    """Run one generalized-PR reconstruction, publishing error and loss as it goes."""
    params = dict(ctx.run.spec.get("params", {}))
    device = ctx.device
    algorithm = params.get("algorithm", "taf") or "taf"
    if algorithm == DIP:
        return run_dip(ctx, params)
    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")
    init = params.get("init") or ALGORITHMS[algorithm].default_init
    if init not in INITIALIZERS:
        raise InputError(f"unknown initializer {init!r}; expected one of {', '.join(INITIALIZERS)}")
    iters = int(params.get("iters") or ALGORITHMS[algorithm].default_iters)
    if not (1 <= iters <= 100_000):
        raise InputError(f"iterations must be between 1 and 100000; got {iters}")
    every = max(1, int(params.get("every") or max(1, iters // 400)))
    tol = float(params.get("tol", 1e-5) or 1e-5)

    op, x, y, shape, is_image = build_problem(params, device)
    vmax = float(x.abs().max())
    ctx.run.save_array("signal", x[0].reshape(shape).cpu().numpy())
    ctx.run.save_array("intensities", y[0].cpu().numpy())
    if is_image:
        ctx.run.save_image("signal", np.clip(x[0].abs().reshape(shape).cpu().numpy() / vmax, 0, 1))

    t0 = time.time()
    solver = GPRSolver(op, y, algorithm=algorithm, init=init, iters=iters, x_true=x,
                       seed=int(params.get("seed", 0) or 0) + 1)
    last: GPRState | None = None

    def observe(st: GPRState) -> None:
        nonlocal last
        last = st
        preview = preview_image(st.z[0], shape, vmax) if is_image else None
        ctx.publish(st.iteration, {"error": float(st.error[0]), "loss": float(st.loss[0])}, preview=preview,
                    max_iters=iters, elapsed_s=round(time.time() - t0, 3))
        ctx.check()

    cancelled = False
    try:
        solver.run(observe, every=every)
    except Cancelled:
        cancelled = True
    assert last is not None
    z = align_phase(x, last.z)[0]
    ctx.run.save_array("estimate", z.reshape(shape).cpu().numpy())
    if is_image:
        ctx.run.save_image("estimate", np.clip(z.abs().reshape(shape).cpu().numpy() / vmax, 0, 1))
    error = float(last.error[0])
    return {"state": "cancelled" if cancelled else "done", "algorithm": algorithm,
            "algorithm_label": ALGORITHMS[algorithm].label, "reference": ALGORITHMS[algorithm].reference,
            "init": init, "model": params.get("model", "complex-gaussian"),
            "signal": params.get("signal", "camera"), "shape": list(shape), "n": op.n, "m": op.m,
            "ratio": op.m / op.n, "noise": float(params.get("noise", 0.0) or 0.0),
            "iterations": last.iteration, "error": error, "loss": float(last.loss[0]),
            "tol": tol, "success": error < tol, "wall_seconds": round(time.time() - t0, 3)}


# ----------------------------------------------------------------------------- DIP prior
DIP = "dip"
DIP_LABEL = "DIP prior (ES-WMV)"
DIP_REFERENCE = "Ulyanov, Vedaldi and Lempitsky, Deep Image Prior (2018); ES-WMV: Wang et al. (2023)"
DIP_DEFAULT_ITERS = 1500


def run_dip(ctx: Any, params: dict) -> dict:
    """Generalized PR of an image with the DIP prior (``algorithm: "dip"``), published live.

    The object is a real, non-negative image by default (``dip: {"obj": "complex"}`` for a complex one);
    ``dip`` may also carry ``loss``, ``lr``, ``preset``, ``patience``, ``window``. Metrics ``error`` and
    ``loss`` (the relative amplitude residual, as the other algorithms); extras ``es_iteration``
    and ``es_variance`` once the window is full. The estimate is the image at t*.
    """
    from engine.cdi.dip_prior import gpr_solver

    if str(params.get("signal", "camera") or "camera") == "random":
        raise InputError("the DIP prior needs an image signal (a network draws images); pick a sample image")
    iters = int(params.get("iters") or DIP_DEFAULT_ITERS)
    if not (1 <= iters <= 100_000):
        raise InputError(f"iterations must be between 1 and 100000; got {iters}")
    every = max(1, int(params.get("every") or max(1, iters // 400)))
    tol = float(params.get("tol", 1e-5) or 1e-5)
    seed = int(params.get("seed", 0) or 0)
    op, x, y, shape, _ = build_problem(params, ctx.device)
    vmax = float(x.abs().max())
    ctx.run.save_array("signal", x[0].reshape(shape).cpu().numpy())
    ctx.run.save_array("intensities", y[0].cpu().numpy())
    ctx.run.save_image("signal", np.clip(x[0].abs().reshape(shape).cpu().numpy() / vmax, 0, 1))
    opts = dict(params.get("dip") or {})
    opts["max_iters"] = iters
    t0 = time.time()
    solver = gpr_solver(op, y, shape, seed=seed + 1, reference=x, **opts)
    last: dict | None = None
    cancelled = False
    try:
        while not solver.done:
            st = solver.step()
            last = st
            if st["iteration"] % every == 0 or solver.done:
                # the DIP loss is the squared relative residual; its root is what the other algorithms show
                metrics = {"error": st["error"], "loss": math.sqrt(max(st["loss"], 0.0))}
                if st["es_variance"] is not None:
                    metrics["es_variance"] = float(st["es_variance"])
                ctx.publish(st["iteration"], metrics, preview=preview_image(st["object"].reshape(-1), shape, vmax),
                            max_iters=iters, elapsed_s=round(time.time() - t0, 3),
                            es_iteration=st["es_iteration"], patience_left=st["patience_left"])
            ctx.check()
    except Cancelled:
        cancelled = True
    if last is None:
        raise InputError("the run was stopped before its first iteration")
    best = solver.output("best").reshape(1, -1)
    z_best = best.to(x.dtype) if x.is_complex() else best.real.to(x.dtype)
    error = float(solver.error_fn(x, best))
    z = align_phase(x, z_best)[0]
    ctx.run.save_array("estimate", z.reshape(shape).cpu().numpy())
    ctx.run.save_image("estimate", np.clip(z.abs().reshape(shape).cpu().numpy() / vmax, 0, 1))
    warnings = solver.warnings(cancelled=cancelled)
    return {"state": "cancelled" if cancelled else "done", "algorithm": DIP, "algorithm_label": DIP_LABEL,
            "reference": DIP_REFERENCE, "init": "random network", "solver": "dip",
            "model": params.get("model", "complex-gaussian"), "signal": params.get("signal", "camera"),
            "shape": list(shape), "n": op.n, "m": op.m, "ratio": op.m / op.n,
            "noise": float(params.get("noise", 0.0) or 0.0), "iterations": solver.iteration,
            "max_iters": iters, "es_iteration": solver.es_iteration,
            "stop": solver.stop_reason(cancelled=cancelled), "error": error,
            "error_last": float(last["error"]), "loss": math.sqrt(max(last["loss"], 0.0)),
            "object_model": solver.obj, "preset": solver.preset.name, "tol": tol, "success": error < tol,
            "warnings": warnings, "wall_seconds": round(time.time() - t0, 3)}


# ----------------------------------------------------------------------------- sweep job
DEFAULT_RATIOS = (1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6)


def run_sweep(ctx: Any) -> dict:
    """Job kind ``gpr_sweep``: the phase-transition sweep, published cell by cell.

    Phase-transition workflow: success rate against m/n for several algorithms, published cell by cell.

    Params
    ------
    n : signal length (default 64)
    ratios : list of m/n values or a comma string (default 1.5,2,2.5,3,3.5,4,4.5,5,6)
    trials : trials per ratio (default 20)
    model : complex-gaussian | real-gaussian | cdp (default complex-gaussian)
    algorithms : list or comma string, ``all`` or names with optional ``:init`` (default wf,taf,gs:optimal)
    tol : success threshold (default 1e-5)
    seed : int (default 0)
    iters : iteration budget for all algorithms (default: each algorithm's)
    noise : relative noise on the intensities (default 0)

    Published after each (ratio, algorithm) cell, with ``iteration`` = cells done: metrics
    ``{"ratio": r, "<alg>_success": rate}``; extras ``table`` ({alg: {ratio: rate}}), ``ratios``,
    ``algorithms``, ``cells_done``, ``cells_total``. The summary is the full report of
    :func:`engine.gpr.sweep.phase_transition`.
    """
    p = dict(ctx.run.spec.get("params", {}))
    algorithms = parse_algorithms(p.get("algorithms") or "wf,taf,gs:optimal")
    ratios = parse_ratios(p.get("ratios") or list(DEFAULT_RATIOS))
    total = len(algorithms) * len(ratios)

    def on_cell(cell: SweepCell, cells: list[SweepCell]) -> None:
        ctx.publish(len(cells), {"ratio": cell.ratio, f"{cell.algorithm}_success": cell.success},
                    table=success_table(cells), ratios=ratios, algorithms=algorithms,
                    cells_done=len(cells), cells_total=total,
                    last_cell={"algorithm": cell.algorithm, "ratio": cell.ratio, "success": cell.success,
                               "iterations": cell.iterations, "seconds": cell.seconds})

    iters = p.get("iters")
    report = phase_transition(int(p.get("n", 64)), ratios, int(p.get("trials", 20)),
                              p.get("model", "complex-gaussian"), algorithms,
                              tol=float(p.get("tol", 1e-5) or 1e-5), seed=int(p.get("seed", 0) or 0),
                              iters=int(iters) if iters else None, noise=float(p.get("noise", 0.0) or 0.0),
                              device=ctx.device, cancelled=ctx.cancelled, on_cell=on_cell)
    report["state"] = "cancelled" if ctx.cancelled() else "done"
    report["device"] = str(ctx.device)
    return report
