"""A lane's child process: the jobs of one lane run in a Python interpreter of their own.

In one process the solver shares the GIL with everything else the app's server does: a 64 px DIP
step is mostly Python, so each redraw for a watching browser (a plotly figure, its JSON, the
WebSocket) is taken from the solver. In a child the solver has its interpreter to itself; the parent
only copies what each step publishes into the :class:`LiveState` the pages read
(``bench/redraw.py`` measures both ways).

The child (:func:`main`, given the socket's file descriptor) is started once per lane and kept for the next jobs,
so torch and the models are imported once; it imports nothing of the server. Parent and child talk
over one socket pair: jobs and "cancel" one way, each published step and the job's end the other.
The child ends when the lane has been idle for a while (``$INVERSE_STUDIO_WORKER_IDLE_S``), when asked,
and at once when the server is gone (its end of the socket closes), even in a step that publishes
nothing: its run is then left "running" and unlocked, so the next server marks it interrupted
rather than racing an orphan that goes on writing.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from engine.jobs.context import JobContext, LiveState
from engine.runs.store import TERMINAL, Run

log = logging.getLogger(__name__)

#: how often the parent looks at the cancel flag and the child's health while it waits for messages
POLL_S = 0.1
#: exit status of a child whose parent has gone
ORPHANED = 3


class _PipeContext(JobContext):
    """A :class:`JobContext` that also sends each published step to the parent."""

    def __init__(self, *args: Any, conn: Connection, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._conn = conn

    def publish(self, iteration: int, metrics: dict[str, float], preview: np.ndarray | None = None,
                log: bool = True, **extra: Any) -> None:
        super().publish(iteration, metrics, preview=preview, log=log, **extra)
        row = self.live.history[-1]  # the row just made (this process has no other publisher)
        _send(self._conn, ("step", int(iteration), row, preview, extra))


def _send(conn: Connection, message: tuple) -> None:
    try:
        conn.send(message)
    except OSError:  # the server is gone: see the module's docstring
        os._exit(ORPHANED)


def _read(conn: Connection, jobs: queue.Queue) -> None:
    """The child's reader thread: jobs go to ``jobs`` with a cancel flag each; "cancel" sets the current one."""
    current = threading.Event()
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            os._exit(ORPHANED)  # the server is gone, or has closed this lane
        if msg is None:
            os._exit(0)
        if msg[0] == "cancel":
            current.set()
        else:
            current = threading.Event()
            jobs.put((msg[1:], current))


def main(argv: list[str] | None = None) -> None:
    """The child's loop: run each job the parent sends, publishing its steps and reporting its end."""
    from engine.jobs import manager as _manager
    from engine.jobs.registry import WORKFLOWS

    argv = sys.argv[1:] if argv is None else argv
    conn = Connection(int(argv[0]))
    # Ctrl-C in the terminal reaches the whole process group: the server decides what happens to its jobs
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    jobs: queue.Queue = queue.Queue()
    threading.Thread(target=_read, args=(conn, jobs), daemon=True, name="from-server").start()
    while True:
        (path, device, resume, kind, target), cancel = jobs.get()
        WORKFLOWS[kind] = target  # the parent's entry, which a test or a plug-in may have set there
        ctx = _PipeContext(Run(path), device, resume=resume, cancel_event=cancel, conn=conn)
        _manager._execute(ctx)
        _send(conn, ("end", ctx.live.state, ctx.live.message))


class ChildLane:
    """The parent's handle on one lane's child: starts it when needed and runs jobs through it.

    Parameters
    ----------
    name : str
        The lane (``"cpu"``, ``"cpu/light"``, ``"cuda:0"``), for the log.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The child's process id while it lives."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _ensure(self) -> Connection:
        if self._proc is not None and self._proc.poll() is None and self._conn is not None:
            return self._conn
        self._drop()
        ours, theirs = socket.socketpair()
        # the child finds what this process imports from where it does (a checkout, a plug-in's folder)
        path = [p for p in sys.path if p and os.path.isdir(p)]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path + [os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        try:
            # -c, not -m: the package imports this module, and runpy warns about running it a second time
            self._proc = subprocess.Popen([sys.executable, "-c", "from engine.jobs.child import main; main()",
                                           str(theirs.fileno())],
                                          pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        finally:
            theirs.close()  # the child has its copy; with ours alone here, the child's death reads as EOF
        self._conn = Connection(ours.detach())
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def execute(self, run: Run, device: str, *, resume: bool, live: LiveState, cancel_event: threading.Event,
                target: str) -> None:
        """Run ``run`` in the child and keep ``live`` up to date until it ends.

        A child that dies during the run (killed for memory, a crash in native code) fails the run
        with a plain message, and the next job starts a new child.
        """
        with self._lock:
            t0 = time.time()
            with live.lock:  # the child writes status.json; memory says the same from now on
                live.state, live.started, live.message = "running", t0, ""
            try:
                conn = self._ensure()
                conn.send(("job", str(run.path), str(device), bool(resume), run.kind, target))
                self._follow(conn, live, cancel_event)
            except (EOFError, OSError):
                self._lost(run, live)

    def _follow(self, conn: Connection, live: LiveState, cancel_event: threading.Event) -> None:
        asked = False
        while True:
            if cancel_event.is_set() and not asked:
                conn.send(("cancel",))
                asked = True
            if not conn.poll(POLL_S):
                if self._proc is None or self._proc.poll() is not None:
                    raise EOFError("the child ended")
                continue
            msg = conn.recv()
            if msg[0] == "step":
                _, iteration, row, preview, extra = msg
                with live.lock:
                    live.iteration = iteration
                    live.history.append(row)
                    if preview is not None:
                        live.preview = preview
                    if extra:
                        live.extra.update(extra)
            elif msg[0] == "end":
                with live.lock:
                    live.state, live.message = msg[1], msg[2]
                return

    def _lost(self, run: Run, live: LiveState) -> None:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        why = (f"was killed by signal {-code}, perhaps for want of memory" if code is not None and code < 0 else
               f"exited with status {code}" if code is not None else "stopped answering")
        message = (f"the run stopped at iteration {live.iteration} because its worker process {why}; "
                   "Resume goes on from its last checkpoint")
        log.error("run %s: the %s worker process %s", run.id, self.name, why)
        if run.status().get("state") not in TERMINAL:
            try:
                run.set_status(state="failed", finished=time.time(), message=message, iteration=live.iteration)
            except OSError:
                log.exception("run %s: could not record its end", run.id)
        with live.lock:
            live.state, live.message = "failed", message
        self._drop()

    def close(self, timeout: float = 5.0) -> None:
        """Ask the child to end, and stop it after ``timeout`` s (a job it is running then ends "failed")."""
        proc, conn = self._proc, self._conn
        if proc is None:
            return
        try:
            if proc.poll() is None and conn is not None:
                conn.send(None)
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._proc is proc:
            self._drop()
