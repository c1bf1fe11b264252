"""Early-stopping gap of the "cpu" DIP preset on the ES-WMV dev images.

The ES gap of a run is the peak PSNR of the returned image's own curve (over the budget)
minus the PSNR of the image returned at t*. Data: 128x128 centre crops of
``/work/shared/data/es-wmv-dev`` (kodim01, kodim02, kodim12; gaussian, impulse, shot and
speckle noise at levels 2, 3, 4), seed 0, one torch thread.

Two modes:

``record``
    Runs the real :class:`engine.dip.solver.DIPSolver` (preset "cpu", stopping off, so the
    curve continues past any stop) and saves per iteration: the loss; the PSNR of the raw
    network output and of its exponential averages (decays ``EMAS``, and the preset's own)
    against the clean crop; the windowed variance (ES-WMV, W in ``WINDOWS``) and the
    exponential variance (ES-EMV, alpha in ``ALPHAS``) of the raw outputs, incremental in
    float64; the engine's own ``WMV(100)`` as a cross-check; the step time. One ``.npz`` per
    case (no pickle) in ``bench/results/es_gap_curves/``. ``--check-es`` also runs the solver
    with the shipped preset and stopping on and stores its t*, stop and output PSNR, which
    ``analyse`` compares with its replay. One case (640 iterations) takes 40-70 s on one
    core, so all 36 take about 25-40 minutes (``--check-es`` adds 10-20 s per case).
``analyse``
    Replays the detectors on the recorded curves (the engine's rule: t* is the last strict
    improvement of the running minimum, the run ends when ``t - t* >= P`` or at the budget)
    for the shipped cpu preset, the previous defaults (W=100, P=200, EMA 0.99) and ES-EMV
    (alpha 0.1) with the shipped EMA and patience. It prints the gap per case, its mean and
    worst at level 3 and over all levels, t* and the stop, and writes
    ``bench/results/es_gap.json``.

Usage::

    python bench/es_gap.py record                       # all 36 cases (skips existing files)
    python bench/es_gap.py record --cases kodim01_gaussian3 kodim02_impulse4 --check-es
    python bench/es_gap.py analyse
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.core.machine import machine_info
from engine.core.metrics import psnr
from engine.dip.presets import get_preset
from engine.dip.solver import DIPSolver
from engine.dip.stopping import WMV

DATA = Path("/work/shared/data/es-wmv-dev")
RESULTS = Path(__file__).parent / "results"
CURVES = RESULTS / "es_gap_curves"
IMAGES = ("kodim01", "kodim02", "kodim12")
NOISES = ("gaussian", "impulse", "shot", "speckle")
LEVELS = (2, 3, 4)
CROP = 128
SEED = 0
WINDOWS = (50, 100)
ALPHAS = (0.1,)
EMAS = (0.95, 0.99)
# the preset before this benchmark; "old" in the results
OLD = {"window": 100, "patience": 200, "ema": 0.99}
EMV_ALPHA = 0.1
PATIENCE_SWEEP = (50, 75, 100, 150, 200, 300, 400, 500)
# the judged gap: mean and worst, at level 3 and over all levels
GOAL = {"mean_db": 0.5, "worst_db": 1.5}


def case_names() -> list[str]:
    return [f"{img}_{nz}{lv}" for lv in LEVELS for img in IMAGES for nz in NOISES]


def load_crop(name: str) -> np.ndarray:
    """The 128x128 centre crop of ``name``.png as float32 RGB in [0, 1]."""
    a = np.asarray(Image.open(DATA / f"{name}.png").convert("RGB"), np.float32) / 255.0
    h, w = a.shape[:2]
    top, left = (h - CROP) // 2, (w - CROP) // 2
    return np.ascontiguousarray(a[top:top + CROP, left:left + CROP])


def _key(x: float) -> str:
    """0.95 -> "95", 0.1 -> "0.1": stable names for curve keys."""
    return f"{round(x * 100):d}" if x >= 0.5 else f"{x:g}"


class VarianceStreams:
    """Windowed variances (several W) and exponential variances (several alpha) of a stream of
    images, incremental in float64: running sums over a ring of frames minus the first frame."""

    def __init__(self, n: int, windows=WINDOWS, alphas=ALPHAS) -> None:
        self.windows, self.alphas = tuple(windows), tuple(alphas)
        self.wmax = max(self.windows)
        self.ring = torch.zeros((self.wmax, n), dtype=torch.float64)
        self.sq = np.zeros(self.wmax)                 # mean(d**2) of each frame in the ring
        self.sum = {w: torch.zeros(n, dtype=torch.float64) for w in self.windows}
        self.sqsum = {w: 0.0 for w in self.windows}
        self.shift: torch.Tensor | None = None
        self.n = 0
        self.mu: dict = {a: None for a in self.alphas}
        self.v = {a: 0.0 for a in self.alphas}

    def push(self, x: torch.Tensor) -> tuple[dict, dict]:
        """Add one frame; return ``({W: variance or NaN}, {alpha: EMV or NaN})``."""
        x = x.detach().reshape(-1).double()
        if self.shift is None:
            self.shift = x.clone()
        d = x - self.shift
        dsq = float(d.square().mean())
        n = self.n
        for w in self.windows:
            if n >= w:                                  # frame n - W leaves the window
                self.sum[w].sub_(self.ring[(n - w) % self.wmax])
                self.sqsum[w] -= self.sq[(n - w) % self.wmax]
            self.sum[w].add_(d)
            self.sqsum[w] += dsq
        self.ring[n % self.wmax].copy_(d)
        self.sq[n % self.wmax] = dsq
        self.n += 1
        var = {}
        for w in self.windows:
            if self.n >= w:
                m = self.sum[w] / w
                var[w] = max(0.0, self.sqsum[w] / w - float(m.square().mean()))
            else:
                var[w] = np.nan
        emv = {}
        for a in self.alphas:                           # the engine's EMV, burn-in ceil(1/alpha)
            if self.mu[a] is None:
                self.mu[a] = x.clone()
                emv[a] = np.nan
                continue
            dd = x - self.mu[a]
            self.v[a] = (1 - a) * (self.v[a] + a * float(dd.square().mean()))
            self.mu[a].add_(dd, alpha=a)
            emv[a] = self.v[a] if self.n > math.ceil(1 / a) else np.nan
        return var, emv


# ---------------------------------------------------------------------------------- record
def record_case(name: str, iters: int, out_dir: Path, *, check_es: bool = False) -> Path:
    """Record the curves of one case (stopping off) into ``out_dir/name.npz``."""
    img = name.split("_")[0]
    noisy, clean = load_crop(name), load_crop(f"{img}_clean")
    ref = torch.from_numpy(clean.transpose(2, 0, 1))[None].double()
    shipped = get_preset("cpu")
    emas = sorted(set(EMAS) | {shipped.ema})
    load0 = os.getloadavg()
    s = DIPSolver(noisy, preset="cpu", task="denoise", seed=SEED, stopping="none", max_iters=iters)
    keys = (["loss", "psnr_raw", "engine_wmv100", "step_ms"] + [f"psnr_ema{_key(e)}" for e in emas]
            + [f"var_raw{w}" for w in WINDOWS] + [f"emv_raw{_key(a)}" for a in ALPHAS])
    rec = {k: np.full(iters, np.nan) for k in keys}
    streams = VarianceStreams(ref.numel())
    engine_wmv = WMV(window=100, patience=10 ** 9)
    avg: dict = {e: None for e in emas}
    t0 = time.perf_counter()
    for i in range(iters):
        ta = time.perf_counter()
        st = s.step()
        rec["step_ms"][i] = (time.perf_counter() - ta) * 1e3
        raw = st["raw"]
        with torch.no_grad():
            rec["loss"][i] = st["loss"]
            rec["psnr_raw"][i] = psnr(ref, raw)
            for e in emas:                              # the solver's EMA arithmetic
                avg[e] = raw.clone() if avg[e] is None else avg[e].mul_(e).add_(raw, alpha=1 - e)
                rec[f"psnr_ema{_key(e)}"][i] = psnr(ref, avg[e])
            var, emv = streams.push(raw)
            for w in WINDOWS:
                rec[f"var_raw{w}"][i] = var[w]
            for a in ALPHAS:
                rec[f"emv_raw{_key(a)}"][i] = emv[a]
            engine_wmv.update(raw, i + 1)
            rec["engine_wmv100"][i] = np.nan if engine_wmv.variance is None else engine_wmv.variance
    wall = time.perf_counter() - t0
    meta = {"case": name, "img": img, "noise": name.split("_")[1][:-1], "level": int(name[-1]),
            "iters": iters, "crop": f"centre {CROP}", "seed": SEED, "preset": "cpu", "threads": torch.get_num_threads(),
            "wall_s": round(wall, 1), "loadavg_start": [round(v, 2) for v in load0],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()]}
    if check_es:
        es = DIPSolver(noisy, preset="cpu", task="denoise", seed=SEED, stopping="wmv")
        es.run()
        meta["engine_es"] = {"preset": {"window": shipped.window, "patience": shipped.patience, "ema": shipped.ema},
                             "stopping": "wmv", "t_star": es.es.best_iteration, "stop": es.iteration,
                             "psnr": psnr(clean, es.output())}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.npz"
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **{k: v.astype(np.float64) for k, v in rec.items()})
    v = rec["var_raw100"]
    rel = np.nanmax(np.abs(rec["engine_wmv100"] - v) / v)
    print(f"{name}: {iters} it in {wall:.1f}s (median step {np.median(rec['step_ms']):.1f} ms); raw peak "
          f"{np.nanmax(rec['psnr_raw']):.2f} dB @{np.nanargmax(rec['psnr_raw']) + 1}; |engine WMV - own| max rel "
          f"{rel:.1e}" + (f"; ES on: t*={meta['engine_es']['t_star']} stop={meta['engine_es']['stop']} "
                          f"{meta['engine_es']['psnr']:.2f} dB" if check_es else ""), flush=True)
    return path


# ---------------------------------------------------------------------------------- analyse
def load_curves(curve_dir: Path = CURVES) -> dict:
    cases = {}
    for f in sorted(curve_dir.glob("*.npz")):
        with np.load(f, allow_pickle=False) as d:
            meta = json.loads(str(d["meta"]))
            cases[f.stem] = (meta, {k: d[k] for k in d.files if k != "meta"})
    return cases


def t_star_track(v: np.ndarray) -> np.ndarray:
    """``tb[t-1]``: the detector's t* after update t (0 before the signal exists)."""
    x = np.where(np.isnan(v), np.inf, v)
    prev = np.concatenate([[np.inf], np.minimum.accumulate(x)[:-1]])
    idx = np.arange(1, len(v) + 1)
    return np.maximum.accumulate(np.where(x < prev, idx, 0))


