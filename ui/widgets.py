"""Small Streamlit pieces the workflow pages share: run header, live status, downloads."""

from __future__ import annotations

import time

import streamlit as st

from engine.runs import Run
from ui.jobs import manager, set_active_run

STATE_ICON = {"queued": ":material/schedule:", "running": ":material/progress_activity:",
              "done": ":material/check_circle:", "failed": ":material/error:",
              "cancelled": ":material/stop_circle:", "interrupted": ":material/pause_circle:"}


def is_active(state: str) -> bool:
    return state in ("queued", "running")


def run_header(run: Run, snap: dict) -> None:
    """One line: run id, state, iteration, elapsed time; and the Stop / Resume / Close buttons."""
    state = snap["state"]
    started = snap.get("started")
    elapsed = f" · {time.time() - started:.0f} s" if started and is_active(state) else ""
    cols = st.columns([6, 1, 1])
    cols[0].markdown(f"{STATE_ICON.get(state, '')} **{state}** · iteration {snap['iteration']}{elapsed} "
                     f"· run `{run.id}`")
    if snap.get("message"):
        (st.error if state == "failed" else st.info)(snap["message"])
    if is_active(state):
        if cols[1].button("Stop", key=f"stop-{run.id}", icon=":material/stop:", type="primary"):
            manager().cancel(run.id)
            st.toast("Stopping at the next step")
    elif state in ("interrupted", "cancelled", "failed") and run.file("checkpoint.pt").exists():
        if cols[1].button("Resume", key=f"resume-{run.id}", icon=":material/play_arrow:"):
            manager().resume(run.id)
            st.rerun()
    if cols[2].button("Close", key=f"close-{run.id}", icon=":material/close:",
                      help="Back to the setup; the run stays in the Runs page"):
        set_active_run(None)
        st.rerun()


def live_header(rid: str, was_active: bool) -> tuple[Run, dict]:
    """Start of every live panel: the run, its snapshot and the header line.

    When the run was active at the last full redraw and has ended since, rerun the whole page
    so it shows the results.
    """
    mgr = manager()
    run = mgr.store.get(rid)
    snap = mgr.snapshot(rid)
    if was_active and not is_active(snap["state"]):
        st.rerun()
    run_header(run, snap)
    return run, snap
