"""CDI workflow: batched Fourier phase retrieval of a diffraction pattern, live, then analysis.

Spec::

    {"kind": "cdi", "params": {"recipe": "...", "starts": 8, "seed": 0, "options": {...},
                               "publish_every": 10, "average": 0, "mask_zeros": "auto"}}

Inputs: ``intensity`` (centred counts, 2D or 3D), optionally ``mask`` (nonzero = not measured) and
``support`` (nonzero = inside; replaces the support from the autocorrelation). Before solving, the
unmeasured pixels are found with :func:`engine.cdi.masks.unmeasured_mask` (``mask_zeros``: "auto",
"all" or "none"; the user mask is OR-ed in); its counts go into the summary under ``"mask"``.
Without a recipe, the default depends on the support: :data:`~engine.cdi.solver.SUPPORT_RECIPE`
(flat real start) when one is given, :data:`~engine.cdi.solver.DEFAULT_RECIPE` otherwise.
Publishes ``llk`` and ``llk_free`` of the best start (extra: per-start values, support fraction) and
an amplitude/phase preview. With ``"solver": "dip"`` (and the options of
:func:`engine.cdi.dip_prior.cdi_solver` under ``"dip"``) a Deep Image Prior network is fitted instead,
with ES-WMV; it publishes ``loss`` and ``es_variance`` and keeps the object at t*. Writes
``object.npz`` (keys ``object``, ``support``, ``objects``: the ranked starts used for the average),
``object.png``, ``object_phase.png``, ``object.cxi`` and ``prtf.json``; returns the summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engine.cdi.prtf import prtf, resolution_at
from engine.cdi.registration import average_objects
from engine.cdi.solver import CDIOptions, CDISolver, CDIState, crop_to_support, default_recipe
from engine.core.colors import complex_to_rgb
from engine.core.errors import InputError

PREVIEW_SIDE = 256
#: starts (best first) registered for the PRTF
PRTF_STARTS = 16


@dataclass
class CDIResult:
    """Everything a reconstruction produced (arrays centred; the object cropped to its support)."""

    object: np.ndarray
    support: np.ndarray
    top_objects: np.ndarray
    llk: list[float]
    llk_free: list[float] | None
    ranking: list[int]
    prtf_q: list[float]
    prtf: list[float]
    summary: dict = field(default_factory=dict)


def amplitude_image(obj: np.ndarray) -> np.ndarray:
    """|obj| scaled to [0, 1] (3D: middle slice)."""
    a = np.abs(np.asarray(obj))
    while a.ndim > 2:
        a = a[a.shape[0] // 2]
    return (a / max(float(a.max()), 1e-30)).astype(np.float32)


def phase_image(obj: np.ndarray) -> np.ndarray:
    """Phase in [0, 1] where the amplitude is above 5 % of its max, 0 elsewhere (3D: middle slice)."""
    a = np.asarray(obj)
    while a.ndim > 2:
        a = a[a.shape[0] // 2]
    ph = (np.angle(a) + np.pi) / (2 * np.pi)
    return np.where(np.abs(a) > 0.05 * np.abs(a).max(), ph, 0).astype(np.float32)


def preview(solver: CDISolver, start: int) -> np.ndarray:
    """Composite of one start, cropped to its support."""
    x = solver.x[start].detach().cpu().numpy()
    sup = solver.support[start].detach().cpu().numpy()
    obj, _ = crop_to_support(np.fft.fftshift(x), np.fft.fftshift(sup), margin=4)
    return complex_to_rgb(obj, max_side=PREVIEW_SIDE)


def best_index(state: CDIState) -> int:
    vals = state.llk_free if state.llk_free is not None else state.llk
    return int(np.argmin(vals)) if vals is not None else 0


def analyse(solver: CDISolver, intensity: np.ndarray, mask: np.ndarray | None = None, *, average: int = 0,
            margin: int = 4) -> CDIResult:
    """Rank the starts, register and average the best ones, and compute the PRTF.

    Parameters
    ----------
    average : int
        How many of the best starts to average (0: half of them, at least 1). The PRTF uses the best
        ``max(average, 16)`` starts (all of them when there are fewer).
    """
    llk, free = solver.likelihoods()
    rank = [int(i) for i in np.argsort(free if free is not None else llk, kind="stable")]
    k = max(1, solver.starts // 2) if average <= 0 else min(average, solver.starts)
    m = min(solver.starts, max(k, PRTF_STARTS))  # the PRTF needs several starts, even when few are averaged
    objs = solver.objects()
    sups = solver.supports()
    _, regs_all = average_objects([objs[i] for i in rank[:m]], ref_index=0)
    regs = regs_all[:k]
    avg = np.mean([r.aligned for r in regs], axis=0).astype(np.complex64)
    q, curve = prtf(intensity, [r.aligned for r in regs_all], mask=mask)
    obj, sup = crop_to_support(avg, sups[rank[0]], margin=margin)
    tops = [crop_to_support(r.aligned, sups[rank[0]], margin=margin)[0] for r in regs]
    return CDIResult(object=obj.astype(np.complex64), support=sup,
                     top_objects=np.stack(tops).astype(np.complex64),
                     llk=[float(v) for v in llk], llk_free=None if free is None else [float(v) for v in free],
                     ranking=rank, prtf_q=[float(v) for v in q],
                     prtf=[None if not np.isfinite(v) else float(v) for v in curve],
                     summary={"averaged": k, "registration": [r.info() for r in regs_all],
                              "prtf_starts": m, "prtf_resolution_nyquist": resolution_at(q, curve)})


def reconstruct(intensity: np.ndarray, mask: np.ndarray | None = None, *, recipe: str | None = None,
                starts: int = 1, seed: int = 0, options: dict | None = None, device: str = "cpu",
                average: int = 0, publish_every: int = 10,
                on_state: Callable[[CDISolver, CDIState], None] | None = None,
                cancelled: Callable[[], bool] | None = None, resume_state: dict | None = None,
                on_checkpoint: Callable[[dict], None] | None = None,
                checkpoint_every: int = 100, support: np.ndarray | None = None,
                mask_stats: dict | None = None) -> CDIResult:
    """Run the whole pipeline: solver, ranking, averaging, PRTF; returns a :class:`CDIResult`.

    ``on_state(solver, state)`` is called every ``publish_every`` cycles (with likelihoods) and after
    each support update; ``cancelled()`` is checked every cycle (a cancelled run is still analysed).
    ``on_checkpoint(solver.state_dict())`` is called every ``checkpoint_every`` cycles and on a stop;
    ``resume_state`` continues from such a state. ``support`` (centred, nonzero = inside) replaces the
    support from the autocorrelation. Options after ``mask`` are keyword-only.

    Without ``recipe`` the default depends on whether a support is given (see
    :func:`~engine.cdi.solver.default_recipe`); the summary says which (``recipe_default``). The
    summary also holds ``support_source`` ("user" or "autocorrelation"), ``support_history`` (support
    size in pixels of the chosen start after each update, first = initial), ``llk_per_pixel`` (final
    LLK of the chosen start per observed pixel), ``mask`` (``mask_stats``, when given, e.g. from
    :func:`engine.cdi.masks.unmeasured_mask`) and ``warnings`` (plain sentences, from
    :func:`engine.cdi.diagnostics.result_warnings`, which also reads ``beamstop``: how much of the centre
    the mask hides, from :func:`~engine.cdi.diagnostics.beamstop_info`).
    """
    t0 = time.time()
    recipe_default = not recipe
    recipe = recipe or default_recipe(support is not None)
    opts = CDIOptions.from_dict(options)
    if support is not None:
        support = np.asarray(support) != 0
        if support.shape != np.shape(intensity):
            raise InputError(f"the support has shape {support.shape}; the pattern has {np.shape(intensity)}")
    solver = CDISolver(intensity, mask=mask, recipe=recipe, starts=starts, seed=seed, options=opts,
                       device=device, support=support)
    if resume_state is not None:
        solver.load_state_dict(resume_state)
    stopped = False
    llk_every = max(1, int(publish_every))
    # a loop over step() rather than run(callback): a stop leaves the loop and the run is still analysed
    while not solver.done:
        state = solver.step(llk_every=llk_every)
        if on_state is not None and (state.llk is not None or state.op == "Sup"):
            on_state(solver, state)
        if cancelled is not None and cancelled():
            stopped = True
            break
        if on_checkpoint is not None and state.op != "Sup" and state.cycle % checkpoint_every == 0 \
                and state.cycle < state.cycles:
            on_checkpoint(solver.state_dict())
    if stopped and on_checkpoint is not None:
        on_checkpoint(solver.state_dict())
    res = analyse(solver, intensity, mask, average=average)
    best = res.ranking[0]
    history = [int(h[best]) for h in solver.support_history]
    res.summary.update({
        "recipe": recipe, "recipe_steps": str(solver.recipe), "cycles_done": solver.cycle,
        "cycles": solver.recipe.cycles, "starts": solver.starts, "seed": seed, "options": opts.to_dict(),
        "llk": res.llk, "llk_free": res.llk_free, "ranking": res.ranking, "chosen_start": res.ranking[0],
        "support_fraction": [float(v) for v in solver.support_fraction()], "shape": list(solver.shape),
        "object_shape": list(res.object.shape), "device": str(solver.device), "stopped": stopped,
        "support_guard_hits": solver.guard_hits, "support_source": "user" if support is not None
        else "autocorrelation", "support_history": history, "llk_per_pixel": float(res.llk[best]),
        "recipe_default": recipe_default, "init": solver.init,
        "photons": float(np.sum(np.where(np.asarray(mask, bool), 0, intensity) if mask is not None
                                else intensity)),
    })
    if mask_stats is not None:
        res.summary["mask"] = dict(mask_stats)
    from engine.cdi.diagnostics import beamstop_info, result_warnings

    unmeasured = np.zeros(np.shape(intensity), bool) if mask is None else np.asarray(mask, bool)
    # how much of the centre the mask hides: result_warnings says so when the support came from the
    # autocorrelation (with a user support the centre does not set the support)
    res.summary["beamstop"] = beamstop_info(intensity, unmeasured)
    res.summary["warnings"] = result_warnings(res.summary)
    res.summary["wall_seconds"] = round(time.time() - t0, 3)
    return res


def run(ctx) -> dict:
    """Workflow entry point (see the module docstring)."""
    p = ctx.run.spec.get("params", {})
    intensity = ctx.run.load_array("intensity")
    mask = ctx.run.load_array("mask") if ctx.run.has_array("mask") else None
    support = ctx.run.load_array("support") if ctx.run.has_array("support") else None
    if mask is not None:
        mask = np.asarray(mask) != 0
    if intensity.ndim not in (2, 3):
        raise InputError(f"the pattern is {intensity.ndim}D; expected 2D or 3D")
    from engine.cdi.masks import unmeasured_mask

    mask, mask_stats = unmeasured_mask(intensity, zeros=str(p.get("mask_zeros", "auto")), mask=mask)
    every = int(p.get("publish_every", 10))
    snap_every = max(every, 50)

    def on_state(solver: CDISolver, st: CDIState) -> None:
        if st.llk is None:
            return
        b = best_index(st)
        metrics = {"llk": float(st.llk[b])}
        if st.llk_free is not None:
            metrics["llk_free"] = float(st.llk_free[b])
        img = preview(solver, b)
        frac = None if st.support_fraction is None else float(st.support_fraction[b])
        ctx.publish(st.cycle, metrics, preview=img, cycles=st.cycles, op=st.op, best_start=b,
                    llk_starts=[float(v) for v in st.llk],
                    llk_free_starts=None if st.llk_free is None else [float(v) for v in st.llk_free],
                    support_fraction=frac)
        if st.cycle % snap_every == 0:
            ctx.run.save_snapshot(st.cycle, img)

    resume_state = ctx.run.load_checkpoint() if ctx.resume else None
    if p.get("solver", "classic") == "dip":
        res = _run_dip(ctx, p, intensity, mask, support, mask_stats, resume_state)
        write_outputs(ctx.run.path, res)
        return res.summary
    if p.get("solver", "classic") != "classic":
        raise InputError(f"unknown solver {p.get('solver')!r}; expected classic or dip")
    res = reconstruct(intensity, mask, recipe=p.get("recipe"), starts=int(p.get("starts", 1)),
                      seed=int(p.get("seed", 0)), options=p.get("options"), device=str(ctx.device),
                      average=int(p.get("average", 0)), publish_every=every, on_state=on_state,
                      cancelled=ctx.cancelled, resume_state=resume_state,
                      on_checkpoint=ctx.run.save_checkpoint,
                      checkpoint_every=int(p.get("checkpoint_every", 100)), support=support,
                      mask_stats=mask_stats)
    write_outputs(ctx.run.path, res)
    return res.summary


def _run_dip(ctx, p: dict, intensity: np.ndarray, mask: np.ndarray, support: np.ndarray | None,  # noqa: ANN001
             mask_stats: dict, resume_state: dict | None) -> CDIResult:
    """The DIP prior (``params["solver"] == "dip"``, options in ``params["dip"]``), published live.

    Metrics: ``loss`` and ``es_variance`` (once the window is full); extras: ``cycles`` (the budget),
    ``es_iteration`` (t*), ``patience_left``, ``support_fraction``; preview: the current object.
    """
    from engine.cdi.dip_prior import reconstruct_cdi

    if intensity.ndim != 2:
        raise InputError(f"the DIP prior takes 2-D patterns; this one is {intensity.ndim}D")
    every = int(p.get("publish_every", 10))
    snap_every = max(every, 50)
    opts = dict(p.get("dip") or {})
    thr = (p.get("options") or {}).get("autocorr_threshold", 0.1)

    def on_state(solver, st: dict) -> None:  # noqa: ANN001
        metrics = {"loss": st["loss"]}
        if st["es_variance"] is not None:
            metrics["es_variance"] = float(st["es_variance"])
        obj = np.asarray(st["object"].detach().cpu().numpy())
        crop, _ = crop_to_support(obj, solver.support.cpu().numpy(), margin=4)
        img = complex_to_rgb(crop, max_side=PREVIEW_SIDE)
        ctx.publish(st["iteration"], metrics, preview=img, cycles=solver.max_iters, op="DIP",
                    es_iteration=st["es_iteration"], patience_left=st["patience_left"],
                    support_fraction=st["support_pixels"] / float(intensity.size), solver="dip")
        if st["iteration"] % snap_every == 0:
            ctx.run.save_snapshot(st["iteration"], img)

    res = reconstruct_cdi(intensity, mask, support=support, seed=int(p.get("seed", 0)), options=opts,
                          device=str(ctx.device), publish_every=every, on_state=on_state,
                          cancelled=ctx.cancelled, resume_state=resume_state,
                          on_checkpoint=ctx.run.save_checkpoint,
                          checkpoint_every=int(p.get("checkpoint_every", 100)), mask_stats=mask_stats,
                          autocorr_threshold=float(thr))
    return res


def write_outputs(folder, res: CDIResult) -> list[str]:
    """Write object.npz, object.png, object_phase.png, object.cxi and prtf.json into ``folder``."""
    import json
    from pathlib import Path

    from PIL import Image

    from engine.cdi.readers import write_cxi_object

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "object.npz", "wb") as f:
        np.savez_compressed(f, object=res.object, support=res.support.astype(np.uint8),
                            objects=res.top_objects)
    Image.fromarray((amplitude_image(res.object) * 255).astype(np.uint8)).save(folder / "object.png")
    Image.fromarray((phase_image(res.object) * 255).astype(np.uint8)).save(folder / "object_phase.png")
    write_cxi_object(folder / "object.cxi", res.object, res.support, params=res.summary)
    with open(folder / "prtf.json", "w", encoding="utf-8") as f:
        json.dump({"q_nyquist": res.prtf_q, "prtf": res.prtf}, f)
    return ["object.npz", "object.png", "object_phase.png", "object.cxi", "prtf.json"]