def simulate(tb: np.ndarray, patience: int, budget: int) -> tuple[int, int, bool]:
    """``(t*, stop iteration, fired)`` of a run with this t* track, patience and budget."""
    t = np.arange(1, budget + 1)
    tbb = tb[:budget]
    fire = (tbb > 0) & (t - tbb >= patience)
    if fire.any():
        end = int(t[np.argmax(fire)])
        return int(tb[end - 1]), end, True
    return int(tb[budget - 1]), budget, False


def evaluate(cases: dict, signal: str, returned: str, patience: int, budget: int) -> dict:
    """Per case: t*, stop, PSNR returned and the gap, for a detector on ``signal`` returning
    the image ``returned`` (a PSNR curve key) at t*."""
    rows = {}
    for name, (meta, c) in cases.items():
        if len(c[signal]) < budget:
            raise SystemExit(f"{name}: {len(c[signal])} iterations recorded, budget {budget}; record again")
        ts, end, fired = simulate(t_star_track(c[signal]), patience, budget)
        if ts == 0:
            ts = end                                    # no signal yet: the engine returns the current image
        r = c[returned]
        val = float(r[ts - 1])
        own = float(np.nanmax(r[:budget]))
        rows[name] = {"level": meta["level"], "t_star": ts, "stop": end, "fired": bool(fired), "psnr": val,
                      "peak_psnr": own, "peak_iteration": int(np.nanargmax(r[:budget]) + 1), "gap_db": own - val}
    return rows


