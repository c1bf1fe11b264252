"""Measure the classic DIP recipe's PSNR curve (the reference the CPU preset is held to).

The classic recipe (DESIGN.md): skip net 5x128, 4-channel skips; z ~ U(0, 0.1) with 32
channels, jittered by N(0, 1/30) each step; Adam lr 0.01; MSE; Gaussian noise
sigma = 25/255 (clipped to [0, 1]). PSNR of the raw output against the clean image is
logged at every iteration to a JSON-lines file, flushed as it goes, so a run stopped early
still leaves a usable curve.

Usage::

    python bench/classic_reference.py --image astronaut --iters 1700 --threads 1 \
        --out bench/results/classic_astronaut_cpu.jsonl
    python bench/classic_reference.py --image kodim02 --size 128 --iters 1500 --threads 1   # a dev image's centre crop
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch
from cpu_preset import DEV_IMAGES, classic_log, load_clean

from engine.core.seeds import numpy_rng, torch_generator
from engine.dip.priors.skip import classic_skip_net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="astronaut")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=1800)
    ap.add_argument("--sigma", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", help=f"default: cpu_preset's classic_log(image, size); images: samples or {DEV_IMAGES}")
    a = ap.parse_args()
    a.out = a.out or str(classic_log(a.image, a.size))
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    rng = numpy_rng(a.seed)
    clean = load_clean(a.image, a.size)
    noisy = np.clip(clean + rng.normal(0, a.sigma / 255.0, clean.shape), 0, 1).astype(np.float32)
    to_t = lambda x: torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(dev)  # noqa: E731
    y, gt = to_t(noisy), to_t(clean)
    torch.manual_seed(a.seed)
    net = classic_skip_net(3).to(dev)
    gen = torch_generator(a.seed)
    z = (torch.rand(1, 32, a.size, a.size, generator=gen) * 0.1).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    with open(a.out, "w") as f:
        machine = platform.processor() or platform.machine()
        f.write(json.dumps({"meta": {"image": a.image, "size": a.size, "sigma": a.sigma, "seed": a.seed,
                                     "device": a.device, "machine": machine,
                                     "threads": a.threads, "torch": torch.__version__,
                                     "input_psnr": float(10 * np.log10(1 / np.mean((noisy - clean) ** 2)))}}) + "\n")
        t0 = time.perf_counter()
        for it in range(1, a.iters + 1):
            opt.zero_grad(set_to_none=True)
            out = net(z + torch.randn_like(z) / 30.0)
            loss = torch.mean((out - y) ** 2)
            loss.backward()
            opt.step()
            with torch.no_grad():
                psnr = float(-10 * torch.log10(torch.mean((out.clamp(0, 1) - gt) ** 2)))
            f.write(json.dumps({"it": it, "loss": float(loss.detach()), "psnr": round(psnr, 4),
                                "t": round(time.perf_counter() - t0, 2)}) + "\n")
            f.flush()


if __name__ == "__main__":
    main()
