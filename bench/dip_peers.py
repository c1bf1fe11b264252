"""This project's default DIP beside deepinv's, on the ES-WMV dev images, in one process.

The peer is what a user would pick instead: deepinv 0.5's ``DeepImagePrior`` with its
``ConvDecoder``, in the settings its documentation gives (the DIP example: 64 channels, a
2x2 input, learning rate 0.01; the class's default budget of 2,500 iterations, since it has no
early stopping). Ours is ``DIPSolver`` with the default ``cpu`` preset and ES-WMV, as
``inverse-studio restore`` runs it. Both see the same noisy 128x128 centre crop (the
protocol of bench/es_gap.py), at the same torch thread count, alternating case by case so a
change of load on a shared machine hits both.

deepinv's own ``DeepImagePrior.forward`` does the fitting, unchanged: its generator is
wrapped in a module that records, every ``--every`` calls, the wall time so far (PSNR
computation excluded) and the PSNR of the output against the clean crop. The result per case:
PSNR at the end of deepinv's budget (what a user gets), its best PSNR on the way (an oracle
stop it does not have) and when it was reached; for ours, the PSNR at t*, the run's wall time
and its peak. Results: ``bench/results/dip_peers_cpu.json``.

deepinv needs torchvision, which does not import beside the CPU build of torch 2.13.0 this
project is tested with; run this in its own environment (see the README)::

    python -m venv /tmp/peers && /tmp/peers/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/peers/bin/pip install -e ".[bench]"
    /tmp/peers/bin/python bench/dip_peers.py --cases kodim01_gaussian3 kodim02_gaussian3 kodim12_gaussian3
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from es_gap import load_crop  # noqa: E402  (the dev protocol's crop)

from engine.core.machine import machine_info  # noqa: E402
from engine.core.metrics import psnr  # noqa: E402
from engine.dip.solver import DIPSolver  # noqa: E402

RESULTS = Path(__file__).parent / "results"
SEED = 0
# deepinv's documented DIP settings (its DIP example; the budget is the class default)
DEEPINV = {"channels": 64, "in_size": (2, 2), "layers": 7, "lr": 1e-2, "iterations": 2500}


class Recorder(torch.nn.Module):
    """Wraps a generator; every ``every`` calls records (wall s, PSNR) of its output."""

    def __init__(self, net: torch.nn.Module, clean: torch.Tensor, *, every: int) -> None:
        super().__init__()
        self.net, self.clean, self.every = net, clean, every
        self.calls, self.curve = 0, []
        self.t0 = time.perf_counter()
        self.excluded = 0.0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.net(z)
        self.calls += 1
        if self.calls % self.every == 0:
            t = time.perf_counter()
            with torch.no_grad():
                q = psnr(self.clean, x.detach().clamp(0, 1))
            self.curve.append([self.calls, round(t - self.t0 - self.excluded, 2), round(q, 3)])
            self.excluded += time.perf_counter() - t
        return x


def run_deepinv(noisy: np.ndarray, clean: np.ndarray, *, every: int, iterations: int) -> dict:
    import deepinv as dinv

    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]  # noqa: E731
    y, gt = to_t(noisy), to_t(clean)
    torch.manual_seed(SEED)
    s = DEEPINV
    backbone = dinv.models.ConvDecoder(img_size=y.shape[1:], in_size=s["in_size"], layers=s["layers"],
                                       channels=s["channels"])
    rec = Recorder(backbone, gt, every=every)
    model = dinv.models.DeepImagePrior(rec, img_size=[s["channels"], *s["in_size"]], iterations=iterations,
                                       learning_rate=s["lr"])
    physics = dinv.physics.Denoising()
    cpu0, t0 = time.process_time(), time.perf_counter()
    x = model(y, physics)
    wall = time.perf_counter() - t0 - rec.excluded
    final = psnr(gt, x.detach().clamp(0, 1))
    best = max(rec.curve, key=lambda r: r[2])
    return {"method": "deepinv DeepImagePrior + ConvDecoder", "settings": {**s, "iterations": iterations},
            "params": sum(p.numel() for p in backbone.parameters()), "iterations": iterations,
            "wall_s": round(wall, 2), "cpu_s": round(time.process_time() - cpu0, 2),
            "ms_per_iteration": round(1000 * wall / iterations, 1), "final_psnr": round(final, 3),
            "best_psnr": best[2], "best_iteration": best[0], "best_at_wall_s": best[1], "curve": rec.curve}


def run_ours(noisy: np.ndarray, clean: np.ndarray, *, every: int) -> dict:
    s = DIPSolver(noisy, preset="cpu", task="denoise", seed=SEED, stopping="wmv")
    ref = torch.from_numpy(np.ascontiguousarray(clean.transpose(2, 0, 1)))[None]
    curve, wall, cpu0 = [], 0.0, time.process_time()
    best, best_it, best_wall = -1.0, 0, 0.0
    while not s.done:
        t0 = time.perf_counter()
        st = s.step()
        wall += time.perf_counter() - t0
        if st["iteration"] % every == 0 or s.done:
            q = psnr(ref, st["output"])
            curve.append([st["iteration"], round(wall, 2), round(q, 3)])
            if q > best:
                best, best_it, best_wall = q, st["iteration"], wall
    out = s.output("best")
    return {"method": "inverse-studio DIPSolver, cpu preset, ES-WMV",
            "params": sum(p.numel() for p in s.net.parameters()),
            "iterations": s.iteration, "es_iteration": s.es.best_iteration, "es_fired": s.es_fired,
            "wall_s": round(wall, 2), "cpu_s": round(time.process_time() - cpu0, 2),
            "ms_per_iteration": round(1000 * wall / s.iteration, 1), "final_psnr": round(psnr(clean, out), 3),
            "best_psnr": round(best, 3), "best_iteration": best_it, "best_at_wall_s": round(best_wall, 2),
            "curve": curve}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=[f"{i}_gaussian3" for i in ("kodim01", "kodim02", "kodim12")])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=DEEPINV["iterations"], help="deepinv's budget")
    ap.add_argument("--every", type=int, default=10, help="record PSNR every this many iterations")
    ap.add_argument("--out", default=str(RESULTS / "dip_peers_cpu.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    import deepinv

    out = Path(a.out)
    doc = {"benchmark": "bench/dip_peers.py", "crop": "centre 128x128", "seed": SEED, "threads": a.threads,
           "torch": torch.__version__, "deepinv": deepinv.__version__, "machine": machine_info(),
           "note": "2-core machine shared with other jobs; loadavg per case", "cases": {}}
    for name in a.cases:
        img = name.split("_")[0]
        noisy, clean = load_crop(name), load_crop(f"{img}_clean")
        load0 = [round(v, 2) for v in os.getloadavg()]
        ours = run_ours(noisy, clean, every=a.every)
        theirs = run_deepinv(noisy, clean, every=a.every, iterations=a.iterations)
        doc["cases"][name] = {"input_psnr": round(psnr(clean, noisy), 3), "loadavg_start": load0,
                              "loadavg_end": [round(v, 2) for v in os.getloadavg()],
                              "ours": ours, "deepinv": theirs}
        print(json.dumps({"case": name, "ours": [ours["final_psnr"], ours["wall_s"]],
                          "deepinv_final": [theirs["final_psnr"], theirs["wall_s"]],
                          "deepinv_best": [theirs["best_psnr"], theirs["best_at_wall_s"]], "load": load0}),
              flush=True)
        out.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
