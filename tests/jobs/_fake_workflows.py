"""A tiny workflow for testing the job manager: counts, checkpoints, honours cancel."""

from __future__ import annotations

import os
import time

import numpy as np
import torch


def run(ctx) -> dict:
    p = ctx.params
    steps, delay = int(p.get("steps", 10)), float(p.get("delay", 0.01))
    start, total = 0, 0.0
    if ctx.resume:
        ck = ctx.run.load_checkpoint()
        start, total = int(ck["iteration"]), float(ck["total"])
        ctx.run.truncate_metrics(start)
    if p.get("fail"):
        raise RuntimeError("planned failure")
    x = ctx.run.load_array("x") if ctx.run.has_array("x") else np.zeros(1)
    for it in range(start + 1, steps + 1):
        if ctx.cancelled():
            break
        time.sleep(delay)
        total += float(x.sum()) + 1
        ctx.publish(it, {"loss": 1.0 / it, "total": total}, preview=np.full((4, 4), it % 256, np.uint8))
        if it % int(p.get("checkpoint_every", 5)) == 0:
            ctx.run.save_checkpoint({"iteration": torch.tensor(it), "total": torch.tensor(total)})
        if p.get("stop_at") == it:  # simulate the process dying: leave status "running"
            raise KeyboardInterrupt
    return {"total": total, "last": it, "pid": os.getpid()}
