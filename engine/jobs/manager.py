"""Queue runs, two lanes per device (heavy and light), and keep a live snapshot of each for the UI.

Each lane has a worker thread. With ``isolation="thread"`` (scripts, tests) it runs the jobs itself;
with ``isolation="process"`` (the app) it hands them to the lane's child process
(:mod:`engine.jobs.child`) and copies what they publish into memory, so the solver never waits for
the GIL behind the UI's redraws.

Every queued or running run is ``flock``ed (:meth:`Run.try_lock`) by the process that owns it, so a
second server on the same runs folder leaves it alone, and a killed one frees it. A failed run says
what happened in one plain sentence; the traceback goes to ``error.txt`` in its folder.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import re
import threading
import time
import traceback
from collections.abc import Callable

import numpy as np

from engine.core.errors import InputError
from engine.jobs.child import ChildLane
from engine.jobs.context import Cancelled, JobContext, LiveState
from engine.jobs.registry import LIGHT_KINDS, WORKFLOWS, get_workflow
from engine.runs.store import TERMINAL, Run, RunLock, RunStore

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


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# an absolute or ./ ~/ path in a message: the user needs the file's name, not where the server keeps it
_PATH = re.compile(r"(?<![\w.~/])(?:~|\.{1,2})?/[^\s'\"]*[^\s'\".,;:)\]]")


def _os_error(e: BaseException | None) -> OSError | None:
    """The OSError behind ``e``: itself, or one it was raised from or while handling (torch wraps them)."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def is_disk_full(e: BaseException) -> bool:
    """True when ``e`` comes from a full disk (or a used-up quota)."""
    os_err = _os_error(e)
    return os_err is not None and os_err.errno in _DISK_FULL


def plain_message(text: str) -> str:
    """The first line of ``text`` with every server path cut down to its file name."""
    line = (str(text).strip().splitlines() or [""])[0]
    return _PATH.sub(lambda m: os.path.basename(m.group(0).rstrip("/")) or "/", line).strip()


def failure_message(e: BaseException, iteration: int) -> str:
    """What the user reads when a run failed: one plain sentence, no paths, no exception names."""
    if isinstance(e, InputError):
        return plain_message(str(e)) or "the input was not accepted"
    at = f"the run stopped at iteration {int(iteration)}"
    os_err = _os_error(e)
    if os_err is not None and os_err.errno in _DISK_FULL:
        return f"the disk is full: {at}; free space and press Resume"
    if os_err is not None and os_err.errno == errno.ELOOP:
        return f"a file in the run folder is a link, which runs never follow: {at}; remove it and press Resume"
    if os_err is not None and os_err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"the run folder cannot be written ({os.strerror(os_err.errno).lower()}): {at}"
    if isinstance(e, MemoryError) or type(e).__name__ == "OutOfMemoryError":
        return f"the device ran out of memory: {at}; try a smaller input or another device"
    return f"{at} because of an internal error; the details are in error.txt in the run folder"


def _write_error(run: Run, text: str) -> None:
    try:
        run.write_text("error.txt", text)
    except OSError:  # a full disk: the log of this process still has it
        log.warning("run %s: could not write error.txt", run.id)


def _execute(ctx: JobContext) -> dict:
    """Run the workflow of ``ctx.run`` and record the outcome in its folder.

    Whatever happens (but the process dying), the run ends "done", "cancelled" or "failed", in memory
    and, when the disk allows it, in status.json: a full disk fails the run instead of leaving it running.
    """
    run = ctx.run
    live = ctx.live
    t0 = time.time()
    with live.lock:
        live.state, live.started, live.message = "running", t0, ""
    try:
        run.set_status(state="running", started=t0, device=str(ctx.device), message="")
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
    except Exception as e:  # a bad input, a bug or a resource problem: the traceback goes to the run folder
        state, summary, message = "failed", {}, failure_message(e, live.iteration)
        _write_error(run, traceback.format_exc())
        if not isinstance(e, InputError):
            log.exception("run %s failed", run.id)
    try:
        run.set_status(state=state, finished=time.time(), message=message, iteration=live.iteration)
    except OSError:  # the disk cannot even take status.json: memory still tells the truth
        log.exception("run %s: could not record its end (%s)", run.id, state)
    with live.lock:
        live.state, live.message = state, message
    return summary


def lane_key(device: str, light: bool) -> str:
    """The queue of ``device`` for light jobs (``"cpu/light"``) or for the others (``"cpu"``)."""
    return f"{device}/light" if light else device


def worker_idle_s() -> float:
    """Seconds a lane's child process may stay idle before it ends: ``$INVERSE_STUDIO_WORKER_IDLE_S``, default 600.

    An idle child holds torch's memory (and, on a GPU, a CUDA context); the next job starts a new one
    in a couple of seconds.
    """
    try:
        return max(0.1, float(os.environ.get("INVERSE_STUDIO_WORKER_IDLE_S", "600")))
    except ValueError:
        return 600.0


