"""Time one DIP step of a preset's network under the platform's variants, in one process.

Variants (each timed on the same net, code and target, interleaved in rounds so that a load
change on a shared machine hits all of them alike): ``eager`` (fp32, NCHW, what the solver
does), ``channels_last``, ``compile`` (``torch.compile`` with inductor's CPU code generation,
forward and backward), ``compile+channels_last``; each at the thread counts given. The result
is the median ms per step (forward + MSE + backward + Adam), the ratio to eager at the same
thread count, the compile time, and the load average before and after.

Usage::

    python bench/step_speed.py --preset cpu --size 256 --threads 1 2 \
        --out bench/results/step_speed_cpu.json
    python bench/step_speed.py --size 256 --threads 1 --solver-iters 200 \
        --out bench/results/step_speed_solver_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from engine.dip.presets import get_preset
from engine.dip.solver import build_net

VARIANTS = ("eager", "channels_last", "compile", "compile+channels_last")


def make_step(preset: str, size: int, variant: str, seed: int = 0):
    """A closure doing one Adam step of ``preset``'s net on a ``size``x``size`` RGB target."""
    p = get_preset(preset)
    torch.manual_seed(seed)
    net = build_net(p, 3)
    mult = getattr(net, "multiple", 1)
    s = -(-size // mult) * mult
    z = torch.rand(1, p.z_channels, s, s) * p.z_scale
    y = torch.rand(1, 3, s, s)
    if "channels_last" in variant:
        net = net.to(memory_format=torch.channels_last)
        z = z.contiguous(memory_format=torch.channels_last)
        y = y.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=p.lr)
    fwd = torch.compile(net) if variant.startswith("compile") else net

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(fwd(z), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def solver_ab(preset: str, size: int, iters: int, chunk: int = 10, seed: int = 0) -> dict:
    """The solver itself (EMA, ES-WMV, PSNR every step) in NCHW and in channels-last, interleaved.

    Two ``DIPSolver`` on the same noisy sample; one is switched back to NCHW after construction
    (the solver picks channels-last on the CPU). They step in turns of ``chunk`` iterations, so
    a load change hits both; returns ms per step of each and how far their PSNR curves differ.
    """
    import numpy as np

    from engine.core.metrics import psnr
    from engine.dip.operators import add_noise
    from engine.dip.samples import load_sample
    from engine.dip.solver import DIPSolver

    clean = load_sample("astronaut", size)
    noisy = add_noise(clean, 25 / 255, seed=seed)
    ref = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))[None]  # the solver's NCHW layout
    solvers = {v: DIPSolver(noisy, preset=preset, task="denoise", seed=seed, stopping="wmv", max_iters=iters)
               for v in ("eager", "channels_last")}
    nchw = solvers["eager"]
    nchw._memory_format = torch.contiguous_format
    nchw.net.to(memory_format=torch.contiguous_format)
    nchw.z = nchw.z.contiguous()
    times: dict[str, list[float]] = {v: [] for v in solvers}
    curves: dict[str, list[float]] = {v: [] for v in solvers}
    while any(not s.done for s in solvers.values()):
        for v, s in solvers.items():
            for _ in range(chunk):
                if s.done:
                    break
                t0 = time.perf_counter()
                st = s.step()
                times[v].append(time.perf_counter() - t0)
                curves[v].append(psnr(ref, st["output"]))
    n = min(len(c) for c in curves.values())
    diff = np.abs(np.subtract(curves["eager"][:n], curves["channels_last"][:n]))
    med = {v: statistics.median(t) for v, t in times.items()}
    return {"mode": "solver", "preset": preset, "size": size, "threads": torch.get_num_threads(),
            "ms_per_step": {v: round(1000 * m, 1) for v, m in med.items()},
            "speedup_channels_last": round(med["eager"] / med["channels_last"], 3),
            "iterations": {v: s.iteration for v, s in solvers.items()},
            "es_iteration": {v: s.es.best_iteration for v, s in solvers.items()},
            "psnr_at_es": {v: round(psnr(clean, s.output("best")), 3) for v, s in solvers.items()},
            "psnr_curve_max_abs_diff_db": round(float(diff.max()), 4),
            "psnr_curve_mean_abs_diff_db": round(float(diff.mean()), 4)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--solver-iters", type=int, default=0,
                    help="instead: the solver A/B (NCHW vs channels-last) for this many iterations")
    a = ap.parse_args()
    load0 = os.getloadavg()
    if a.solver_iters:
        torch.set_num_threads(a.threads[0])
        row = solver_ab(a.preset, a.size, a.solver_iters)
        row.update(torch=torch.__version__, cpus=os.cpu_count(), loadavg_start=[round(x, 2) for x in load0],
                   loadavg_end=[round(x, 2) for x in os.getloadavg()])
        print(json.dumps(row), flush=True)
        if a.out:
            Path(a.out).write_text(json.dumps(row, indent=1))
        return
    results = []
    for th in a.threads:
        torch.set_num_threads(th)
        steps, compile_s = {}, {}
        for v in a.variants:
            t0 = time.perf_counter()
            steps[v] = make_step(a.preset, a.size, v)
            for _ in range(3):   # warm-up; for compile this includes code generation
                steps[v]()
            compile_s[v] = round(time.perf_counter() - t0, 1)
        times: dict[str, list[float]] = {v: [] for v in a.variants}
        for _ in range(a.rounds):
            for v in a.variants:
                for _ in range(a.steps):
                    t0 = time.perf_counter()
                    steps[v]()
                    times[v].append(time.perf_counter() - t0)
        base = statistics.median(times["eager"]) if "eager" in times else None
        for v in a.variants:
            med = statistics.median(times[v])
            row = {"threads": th, "variant": v, "ms_per_step": round(1000 * med, 1),
                   "speedup_vs_eager": None if base is None else round(base / med, 3),
                   "warmup_s": compile_s[v], "n": len(times[v])}
            print(json.dumps(row), flush=True)
            results.append(row)
    doc = {"preset": a.preset, "size": a.size, "torch": torch.__version__, "machine": platform.machine(),
           "cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in load0],
           "loadavg_end": [round(x, 2) for x in os.getloadavg()],
           "note": "2-core machine shared with other jobs; variants interleaved in rounds", "results": results}
    if a.out:
        Path(a.out).write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
