"""Benchmark the "cpu" DIP preset against the classic recipe's peak PSNR.

Task of the benchmark: a 256x256 RGB image, Gaussian noise sigma = 25/255 (seed 0,
``clip(clean + N(0, sigma))`` as in bench/classic_reference.py), restored with ES-WMV.
For each image it records the wall time of the run up to the ES stop, the PSNR of the
output at t*, the peak PSNR along the run, ms per iteration, the ES overhead (detector
time / step time), the process CPU time (a load-independent measure on a shared machine)
and ``os.getloadavg()`` before and after. The classic recipe's peak comes from
``bench/results/classic_<image>_cpu.jsonl`` when that file exists.

``--config NAME=JSON`` runs variants (preset field overrides) instead of the preset; each
variant goes to the "front" of the results file: time vs dB short of the classic peak.

Usage::

    python bench/cpu_preset.py --images astronaut coffee chelsea --out bench/results/cpu_preset.json
    python bench/cpu_preset.py --images astronaut --config lr3='{"lr": 0.03}' --append-front
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from engine.core.metrics import psnr
from engine.dip.operators import add_noise, to_tensor
from engine.dip.presets import get_preset
from engine.dip.samples import load_sample
from engine.dip.solver import DIPSolver

RESULTS = Path(__file__).parent / "results"
# the figure for the classic recipe on three classic 256^2 images; context only
FRONT_KEYS = ("config", "image", "size", "overrides", "wall_s", "cpu_s", "ms_per_iteration", "cpu_ms_per_iteration",
              "es_iteration", "stopped_iteration", "es_fired_at", "es_psnr", "peak_psnr", "peak_iteration",
              "peak_psnr_raw", "db_short_of_classic_peak", "threads", "loadavg_start")
PUBLISHED_CLASSIC_RANGE = {"peak_psnr_db": [28.7, 32.0], "peak_iterations": [1070, 1650]}


DEV_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "es-wmv-dev"
DEV_IMAGES = ("kodim01", "kodim02", "kodim12")


def load_clean(image: str, size: int) -> np.ndarray:
    """A bundled sample (``load_sample``) or, for an ES-WMV dev image, the centre ``size`` crop of its clean PNG."""
    if image not in DEV_IMAGES:
        return load_sample(image, size)
    from PIL import Image

    a = np.asarray(Image.open(DEV_DATA / f"{image}_clean.png").convert("RGB"), np.float32) / 255.0
    top, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
    return np.ascontiguousarray(a[top:top + size, left:left + size])


def classic_log(image: str, size: int = 256) -> Path:
    """Where bench/classic_reference.py logs the classic recipe on ``image`` at ``size``."""
    return RESULTS / (f"classic_{image}_cpu.jsonl" if size == 256 else f"classic_{image}_{size}_cpu.jsonl")


def classic_peak(image: str, size: int = 256) -> dict | None:
    """Peak PSNR of the classic recipe from its per-iteration log, if it was measured."""
    p = classic_log(image, size)
    if not p.exists():
        return None
    best, best_it, n, meta = -1.0, 0, 0, {}
    with open(p) as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "meta" in row:
                meta = row["meta"]
                continue
            n = max(n, row["it"])
            if row["psnr"] > best:
                best, best_it = row["psnr"], row["it"]
    if n == 0:
        return None
    # complete: logged long enough past the best value that it is the peak, not a point on the rise
    return {"peak_psnr": best, "peak_iteration": best_it, "iterations_logged": n,
            "complete": n >= best_it + 300, "input_psnr": meta.get("input_psnr"), "source": str(p.name)}


def run_one(image: str, preset: str, overrides: dict, seed: int = 0, sigma: float = 25 / 255,
            size: int = 256, max_iters: int | None = None, stopping: str = "wmv",
            run_to_budget: bool = False) -> dict:
    """Run the preset (with ``overrides``) on one image; return the measurements."""
    clean = load_clean(image, size)
    noisy = add_noise(clean, sigma, seed=seed)
    ref = to_tensor(clean)
    p = get_preset(preset, **overrides)
    load0 = os.getloadavg()
    cpu0 = time.process_time()
    s = DIPSolver(noisy, preset=p, task="denoise", seed=seed, stopping=stopping, max_iters=max_iters)
    setup = time.perf_counter()
    curve, best, best_it, best_raw, es_psnr = [], -1.0, 0, -1.0, None
    solver_wall, fired = 0.0, None
    # run_to_budget: keep stepping after the detector fired, to see the whole PSNR curve
    while not s.done or (run_to_budget and s.iteration < s.max_iters):
        t0 = time.perf_counter()
        st = s.step()
        solver_wall += time.perf_counter() - t0
        it = st["iteration"]
        q = psnr(ref, st["output"])
        qr = psnr(ref, st["raw"]) if p.ema > 0 else q
        if q > best:
            best, best_it = q, it
        best_raw = max(best_raw, qr)
        if st["es_iteration"] == it and fired is None:
            es_psnr = q
        if st["stop"] and fired is None:
            fired = {"iteration": it, "wall_s": round(solver_wall, 2),
                     "cpu_s": round(time.process_time() - cpu0, 2)}
        if it % 10 == 0:
            curve.append([it, round(q, 3), round(qr, 3), None if st["es_variance"] is None
                          else float(f"{st['es_variance']:.4e}")])
    cpu = time.process_time() - cpu0
    total_wall = time.perf_counter() - setup
    out = s.output("best")
    final = psnr(clean, out)
    return {
        "image": image, "preset": preset, "overrides": overrides, "seed": seed, "sigma": sigma, "size": size,
        "input_psnr": round(psnr(clean, noisy), 3),
        "es_iteration": s.es.best_iteration if s.es else None, "stopped_iteration": s.iteration,
        "es_fired": s.es_fired, "es_fired_at": fired, "es_psnr": round(final, 3),
        "es_psnr_check": None if es_psnr is None else round(es_psnr, 3),
        "peak_psnr": round(best, 3), "peak_iteration": best_it, "peak_psnr_raw": round(best_raw, 3),
        "wall_s": round(solver_wall, 2), "wall_with_metrics_s": round(total_wall, 2),
        "cpu_s": round(cpu, 2), "ms_per_iteration": round(1000 * solver_wall / s.iteration, 1),
        "cpu_ms_per_iteration": round(1000 * cpu / s.iteration, 1),
        "es_overhead": round(s.timing["es_s"] / s.timing["step_s"], 4),
        "es_ms_per_iteration": round(1000 * s.timing["es_s"] / s.iteration, 3),
        "threads": torch.get_num_threads(), "loadavg_start": [round(v, 2) for v in load0],
        "loadavg_end": [round(v, 2) for v in os.getloadavg()],
        "params": sum(q.numel() for q in s.net.parameters()), "curve_every10": curve,
    }


def machine() -> dict:
    return {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "system": platform.system(),
            "note": "2-core machine shared with other jobs; see loadavg per run"}


def merge(files: list[str], out: Path) -> None:
    """Combine result files (finals and fronts of separate runs) into a new ``out``."""
    doc: dict = {"front": [], "final": {}}
    for f in files:
        if Path(f).resolve() == out.resolve():
            continue
        d = json.loads(Path(f).read_text())
        doc["front"] += d.get("front", [])
        doc["final"].update(d.get("final", {}))
        for k in ("machine", "published_classic_range", "preset", "timing_probe"):
            if k in d:
                doc[k] = d[k]
    for image, r in doc["final"].items():
        ref = classic_peak(image, r.get("size", 256))
        r["classic"] = ref
        ok = ref is not None and ref["complete"]
        r["db_short_of_classic_peak"] = round(ref["peak_psnr"] - r["es_psnr"], 3) if ok else None
        # an unfinished classic curve still gives a lower bound on its peak
        r["db_short_of_classic_best_so_far"] = None if ref is None else round(ref["peak_psnr"] - r["es_psnr"], 3)
    for e in doc["front"]:
        ref = classic_peak(e["image"], e.get("size", 256))
        if ref is not None and e.get("es_psnr") is not None:
            e["db_short_of_classic_best_so_far"] = round(ref["peak_psnr"] - e["es_psnr"], 3)
            if ref["complete"]:
                e["db_short_of_classic_peak"] = round(ref["peak_psnr"] - e["es_psnr"], 3)
    out.write_text(json.dumps(doc, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", nargs="+", default=["astronaut", "coffee", "chelsea"])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--config", action="append", default=[], help="NAME=JSON preset overrides (variants)")
    ap.add_argument("--configs", help="a JSON file {name: overrides} of variants")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=256, help="side in px (dev images: a centre crop)")
    ap.add_argument("--max-iters", type=int, default=None)
    ap.add_argument("--stopping", default="wmv")
    ap.add_argument("--run-to-budget", action="store_true", help="go on after ES fires (exploration)")
    ap.add_argument("--out", default=str(RESULTS / "cpu_preset.json"))
    ap.add_argument("--append-front", action="store_true", help="add the runs to the front of --out")
    ap.add_argument("--merge", nargs="+", help="merge these result files into --out and exit")
    a = ap.parse_args()
    if a.merge:
        merge(a.merge, Path(a.out))
        return
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc.setdefault("front", [])
    configs = [(c.split("=", 1)[0], json.loads(c.split("=", 1)[1])) for c in a.config]
    if a.configs:
        configs += list(json.loads(Path(a.configs).read_text()).items())
    configs = configs or [(a.preset, {})]
    runs = []
    for name, ov in configs:
        for image in a.images:
            r = run_one(image, a.preset, ov, max_iters=a.max_iters, stopping=a.stopping,
                        run_to_budget=a.run_to_budget, size=a.size)
            r["config"] = name
            ref = classic_peak(image, a.size)
            r["classic"] = ref
            # only a finished classic curve (logged well past its peak) gives a reference peak
            ok = ref is not None and ref["complete"]
            r["db_short_of_classic_peak"] = round(ref["peak_psnr"] - r["es_psnr"], 3) if ok else None
            print(json.dumps({k: v for k, v in r.items() if k != "curve_every10"}), flush=True)
            runs.append(r)
            entry = {k: r[k] for k in FRONT_KEYS}
            entry["curve_every50"] = r["curve_every10"][4::5]  # [iteration, psnr, psnr_raw, es_variance]
            doc["front"].append(entry)
            if not a.append_front:
                doc.setdefault("final", {})[image] = r
            doc["machine"] = machine()
            doc["published_classic_range"] = PUBLISHED_CLASSIC_RANGE
            doc["preset"] = get_preset(a.preset).to_dict()
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
