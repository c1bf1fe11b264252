"""Many inputs, one Ray task each: a run folder per input and ``batch.json`` beside them.

Layout of a batch folder ``DIR``::

    batch.json                        engine, Ray version, settings, one item per input
    <stamp>-<index>-<stem>-<hash>/    one run folder per input (engine.runs.store format)

The run folder names match :class:`engine.runs.store.RunStore`'s ids, so ``RunStore(DIR)`` (and the
Runs page with ``INVERSE_STUDIO_RUNS=DIR``) lists them. ``batch.json`` is replaced atomically after each
item, so a crash leaves the last consistent picture; a rerun skips the items marked ``done``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from engine.core.errors import InputError

KINDS = ("restore", "pr", "xray")
#: the job kind (engine.jobs.registry WORKFLOWS) of each batch kind
WORKFLOW_KIND = {"restore": "restore", "pr": "cdi", "xray": "xray"}
INSTALL_HINT = "Ray is not installed; install it with: pip install 'inverse-studio[distributed]'"
BATCH_FILE = "batch.json"
FORMAT = 1


def ray_module() -> Any:
    """The ``ray`` module, or :class:`InputError` with the install line."""
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    return ray


def run_name(stamp: str, index: int, path: str | Path) -> str:
    """A run folder name from the batch's stamp, the index and a sanitised basename (a RunStore id)."""
    base = os.path.basename(str(path))
    stem = re.sub(r"[^a-z0-9]+", "-", Path(base).stem.lower()).strip("-")[:30] or "input"
    digest = hashlib.sha1(f"{index}:{base}".encode()).hexdigest()[:6]
    return f"{stamp}-{index:04d}-{stem}-{digest}"


# ------------------------------------------------------------------------------ inside a task
def _prepare_restore(path: str, o: dict) -> tuple[dict, dict[str, np.ndarray]]:
    from engine.core.imageio import read_image
    from engine.dip.inputs import prepare_inputs

    params = {"task": o.get("task", "denoise"), "preset": o.get("preset"), "loss": o.get("loss", "mse"),
              "stopping": o.get("stopping", "wmv"), "run_to_budget": False, "max_iters": o.get("max_iters"),
              "seed": int(o.get("seed", 0)), "factor": o.get("factor", 4), "kernel": "gaussian",
              "corrupt": o.get("corrupt"), "severity": o.get("severity", 3), "simulate": bool(o.get("simulate")),
              "snapshot_every": o.get("snapshot_every", 100)}
    arrays, params = prepare_inputs(read_image(path), params)
    return params, arrays


def _prepare_pr(path: str, o: dict) -> tuple[dict, dict[str, np.ndarray]]:
    from engine.cdi.readers import load_diffraction
    from engine.cdi.recipe import parse_recipe

    if o.get("recipe"):
        parse_recipe(o["recipe"])
    data = load_diffraction(path, mask_zeros=o.get("mask_zeros", "auto"), saturation=o.get("saturation"))
    params = {"recipe": o.get("recipe"), "starts": int(o.get("starts", 4)), "seed": int(o.get("seed", 0)),
              "average": int(o.get("average", 0)), "mask_zeros": o.get("mask_zeros", "auto"),
              "options": {"positivity": True} if o.get("positivity") else None}
    return params, {"intensity": data.intensity, "mask": data.mask.astype(np.uint8)}


def _prepare_xray(path: str, o: dict) -> tuple[dict, dict[str, np.ndarray]]:
    from engine.xray.display import read_xray
    from engine.xray.workflow import job_header, model_input

    if o.get("model", "default") != "default":
        raise InputError("a batch runs the default X-ray model only")
    xr = read_xray(Path(path), os.path.basename(path))
    window = o.get("window")
    ext = Path(path).suffix.lower()[:6]
    entry = {"array": "img0", "name": f"image 1{f' ({ext})' if ext else ''}",
             "header": job_header(xr.header, forbid=xr.phi_values)}
    params = {"model": "default", "images": [entry], "preset": "Default (header)", "invert": False,
              "window": None if window is None else list(window)}
    return params, {"img0": model_input(xr, window=None if window is None else tuple(window))}


PREPARE: dict[str, Callable[[str, dict], tuple[dict, dict[str, np.ndarray]]]] = {
    "restore": _prepare_restore, "pr": _prepare_pr, "xray": _prepare_xray}


def key_numbers(kind: str, summary: dict) -> dict:
    """The few numbers batch.json keeps per item."""
    if kind == "restore":
        keys = ("es_iteration", "stopped_iteration", "es_psnr", "peak_psnr", "es_psnr_vs_input", "stop")
    elif kind == "pr":
        keys = ("llk_per_pixel", "chosen_start", "cycles_done", "prtf_resolution_nyquist")
    else:
        res = (summary.get("results") or [{}])[0]
        return {"label": res.get("label"), "probability": res.get("probability"),
                "threshold": summary.get("threshold")}
    return {k: summary.get(k) for k in keys if summary.get(k) is not None}


