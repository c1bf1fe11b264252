"""Throughput of ``batch restore`` with 1 vs 2 local Ray workers, and Ray's overhead per task.

Twenty small noisy images (grey and RGB, 32-48 px, a smooth pattern plus Gaussian noise) are written to
a temporary folder and denoised with a short fixed budget (no early stop, so every task does the same
work). Three runs of the same tasks:

* ``in_process``: :func:`engine.batch.runner.run_item` one after the other in this process, without Ray
  (after one warm-up item, so it is compute only);
* ``ray_1_worker`` and ``ray_2_workers``: :func:`engine.batch.runner.run_batch` on a local Ray started
  with ``num_cpus`` 1 or 2 and one CPU per task (what ``batch restore --num-cpus N`` does).

The overhead per task is reported two ways: the 1-worker Ray wall time minus the in-process wall time,
over the number of tasks (with and without Ray's own start and shutdown, timed separately), and the
1-worker wall time minus the sum of the tasks' own ``task_seconds``, over the number of tasks. The machine
is shared, so ``uptime`` is recorded before and after each phase; the numbers move with the load.

Usage::

    python bench/batch_ray.py --out bench/results/batch_ray_cpu.json [--n 20] [--iters 60]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine.batch.runner import run_batch, run_item
from engine.core.machine import machine_info
from engine.jobs.manager import torch_threads


def _uptime() -> str:
    """``uptime``'s line (load averages over 1, 5, 15 minutes)."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def make_inputs(folder: Path, *, n: int, seed: int = 0) -> list[str]:
    """``n`` noisy PNGs in ``folder``: even indices grey, odd RGB, sides cycling through 32-48 px."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        side = (32, 36, 40, 44, 48)[i % 5]
        yy, xx = np.mgrid[0:side, 0:side] / side
        base = 0.5 + 0.3 * np.sin(2 * np.pi * (xx * (1 + i % 3) + yy)) * ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.16)
        img = base[..., None] * np.array([1.0, 0.8, 0.6]) if i % 2 else base
        img = np.clip(img + rng.normal(0, 0.1, img.shape), 0, 1)
        p = folder / f"noisy-{i:02d}.png"
        Image.fromarray((img * 255).round().astype(np.uint8)).save(p)
        paths.append(str(p))
    return paths


def in_process(paths: list[str], folder: Path, *, options: dict) -> dict:
    """The same tasks in this process without Ray, one after the other (after one warm-up item)."""
    run_item("restore", paths[0], str(folder / "warmup"), options)  # imports, first allocations
    seconds = []
    t0 = time.perf_counter()
    for i, p in enumerate(paths):
        res = run_item("restore", p, str(folder / f"run-{i:02d}"), options)
        if res["state"] != "done":
            raise RuntimeError(f"in-process item {i} failed: {res['message']}")
        seconds.append(res["task_seconds"])
    wall = time.perf_counter() - t0
    return {"wall_seconds": round(wall, 3), "sum_task_seconds": round(sum(seconds), 3),
            "median_task_seconds": round(float(np.median(seconds)), 3),
            "tasks_per_minute": round(len(paths) / wall * 60, 1)}


def ray_start_seconds(*, num_cpus: int) -> float:
    """Wall time of a bare local ``ray.init`` + ``ray.shutdown`` (the fixed cost of one batch)."""
    import ray

    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")  # as run_batch does: no FutureWarning
    kw = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR", "configure_logging": False}
    t0 = time.perf_counter()
    ray.init(num_cpus=num_cpus, **kw)
    ray.shutdown()
    return round(time.perf_counter() - t0, 3)


def through_ray(paths: list[str], folder: Path, *, options: dict, workers: int) -> dict:
    """``run_batch`` on a local Ray with ``workers`` CPUs and one CPU per task."""
    doc = run_batch("restore", paths, folder, options=options, cpus_per_task=1.0, num_cpus=workers, progress=False)
    if doc["failed"]:
        bad = [it["message"] for it in doc["items"] if it["state"] != "done"]
        raise RuntimeError(f"{doc['failed']} Ray items failed: {bad[:3]}")
    seconds = [it["task_seconds"] for it in doc["items"]]
    wall = doc["wall_seconds"]
    return {"workers": workers, "wall_seconds": wall, "sum_task_seconds": round(sum(seconds), 3),
            "median_task_seconds": round(float(np.median(seconds)), 3),
            "max_task_seconds": round(max(seconds), 3),
            "tasks_per_minute": round(len(paths) / wall * 60, 1), "ray_version": doc["ray_version"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20, help="number of inputs (tasks)")
    ap.add_argument("--iters", type=int, default=60, help="DIP iterations per task (fixed, no early stop)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    options = {"task": "denoise", "simulate": False, "max_iters": a.iters, "stopping": "none", "seed": 0}
    load: dict[str, str] = {"before": _uptime()}
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="batch-ray-bench-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "inputs").mkdir()
        paths = make_inputs(tmp_path / "inputs", n=a.n)
        res["in_process"] = in_process(paths, tmp_path / "inproc", options=options)
        load["after_in_process"] = _uptime()
        res["ray_start_shutdown_seconds"] = ray_start_seconds(num_cpus=1)
        res["ray_1_worker"] = through_ray(paths, tmp_path / "ray1", options=options, workers=1)
        load["after_ray_1_worker"] = _uptime()
        res["ray_2_workers"] = through_ray(paths, tmp_path / "ray2", options=options, workers=2)
    load["after"] = _uptime()
    n, one, two, inp = a.n, res["ray_1_worker"], res["ray_2_workers"], res["in_process"]
    res["speedup_2_vs_1_workers"] = round(one["wall_seconds"] / two["wall_seconds"], 2)
    res["overhead_per_task_seconds"] = {
        # what a task costs through Ray beyond the same work done in-process, Ray's start included
        "ray1_wall_minus_in_process_wall": round((one["wall_seconds"] - inp["wall_seconds"]) / n, 3),
        # the same without the fixed start/shutdown of the local Ray (timed on its own)
        "ray1_wall_minus_start_minus_in_process_wall": round(
            (one["wall_seconds"] - res["ray_start_shutdown_seconds"] - inp["wall_seconds"]) / n, 3),
        # driver-side cost around the tasks' own time (scheduling, result transfer, batch.json writes, start)
        "ray1_wall_minus_sum_task_seconds": round((one["wall_seconds"] - one["sum_task_seconds"]) / n, 3),
    }
    out = {
        "bench": "batch restore through Ray: 1 vs 2 local workers",
        "inputs": {"n": n, "sides_px": [32, 36, 40, 44, 48], "channels": "even grey, odd RGB",
                   "noise_sigma": 0.1},
        "options": options,
        "results": res,
        "machine": {**machine_info(), "torch_threads_per_task": torch_threads(),
                    "torch_threads_env": os.environ.get("INVERSE_STUDIO_THREADS"),
                    "python": platform.python_version(), "shared": True},
        "uptime": load,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
