"""Small Streamlit pieces the workflow pages share: run header, queue, Run button, live status."""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from streamlit import config as st_config

from engine.core.errors import InputError
from engine.runs import Run
from ui.jobs import cancel, manager, queue_spot, run_link, set_active_run, snapshot
from ui.views.curves import apply_log_axis, curve_figure, series, thin
from ui.views.images import display_uint8

STATE_ICON = {"queued": ":material/schedule:", "running": ":material/progress_activity:",
              "done": ":material/check_circle:", "failed": ":material/error:",
              "cancelled": ":material/stop_circle:", "interrupted": ":material/pause_circle:"}

_GUARD = "_run_guard"
# how long the run a Run button has just queued stands for the page's run while the URL may still lag behind
GUARD_SECONDS = 30.0


def is_active(state: str) -> bool:
    return state in ("queued", "running")


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def stop_button(container: Any, rid: str, state: str) -> None:
    """Stop for a running run, Cancel for a queued one (it leaves the queue); nothing otherwise."""
    if state == "running":
        if container.button("Stop", key=f"stop-{rid}", icon=":material/stop:", type="primary"):
            cancel(rid)
            st.toast("Stopping at the next step")
    elif state == "queued":
        if container.button("Cancel", key=f"cancel-{rid}", icon=":material/cancel:", type="primary",
                             help="Take the run out of the queue; it never starts"):
            cancel(rid)
            st.rerun()  # the whole page: its Run button comes back


def _ahead_text(a: Any) -> str:
    text = f"{run_link(a.run_id, a.kind)} ({a.kind}, {a.state}"
    if a.state == "running":
        text += f", iteration {a.iteration}" + (f" / {a.budget}" if a.budget else "")
        if a.seconds_left is not None:
            text += f", about {_duration(a.seconds_left)} more at its recent pace if it runs to its budget"
    return text + ")"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def queue_note(rid: str) -> bool:
    """For a queued run: its place in line and what it waits for. True when it is queued."""
    spot = queue_spot(rid)
    if spot is None:
        return False
    if spot.ahead:
        waits = ", then ".join(_ahead_text(a) for a in spot.ahead)
        st.info(f"**queued · {ordinal(spot.position)} in line** on {spot.device}: waiting for {waits}. "
                "Its curves appear when it starts; Cancel takes it out of the queue.",
                icon=":material/schedule:")
    else:  # the worker is between two runs
        st.info(f"**queued · {ordinal(spot.position)} in line** on {spot.device}: starting now.",
                icon=":material/schedule:")
    return True


def run_header(run: Run, snap: dict) -> None:
    """One line: run id, state, iteration, elapsed time; the Stop (Cancel) / Resume / Edit / Close buttons; the queue.

    "Edit as a new run" (where the run's page can take its settings) fills the page's widgets with the
    run's settings and closes it; see :mod:`ui.edit`.
    """
    from ui.edit import edit_button  # ui.edit closes runs with forget_run, below

    state = snap["state"]
    started = snap.get("started")
    elapsed = f" · {time.time() - started:.0f} s" if started and is_active(state) else ""
    cols = st.columns([5, 1, 2, 1])
    where = "" if state == "queued" else f" · iteration {snap['iteration']}"
    cols[0].markdown(f"{STATE_ICON.get(state, '')} **{state}**{where}{elapsed} · run `{run.id}`")
    if snap.get("message"):
        (st.error if state == "failed" else st.info)(snap["message"])
    if is_active(state):
        stop_button(cols[1], run.id, state)
    elif state in ("interrupted", "cancelled", "failed"):
        # without a checkpoint (stopped before the first one) the run starts again from 0 with an empty log
        has_ckpt = run.file("checkpoint.pt").exists()
        if cols[1].button("Resume" if has_ckpt else "Restart", key=f"resume-{run.id}", icon=":material/play_arrow:",
                          help="go on from the last checkpoint" if has_ckpt else
                          "no checkpoint was saved: start again from iteration 0"):
            try:
                manager().resume(run.id)
            except InputError as e:  # still in the queue (cancelled there), or run by another server
                st.error(str(e))
            else:
                st.rerun()
    edit_button(cols[2], run)
    if cols[3].button("Close", key=f"close-{run.id}", icon=":material/close:",
                      help="Back to the setup; the run stays in the Runs page"):
        forget_run(run.id)
        set_active_run(None)
        st.rerun()
    if state == "queued":
        queue_note(run.id)