def _lock_or_refuse(run: Run, *, own: bool = False, wait: float = 0.5) -> RunLock:
    """The run's lock; :class:`InputError` when another process (``own``: this one) keeps it past ``wait``."""
    # another server's start-up check holds a run's lock for a moment, and a worker of this one releases
    # it just after the run ends: wait those out
    t_end = time.monotonic() + wait
    while True:
        lock = run.try_lock()
        if lock is not None:
            return lock
        if time.monotonic() >= t_end:
            break
        time.sleep(0.05)
    if own:
        raise InputError(f"run {run.id} is still queued or running; wait for it to end or stop it")
    raise InputError(f"run {run.id} is being run by another process on the same runs folder; "
                     "wait for it to end or stop it there")


def _prepare_resume(run: Run) -> bool:
    """Cut the run's log back to its checkpoint; True when it has one (else it restarts from 0)."""
    try:
        return run.prepare_resume() is not None
    except OSError as e:
        if is_disk_full(e):
            raise InputError(f"the disk is full, so run {run.id} cannot be resumed; free space and press "
                             "Resume again") from e
        raise InputError(f"run {run.id} cannot be resumed: its folder cannot be rewritten "
                         f"({os.strerror(e.errno).lower() if e.errno else 'an input/output error'})") from e
    except Exception as e:  # an unreadable or foreign checkpoint (weights_only refuses code)
        raise InputError(f"the checkpoint of run {run.id} cannot be read; start a new run with the same "
                         "settings") from e


def run_inline(run: Run, device: str = "cpu", resume: bool = False,
               on_publish: Callable[[int, dict, dict], None] | None = None,
               cancel_event: threading.Event | None = None) -> tuple[str, dict]:
    """Run a workflow in this thread (the CLI). Returns (final state, summary).

    The run is locked while it runs; with ``resume`` its log is first cut back to its checkpoint
    (or emptied, and the run starts again, when it has none).
    """
    lock = _lock_or_refuse(run)
    try:
        if resume:
            resume = _prepare_resume(run)
        ctx = JobContext(run, device, resume=resume, cancel_event=cancel_event, on_publish=on_publish)
        summary = _execute(ctx)
    finally:
        lock.release()
    return ctx.live.state, summary


