"""The one job manager the app's sessions share, the run id kept in the URL, and the queue as pages see it."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import streamlit as st

from engine.jobs import JobManager
from engine.runs import RunStore, default_runs_root

#: the page (its ``url_path``) that shows a run of each kind, and the URL parameter that names the run there
PAGE_OF_KIND = {"restore": "restoration", "mri": "mri", "cdi": "phase-retrieval", "gpr": "generalized-pr",
                "gpr_sweep": "generalized-pr", "xray": "xray", "federated": "federated"}
URL_PARAM_OF_KIND = {"gpr_sweep": "sweep"}


def isolation() -> str:
    """Where the app's jobs run: ``$INVERSE_STUDIO_ISOLATION``, "process" (the default) or "thread".

    In a child process per lane, because in this process the solver would wait for the GIL behind
    every redraw of a watching browser (``bench/redraw.py`` measures both).
    """
    value = os.environ.get("INVERSE_STUDIO_ISOLATION", "process").strip().lower()
    if value not in ("process", "thread"):
        logging.getLogger(__name__).warning("INVERSE_STUDIO_ISOLATION=%r is not 'process' or 'thread'; "
                                            "the jobs run in child processes", value)
        return "process"
    return value


@st.cache_resource(show_spinner=False)
def _manager(root: str, isolation: str) -> JobManager:
    return JobManager(RunStore(root), isolation=isolation)


def manager() -> JobManager:
    """The server-wide job manager (runs under ``$INVERSE_STUDIO_RUNS`` or the per-user default)."""
    return _manager(str(default_runs_root()), isolation())


def active_run_id(kind: str | None = None) -> str | None:
    """The run shown on this page: ``?run=...`` in the URL, if it exists (and is of ``kind``)."""
    rid = st.query_params.get("run")
    if not rid:
        return None
    try:
        run = manager().store.get(rid)
    except ValueError:
        return None
    if kind is not None and run.kind != kind:
        return None
    return rid


def set_active_run(run_id: str | None) -> None:
    """Put the run in the URL so a refresh or a shared link reopens it."""
    if run_id is None:
        st.query_params.pop("run", None)
    else:
        st.query_params["run"] = run_id


def snapshot(run_id: str) -> dict:
    """The manager's snapshot of a run."""
    return manager().snapshot(run_id)


def cancel(run_id: str) -> None:
    """Stop a running run at its next step, or take a queued one out of the queue (it reads "cancelled" at once)."""
    manager().cancel(run_id)


@dataclass(frozen=True)
class Ahead:
    """A run that starts (or is running) before the one waiting."""

    run_id: str
    kind: str
    state: str
    iteration: int = 0
    budget: int | None = None
    seconds_left: float | None = None  # at its recent pace, if it runs to its budget (running ones only)


@dataclass(frozen=True)
class QueueSpot:
    """Where a queued run stands on its device's queue."""

    position: int  # 1: the next to start
    device: str
    ahead: list[Ahead] = field(default_factory=list)


def _budget(params: dict, extra: dict) -> int | None:
    for v in (params.get("max_iters"), extra.get("max_iters"), extra.get("cycles"), params.get("iters")):
        try:
            if v is not None and int(v) > 0:
                return int(v)
        except (TypeError, ValueError):
            continue
    return None


def _seconds_left(snap: dict, budget: int | None) -> float | None:
    """Time a running run needs to reach its budget at its recent pace (None until that pace is known).

    The pace comes from the steps of the last half minute, not from the start, which also counts the
    set-up (building the network, a TV baseline) and would inflate the estimate of a young run.
    """
    it = int(snap.get("iteration") or 0)
    rows = [r for r in snap.get("history") or [] if r.get("t") is not None and r.get("iteration") is not None]
    if budget is None or it >= budget or len(rows) < 5:
        return None
    recent = [r for r in rows if r["t"] >= rows[-1]["t"] - 30.0]
    steps = recent[-1]["iteration"] - recent[0]["iteration"]
    span = recent[-1]["t"] - recent[0]["t"]
    if len(recent) < 5 or steps <= 0 or span < 1.0:
        return None
    return (budget - it) * span / steps


def queue_spot(run_id: str) -> QueueSpot | None:
    """The queue position of a run queued in this server, and the runs ahead of it; None when it is not queued.

    Each device has one first-in first-out queue: ahead of a run are the one running on its device and
    the runs queued there before it (status.json's ``updated`` is the time a run was queued, and no
    other write touches it until the run starts).
    """
    mgr = manager()
    if snapshot(run_id)["state"] != "queued":
        return None
    me = mgr.store.get(run_id).status()
    device = str(me.get("device", ""))
    mine = (float(me.get("updated") or 0.0), run_id)
    running: list[Ahead] = []
    queued: list[tuple[tuple[float, str], Ahead]] = []
    for run in mgr.store.list():
        if run.id == run_id or not mgr.is_active(run.id):
            continue
        status = run.status()
        # a light job (GPR, X-ray) has its own lane: only the runs of the same lane are ahead of it
        if str(status.get("device", "")) != device or status.get("lane", "heavy") != me.get("lane", "heavy"):
            continue
        snap = mgr.snapshot(run.id)
        budget = _budget(run.spec.get("params", {}), snap.get("extra", {}))
        if snap["state"] == "running":
            running.append(Ahead(run.id, run.kind, "running", int(snap["iteration"]), budget,
                                 _seconds_left(snap, budget)))
        elif snap["state"] == "queued":
            order = (float(status.get("updated") or 0.0), run.id)
            if order < mine:
                queued.append((order, Ahead(run.id, run.kind, "queued", 0, budget)))
    queued.sort(key=lambda t: t[0])
    return QueueSpot(position=len(queued) + 1, device=device, ahead=running + [a for _, a in queued])


def run_link(run_id: str, kind: str) -> str:
    """A Markdown link to the page that shows the run (the plain id, in code, where no page does)."""
    page = PAGE_OF_KIND.get(kind)
    if page is None:
        return f"`{run_id}`"
    # relative, so it also works when the app is served under a base path
    return f"[`{run_id}`]({page}?{URL_PARAM_OF_KIND.get(kind, 'run')}={run_id})"
