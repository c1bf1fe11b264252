"""X-ray robustness: the classifier's AUC and accuracy under the ImageNet-C corruptions (grey, severities 1-5),
beside its clean baseline, and with DIP denoising in front for the noise corruptions."""

from __future__ import annotations

import json
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from engine.core.errors import InputError
from engine.dip.corruptions import INFO
from engine.xray import robustness as rb

DEFAULT_DATA = str(Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cxr-pneumonia" / "train")
STATE = "xr_rob_result"
PLOT_CONFIG = {"displayModeBar": False}
# seconds of one DIP restoration (cpu preset, ES-WMV, 160x160 grey, one thread): 13-44 s measured on a shared
# 2-core CPU at load 6-10 (bench/results/xray_robustness_cpu.json); the estimate takes the middle
DIP_SECONDS = 30

st.title("X-ray robustness")
st.caption("How the pneumonia classifier holds up on films under the ImageNet-C corruptions (grey versions, "
           "severities 1-5), and whether Deep Image Prior denoising in front of it helps on the noise "
           "corruptions. Films are resized to the model's input, corrupted, then classified. For research only.")


# ------------------------------------------------------------------------------------------ figures
def auc_figure(result: dict, metric: str = "auc") -> go.Figure:
    """``metric`` against severity, one line per corruption, the clean baseline as a dashed line."""
    fig = go.Figure()
    rows = result.get("rows", [])
    for name in dict.fromkeys(r["corruption"] for r in rows):
        pts = sorted((r["severity"], r.get(metric)) for r in rows if r["corruption"] == name)
        label = INFO[name].label if name in INFO else name
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name=label))
    clean = result["clean"].get(metric)
    if clean is not None:
        fig.add_hline(y=clean, line_dash="dash", line_color="white",
                      annotation_text=f"clean {clean:.3f}", annotation_position="bottom left")
    word = "AUC" if metric == "auc" else "accuracy"
    fig.update_layout(title=dict(text=f"{word} vs severity", font=dict(size=14)), height=420,
                      template="plotly_dark", margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title_text="severity", dtick=1)
    fig.update_yaxes(title_text=word, range=[0, 1.02])
    return fig


def dip_figure(result: dict) -> go.Figure:
    """AUC against severity on the DIP films, without (dotted) and with (solid) the DIP front end."""
    dip = result.get("dip") or {}
    fig = go.Figure()
    for name in dict.fromkeys(r["corruption"] for r in dip.get("rows", [])):
        rows = sorted((r for r in dip["rows"] if r["corruption"] == name), key=lambda r: r["severity"])
        label = INFO[name].label if name in INFO else name
        x = [r["severity"] for r in rows]
        fig.add_trace(go.Scatter(x=x, y=[r["without"]["auc"] for r in rows], mode="lines+markers",
                                 name=f"{label}, no DIP", line=dict(dash="dot")))
        fig.add_trace(go.Scatter(x=x, y=[r["with"]["auc"] for r in rows], mode="lines+markers",
                                 name=f"{label}, DIP"))
    if dip.get("clean_without"):
        fig.add_hline(y=dip["clean_without"]["auc"], line_dash="dash", line_color="white",
                      annotation_text="clean", annotation_position="bottom left")
    fig.update_layout(title=dict(text="DIP front end: AUC vs severity", font=dict(size=14)), height=380,
                      template="plotly_dark", margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title_text="severity", dtick=1)
    fig.update_yaxes(title_text="AUC", range=[0, 1.02])
    return fig


def pivot(result: dict, metric: str) -> list[dict]:
    """One row per corruption (the clean baseline first), one column per severity."""
    sevs = result.get("severities") or sorted({r["severity"] for r in result["rows"]})
    # the baseline under every severity: it is the flat line of the plot
    out = [{"corruption": "clean", **{f"sev {s}": result["clean"].get(metric) for s in sevs}}]
    by = {(r["corruption"], r["severity"]): r.get(metric) for r in result["rows"]}
    for name in dict.fromkeys(r["corruption"] for r in result["rows"]):
        label = INFO[name].label if name in INFO else name
        out.append({"corruption": label, **{f"sev {s}": by.get((name, s)) for s in sevs}})
    return out


