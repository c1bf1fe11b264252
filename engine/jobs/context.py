"""What a running workflow sees: its run folder, its device, a cancel flag and a way to publish."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.runs.store import Run

HISTORY = 5000  # metric rows kept in memory per run; the full record is metrics.jsonl


class Cancelled(Exception):
    """Raised by :meth:`JobContext.check` when the user asked the run to stop."""


@dataclass
class LiveState:
    """The small, thread-safe picture of a run that the UI polls."""

    state: str = "queued"
    iteration: int = 0
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))
    preview: np.ndarray | None = None
    extra: dict = field(default_factory=dict)
    message: str = ""
    started: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def snapshot(self) -> dict:
        with self.lock:
            return {"state": self.state, "iteration": self.iteration, "history": list(self.history),
                    "preview": self.preview, "extra": dict(self.extra), "message": self.message,
                    "started": self.started}


class JobContext:
    """Handed to ``workflow.run(ctx)``.

    Attributes
    ----------
    run : Run
        The run folder.
    device : torch.device
    resume : bool
        True when the run restarts from its checkpoint.
    """

    def __init__(self, run: Run, device: Any, resume: bool = False,
                 cancel_event: threading.Event | None = None, live: LiveState | None = None,
                 on_publish: Callable[[int, dict, dict], None] | None = None) -> None:
        self.run = run
        self.device = device
        self.resume = resume
        self._cancel = cancel_event or threading.Event()
        self.live = live or LiveState()
        self._on_publish = on_publish

    @property
    def params(self) -> dict:
        return self.run.spec.get("params", {})

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` when a stop was asked for."""
        if self._cancel.is_set():
            raise Cancelled()

    def publish(self, iteration: int, metrics: dict[str, float], preview: np.ndarray | None = None,
                log: bool = True, **extra: Any) -> None:
        """Publish the state of one step (live for the UI; ``metrics`` also logged when ``log``)."""
        row = {"iteration": int(iteration), **{k: _num(v) for k, v in metrics.items()}}
        row["t"] = round(time.time(), 3)
        if log:
            self.run.log(row)
        with self.live.lock:
            self.live.iteration = int(iteration)
            self.live.history.append(row)
            if preview is not None:
                self.live.preview = preview
            if extra:
                self.live.extra.update(extra)
        if self._on_publish is not None:
            self._on_publish(int(iteration), row, extra)


def _num(v: Any) -> Any:
    if isinstance(v, (np.generic,)):
        return v.item()
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:  # 0-d tensors
        return v.item()
    return v