def summary(rows: dict) -> dict:
    out = {}
    for label, names in (("level3", [n for n in rows if rows[n]["level"] == 3]), ("all", list(rows))):
        g = np.array([rows[n]["gap_db"] for n in names])
        out[label] = {"cases": len(names), "gap_mean_db": float(g.mean()), "gap_worst_db": float(g.max()),
                      "psnr_mean_db": float(np.mean([rows[n]["psnr"] for n in names])),
                      "stop_mean": float(np.mean([rows[n]["stop"] for n in names])),
                      "stop_max": int(max(rows[n]["stop"] for n in names)),
                      "budget_ended": int(sum(not rows[n]["fired"] for n in names))}
        out[label]["goal_met"] = bool(out[label]["gap_mean_db"] <= GOAL["mean_db"]
                                      and out[label]["gap_worst_db"] <= GOAL["worst_db"])
    return out


def analyse(curve_dir: Path = CURVES, out: Path = RESULTS / "es_gap.json") -> dict:
    cases = load_curves(curve_dir)
    if not cases:
        raise SystemExit(f"no curves in {curve_dir}; run `record` first")
    order = {n: i for i, n in enumerate(case_names())}
    cases = dict(sorted(cases.items(), key=lambda kv: order.get(kv[0], len(order))))
    p = get_preset("cpu")
    budget = p.budget("denoise")
    configs = {
        "shipped": {"stopping": "wmv", "window": p.window, "patience": p.patience, "ema": p.ema},
        "old_defaults": {"stopping": "wmv", **OLD},
        "emv": {"stopping": "emv", "alpha": EMV_ALPHA, "patience": p.patience, "ema": p.ema},
    }
    first = next(iter(cases.values()))[1]
    results = {}
    for label, cfg in configs.items():
        signal = f"var_raw{cfg['window']}" if cfg["stopping"] == "wmv" else f"emv_raw{_key(cfg['alpha'])}"
        returned = f"psnr_ema{_key(cfg['ema'])}"
        for k in (signal, returned):
            if k not in first:
                raise SystemExit(f"curve {k!r} not recorded (preset changed?); run `record` again")
        rows = evaluate(cases, signal, returned, cfg["patience"], budget)
        results[label] = {"config": {**cfg, "budget": budget, "signal": signal, "returned": returned},
                          "summary": summary(rows), "cases": rows}
    # how much the result depends on P, for the shipped window and EMA
    sweep = {}
    for P in PATIENCE_SWEEP:
        rows = evaluate(cases, results["shipped"]["config"]["signal"], results["shipped"]["config"]["returned"],
                        P, budget)
        sm = summary(rows)
        sweep[str(P)] = {part: {k: sm[part][k] for k in ("gap_mean_db", "gap_worst_db", "stop_mean", "goal_met")}
                         for part in sm}
    # the replay against the solver itself, where `record --check-es` ran it
    checks = {}
    for name, (meta, _) in cases.items():
        e = meta.get("engine_es")
        if e and e["preset"] == {k: configs["shipped"][k] for k in ("window", "patience", "ema")}:
            r = results["shipped"]["cases"][name]
            checks[name] = {"engine": {k: e[k] for k in ("t_star", "stop", "psnr")},
                            "replay": {k: r[k] for k in ("t_star", "stop", "psnr")},
                            "same": e["t_star"] == r["t_star"] and e["stop"] == r["stop"]
                            and abs(e["psnr"] - r["psnr"]) < 1e-3}
    step_ms = [float(np.median(c["step_ms"])) for _, c in cases.values()]
    doc = {"benchmark": "bench/es_gap.py", "data": str(DATA), "crop": f"centre {CROP}x{CROP}", "seed": SEED,
           "gap": "peak PSNR of the returned image's own curve over 1..budget minus PSNR returned at t*",
           "goal": GOAL, "shipped_preset": {"name": "cpu", **configs["shipped"]}, "results": results,
           "patience_sweep": sweep, "engine_checks": checks,
           "median_step_ms": {"median_over_cases": float(np.median(step_ms)), "min": min(step_ms), "max": max(step_ms)},
           "record_loadavg": {n: [m.get("loadavg_start"), m.get("loadavg_end")] for n, (m, _) in cases.items()},
           "machine": machine_info(), "loadavg_analyse": [round(v, 2) for v in os.getloadavg()]}
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print_tables(results, checks)
    for P, sm in sweep.items():
        l3, al = sm["level3"], sm["all"]
        print(f"shipped W/EMA, P={P:>3}: level 3 {l3['gap_mean_db']:.2f}/{l3['gap_worst_db']:.2f}"
              f" all {al['gap_mean_db']:.2f}/{al['gap_worst_db']:.2f} dB, stop {al['stop_mean']:.0f}")
    print(f"wrote {out}")
    return doc