def dip_rows(result: dict) -> list[dict]:
    """The DIP table: AUC and accuracy without and with the front end, per noise and severity."""
    dip = result.get("dip") or {}
    rows = []
    if dip.get("clean_with"):
        rows.append({"corruption": "clean", "severity": None, "AUC without": dip["clean_without"]["auc"],
                     "AUC with DIP": dip["clean_with"]["auc"], "acc. without": dip["clean_without"]["accuracy"],
                     "acc. with DIP": dip["clean_with"]["accuracy"], "n": dip["clean_with"]["n"]})
    for r in dip.get("rows", []):
        rows.append({"corruption": INFO[r["corruption"]].label if r["corruption"] in INFO else r["corruption"],
                     "severity": r["severity"], "AUC without": r["without"]["auc"], "AUC with DIP": r["with"]["auc"],
                     "acc. without": r["without"]["accuracy"], "acc. with DIP": r["with"]["accuracy"], "n": r["n"],
                     "mean DIP iterations": r.get("mean_iterations")})
    return rows


# ------------------------------------------------------------------------------------------ panels
def show(result: dict) -> None:
    """Summary, tables, plots and downloads of one result."""
    f, m = result["films"], result["model"]
    wall = result.get("wall_seconds", {}).get("total_s")
    load = (result.get("machine") or {}).get("loadavg_1_5_15")
    st.caption(f"{f['n']} films ({f['normal']} normal, {f['pneumonia']} pneumonia) from {f['source']}; "
               f"{f['rule']}. Model {m['name']}, input {m['input_size']} px, threshold {m['threshold']:g}."
               + (f" Wall time {wall:.0f} s" if wall is not None else "")
               + (f", load {load} at the start." if load else "."))
    if not result.get("complete", True):
        st.warning("This run was stopped before the end: the tables hold only what was done.")
    c = st.columns(3)
    c[0].metric("Clean AUC", f"{result['clean']['auc']:.3f}" if result["clean"].get("auc") is not None else "-")
    c[1].metric("Clean accuracy", f"{result['clean']['accuracy']:.3f}")
    worst = min((r for r in result["rows"] if r.get("auc") is not None), key=lambda r: r["auc"], default=None)
    if worst:
        c[2].metric("Worst AUC", f"{worst['auc']:.3f}", help=f"{worst['corruption']}, severity {worst['severity']}")
    metric = st.radio("Metric", ["AUC", "accuracy"], horizontal=True, key="xr_rob_metric")
    key = "auc" if metric == "AUC" else "accuracy"
    st.plotly_chart(auc_figure(result, key), key="xr-rob-plot", config=PLOT_CONFIG)
    st.dataframe(pivot(result, key), hide_index=True, width="stretch", key="xr-rob-table")
    if (result.get("dip") or {}).get("rows"):
        st.subheader("DIP denoising front end")
        d = result["dip"]
        st.caption(f"{f.get('dip_n')} films, preset {d['preset']}, ES-WMV"
                   + (f", at most {d['max_iters']} iterations" if d.get("max_iters") else "")
                   + "; the same corrupted films scored without and with DIP restoration first.")
        st.plotly_chart(dip_figure(result), key="xr-rob-dip-plot", config=PLOT_CONFIG)
        st.dataframe(dip_rows(result), hide_index=True, width="stretch", key="xr-rob-dip-table")
    with st.expander("Films used"):
        st.write(f"Main: {', '.join(f['files'])}")
        if f.get("dip_files"):
            st.write(f"DIP: {', '.join(f['dip_files'])}")
    d = st.columns(2)
    d[0].download_button("robustness.json", json.dumps(result, indent=1), "robustness.json", "application/json",
                         key="xr-rob-dl-json")
    d[1].download_button("robustness.csv", rb.csv_text(result), "robustness.csv", "text/csv", key="xr-rob-dl-csv")