def live_header(rid: str, was_active: bool) -> tuple[Run, dict]:
    """Start of every live panel: the run, its snapshot and the header line (with the queue while it waits).

    When the run was active at the last full redraw and has ended since, rerun the whole page
    so it shows the results.
    """
    run = live_run(rid)
    snap = snapshot(rid)
    if was_active and not is_active(snap["state"]):
        st.rerun()
    run_header(run, snap)
    return run, snap


# --- cheap redraws of the live panels ------------------------------------------------------------------
# A live panel redraws more than twice a second in the server process that also runs the solver (a
# thread), so every millisecond it spends is taken from the solver (the GIL, and the machine's cores).
# It reads nothing from the run folder per tick, encodes each image once, and keeps its plotly
# figures as plain dicts whose data it replaces: building a figure with its template costs 40-100 ms,
# plotly's own copy of it on every send ~15 ms.
#
# Streamlit also runs a full gc.collect(2) after every script run, fragment runs included: with torch
# and plotly loaded that is 50-150 ms holding the GIL per redraw, more than the redraw itself (a watched
# 64 px restoration of 300 iterations: 37 s with it, 15 s without). Python's own
# generational collector still runs. The same can be set as ``[runner] postScriptGC = false``.
st_config.set_option("runner.postScriptGC", False)

_RUNS = "_live_runs"
_FIGS = "_live_figs"
_IMAGES = "_live_images"
#: seconds between two redraws of a live panel: a little under half a second, so that a redraw that
#: ends late still leaves two a second
LIVE_EVERY_S = 0.4
#: seconds between two redraws of the live curves: a plotly chart is drawn anew by the browser each time
CURVES_EVERY_S = 1.0
#: points per live curve: enough to read its shape, few enough to send and draw twice a second
LIVE_POINTS = 300


def live_run(rid: str) -> Run:
    """The run ``rid``, kept for the session: its spec is read from disk once, not on every redraw."""
    runs = st.session_state.setdefault(_RUNS, {})
    run = runs.get(rid)
    if run is None:
        if len(runs) >= 8:  # a long session opens many runs; keep the latest few
            runs.pop(next(iter(runs)))
        run = runs[rid] = manager().store.get(rid)
    return run