def run_item(kind: str, path: str, run_dir: str, options: dict, device: str = "cpu") -> dict:
    """Run one input into ``run_dir``; never raises for a bad input (the item says ``failed``).

    Returns ``{"state", "message", "numbers", "task_seconds"}``.
    """
    import torch

    from engine.jobs import run_inline
    from engine.jobs.manager import torch_threads
    from engine.runs.store import RunStore

    t0 = time.perf_counter()
    torch.set_num_threads(torch_threads())
    name = os.path.basename(path)
    try:
        params, arrays = PREPARE[kind](path, options)
        params["device"] = device
        run = RunStore.create_at(run_dir, {"kind": WORKFLOW_KIND[kind], "params": params, "input": name,
                                           "batch": True})
        for k, v in arrays.items():
            run.save_array(k, np.asarray(v))
        state, summary = run_inline(run, device=device)
        message = "" if state == "done" else (run.status().get("message") or state)
    except InputError as e:
        state, summary, message = "failed", {}, str(e).splitlines()[0] if str(e) else "bad input"
    except (OSError, ValueError) as e:  # unreadable file: one item, not the batch
        state, summary, message = "failed", {}, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    if state != "done" and (Path(run_dir) / "spec.json").exists():
        from engine.runs.store import Run

        Run(Path(run_dir)).set_status(state="failed", message=message)
    return {"state": state if state == "done" else "failed", "message": message,
            "numbers": key_numbers(kind, summary) if state == "done" else {},
            "task_seconds": round(time.perf_counter() - t0, 3)}


# ------------------------------------------------------------------------------------- driver
def _load(out: Path) -> dict | None:
    try:
        with open(out / BATCH_FILE, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        raise InputError(f"{out / BATCH_FILE} is not valid JSON; move it away or choose another --out") from None


def _save(out: Path, doc: dict) -> None:
    from engine.runs.store import atomic_write_text

    doc["updated"] = time.time()
    atomic_write_text(out / BATCH_FILE, json.dumps(doc, indent=1))


def run_batch(kind: str, inputs: list[str], out: str | Path, *, options: dict | None = None,
              address: str | None = None, cpus_per_task: float = 1.0, gpus_per_task: float = 0.0,
              num_cpus: int | None = None, progress: bool = True) -> dict:
    """Run every input as a Ray task; returns the final ``batch.json`` contents.

    Parameters
    ----------
    kind : "restore" | "pr" | "xray"
    inputs : input file paths, one run each (duplicates are kept: each index is its own item)
    out : the batch folder
    options : the job's options (see the ``PREPARE`` functions)
    address : a Ray cluster; default ``$RAY_ADDRESS``, else a local Ray started here (and shut down)
    cpus_per_task, gpus_per_task : Ray resources of each task
    num_cpus : CPUs of the local Ray (default: all of this machine's)
    """
    if kind not in KINDS:
        raise InputError(f"unknown batch kind {kind!r}; expected one of {', '.join(KINDS)}")
    if not inputs:
        raise InputError("no inputs given")
    if cpus_per_task <= 0 or gpus_per_task < 0:
        raise InputError("--cpus-per-task must be > 0 and --gpus-per-task >= 0")
    ray = ray_module()
    options = dict(options or {})
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out.name!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    doc = _load(out)
    names = [os.path.basename(p) for p in inputs]
    if doc is not None:
        if doc.get("kind") != kind:
            raise InputError(f"{BATCH_FILE} in --out is a {doc.get('kind')!r} batch, not {kind!r}; "
                             f"choose another --out")
        old = doc.get("items", [])
        if [it.get("input") for it in old] != names:
            raise InputError(f"{BATCH_FILE} in --out lists other inputs; rerun with the same inputs "
                             f"or choose another --out")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        doc = {"format": FORMAT, "engine": "ray", "kind": kind, "created": time.time(),
               "items": [{"index": i, "input": n, "run": run_name(stamp, i, n), "state": "pending",
                          "message": "", "numbers": {}} for i, n in enumerate(names)]}
    device = "cuda" if gpus_per_task > 0 else "cpu"
    doc.update({"ray_version": ray.__version__, "settings": {
        "options": options, "cpus_per_task": cpus_per_task, "gpus_per_task": gpus_per_task,
        "address": "local" if not (address or os.environ.get("RAY_ADDRESS")) else "cluster",
        "device": device}})
    todo = [it for it in doc["items"] if it.get("state") != "done"]
    for it in todo:
        it.update(state="pending", message="", numbers={})
    _save(out, doc)

    started_here = False
    t0 = time.perf_counter()
    if not ray.is_initialized():
        # keep Ray's current behaviour without its FutureWarning on every start
        os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
        address = address or os.environ.get("RAY_ADDRESS") or None
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR",
                              "configure_logging": False}
        if address:
            ray.init(address=address, **kw)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **kw)
        started_here = True
    bar = None
    try:
        if progress and todo:
            import sys

            from tqdm import tqdm

            bar = tqdm(total=len(doc["items"]), initial=len(doc["items"]) - len(todo), unit="input",
                       file=sys.stderr, dynamic_ncols=True)
        remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)(run_item)
        pending = {}
        for it in todo:
            run_dir = out / it["run"]
            if run_dir.exists():  # a failed or interrupted earlier try: start it afresh
                import shutil

                shutil.rmtree(run_dir)
            ref = remote.remote(kind, str(Path(inputs[it["index"]]).resolve()), str(run_dir.resolve()),
                                options, device)
            pending[ref] = it
        failed = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                it = pending.pop(ref)
                try:
                    res = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - a task that died (a worker crash, out of memory)
                    res = {"state": "failed", "message": f"the task did not finish: {type(e).__name__}",
                           "numbers": {}, "task_seconds": None}
                it.update(res)
                failed += it["state"] != "done"
                _save(out, doc)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(failed=failed, refresh=False)
    finally:
        if bar is not None:
            bar.close()
        if started_here:
            ray.shutdown()
    doc["wall_seconds"] = round(time.perf_counter() - t0, 3)
    doc["done"] = sum(it["state"] == "done" for it in doc["items"])
    doc["failed"] = sum(it["state"] == "failed" for it in doc["items"])
    _save(out, doc)
    return doc