def run_panel() -> None:
    """Choose the films and the grid, then run (a direct call with a progress bar)."""
    with st.form("xr_rob_form"):
        c = st.columns(3)
        data = c[0].text_input("Films folder (NORMAL/, PNEUMONIA/)", DEFAULT_DATA, key="xr_rob_data")
        split = c[0].radio("Films", ["val", "all"], horizontal=True, key="xr_rob_split",
                           format_func=lambda s: {"val": "model's validation split", "all": "every film"}[s])
        films = int(c[1].number_input("Films (balanced subset, 0 = all)", 0, 6000, 200, 20, key="xr_rob_films"))
        sevs = c[1].multiselect("Severities", list(rb.SEVERITIES), default=list(rb.SEVERITIES), key="xr_rob_sevs")
        model = c[2].selectbox("Model", [str(rb.HELD_OUT_MODEL), "default"], key="xr_rob_model",
                               format_func=lambda m: "the app's model" if m == "default"
                               else f"{Path(m).stem} (its validation split ships with it)")
        names = c[2].multiselect("Corruptions", list(rb.IMAGENET_C_15), default=list(rb.IMAGENET_C_15),
                                 format_func=lambda n: INFO[n].label, key="xr_rob_names")
        e = st.columns(4)
        dip_films = int(e[0].number_input("DIP films (0 = no DIP)", 0, 200, 12, 2, key="xr_rob_dip_films"))
        dip_names = e[1].multiselect("DIP on", list(rb.NOISE_CORRUPTIONS), default=list(rb.DIP_DEFAULT),
                                     format_func=lambda n: INFO[n].label, key="xr_rob_dip_names")
        dip_sevs = e[2].multiselect("DIP severities", list(rb.SEVERITIES), default=list(rb.DIP_SEVERITIES),
                                    key="xr_rob_dip_sevs")
        cap = int(e[3].number_input("DIP iteration cap (0 = preset)", 0, 5000, 0, 50, key="xr_rob_cap"))
        runs = dip_films * (1 + len(dip_names) * len(dip_sevs)) if dip_films else 0
        st.caption(f"DIP: {runs} restorations, about {runs * DIP_SECONDS / 60:.0f} min on a busy CPU core "
                   f"(~{DIP_SECONDS} s each); "
                   "the corruption sweep takes a few minutes for 200 films.")
        go_ = st.form_submit_button("Run", type="primary", key="xr_rob_run")
    if not go_:
        return
    bar = st.progress(0.0, text="Loading the films…")

    def progress(done: int, total: int, text: str) -> None:
        bar.progress(done / total, text=f"{done}/{total} · {text}")

    try:
        with st.spinner("Scoring the corrupted films…"):
            result = rb.evaluate(data, films=films, dip_films=min(dip_films, films or dip_films), split=split,
                                 corruptions=names, severities=sevs, dip_corruptions=dip_names,
                                 dip_severities=dip_sevs, dip_max_iters=cap or None, model=model,
                                 progress=progress)
    except InputError as err:
        bar.empty()
        st.error(str(err))
        return
    bar.empty()
    st.session_state[STATE] = result


def open_panel() -> None:
    """Open a saved robustness.json, uploaded or by its path."""
    c = st.columns(2)
    up = c[0].file_uploader("Open a robustness.json", type=["json"], key="xr_rob_upload")
    path = c[1].text_input("… or its path", "", key="xr_rob_path")
    try:
        if up is not None:
            st.session_state[STATE] = rb.load_result(up.getvalue())
        elif path.strip() and c[1].button("Open", key="xr_rob_open"):
            st.session_state[STATE] = rb.load_result(Path(path.strip()).expanduser())
    except InputError as err:
        st.error(str(err))


tab_run, tab_open = st.tabs(["Run", "Open a saved result"])
with tab_run:
    run_panel()
with tab_open:
    open_panel()
if STATE in st.session_state:
    show(st.session_state[STATE])
else:
    st.info("Run a robustness test, or open a saved robustness.json.")
