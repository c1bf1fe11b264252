"""Restoration workflow: the Deep Image Prior on one observation, with early stopping.

``run(ctx)`` reads ``ctx.run.spec["params"]`` and the run's arrays ``observed`` and, when
present, ``reference`` (clean image of the output's size), ``mask`` (1 = known pixel) and
``kernel`` (blur PSF).

Params (all optional except where the task needs them)
------------------------------------------------------
task : denoise | inpaint | sr | deblur | jpeg (default denoise)
preset : cpu | classic | fast-preview | deep-decoder (default: classic on CUDA, cpu otherwise)
loss : mse | l1 | huber (default: the preset's, mse)
stopping : wmv | emv | none (default wmv)
window, patience, alpha, max_iters : override the preset's W, P, EMV alpha and budget
seed : int (default 0)
run_to_budget : bool (default False): keep going after ES fires, until ``max_iters``
factor : SR factor (2, 4, 8); kernel parameters are read from the ``kernel`` array
corruption : free text describing the corruption, copied to the summary
publish_every, preview_every, ssim_every, snapshot_every, checkpoint_every : cadences in
    iterations (defaults 1, 10, 25, 100, 200)

Published each ``publish_every`` steps: metrics ``loss``, ``lr`` and, when known,
``es_variance``, ``psnr`` (current image vs reference), ``ssim`` (every ``ssim_every``),
``psnr_raw`` (the network output when the preset averages outputs); extras ``es_iteration``,
``patience_left``, ``es_fired``, ``max_iters``, ``best_psnr``, ``best_psnr_iteration``,
``es_psnr`` (PSNR of the image kept at t*), ``elapsed_s``, ``preset``, ``device`` and, for the
detector's warm-up, ``es_window`` (ES-WMV: W; the variance exists once W outputs are in) or
``es_burn_in`` (ES-EMV).

The summary says how the run ended: ``stop`` is ``"detected"`` (the detector fired), ``"budget"``
(``max_iters`` was reached, before the detector fired or after it with ``run_to_budget``) or
``"user"`` (cancelled); ``es_fired`` whether t* is a detected stop; ``warnings`` a list of
sentences, one when the run ended before the detector fired (t* is then only the variance
minimum so far). ``es_psnr_vs_input`` and ``last_psnr_vs_input`` measure
the kept and the last image against the observation, through the forward operator (what the
image predicts the input to be); ``es_psnr`` and ``last_psnr`` against the reference.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from engine.core.metrics import psnr, ssim
from engine.dip.operators import to_numpy, to_tensor
from engine.dip.presets import default_preset, get_preset
from engine.dip.solver import DIPSolver, reference_tensor

PREVIEW_SIDE = 256


def _preview(t: torch.Tensor) -> np.ndarray:
    """A small uint8 image (longest side <= PREVIEW_SIDE) of a ``(1, C, H, W)`` tensor."""
    h, w = t.shape[2:]
    s = max(h, w)
    if s > PREVIEW_SIDE:
        size = (max(1, round(h * PREVIEW_SIDE / s)), max(1, round(w * PREVIEW_SIDE / s)))
        t = torch.nn.functional.interpolate(t.float(), size=size, mode="area")
    return np.round(np.clip(to_numpy(t), 0, 1) * 255).astype(np.uint8)


def _opt_array(ctx: Any, name: str) -> np.ndarray | None:
    run = ctx.run
    if hasattr(run, "has_array"):
        return run.load_array(name) if run.has_array(name) else None
    try:
        return run.load_array(name)
    except (FileNotFoundError, KeyError):
        return None


def build_solver(params: dict, observed: np.ndarray, *, mask: np.ndarray | None = None,
                 kernel: np.ndarray | None = None, device: torch.device | None = None) -> DIPSolver:
    """The solver a restoration run with ``params`` uses."""
    task = params.get("task", "denoise")
    preset = params.get("preset") or default_preset(device)
    stopping = params.get("stopping", "wmv") or "none"
    return DIPSolver(
        observed, preset=get_preset(preset), task=task, factor=int(params.get("factor", 4)),
        kernel=kernel, loss=params.get("loss") or None, seed=int(params.get("seed") or 0), device=device,
        mask=mask, stopping=stopping, window=_int(params.get("window")),
        patience=_int(params.get("patience")), alpha=params.get("alpha") or None,
        max_iters=_int(params.get("max_iters")))


def _warmup(solver: DIPSolver) -> dict[str, int]:
    """The detector's warm-up, for a live view: ES-WMV's window W or ES-EMV's burn-in."""
    es = solver.es
    if es is None:
        return {}
    if hasattr(es, "window"):
        return {"es_window": int(es.window)}
    return {"es_burn_in": int(es.burn_in)}


