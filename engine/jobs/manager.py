"""Queue runs, one worker thread per device, and keep a live snapshot of each for the UI.

Threads (not processes) keep the snapshot in memory without copies; torch releases the
GIL inside its kernels, so the Streamlit script thread stays responsive.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable

import numpy as np

from engine.core.errors import InputError
from engine.jobs.context import Cancelled, JobContext, LiveState
from engine.jobs.registry import get_workflow
from engine.runs.store import TERMINAL, Run, RunStore

log = logging.getLogger(__name__)


def torch_threads() -> int:
    """Intra-op threads for a job: ``$INVERSE_STUDIO_THREADS``, default 1.

    One thread is the default because torch's spinning worker threads slow a step down by an
    order of magnitude as soon as another process holds a core (measured on a 2-core machine:
    0.19 s per cpu-preset step with 1 thread, 4.1 s with 2 threads beside another job).
    """
    try:
        return max(1, int(os.environ.get("INVERSE_STUDIO_THREADS", "1")))
    except ValueError:
        return 1


def _execute(ctx: JobContext) -> dict:
    """Run the workflow of ``ctx.run`` and record the outcome in its folder."""
    run = ctx.run
    live = ctx.live
    t0 = time.time()
    with live.lock:
        live.state, live.started, live.message = "running", t0, ""
    run.set_status(state="running", started=t0, device=str(ctx.device), message="")
    try:
        import torch

        fn = get_workflow(run.kind)
        if str(ctx.device).startswith("cpu"):
            torch.set_num_threads(torch_threads())
        device = torch.device(ctx.device)
        ctx.device = device
        summary = fn(ctx) or {}
        state = "cancelled" if ctx.cancelled() else "done"
        summary.setdefault("wall_seconds", round(time.time() - t0, 3))
        run.write_json("summary.json", summary)
        message = "stopped by the user" if state == "cancelled" else ""
    except Cancelled:
        state, summary, message = "cancelled", {}, "stopped by the user"
    except InputError as e:
        state, summary, message = "failed", {}, str(e)
    except Exception as e:  # a bug or a resource problem: keep the traceback in the run folder
        state, summary, message = "failed", {}, f"{type(e).__name__}: {e}"
        (run.path / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
        log.exception("run %s failed", run.id)
    run.set_status(state=state, finished=time.time(), message=message,
                   iteration=ctx.live.iteration)
    with live.lock:
        live.state, live.message = state, message
    return summary


def run_inline(run: Run, device: str = "cpu", resume: bool = False,
               on_publish: Callable[[int, dict, dict], None] | None = None,
               cancel_event: threading.Event | None = None) -> tuple[str, dict]:
    """Run a workflow in this thread (the CLI). Returns (final state, summary)."""
    ctx = JobContext(run, device, resume=resume, cancel_event=cancel_event, on_publish=on_publish)
    summary = _execute(ctx)
    return ctx.live.state, summary


class JobManager:
    """Runs submitted specs in the background and keeps their live state.

    Parameters
    ----------
    store : RunStore
    devices : list of str, optional
        One worker per entry; defaults to one per CUDA device, else one CPU worker.
    """

    def __init__(self, store: RunStore | None = None, devices: list[str] | None = None) -> None:
        self.store = store or RunStore()
        if devices is None:
            import torch

            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            devices = [f"cuda:{i}" for i in range(n)] or ["cpu"]
        self.devices = devices
        self._queues: dict[str, queue.Queue] = {d: queue.Queue() for d in devices}
        self._live: dict[str, LiveState] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._mark_interrupted()
        for d in devices:
            threading.Thread(target=self._worker, args=(d,), daemon=True, name=f"worker-{d}").start()

    # --- public API ----------------------------------------------------------
    def submit(self, spec: dict, arrays: dict[str, np.ndarray] | None = None,
               label: str | None = None) -> str:
        """Create a run for ``spec``, save its input ``arrays`` and queue it. Returns the run id."""
        get_workflow(spec.get("kind", ""))  # fail now, not in the worker, on an unknown kind
        run = self.store.create(spec, label=label)
        for name, arr in (arrays or {}).items():
            run.save_array(name, arr)
        self._enqueue(run, resume=False)
        return run.id

    def resume(self, run_id: str) -> str:
        """Queue an interrupted/cancelled/failed run again, from its checkpoint if it has one."""
        run = self.store.get(run_id)
        if self.is_active(run_id):
            raise InputError(f"run {run_id} is still {self._live[run_id].state}")
        self._enqueue(run, resume=run.file("checkpoint.pt").exists())
        return run_id

    def cancel(self, run_id: str) -> None:
        """Ask a run to stop; it does so at its next step."""
        with self._lock:
            ev = self._cancel.get(run_id)
        if ev is not None:
            ev.set()

    def is_active(self, run_id: str) -> bool:
        live = self._live.get(run_id)
        return live is not None and live.state in ("queued", "running")

    def snapshot(self, run_id: str) -> dict:
        """Live state of a run (from memory, or rebuilt from its folder after a restart)."""
        live = self._live.get(run_id)
        if live is not None:
            return live.snapshot()
        run = self.store.get(run_id)
        st = run.status()
        snaps = run.snapshots()
        preview = None
        if snaps:
            from PIL import Image

            preview = np.asarray(Image.open(snaps[-1][1]))
        rows = run.metrics()
        return {"state": st.get("state", "unknown"), "iteration": st.get("iteration", 0),
                "history": rows[-5000:], "preview": preview, "extra": st.get("extra", {}),
                "message": st.get("message", ""), "started": st.get("started")}

    def wait(self, run_id: str, timeout: float = 60.0) -> str:
        """Block until the run reaches a terminal state (tests and scripts)."""
        t_end = time.time() + timeout
        while time.time() < t_end:
            state = self.snapshot(run_id)["state"]
            if state in TERMINAL:
                return state
            time.sleep(0.05)
        raise TimeoutError(f"run {run_id} still running after {timeout} s")

    # --- internals -----------------------------------------------------------
    def _enqueue(self, run: Run, resume: bool) -> None:
        params = run.spec.get("params", {})
        device = params.get("device") or self.devices[0]
        if device == "cuda":
            device = next((d for d in self.devices if d.startswith("cuda")), "cpu")
        if device not in self._queues:
            device = self.devices[0]
        live = LiveState()
        if resume:
            # keep the curve drawn so far; the workflow continues it
            for row in run.metrics()[-5000:]:
                live.history.append(row)
        with self._lock:
            self._live[run.id] = live
            self._cancel[run.id] = threading.Event()
        run.set_status(state="queued", message="", device=device)
        self._queues[device].put((run.id, resume))

    def _worker(self, device: str) -> None:
        q = self._queues[device]
        while True:
            run_id, resume = q.get()
            try:
                run = self.store.get(run_id)
                with self._lock:
                    live, ev = self._live[run_id], self._cancel[run_id]
                if ev.is_set():  # cancelled while queued
                    run.set_status(state="cancelled", message="stopped before it started")
                    with live.lock:
                        live.state = "cancelled"
                    continue
                _execute(JobContext(run, device, resume=resume, cancel_event=ev, live=live))
            except Exception:  # never let a worker die
                log.exception("worker %s: run %s", device, run_id)
            finally:
                q.task_done()

    def _mark_interrupted(self) -> None:
        # runs left "running"/"queued" by a previous server process can only be resumed now
        for run in self.store.list():
            if run.status().get("state") in ("running", "queued"):
                run.set_status(state="interrupted", message="the server stopped during this run; resume it")