class JobManager:
    """Runs submitted specs in the background and keeps their live state.

    Parameters
    ----------
    store : RunStore
    devices : list of str, optional
        One worker per entry; defaults to one per CUDA device, else one CPU worker.
    isolation : {"thread", "process"}
        Where a job runs: in its lane's worker thread, or in a child process per lane (started at
        the lane's first job and kept). A server that also draws pages wants "process": in one
        process a 64 px DIP run watched at 2 redraws/s took 14-22 % longer (bench/redraw.py).
    """

    def __init__(self, store: RunStore | None = None, devices: list[str] | None = None, *,
                 isolation: str = "thread") -> None:
        if isolation not in ("thread", "process"):
            raise ValueError(f"isolation must be 'thread' or 'process', not {isolation!r}")
        self.isolation = isolation
        self.store = store or RunStore()
        if devices is None:
            import torch

            n = torch.cuda.device_count() if torch.cuda.is_available() else 0
            devices = [f"cuda:{i}" for i in range(n)] or ["cpu"]
        self.devices = devices
        # one queue per lane: each device has a heavy lane and a light one (LIGHT_KINDS), each with its worker
        self._lanes = {lane_key(d, light): d for d in devices for light in (False, True)}
        self._queues: dict[str, queue.Queue] = {k: queue.Queue() for k in self._lanes}
        self._children = {k: ChildLane(k) for k in self._lanes} if isolation == "process" else {}
        self._live: dict[str, LiveState] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._locks: dict[str, RunLock] = {}  # held from queueing until the worker is done with the run
        self._lock = threading.Lock()
        self._mark_interrupted()
        for key in self._lanes:
            threading.Thread(target=self._worker, args=(key,), daemon=True, name=f"worker-{key}").start()

    # --- public API ----------------------------------------------------------
    def submit(self, spec: dict, arrays: dict[str, np.ndarray] | None = None,
               label: str | None = None) -> str:
        """Create a run for ``spec``, save its input ``arrays`` and queue it. Returns the run id."""
        get_workflow(spec.get("kind", ""))  # fail now, not in the worker, on an unknown kind
        run = self.store.create(spec, label=label)
        lock = _lock_or_refuse(run)
        try:
            try:
                for name, arr in (arrays or {}).items():
                    run.save_array(name, arr)
            except OSError as e:
                if not is_disk_full(e):
                    raise
                run.set_status(state="failed", message="the disk is full: the inputs could not be saved")
                raise InputError("the disk is full, so the run cannot be saved; free space and start it again") from e
            self._enqueue(run, resume=False, lock=lock)
        except BaseException:
            lock.release()
            raise
        return run.id

    def resume(self, run_id: str) -> str:
        """Queue an interrupted/cancelled/failed run again.

        It goes on from its checkpoint, with metrics.jsonl cut back to it; a run without one starts
        again from iteration 0 with an empty log. :class:`InputError` when the run is queued or
        running here, or is locked by another process (a second server on the same runs folder).
        """
        run = self.store.get(run_id)
        if self.is_active(run_id):
            raise InputError(f"run {run_id} is still {self._live[run_id].state}; wait for it to end or stop it")
        spec = run.spec
        if not spec or not isinstance(spec.get("params", {}), dict):
            raise InputError(f"run {run_id} cannot be resumed: its spec.json is missing or damaged")
        get_workflow(spec.get("kind", ""))  # an unknown kind is refused here, as in submit, not in the worker
        lock = _lock_or_refuse(run, own=run_id in self._locks)
        try:
            self._enqueue(run, resume=_prepare_resume(run), lock=lock)
        except BaseException:
            lock.release()
            raise
        return run_id

    #: the message of a run cancelled while it waited in the queue
    WITHDRAWN = "cancelled: taken out of the queue before it started"

    def cancel(self, run_id: str) -> None:
        """Ask a run to stop; it does so at its next step. A run still queued is cancelled at once."""
        with self._lock:
            ev = self._cancel.get(run_id)
            live = self._live.get(run_id)
        if ev is None:
            return
        ev.set()
        if live is not None:
            with live.lock:
                queued = live.state == "queued"
                if queued:
                    # the worker skips it when it comes up; say so now rather than when the run ahead ends
                    live.state, live.message = "cancelled", self.WITHDRAWN
            if queued:
                self.store.get(run_id).set_status(state="cancelled", message=self.WITHDRAWN)

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

    def worker_pids(self) -> dict[str, int]:
        """Lane -> process id of its child, for the lanes whose child is alive (``isolation="process"``)."""
        return {k: c.pid for k, c in self._children.items() if c.pid is not None}

    def close(self) -> None:
        """End the lanes' child processes (they end with this process anyway); a job still running fails."""
        for child in self._children.values():
            child.close()

    # --- internals -----------------------------------------------------------
    def _enqueue(self, run: Run, resume: bool, lock: RunLock) -> None:
        params = run.spec.get("params", {})
        device = params.get("device") or self.devices[0]
        if device == "cuda":
            device = next((d for d in self.devices if d.startswith("cuda")), "cpu")
        if device not in self.devices:
            device = self.devices[0]
        light = run.kind in LIGHT_KINDS
        live = LiveState()
        if resume:
            # keep the curve drawn so far; the workflow continues it
            for row in run.metrics()[-5000:]:
                live.history.append(row)
        run.set_status(state="queued", message="", device=device, lane="light" if light else "heavy")
        with self._lock:
            self._live[run.id] = live
            self._cancel[run.id] = threading.Event()
            self._locks[run.id] = lock
        self._queues[lane_key(device, light)].put((run.id, resume))

    def _worker(self, key: str) -> None:
        q = self._queues[key]
        device = self._lanes[key]
        child = self._children.get(key)
        idle = worker_idle_s() if child is not None else None
        while True:
            try:
                run_id, resume = q.get(timeout=idle)
            except queue.Empty:  # only with a child: this thread alone gives it jobs, so no job is lost here
                child.close()
                continue
            try:
                run = self.store.get(run_id)
                with self._lock:
                    live, ev = self._live[run_id], self._cancel[run_id]
                if ev.is_set():  # cancelled while queued (cancel() has marked it already)
                    if live.state != "cancelled":
                        run.set_status(state="cancelled", message=self.WITHDRAWN)
                        with live.lock:
                            live.state = "cancelled"
                    continue
                if child is None:
                    _execute(JobContext(run, device, resume=resume, cancel_event=ev, live=live))
                else:
                    child.execute(run, device, resume=resume, live=live, cancel_event=ev, target=WORKFLOWS[run.kind])
            except Exception as e:  # never let a worker die, nor a run stay "queued" in memory
                log.exception("worker %s: run %s", device, run_id)
                with self._lock:
                    live = self._live.get(run_id)
                if live is not None and live.state not in TERMINAL:
                    with live.lock:
                        live.state, live.message = "failed", failure_message(e, live.iteration)
            finally:
                with self._lock:
                    lock = self._locks.pop(run_id, None)
                if lock is not None:
                    lock.release()
                q.task_done()

    def _mark_interrupted(self) -> None:
        # runs left "running"/"queued" by a server process that is gone can only be resumed now; one whose
        # lock is held belongs to a live server on the same runs folder (or to this process) and is left alone
        for run in self.store.list():
            try:
                if run.status().get("state") not in ("running", "queued"):
                    continue
                lock = run.try_lock()
                if lock is None:
                    continue
                with lock:  # held while writing, so a server that queues the run now waits for it
                    if run.status().get("state") in ("running", "queued"):
                        run.set_status(state="interrupted", message="the server stopped during this run; resume it")
            except OSError:
                log.warning("run %s: could not check whether it was interrupted", run.id, exc_info=True)