def print_tables(results: dict, checks: dict) -> None:
    names = list(next(iter(results.values()))["cases"])
    head = f"{'case':<20}" + "".join(f" | {lbl:>22}" for lbl in results)
    print(head + "\n" + f"{'':<20}" + " | t*/stop   PSNR    gap" * len(results))
    for n in names:
        line = f"{n:<20}"
        for lbl in results:
            r = results[lbl]["cases"][n]
            flag = " " if r["fired"] else "b"
            line += f" | {r['t_star']:>3}/{r['stop']:<3}{flag} {r['psnr']:5.2f} {r['gap_db']:5.2f}"
        print(line)
    for part in ("level3", "all"):
        line = f"{part + ' mean/worst':<20}"
        for lbl in results:
            s = results[lbl]["summary"][part]
            line += f" | {s['gap_mean_db']:.2f}/{s['gap_worst_db']:.2f} dB stop {s['stop_mean']:.0f}"
        print(line)
    print("(b: the budget ended the run)")
    for n, c in checks.items():
        print(f"solver with ES on, {n}: {c['engine']} replay {c['replay']} {'same' if c['same'] else 'DIFFERENT'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("record", help="run the solver and save the curves")
    r.add_argument("--cases", nargs="*", default=None, help="e.g. kodim01_gaussian3 (default: all 36)")
    r.add_argument("--iters", type=int, default=None, help="iterations per case (default: the preset's budget)")
    r.add_argument("--out", type=Path, default=CURVES)
    r.add_argument("--force", action="store_true", help="overwrite existing curves")
    r.add_argument("--check-es", action="store_true", help="also run the shipped preset with stopping on")
    a = sub.add_parser("analyse", help="replay the detectors on the curves, write the results")
    a.add_argument("--curves", type=Path, default=CURVES)
    a.add_argument("--out", type=Path, default=RESULTS / "es_gap.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.mode == "record":
        iters = args.iters or get_preset("cpu").budget("denoise")
        for name in args.cases or case_names():
            if (args.out / f"{name}.npz").exists() and not args.force:
                print(f"{name}: exists, skipped")
                continue
            record_case(name, iters, args.out, check_es=args.check_es)
    else:
        analyse(args.curves, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