def png_image(img: np.ndarray, min_side: int = 256) -> bytes:
    """``img`` as :func:`display_uint8` shows it, as PNG bytes (pass ``output_format="PNG"`` to st.image)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(display_uint8(img, min_side)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def live_image(where: Any, img: np.ndarray, *, key: str, caption: str, min_side: int = 256) -> None:
    """``where.image`` of a live preview, encoded once per new preview (the same array object: no work).

    The bytes stay the same until the run publishes a new preview, so the browser keeps the same URL
    and fetches nothing between two previews.
    """
    held = st.session_state.setdefault(_IMAGES, {})
    got = held.get(key)
    if got is None or got[0] is not img or got[1] != min_side:
        got = held[key] = (img, min_side, png_image(img, min_side))
    where.image(got[2], caption=caption, output_format="PNG")


class LiveFigure(go.Figure):
    """A figure sent as the plain dict it holds, which :func:`live_chart` edits in place between redraws.

    ``st.plotly_chart`` sends ``to_dict()``; plotly's own deep-copies the whole layout and template
    each time, which is most of a redraw's cost.
    """

    def __init__(self, plain: dict) -> None:
        super().__init__(plain)
        self._plain = go.Figure.to_dict(self)  # plotly figures take no new public attributes

    @property
    def plain(self) -> dict:
        """The dict that is sent."""
        return self._plain

    def to_dict(self) -> dict:
        return self._plain


def live_chart(where: Any, rows: Sequence[dict], keys: Sequence[str], title: str, *, key: str,
               log_y: bool = False, marker: int | None = None, marker_label: str = "t*",
               labels: dict[str, str] | None = None) -> None:
    """:func:`curve_figure` of ``rows`` in ``where``, built once per session and ``key`` and then updated.

    The curve is thinned to :data:`LIVE_POINTS`; a moving marker moves the figure's line. Only a
    change of shape (traces appearing, a marker appearing) builds the figure again.
    """
    rows = thin(rows, LIVE_POINTS)
    marker = marker if marker is not None and marker > 0 else None
    data = [series(rows, k) for k in keys]
    shape = (title, tuple(keys), log_y, marker is not None, marker_label, tuple(bool(x) for x, _ in data),
             tuple(sorted((labels or {}).items())))
    # what the figure shows: an unchanged curve (a run that is not going on) costs no update, and another
    # run's curve never passes for this one's
    newest = (marker, len(rows), tuple((x[0], x[-1], y[0], y[-1]) if x else None for x, y in data))
    figs = st.session_state.setdefault(_FIGS, {})
    held = figs.get(key)
    if held is None or held[0] != shape:
        built = curve_figure(rows, keys, title, log_y=log_y, marker=marker, marker_label=marker_label, labels=labels)
        plain = built.to_dict()
        # plain SVG lines: a few hundred points, and WebGL without a GPU costs the browser (and the solver) more
        plain["data"] = [dict(t, type="scatter") for t in plain["data"]]
        figs[key] = held = (shape, LiveFigure(plain), newest)
    elif held[2] != newest:
        fig = held[1]
        plain = fig.plain
        for trace, (x, y) in zip(plain["data"], [d for d in data if d[0]]):
            trace["x"], trace["y"] = x, y
        if marker is not None:
            plain["layout"]["shapes"][0].update(x0=marker, x1=marker)
            plain["layout"]["annotations"][0].update(x=marker, text=f"{marker_label} = {marker}")
        if log_y:
            # the same ticks as curve_figure's, worked out on an empty figure (no template to copy)
            scratch = go.Figure()
            apply_log_axis(scratch, [v for _, y in data for v in y])
            axis = plain["layout"].setdefault("yaxis", {})
            for k in ("range", "dtick", "tickmode", "tickvals", "ticktext"):
                axis.pop(k, None)
            axis.update(scratch.layout.yaxis.to_plotly_json())
        figs[key] = held = (shape, fig, newest)
    where.plotly_chart(held[1], key=key)


# --- the Run button ------------------------------------------------------------------------------------

def page_run(kind: str, key: str, url_run: str | None, *, param: str = "run") -> str | None:
    """The run the page shows: the URL's, or the one its Run button ``key`` has just queued.

    A second click can arrive before the browser has the first one's URL: its script run then still
    sees the old URL (or none), and would queue a duplicate and show the old run. For a short while,
    and as long as the URL is the one from before the click, the queued run stands in (and goes back
    into the URL).
    """
    guards = st.session_state.get(_GUARD) or {}
    g = guards.get(f"{kind}:{key}")
    if g is None:
        return url_run
    if time.time() - g["at"] > GUARD_SECONDS or url_run not in (g["before"], g["rid"]):
        guards.pop(f"{kind}:{key}", None)  # expired, or the user has opened another run since
        return url_run
    if url_run != g["rid"]:
        st.query_params[param] = g["rid"]
    return g["rid"]


def forget_run(rid: str) -> None:
    """Drop the Run buttons' memory of ``rid`` (the page closes it)."""
    guards = st.session_state.get(_GUARD) or {}
    for k in [k for k, g in guards.items() if g["rid"] == rid]:
        guards.pop(k, None)


def run_button(label: str = "Run", *, key: str, rid: str | None, disabled: bool = False, where: Any = None,
               help: str | None = None) -> bool:
    """The primary Run button; off while the page's run ``rid`` is queued or running.

    Returns True for a click that should start a run: never while ``rid`` is active, even when the click
    was made before the button was drawn disabled.
    """
    state = snapshot(rid)["state"] if rid else None
    busy = state is not None and is_active(state)
    if busy:
        way_out = "Press Cancel to take it out of the queue" if state == "queued" else "Press Stop to end it"
        help = f"A run is in progress: run {rid} is {state}. {way_out} before starting another."
    clicked = (where or st).button(label, type="primary", icon=":material/play_arrow:", key=key,
                                   disabled=disabled or busy, help=help)
    return bool(clicked) and not busy and not disabled


def started(kind: str, key: str, rid: str, before: str | None, *, param: str = "run") -> None:
    """After a Run button queued ``rid``: remember it, put it in the URL and redraw with Run off."""
    # first the session state: a second click may stop this script at its next message to the browser
    st.session_state.setdefault(_GUARD, {})[f"{kind}:{key}"] = {"rid": rid, "before": before, "at": time.time()}
    st.query_params[param] = rid
    st.rerun()