def stop_warning(stop: str, *, stopped_iteration: int, es_iteration: int | None, max_iters: int,
                 stopping: str = "wmv") -> str | None:
    """The sentence for a run that ended before its detector fired (None when there is nothing to say).

    ``stop`` is ``"user"`` (cancelled) or ``"budget"`` (``max_iters`` reached); a run without a
    detector (``stopping="none"``) only warns when it was cancelled.
    """
    warm = "the window had not filled" if stopping == "wmv" else "its burn-in had not ended"
    if stop == "user":
        if stopping == "none":
            return f"The run was stopped by the user at iteration {stopped_iteration}; the result is the last output."
        if es_iteration is None:
            return (f"The run was stopped by the user at iteration {stopped_iteration} before the detector "
                    f"had a variance ({warm}); the result is the last output, not a detected stop.")
        return (f"The run was stopped by the user at iteration {stopped_iteration} before the detector "
                f"decided; the result is the best candidate so far, t* = {es_iteration}, not a detected stop.")
    if stop == "budget" and stopping != "none":
        if es_iteration is None:
            return (f"The budget of {max_iters} iterations ran out before the detector had a variance "
                    f"({warm}); the result is the last output.")
        return (f"The budget of {max_iters} iterations ran out before the detector fired: t* = {es_iteration} "
                "is the minimum within the budget, not a detected stop.")
    return None


def _int(v: Any) -> int | None:
    return None if v in (None, "", 0) else int(v)


