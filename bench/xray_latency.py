"""CPU latency of the chest X-ray classifier: predict, predict + saliency, and batch throughput.

Synthetic grey images (smooth shapes plus noise) stand in for films, so no data is needed; the time
includes resizing from the stated image side to the model input. Results go to a JSON file with the
machine, torch threads and the load average before and after (the numbers move with the load).

Usage::

    python bench/xray_latency.py --out bench/results/xray_latency_cpu.json [--model default] [--threads 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from engine.xray.predict import Classifier


def _image(side: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side] / side
    img = 0.75 - 0.45 * ((((xx - 0.3) / 0.16) ** 2 + ((yy - 0.5) / 0.32) ** 2) < 1)
    img -= 0.45 * ((((xx - 0.7) / 0.16) ** 2 + ((yy - 0.5) / 0.32) ** 2) < 1)
    return np.clip(img + rng.normal(0, 0.04, img.shape), 0, 1).astype(np.float32)


def _stats(ts: list[float]) -> dict:
    a = np.array(ts) * 1000
    return {
        "median_ms": round(float(np.median(a)), 2),
        "p90_ms": round(float(np.percentile(a, 90)), 2),
        "min_ms": round(float(a.min()), 2),
        "n": len(a),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--side", type=int, default=1024, help="side of the synthetic input images")
    ap.add_argument("--n", type=int, default=30, help="images for the single-image timings")
    ap.add_argument("--batch-images", type=int, default=256)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for inference")
    ap.add_argument("--dir", default=None, help="optional folder of image files: time read + predict")
    ap.add_argument("--dir-images", type=int, default=200)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    load_before = [round(v, 2) for v in os.getloadavg()]
    clf = Classifier.load(a.model)
    clf.threads = a.threads
    imgs = [_image(a.side, s) for s in range(a.n)]
    clf.predict(imgs[0])  # warm-up: first call allocates
    res: dict = {}

    ts = []
    for im in imgs:
        t = time.perf_counter()
        clf.predict(im)
        ts.append(time.perf_counter() - t)
    res["predict"] = _stats(ts)

    for method, n in (("gradcam", a.n), ("gradcampp", 10), ("ig", 5), ("occlusion", 3)):
        ts = []
        for im in imgs[:n]:
            t = time.perf_counter()
            clf.predict(im)
            clf.saliency(im, method)
            ts.append(time.perf_counter() - t)
        res[f"predict+{method}"] = _stats(ts)

    ts = []
    for im in imgs[:3]:
        t = time.perf_counter()
        clf.sanity_check(im, "gradcam")
        ts.append(time.perf_counter() - t)
    res["sanity_check_gradcam"] = _stats(ts)

    many = [imgs[i % len(imgs)] for i in range(a.batch_images)]
    t = time.perf_counter()
    clf.predict_batch(many, batch_size=a.batch)
    dt_s = time.perf_counter() - t
    res["batch_predict"] = {
        "images": len(many),
        "batch": a.batch,
        "seconds": round(dt_s, 2),
        "images_per_minute": round(len(many) / dt_s * 60),
    }

    small = [_image(clf.input_size, s) for s in range(a.batch_images)]
    t = time.perf_counter()
    clf.predict_batch(small, batch_size=a.batch)
    dt_s = time.perf_counter() - t
    res["batch_predict_model_size_inputs"] = {
        "images": len(small),
        "side": clf.input_size,
        "seconds": round(dt_s, 2),
        "images_per_minute": round(len(small) / dt_s * 60),
    }
    if a.dir:
        from engine.cli.xray import _collect, read_grey

        files = _collect([a.dir])[: a.dir_images]
        t = time.perf_counter()
        read = [read_grey(f)[0] for f in files]
        t_read = time.perf_counter() - t
        clf.predict_batch(read, batch_size=a.batch)
        dt_s = time.perf_counter() - t
        res["files_read_and_predict"] = {
            "images": len(files),
            "seconds": round(dt_s, 2),
            "read_seconds": round(t_read, 2),
            "images_per_minute": round(len(files) / dt_s * 60),
        }
    out = {
        "model": clf.name,
        "image_side": a.side,
        "results": res,
        "machine": {
            "cpu": _cpu_name(),
            "cores": os.cpu_count(),
            "torch_threads": a.threads,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "load_before": load_before,
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
