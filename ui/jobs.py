"""The one job manager the app's sessions share, and the run id kept in the URL."""

from __future__ import annotations

import streamlit as st

from engine.jobs import JobManager
from engine.runs import RunStore, default_runs_root


@st.cache_resource(show_spinner=False)
def _manager(root: str) -> JobManager:
    return JobManager(RunStore(root))


def manager() -> JobManager:
    """The server-wide job manager (runs under ``$INVERSE_STUDIO_RUNS`` or the per-user default)."""
    return _manager(str(default_runs_root()))


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
