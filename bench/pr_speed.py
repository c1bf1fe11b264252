"""HIO iterations per second: the torch engine vs a plain numpy implementation (CPU), and on a GPU
256^3 HIO and 64 batched 512^2 starts vs a naive loop over starts (skipped when there is no CUDA).

One HIO iteration = FFT, Fourier-amplitude projection on measured pixels, inverse FFT, support update.
The numpy reference is written the obvious way (complex64 arrays, ``np.fft``, ``np.where``).

Usage::

    python bench/pr_speed.py --out bench/results/pr_speed_cpu.json [--size 512] [--iters 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from engine.cdi.simulate import simulate_pattern
from engine.cdi.solver import CDISolver


def numpy_hio(intensity: np.ndarray, mask: np.ndarray, support: np.ndarray, iters: int, beta: float = 0.9,
              seed: int = 0) -> float:
    """Plain numpy HIO; returns iterations per second."""
    rng = np.random.default_rng(seed)
    amp = np.sqrt(np.fft.ifftshift(intensity)).astype(np.float32)
    obs = ~np.fft.ifftshift(mask)
    sup = np.fft.ifftshift(support)
    x = (np.exp(2j * np.pi * rng.random(intensity.shape)) * sup).astype(np.complex64)
    t0 = time.perf_counter()
    for _ in range(iters):
        psi = np.fft.fftn(x)
        psi = np.where(obs, amp * np.exp(1j * np.angle(psi)), psi)
        p = np.fft.ifftn(psi)
        x = np.where(sup, p, x - beta * p).astype(np.complex64)
    return iters / (time.perf_counter() - t0)


def torch_hio(intensity: np.ndarray, mask: np.ndarray, support: np.ndarray, iters: int, starts: int = 1,
              device: str = "cpu") -> float:
    """The engine's HIO (batched); returns iterations per second (all starts advance per iteration)."""
    s = CDISolver(intensity, mask=mask, recipe=f"HIO**{iters + 3}", starts=starts, support=support,
                  options={"free_fraction": 0.03}, device=device)
    for _ in range(3):  # warm-up (plans, allocations)
        s.step(llk_every=0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    while not s.done:
        s.step(llk_every=0)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return iters / (time.perf_counter() - t0)


def naive_torch_loop(intensity: np.ndarray, mask: np.ndarray, support: np.ndarray, iters: int, starts: int,
                     device: str) -> float:
    """Starts one after the other with a straightforward torch HIO; returns start-iterations per second."""
    dev = torch.device(device)
    amp = torch.from_numpy(np.sqrt(np.fft.ifftshift(intensity))).to(dev)
    obs = torch.from_numpy(~np.fft.ifftshift(mask)).to(dev)
    sup = torch.from_numpy(np.fft.ifftshift(support)).to(dev)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(starts):
        g = torch.Generator(device=dev).manual_seed(s)
        x = torch.exp(2j * torch.pi * torch.rand(intensity.shape, generator=g, device=dev)) * sup
        for _ in range(iters):
            psi = torch.fft.fftn(x)
            psi = torch.where(obs, amp * torch.exp(1j * torch.angle(psi)), psi)
            p = torch.fft.ifftn(psi)
            x = torch.where(sup, p, x - 0.9 * p)
    torch.cuda.synchronize()
    return starts * iters / (time.perf_counter() - t0)


def machine() -> dict:
    info = {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "cpu_count": os.cpu_count(), "processor": platform.processor()}
    try:
        with open("/proc/cpuinfo") as f:
            models = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        info["cpu_model"] = models[0] if models else ""
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8, help="starts in the batched CPU measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    sim = simulate_pattern(None, shape=(a.size, a.size), photons=1e9, beamstop=2, seed=0)
    load_before = os.getloadavg()
    res: dict = {"benchmark": "pr_speed", "size": a.size, "iters": a.iters, "machine": machine(),
                 "load_before": load_before}
    cpu: dict = {"repeats": a.repeats, "note": "best of the repeats, numpy and torch alternated"}
    torch.set_num_threads(1)
    runs: dict[str, list[float]] = {"numpy": [], "torch1": [], "torch_all": [], "batch": []}
    for _ in range(a.repeats):  # alternate, so a load spike hits both sides alike
        torch.set_num_threads(1)
        runs["numpy"].append(numpy_hio(sim.intensity, sim.mask, sim.support, a.iters))
        runs["torch1"].append(torch_hio(sim.intensity, sim.mask, sim.support, a.iters))
        runs["batch"].append(a.batch * torch_hio(sim.intensity, sim.mask, sim.support, max(a.iters // 4, 5),
                                                 starts=a.batch))
        torch.set_num_threads(os.cpu_count() or 1)
        runs["torch_all"].append(torch_hio(sim.intensity, sim.mask, sim.support, a.iters))
    cpu["numpy_hio_it_s"] = max(runs["numpy"])
    cpu["torch_hio_it_s_1thread"] = max(runs["torch1"])
    cpu["speedup_1thread"] = cpu["torch_hio_it_s_1thread"] / cpu["numpy_hio_it_s"]
    cpu[f"torch_hio_start_it_s_batch{a.batch}_1thread"] = max(runs["batch"])
    cpu["threads_all"] = os.cpu_count()
    cpu["torch_hio_it_s_all_threads"] = max(runs["torch_all"])
    cpu["speedup_all_threads"] = cpu["torch_hio_it_s_all_threads"] / cpu["numpy_hio_it_s"]
    cpu["all_runs"] = runs
    torch.set_num_threads(1)
    res["cpu"] = cpu
    if torch.cuda.is_available():
        gpu: dict = {}
        s3 = simulate_pattern(None, shape=(256, 256, 256), photons=1e10, beamstop=2, seed=0)
        gpu["hio_256cubed_it_s"] = torch_hio(s3.intensity, s3.mask, s3.support, 50, device="cuda")
        i, m, s = sim.intensity, sim.mask, sim.support
        gpu["batched_64x512sq_start_it_s"] = 64 * torch_hio(i, m, s, 50, starts=64, device="cuda")
        gpu["naive_loop_64x512sq_start_it_s"] = naive_torch_loop(i, m, s, 50, 64, "cuda")
        gpu["batch_speedup"] = gpu["batched_64x512sq_start_it_s"] / gpu["naive_loop_64x512sq_start_it_s"]
        res["gpu"] = gpu
    else:
        res["gpu"] = {"skipped": "no CUDA device"}
    res["load_after"] = os.getloadavg()
    res["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
