"""MRI workflow: zero-filled, total variation and the Deep Image Prior on one k-space slice, live.

:func:`prepare_inputs` turns what the user gave (a grey image to simulate from, or measured k-space
with its mask) into the run's arrays; ``run(ctx)`` reads them: ``kspace`` (complex64 ``(H, W)``, zero
off the mask), ``mask`` (``(H, W)``, 1 = measured) and, for a simulation, ``reference`` (the image in
[0, 1]).

Params (all optional)
---------------------
mask_kind : random | equispaced (recorded; the mask itself is the ``mask`` array)
acceleration : 2 | 4 | 8 (recorded)
noise_sigma : k-space noise of a simulation (recorded)
preset : cpu | classic | fast-preview | deep-decoder (default: classic on CUDA, cpu otherwise)
stopping : wmv | emv | none (default wmv)
window, patience, max_iters : the detector's W, P and the DIP budget (MRI defaults below)
tv_weight, tv_iters : the TV baseline's λ and FISTA iterations (defaults 0.001, 100)
phase : auto | none: for measured k-space, model the image as ``e^{iφ} x`` with the smooth phase ``φ``
    estimated from the fully sampled centre (auto, the default without a reference)
seed : int (default 0)
publish_every, preview_every, ssim_every : cadences in DIP iterations (defaults 1, 10, 25)

Published for every DIP step: metrics ``loss``, ``es_variance`` (once the window is full) and, with a
reference, ``psnr`` and (every ``ssim_every``) ``ssim``; extras ``stage`` (``tv`` then ``dip``),
``es_iteration``, ``patience_left``, ``es_fired``, ``max_iters``, ``zf_psnr``, ``tv_psnr``,
``best_psnr``, ``best_psnr_iteration``, ``es_psnr``, ``elapsed_s``, ``es_window``.

The summary has, with a reference, ``input_psnr``/``input_ssim`` (zero-filled), ``tv_psnr``/``tv_ssim``,
``es_psnr``/``es_ssim`` (DIP at t*), ``peak_psnr``/``peak_iteration`` (the best DIP iterate, seen only
through the reference), ``last_psnr``; always ``es_iteration`` (t*), ``stop`` (detected | budget |
user), ``es_fired``, the data residuals ``*_dc`` = ``||M F x - y|| / ||y||`` and ``warnings`` in plain
words. Images: ``zero_filled.png``, ``tv.png``, ``dip.png`` (= ``result.png``), ``mask.png``,
``kspace.png`` (log magnitude); arrays ``zero_filled``, ``tv``, ``dip``, ``last``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from engine.core.errors import InputError
from engine.core.metrics import psnr, ssim
from engine.core.seeds import Seed
from engine.dip.presets import default_preset, get_preset
from engine.dip.solver import DIPSolver
from engine.dip.workflow import stop_warning
from engine.mri.kspace import (
    ACCELERATIONS,
    MASK_KINDS,
    KSpace,
    KSpaceStacked,
    acceleration_of,
    check_shape,
    log_magnitude,
    low_res_phase,
    make_mask,
    simulate_kspace,
    stack_complex,
    zero_filled,
)
from engine.mri.tv import DEFAULT_ITERS, DEFAULT_WEIGHT, tv_reconstruct

# The cpu preset's P = 75 and 640 iterations are tuned for denoising; fitting k-space keeps improving
# for longer (phantom 128x128, x4, noise 0.01: PSNR still rising at iteration 500), so an MRI run
# waits longer before it calls the variance minimum, within a larger budget.
MRI_DEFAULTS = {"cpu": {"patience": 150, "max_iters": 1000}, "fast-preview": {"patience": 150, "max_iters": 800}}
PREVIEW_SIDE = 256


def prepare_inputs(params: dict, *, image: np.ndarray | None = None, kspace: np.ndarray | None = None,
                   mask: np.ndarray | None = None, seed: Seed = None) -> tuple[dict, dict]:
    """The run's arrays and params from a grey image (simulated) or measured k-space.

    With ``image``: the mask is ``mask`` when given, else :func:`~engine.mri.kspace.make_mask` of
    ``params["mask_kind"]`` and ``params["acceleration"]``; k-space is simulated with
    ``params["noise_sigma"]``; the image becomes the reference. With ``kspace``: ``mask`` must be given
    (see :func:`engine.mri.inputs.read_kspace`). The params gain ``measured_acceleration``, ``shape``
    and ``source`` (``simulated`` | ``measured``).
    """
    params = dict(params)
    if (image is None) == (kspace is None):
        raise InputError("give either an image to simulate k-space from, or measured k-space")
    kind = params.get("mask_kind", "random") or "random"
    if kind not in MASK_KINDS:
        raise InputError(f"unknown mask kind {kind!r}; expected one of {', '.join(MASK_KINDS)}")
    acc = int(params.get("acceleration", 4) or 4)
    arrays: dict[str, np.ndarray] = {}
    if image is not None:
        img = np.asarray(image, np.float32)
        if img.ndim == 3:
            img = img[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        check_shape(img.shape, "image")
        if not np.isfinite(img).all() or img.min() < 0 or img.max() > 1:
            raise InputError("image must be finite and in [0, 1]")
        if mask is None:
            if acc not in ACCELERATIONS:
                raise InputError(f"acceleration {acc}; expected one of {', '.join(map(str, ACCELERATIONS))}")
            seed = int(params.get("seed", 0) or 0) if seed is None else seed
            mask = make_mask(img.shape, kind=kind, acceleration=acc, seed=seed)
            params.update(mask_kind=kind, acceleration=acc)
        else:
            params.update(mask_kind="file", acceleration=None)
        m = np.asarray(mask) > 0
        if m.shape != img.shape:
            raise InputError(f"mask is {m.shape[1]}x{m.shape[0]} but the image is {img.shape[1]}x{img.shape[0]}")
        sigma = float(params.get("noise_sigma", 0.0) or 0.0)
        arrays["kspace"] = simulate_kspace(img, m, noise_sigma=sigma, seed=int(params.get("seed", 0) or 0))
        arrays["reference"] = img
        params["source"] = "simulated"
    else:
        if mask is None:
            raise InputError("measured k-space needs its mask")
        k = np.asarray(kspace)
        if k.dtype.kind != "c":
            raise InputError(f"k-space has dtype {k.dtype}; expected complex values")
        check_shape(k.shape, "k-space")
        m = np.asarray(mask) > 0
        if m.shape != k.shape:
            raise InputError(f"mask is {m.shape[1]}x{m.shape[0]} but the k-space is {k.shape[1]}x{k.shape[0]}")
        arrays["kspace"] = (k * m).astype(np.complex64)
        params.update(source="measured", mask_kind="file", acceleration=None)
    arrays["mask"] = m.astype(np.uint8)
    params["measured_acceleration"] = round(acceleration_of(m), 3)
    params["shape"] = list(m.shape)
    return arrays, params


def _int(v: Any) -> int | None:
    return None if v in (None, "", 0) else int(v)


def _opt_array(run: Any, name: str) -> np.ndarray | None:
    if hasattr(run, "has_array"):
        return run.load_array(name) if run.has_array(name) else None
    try:
        return run.load_array(name)
    except (FileNotFoundError, KeyError):
        return None


def _preview(t: torch.Tensor | np.ndarray) -> np.ndarray:
    a = t.detach().float().cpu().numpy()[0, 0] if isinstance(t, torch.Tensor) else np.asarray(t)
    h, w = a.shape
    if max(h, w) > PREVIEW_SIDE:
        from skimage.transform import resize

        s = PREVIEW_SIDE / max(h, w)
        a = resize(a, (max(1, round(h * s)), max(1, round(w * s))), anti_aliasing=True)
    return np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def _dc(op: KSpace, x: np.ndarray, y: torch.Tensor) -> float:
    """``||A x - y|| / ||y||``: how far an image is from the measured lines."""
    with torch.no_grad():
        r = op.A(torch.as_tensor(np.asarray(x, np.float64))) - y
    return round(float(r.abs().norm() / max(float(y.abs().norm()), 1e-30)), 5)


def _quality(ref: np.ndarray | None, img: np.ndarray) -> tuple[float | None, float | None]:
    if ref is None:
        return None, None
    return round(psnr(ref, img), 3), round(ssim(ref, img), 4)


def solver_options(params: dict, device: torch.device | str) -> dict:
    """Preset, W, P and budget of the DIP run with ``params`` (the MRI defaults filled in)."""
    preset = params.get("preset") or default_preset(device)
    p = get_preset(preset)
    d = MRI_DEFAULTS.get(p.name, {})
    return {"preset": p, "window": _int(params.get("window")),
            "patience": _int(params.get("patience")) or d.get("patience"),
            "max_iters": _int(params.get("max_iters")) or d.get("max_iters"),
            "stopping": params.get("stopping", "wmv") or "none", "seed": int(params.get("seed") or 0)}


def run(ctx: Any) -> dict:
    """Run zero-filled, TV and DIP reconstructions of one slice; returns the summary (module docstring)."""
    params = dict(ctx.run.spec.get("params", {}))
    device = torch.device(getattr(ctx, "device", None) or "cpu")
    kspace = np.asarray(ctx.run.load_array("kspace"))
    mask = np.asarray(ctx.run.load_array("mask")) > 0
    reference = _opt_array(ctx.run, "reference")
    if kspace.dtype.kind != "c" or kspace.shape != mask.shape:
        raise InputError("the run's k-space must be complex and of the mask's shape")
    check_shape(kspace.shape, "k-space")
    ref = None if reference is None else np.asarray(reference, np.float32)
    warnings: list[str] = []
    t_start = time.perf_counter()

    # measured data have no scale: the zero-filled image is brought to a peak of 1, the net's range
    zf = zero_filled(kspace)
    scale = 1.0
    if ref is None:
        top = float(zf.max())
        if top <= 0:
            raise InputError("k-space is all zeros on the mask")
        scale = 1.0 / top
        kspace = (kspace * scale).astype(np.complex64)
        zf = zf * scale
        warnings.append("No reference image: PSNR and SSIM are unknown; compare the images by eye and by how "
                        "well each matches the measured lines (the data residuals).")
    phase = None
    if ref is None and (params.get("phase", "auto") or "auto") == "auto":
        phase = low_res_phase(kspace, mask)
    op = KSpace(mask, phase=phase).double()
    y = torch.as_tensor(kspace.astype(np.complex128))
    zf_psnr, zf_ssim = _quality(ref, zf)
    ctx.run.save_array("zero_filled", zf.astype(np.float32))
    ctx.run.save_image("zero_filled", np.clip(zf, 0, 1))
    ctx.run.save_image("mask", mask.astype(np.float32))
    ctx.run.save_image("kspace", log_magnitude(kspace))

    # ---- TV baseline (about a second at 128^2)
    ctx.publish(0, {}, log=False, stage="tv", zf_psnr=zf_psnr)
    tv_weight = float(params.get("tv_weight", DEFAULT_WEIGHT) if params.get("tv_weight") is not None
                      else DEFAULT_WEIGHT)
    tv_iters = int(params.get("tv_iters") or DEFAULT_ITERS)

    def tv_observe(k: int, _x: np.ndarray, _loss: float) -> None:
        ctx.check()  # a stop during TV ends the run (nothing else has been computed)

    t_tv = time.perf_counter()
    tv = tv_reconstruct(kspace, op, weight=tv_weight, iters=tv_iters, callback=tv_observe)
    tv_seconds = time.perf_counter() - t_tv
    tv_psnr, tv_ssim = _quality(ref, tv.image)
    ctx.run.save_array("tv", tv.image)
    ctx.run.save_image("tv", tv.image)

    # ---- DIP: the stacked real form of the same operator, so DIPSolver fits it with its MSE unchanged
    opts = solver_options(params, device)
    solver = DIPSolver(stack_complex(kspace), operator=KSpaceStacked(mask, phase=phase).float(),
                       out_shape=kspace.shape, task="mri", device=device, **opts)
    ref_t = None if ref is None else torch.from_numpy(ref)[None, None].to(device)
    every = {k: max(1, int(params.get(k, d) or d)) for k, d in
             (("publish_every", 1), ("preview_every", 10), ("ssim_every", 25))}
    track: dict[str, Any] = {"best": -np.inf, "best_it": 0, "es_psnr": None, "fired_at": None}
    warm = {"es_window": int(solver.es.window)} if hasattr(solver.es, "window") else {}
    cancelled = False
    t_dip = time.perf_counter()
    while True:
        if ctx.cancelled():
            cancelled = True
            break
        if solver.done:
            break
        st = solver.step()
        it = st["iteration"]
        if st["stop"] and track["fired_at"] is None:
            track["fired_at"] = it
        metrics: dict[str, float] = {"loss": st["loss"]}
        if st["es_variance"] is not None:
            metrics["es_variance"] = st["es_variance"]
        if ref_t is not None:
            p = psnr(ref_t, st["output"])
            metrics["psnr"] = p
            if p > track["best"]:
                track["best"], track["best_it"] = p, it
            if st["es_iteration"] == it:
                track["es_psnr"] = p
            if it % every["ssim_every"] == 0:
                metrics["ssim"] = ssim(ref_t, st["output"])
        last = solver.done
        if it % every["publish_every"] == 0 or last:
            show = it == 1 or last or it % every["preview_every"] == 0
            extra = {"stage": "dip", "es_iteration": st["es_iteration"], "patience_left": st["patience_left"],
                     "es_fired": solver.es_fired, "max_iters": solver.max_iters, "zf_psnr": zf_psnr,
                     "tv_psnr": tv_psnr, "elapsed_s": round(time.perf_counter() - t_start, 2), **warm}
            if ref_t is not None:
                extra.update(best_psnr=round(track["best"], 3), best_psnr_iteration=track["best_it"],
                             es_psnr=None if track["es_psnr"] is None else round(track["es_psnr"], 3))
            ctx.publish(it, metrics, preview=_preview(st["output"]) if show else None, **extra)
    dip_seconds = time.perf_counter() - t_dip

    summary: dict[str, Any] = {
        "state": "cancelled" if cancelled else "done", "source": params.get("source"),
        "shape": list(kspace.shape), "mask_kind": params.get("mask_kind"), "acceleration": params.get("acceleration"),
        "measured_acceleration": round(acceleration_of(mask), 3), "noise_sigma": params.get("noise_sigma"),
        "phase_model": phase is not None, "scale": scale, "device": str(device),
        "input_psnr": zf_psnr, "input_ssim": zf_ssim, "zero_filled_dc": _dc(op, zf, y),
        "tv_psnr": tv_psnr, "tv_ssim": tv_ssim, "tv_dc": _dc(op, tv.image, y), "tv_weight": tv_weight,
        "tv_iters": tv_iters, "tv_seconds": round(tv_seconds, 3),
        "preset": solver.preset.name, "stopping": solver.stopping, "seed": solver.seed,
        "window": getattr(solver.es, "window", None), "patience": getattr(solver.es, "patience", None),
        "max_iters": solver.max_iters, "stopped_iteration": solver.iteration, "dip_seconds": round(dip_seconds, 2),
        "result": "dip.png",
    }
    if solver.iteration == 0:
        warnings.append("The run was stopped by the user before the first DIP iteration; only the zero-filled "
                        "and TV reconstructions exist.")
        summary.update(stop="user", es_fired=False, es_iteration=None, warnings=warnings,
                       wall_seconds=round(time.perf_counter() - t_start, 2))
        return summary
    dip = solver.output("best" if solver.es is not None else "last")
    last_img = solver.output("last")
    ctx.run.save_array("dip", dip)
    ctx.run.save_array("last", last_img)
    ctx.run.save_image("dip", dip)
    ctx.run.save_image("result", dip)
    es = solver.es
    t_star = None if es is None else es.best_iteration
    stop = "user" if cancelled else "detected" if solver.es_fired else "budget"
    w = None if solver.es_fired else stop_warning(stop, stopped_iteration=solver.iteration, es_iteration=t_star,
                                                  max_iters=solver.max_iters, stopping=solver.stopping)
    if w:
        warnings.append(w)
    es_psnr, es_ssim = _quality(ref, dip)
    summary.update(stop=stop, es_fired=solver.es_fired, es_fired_iteration=track["fired_at"], es_iteration=t_star,
                   es_psnr=es_psnr, es_ssim=es_ssim, dip_dc=_dc(op, dip, y),
                   ms_per_iteration=round(1000 * solver.timing["step_s"] / solver.iteration, 2))
    if ref is not None:
        summary.update(peak_psnr=round(float(track["best"]), 3), peak_iteration=int(track["best_it"]),
                       last_psnr=round(psnr(ref, last_img), 3))
        if es_psnr is not None and tv_psnr is not None and es_psnr < tv_psnr:
            warnings.append(f"The DIP result ({es_psnr:.2f} dB) is below the TV baseline ({tv_psnr:.2f} dB) on this "
                            "input.")
    summary["warnings"] = warnings
    summary["wall_seconds"] = round(time.perf_counter() - t_start, 2)
    return summary
