"""Federated learning on chest X-rays: simulated hospitals, FedAvg through Flower vs centralised vs local."""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from engine.core.errors import InputError
from ui.edit import Form, Setting, take_edit
from ui.jobs import active_run_id, manager, snapshot
from ui.widgets import is_active, live_header, page_run, run_button, started

DEFAULT_DATA = str(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cxr-pneumonia" / "train")

st.title("Federated learning")
st.caption("K simulated hospitals, patient-disjoint splits of one folder with label skew and a different "
           "acquisition shift each (blur, noise, contrast). FedAvg runs through Flower's simulation engine: "
           "a site's client gets only its site id and loads its own films; the server sees weights and "
           "per-site metrics only. FedBN keeps BatchNorm layers on each site.")


def curves_figure(rows: list[dict], series: str) -> go.Figure:
    """Per-site AUC (and pooled) against the round, for one series."""
    rows = [r for r in rows if r.get("series", series) == series and "round" in r]
    fig = go.Figure()
    keys = sorted({k for r in rows for k in r if k.startswith("auc_")})
    for k in keys:
        fig.add_trace(go.Scatter(x=[r["round"] for r in rows], y=[r.get(k) for r in rows], mode="lines+markers",
                                 name=k[4:]))
    fig.update_layout(title=dict(text=f"AUC per site: {series}", font=dict(size=14)), height=320,
                      template="plotly_dark", margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title_text="round")
    fig.update_yaxes(title_text="AUC", range=[0, 1.02])
    return fig


def setup() -> dict:
    c = st.columns(4)
    data = c[0].text_input("Data folder (NORMAL/, PNEUMONIA/)", DEFAULT_DATA, key="fl_data")
    sites = int(c[1].number_input("Sites", 2, 8, 4, key="fl_sites"))
    rounds = int(c[1].number_input("Rounds", 1, 50, 5, key="fl_rounds"))
    norm = c[2].selectbox("Normalisation", ["all", "bn", "gn", "fedbn"], key="fl_norm")
    size = int(c[2].select_slider("Film size (px)", [32, 64, 96, 128], value=64, key="fl_size"))
    films = int(c[3].number_input("Films (subset, 0 = all)", 0, 6000, 1600, 100, key="fl_films"))
    regimes = c[3].multiselect("Regimes", ["fedavg", "centralised", "local"],
                               default=["fedavg", "centralised", "local"], key="fl_regimes")
    return {"data": data, "sites": sites, "rounds": rounds, "norm": norm, "size": size, "max_films": films,
            "regimes": regimes}


def draw_live(rid: str, was_active: bool) -> None:
    run, snap = live_header(rid, was_active)
    rows = [r for r in snap["history"] if "round" in r]
    if not rows:
        st.caption("Starting Ray and loading each site's films…")
        return
    series = list(dict.fromkeys(r.get("series", "") for r in rows))
    st.caption(f"Series {len(series)}: {series[-1]} · round {rows[-1]['round']}")
    st.plotly_chart(curves_figure(rows, series[-1]), key="fl-curve")


def show_result(rid: str) -> None:
    run = manager().store.get(rid)
    summary = run.read_json("summary.json")
    if not summary:
        return
    table = summary.get("table", [])
    st.subheader("Results (final round, test films of each site)")
    st.dataframe([{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in table],
                 hide_index=True)
    rows = [r for r in run.metrics() if r.get("kind") == "round"]
    for label in dict.fromkeys(r["series"] for r in rows):
        st.plotly_chart(curves_figure(rows, label), key=f"fl-res-{label}")
    st.download_button("Summary JSON", json.dumps(summary, indent=1), f"{run.id}-summary.json",
                       "application/json", key="fl-dl")


def _notes(p: dict) -> list[str]:
    """What the run was given that this page has no widget for (a run started from the command line)."""
    notes = []
    for key, label, default in (("epochs", "Local epochs per round", 1), ("seed", "Seed", 0)):
        if key in p and p[key] != default:
            notes.append(f"{label} was {p[key]} in this run; this page has no such setting, so the new run "
                         f"uses {default}.")
    return notes


EDIT_FORM = Form(settings={
    "fl_data": Setting("Data folder", lambda p: p["data"]),
    "fl_sites": Setting("Sites", lambda p: p["sites"], int, lo=2, hi=8),
    "fl_rounds": Setting("Rounds", lambda p: p["rounds"], int, lo=1, hi=50),
    "fl_norm": Setting("Normalisation", lambda p: p["norm"], options=["all", "bn", "gn", "fedbn"]),
    "fl_size": Setting("Film size", lambda p: p["size"], int, options=[32, 64, 96, 128]),
    "fl_films": Setting("Films", lambda p: p["max_films"] or 0, int, lo=0, hi=6000),
    "fl_regimes": Setting("Regimes", lambda p: p["regimes"], list, options=["fedavg", "centralised", "local"]),
}, notes=_notes)

take_edit({"federated": EDIT_FORM})
params = setup()
rid = page_run("federated", "fl_run", active_run_id("federated"))
if run_button(key="fl_run", rid=rid):
    try:
        from engine.federated.workflow import params_to_spec

        params_to_spec(params)
        new = manager().submit({"kind": "federated", "params": params}, label="federated")
    except InputError as e:
        st.error(str(e))
    else:
        started("federated", "fl_run", new, rid)
if rid is None:
    st.caption("Pick the sites and rounds, then press **Run**. Each round's per-site AUC is drawn as it ends.")
else:
    active = is_active(snapshot(rid)["state"])
    st.fragment(run_every=1.0 if active else None)(draw_live)(rid, active)
    if not active:
        show_result(rid)
