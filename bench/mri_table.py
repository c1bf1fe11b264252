"""MRI table: acceleration x method (zero-filled, TV, DIP at t*, DIP peak), PSNR/SSIM, on the Shepp-Logan
phantom and pydicom's MR_small.dcm. Writes bench/results/mri_table.json and prints a markdown table.

    nice -n 5 python bench/mri_table.py [--size 128] [--noise 0.01]
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

from engine.core.metrics import psnr, ssim
from engine.dip.solver import DIPSolver
from engine.mri.inputs import builtin_image
from engine.mri.kspace import KSpace, KSpaceStacked, make_mask, simulate_kspace, stack_complex, zero_filled
from engine.mri.tv import tv_reconstruct
from engine.mri.workflow import MRI_DEFAULTS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--max-iters", type=int, default=MRI_DEFAULTS["cpu"]["max_iters"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "mri_table.json"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name, img in (("phantom", builtin_image("phantom", a.size)), ("MR_small", builtin_image("MR_small"))):
        for acc in (2, 4, 8):
            m = make_mask(img.shape, kind="random", acceleration=acc, seed=0)
            k = simulate_kspace(img, m, noise_sigma=a.noise, seed=0)
            zf = zero_filled(k)
            t0 = time.time()
            tv = tv_reconstruct(k, KSpace(m)).image
            t_tv = time.time() - t0
            ref = torch.from_numpy(img)[None, None]
            s = DIPSolver(stack_complex(k), operator=KSpaceStacked(m), out_shape=img.shape, preset="cpu", task="mri",
                          patience=MRI_DEFAULTS["cpu"]["patience"], max_iters=a.max_iters)
            peak, peak_it, peak_img = -1.0, 0, None
            t0 = time.time()
            while not s.done:
                st = s.step()
                p = psnr(ref, st["output"])
                if p > peak:
                    peak, peak_it, peak_img = p, st["iteration"], st["output"].clone()
            t_dip = time.time() - t0
            dip = s.output()
            peak_np = np.clip(peak_img[0, 0].numpy(), 0, 1)
            row = {"image": name, "shape": list(img.shape), "acceleration": acc,
                   "zero_filled": [round(psnr(img, zf), 2), round(ssim(img, zf), 3)],
                   "tv": [round(psnr(img, tv), 2), round(ssim(img, tv), 3)],
                   "dip_t_star": [round(psnr(img, dip), 2), round(ssim(img, dip), 3)],
                   "dip_peak": [round(peak, 2), round(ssim(img, peak_np), 3)],
                   "t_star": s.es.best_iteration, "peak_iteration": peak_it, "stopped": s.iteration,
                   "es_fired": s.es_fired, "tv_seconds": round(t_tv, 2), "dip_seconds": round(t_dip, 1),
                   "load": os.getloadavg()}
            rows.append(row)
            print(json.dumps(row), flush=True)
    res = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "threads": 1}, "noise_sigma": a.noise, "mask": "random, seed 0", "preset": "cpu",
           "patience": MRI_DEFAULTS["cpu"]["patience"], "max_iters": a.max_iters, "rows": rows,
           "load_end": os.getloadavg()}
    Path(a.out).write_text(json.dumps(res, indent=1))
    print("| image | accel | zero-filled | TV | DIP at t* | DIP peak | t* / peak it |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        f = lambda v: f"{v[0]:.2f} / {v[1]:.3f}"  # noqa: E731
        print(f"| {r['image']} {r['shape'][0]}² | ×{r['acceleration']} | {f(r['zero_filled'])} | {f(r['tv'])} | "
              f"{f(r['dip_t_star'])} | {f(r['dip_peak'])} | {r['t_star']} / {r['peak_iteration']} |")


if __name__ == "__main__":
    main()
