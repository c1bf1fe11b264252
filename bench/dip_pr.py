"""The DIP prior for phase retrieval against the classic solvers, where a prior should matter.

(a) CDI: 64x64 patterns simulated from scikit-image's ``camera`` (amplitude, smooth phase, oversampling
2.5, Poisson counts) at low photon counts, with a small beamstop; the support is not given. The DIP prior
(:func:`engine.cdi.dip_prior.reconstruct_cdi`, ES-WMV) against the default recipe (HIO/ER/RAAR +
shrink-wrap, 4 starts, the CLI's default). Similarity ``|<a,b>|/(|a||b|)`` to the truth after
registration (shift, twin, global phase); success = similarity >= 0.9; wall time.

(b) Generalized PR: the grey ``camera`` image downscaled to 16x16 (real, non-negative, n = 256),
complex Gaussian measurements at low m/n, noiseless. The DIP prior (a real non-negative object) against
reshaped WF and WF, both from the optimal spectral initialiser (Mondelli-Montanari). Relative error modulo
the global phase; success = error < 1e-2; wall time.

Usage::

    nice -n 10 python bench/dip_pr.py --out bench/results/dip_pr_cpu.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from engine.cdi.dip_prior import gpr_solver, reconstruct_cdi
from engine.cdi.registration import register
from engine.cdi.simulate import simulate_pattern
from engine.cdi.workflow import reconstruct
from engine.core.machine import machine_info
from engine.dip.samples import load_sample
from engine.gpr.algorithms import GPRSolver, relative_error
from engine.gpr.workflow import build_problem

SIM_OK = 0.9
GPR_TOL = 1e-2


def _load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def cdi_cases(photons: list[float], seeds: list[int], *, size: int, beamstop: float, dip_iters: int,
              starts: int, shrink_every: int = 0) -> list[dict]:
    img = load_sample("camera", None)
    rows = []
    for ph in photons:
        for seed in seeds:
            sim = simulate_pattern(img, shape=(size, size), oversampling=2.5, photons=ph, beamstop=beamstop,
                                   seed=seed)
            for solver in ("classic", "dip"):
                t0 = time.perf_counter()
                if solver == "classic":
                    res = reconstruct(sim.intensity, sim.mask, starts=starts, seed=seed, publish_every=50)
                    extra = {"recipe": res.summary["recipe"], "starts": starts}
                else:
                    opts = {"max_iters": dip_iters, "shrink_every": shrink_every}
                    res = reconstruct_cdi(sim.intensity, sim.mask, seed=seed, options=opts, publish_every=50)
                    extra = {"iterations": res.summary["iterations"], "es_iteration": res.summary["es_iteration"],
                             "stop": res.summary["stop"]}
                wall = time.perf_counter() - t0
                s = float(register(sim.obj, res.object).similarity)
                row = {"part": "cdi", "photons": ph, "photons_counted": float(sim.intensity.sum()),
                       "seed": seed, "solver": solver, "similarity": round(s, 4), "success": s >= SIM_OK,
                       "wall_seconds": round(wall, 2), "load": _load(), **extra}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def gpr_cases(ratios: list[float], seeds: list[int], *, size: int, dip_iters: int) -> list[dict]:
    rows = []
    for ratio in ratios:
        for seed in seeds:
            params = {"signal": "camera", "size": size, "model": "complex-gaussian", "ratio": ratio, "seed": seed}
            op, x, y, shape, _ = build_problem(params, "cpu")
            for alg in ("dip", "rwf", "wf"):
                t0 = time.perf_counter()
                if alg == "dip":
                    s = gpr_solver(op, y, shape, seed=seed + 1, max_iters=dip_iters)
                    s.run()
                    z = s.output("best").reshape(1, -1).to(x.dtype)
                    extra = {"iterations": s.iteration, "es_iteration": s.es_iteration,
                             "stop": s.stop_reason()}
                else:
                    g = GPRSolver(op, y, algorithm=alg, init="optimal", x_true=x, seed=seed + 1)
                    z = g.run().z
                    extra = {"iterations": g.iteration, "init": "optimal"}
                wall = time.perf_counter() - t0
                err = float(relative_error(x, z)[0])
                row = {"part": "gpr", "ratio": ratio, "n": op.n, "m": op.m, "seed": seed, "solver": alg,
                       "error": float(f"{err:.4g}"), "success": err < GPR_TOL, "wall_seconds": round(wall, 2),
                       "load": _load(), **extra}
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def table(rows: list[dict], key: str, metric: str) -> list[dict]:
    """Per (setting, solver): median metric, success rate, median time."""
    out = []
    for v in sorted({r[key] for r in rows}):
        for solver in dict.fromkeys(r["solver"] for r in rows):
            sel = [r for r in rows if r[key] == v and r["solver"] == solver]
            if sel:
                out.append({key: v, "solver": solver, f"median_{metric}": float(np.median([r[metric] for r in sel])),
                            "success_rate": sum(r["success"] for r in sel) / len(sel),
                            "median_seconds": float(np.median([r["wall_seconds"] for r in sel])),
                            "trials": len(sel)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--photons", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    ap.add_argument("--ratios", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cdi-size", type=int, default=64)
    ap.add_argument("--beamstop", type=float, default=1.0)
    ap.add_argument("--cdi-dip-iters", type=int, default=300)
    ap.add_argument("--cdi-dip-shrink-every", type=int, default=0,
                    help="shrink-wrap the DIP support every N iterations (0: keep the autocorrelation support)")
    ap.add_argument("--gpr-size", type=int, default=16)
    ap.add_argument("--gpr-dip-iters", type=int, default=600)
    ap.add_argument("--starts", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="one seed, one setting each, short budgets")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.quick:
        a.photons, a.ratios, a.seeds, a.cdi_dip_iters, a.gpr_dip_iters = a.photons[:1], a.ratios[:1], 1, 50, 50
    seeds = list(range(a.seeds))
    before = machine_info()
    t0 = time.time()
    cdi = cdi_cases(a.photons, seeds, size=a.cdi_size, beamstop=a.beamstop, dip_iters=a.cdi_dip_iters,
                    starts=a.starts, shrink_every=a.cdi_dip_shrink_every)
    gpr = gpr_cases(a.ratios, seeds, size=a.gpr_size, dip_iters=a.gpr_dip_iters)
    out = {"benchmark": "dip_pr", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": before, "loadavg_after": _load(), "total_seconds": round(time.time() - t0, 1),
           "threads": a.threads, "device": "cpu", "nice": os.nice(0),
           "cdi": {"size": a.cdi_size, "oversampling": 2.5, "beamstop_radius_px": a.beamstop,
                   "object": "camera (amplitude) with a smooth phase", "dip_max_iters": a.cdi_dip_iters,
                   "dip_shrink_every": a.cdi_dip_shrink_every, "classic": f"default recipe, {a.starts} starts",
                   "success": f"similarity >= {SIM_OK}", "table": table(cdi, "photons", "similarity"),
                   "rows": cdi},
           "gpr": {"image": f"camera, grey, {a.gpr_size}x{a.gpr_size}", "model": "complex-gaussian",
                   "noise": 0.0, "dip_max_iters": a.gpr_dip_iters, "init": "optimal (rwf, wf)",
                   "success": f"error < {GPR_TOL:g}", "table": table(gpr, "ratio", "error"), "rows": gpr}}
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