def run(ctx: Any) -> dict:
    """Run a DIP restoration; returns the summary (see the module docstring)."""
    params = dict(ctx.run.spec.get("params", {}))
    observed = ctx.run.load_array("observed").astype(np.float32)
    reference = _opt_array(ctx, "reference")
    mask = _opt_array(ctx, "mask")
    kernel = _opt_array(ctx, "kernel")
    device = torch.device(getattr(ctx, "device", None) or "cpu")
    solver = build_solver(params, observed, mask=mask, kernel=kernel, device=device)
    ref_t = None if reference is None else reference_tensor(solver, np.asarray(reference, np.float32))

    every = {k: max(1, int(params.get(k, d))) for k, d in
             (("publish_every", 1), ("preview_every", 10), ("ssim_every", 25), ("snapshot_every", 100),
              ("checkpoint_every", 200))}
    run_to_budget = bool(params.get("run_to_budget", False))

    # peak tracking (reference only) and wall time survive a resume through the checkpoint
    track: dict[str, Any] = {"best_psnr": -np.inf, "best_psnr_iteration": 0, "elapsed": 0.0, "es_psnr": None,
                             "fired_at": None}
    if ctx.resume:
        ck = ctx.run.load_checkpoint()
        if ck is not None:
            solver.load_state_dict(ck["solver"])
            track.update(ck.get("track", {}))
            if hasattr(ctx.run, "truncate_metrics"):
                ctx.run.truncate_metrics(solver.iteration)
    t_start = time.perf_counter() - float(track["elapsed"])
    cancelled = False
    warmup = _warmup(solver)

    def checkpoint() -> None:
        track["elapsed"] = time.perf_counter() - t_start
        ctx.run.save_checkpoint({"solver": solver.state_dict(), "track": dict(track)})

    # step by step rather than solver.run(): the loop checks the cancel flag between steps and may go on
    # past the detector (run_to_budget)
    while True:
        if ctx.cancelled():
            cancelled = True
            break
        if solver.iteration >= solver.max_iters or (solver.es_fired and not run_to_budget):
            break
        st = solver.step()
        it = st["iteration"]
        if st["stop"] and track["fired_at"] is None:
            track["fired_at"] = it
        metrics: dict[str, float] = {"loss": st["loss"], "lr": st["lr"]}
        if st["es_variance"] is not None:
            metrics["es_variance"] = st["es_variance"]
        if ref_t is not None:
            p = psnr(ref_t, st["output"])
            metrics["psnr"] = p
            if solver.preset.ema > 0:
                metrics["psnr_raw"] = psnr(ref_t, st["raw"])
            if p > track["best_psnr"]:
                track["best_psnr"], track["best_psnr_iteration"] = p, it
            if st["es_iteration"] == it:
                track["es_psnr"] = p
            if it % every["ssim_every"] == 0:
                metrics["ssim"] = ssim(ref_t, st["output"])
        last = solver.done and not run_to_budget or it >= solver.max_iters
        if it % every["publish_every"] == 0 or last:
            show = it % every["preview_every"] == 0 or last or it == 1
            preview = _preview(st["output"]) if show else None
            extra = {"es_iteration": st["es_iteration"], "patience_left": st["patience_left"],
                     "es_fired": solver.es_fired, "max_iters": solver.max_iters,
                     "elapsed_s": round(time.perf_counter() - t_start, 2)}
            if ref_t is not None:
                extra.update(best_psnr=round(track["best_psnr"], 3),
                             best_psnr_iteration=track["best_psnr_iteration"],
                             es_psnr=None if track["es_psnr"] is None else round(track["es_psnr"], 3))
            if it == 1:
                extra.update(preset=solver.preset.name, device=str(device))
            extra.update(warmup)
            ctx.publish(it, metrics, preview=preview, **extra)
        if it % every["snapshot_every"] == 0:
            ctx.run.save_snapshot(it, solver.output("last"))
        if it % every["checkpoint_every"] == 0:
            checkpoint()

    wall = time.perf_counter() - t_start
    if solver.iteration == 0:
        return {"state": "cancelled", "stopped_iteration": 0, "wall_seconds": round(wall, 2),
                "device": str(device), "preset": solver.preset.name, "stop": "user", "es_fired": False,
                "warnings": ["The run was stopped by the user before its first iteration; there is no result."]}
    use_best = solver.es is not None
    result = solver.output("best" if use_best else "last")
    last_img = solver.output("last")
    ctx.run.save_image("result", result)
    ctx.run.save_array("result", result)
    ctx.run.save_array("last", last_img)
    if cancelled:
        checkpoint()  # a cancelled run can be resumed later
    es = solver.es
    t_star = None if es is None else es.best_iteration
    stop = "user" if cancelled else "detected" if solver.es_fired and not run_to_budget else "budget"
    warning = None if solver.es_fired else stop_warning(
        stop, stopped_iteration=solver.iteration, es_iteration=t_star, max_iters=solver.max_iters,
        stopping=solver.stopping)
    summary: dict[str, Any] = {
        "state": "cancelled" if cancelled else "done",
        "task": solver.task, "preset": solver.preset.name, "loss": solver.loss_name,
        "stopping": solver.stopping, "device": str(device), "seed": solver.seed,
        "es_iteration": None if es is None else es.best_iteration,
        "stop": stop, "warnings": [] if warning is None else [warning],
        "es_fired": solver.es_fired, "es_fired_iteration": track["fired_at"],
        "stopped_iteration": solver.iteration, "max_iters": solver.max_iters,
        "window": getattr(es, "window", None), "patience": getattr(es, "patience", None),
        "wall_seconds": round(wall, 2),
        "ms_per_iteration": round(1000 * solver.timing["step_s"] / solver.iteration, 2),
        "es_overhead": round(solver.timing["es_s"] / max(solver.timing["step_s"], 1e-9), 4),
        "corruption": params.get("corruption"),
        "result": "result.png",
    }
    with torch.no_grad():
        for key, img in (("es_psnr_vs_input", result), ("last_psnr_vs_input", last_img)):
            pred = solver.operator(to_tensor(img, device=device))
            if pred.shape == solver.y.shape:
                summary[key] = round(psnr(solver.y, pred), 3)
    if ref_t is not None:
        obs_psnr = None
        if tuple(solver.y.shape[2:]) == solver.out_shape:
            obs_psnr = round(psnr(ref_t, solver.y), 3)
        summary.update(
            es_psnr=round(psnr(ref_t, to_tensor(result, device=device)), 3),
            last_psnr=round(psnr(ref_t, to_tensor(last_img, device=device)), 3),
            peak_psnr=round(float(track["best_psnr"]), 3), peak_iteration=int(track["best_psnr_iteration"]),
            input_psnr=obs_psnr,
            es_ssim=round(ssim(reference, result), 4),
        )
    return summary
