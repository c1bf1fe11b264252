"""Generalized phase retrieval for teaching: reconstruct live, sweep the phase transition, see the
symmetries of Fourier PR and the n = 2 loss landscape."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.core.errors import InputError
from engine.dip.samples import SAMPLES, load_sample
from engine.gpr.algorithms import ALGORITHMS
from engine.gpr.initializers import INITIALIZERS
from engine.gpr.measurements import MODELS
from engine.gpr.teaching import fourier_symmetries, landscape_n2, minima_caption
from engine.gpr.workflow import DIP, DIP_DEFAULT_ITERS, DIP_LABEL, DIP_REFERENCE
from ui.edit import Form, Setting, edit_button, edited_kind, take_edit
from ui.jobs import active_run_id, manager, snapshot
from ui.views.images import display_uint8
from ui.widgets import (
    forget_run,
    is_active,
    live_chart,
    live_header,
    page_run,
    queue_note,
    run_button,
    started,
    stop_button,
)

st.title("Generalized phase retrieval")
st.caption("Recover x from y_k = |a_k* x|² (Gaussian or coded-diffraction a_k), up to a global phase. "
           "Error = min over φ of ‖x̂ − e^{iφ}x‖ / ‖x‖.")

MODEL_LABELS = {"complex-gaussian": "Complex Gaussian", "real-gaussian": "Real Gaussian",
                "cdp": "Coded diffraction (octanary masks)"}
INIT_LABELS = {"spectral": "Spectral (Candès et al.)", "truncated-spectral": "Truncated spectral (TWF)",
               "reshaped": "Reshaped (RWF)", "orthogonality": "Orthogonality-promoting (TAF)",
               "optimal": "Optimal preprocessing (Mondelli-Montanari)", "random": "Random"}
SWEEP_CHOICES = list(ALGORITHMS) + ["gs:optimal", "taf:optimal", "rwf:optimal"]
PALETTE = ["#4c9be8", "#f0b429", "#e8634c", "#5cc98a", "#b07ae8", "#e87ac4", "#7ad6e8", "#c9c95c", "#999999"]


def _alg_label(key: str) -> str:
    alg, _, init = key.partition(":")
    label = ALGORITHMS[alg].label
    return f"{label} + {init} init" if init else label


@st.cache_data(show_spinner=False, max_entries=16)
def _grey_sample(name: str, size: int) -> np.ndarray:
    img = load_sample(name, size)
    return img[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32) if img.ndim == 3 else img


# ----------------------------------------------------------------------------- reconstruct

def reconstruct_setup() -> dict:
    """Controls of one reconstruction; returns the workflow params."""
    c = st.columns(4)
    signal = c[0].selectbox("Signal", list(SAMPLES) + ["random"], index=list(SAMPLES).index("camera"),
                            format_func=lambda s: "random vector" if s == "random" else f"{s} (grey image)",
                            key="gpr_signal")
    params: dict = {"signal": signal}
    if signal == "random":
        params["n"] = c[0].select_slider("n", [16, 32, 64, 100, 128, 256], value=64, key="gpr_n")
    else:
        params["size"] = c[0].select_slider("Image side", [8, 12, 16, 24, 32], value=16, key="gpr_size",
                                            help="n = side²; Gaussian matrices grow as m·n")
    model = c[1].selectbox("Measurement model", list(MODELS), format_func=MODEL_LABELS.get, key="gpr_model")
    params["model"] = model
    if model == "cdp":
        params["L"] = c[1].slider("Masks L (m/n = L)", 1, 12, 4, key="gpr_L")
    else:
        params["ratio"] = c[1].slider("m/n", 1.0, 10.0, 4.0, 0.25, key="gpr_ratio")
    params["noise"] = c[1].slider("Noise ‖e‖/‖y‖", 0.0, 0.2, 0.0, 0.01, key="gpr_noise")
    alg = c[2].selectbox("Algorithm", list(ALGORITHMS) + [DIP], index=list(ALGORITHMS).index("taf"),
                         format_func=lambda a: DIP_LABEL if a == DIP else ALGORITHMS[a].label, key="gpr_alg",
                         help="\n\n".join([f"**{a.label}**: {a.reference}" for a in ALGORITHMS.values()]
                                          + [f"**{DIP_LABEL}**: {DIP_REFERENCE}. A network draws the image; "
                                             "it is fitted to √y and stopped by ES-WMV."]))
    params["algorithm"] = alg
    if alg == DIP:
        return _dip_setup(c, params)
    inits = ["default"] + list(INITIALIZERS)
    init = c[2].selectbox("Initializer", inits, key="gpr_init",
                          format_func=lambda i: f"paper's ({INIT_LABELS[ALGORITHMS[alg].default_init]})"
                          if i == "default" else INIT_LABELS[i])
    if init != "default":
        params["init"] = init
    params["iters"] = int(c[3].number_input("Iterations", 10, 20000, ALGORITHMS[alg].default_iters, 100,
                                            key=f"gpr_iters_{alg}"))
    params["seed"] = int(c[3].number_input("Seed", 0, 2**31 - 1, 0, key="gpr_seed"))
    return params


def _dip_setup(c, params: dict) -> dict:  # noqa: ANN001
    """The DIP prior's options (it has no initializer: the network starts at random)."""
    obj = c[2].radio("Object", ["real", "complex"], key="gpr_dip_obj", horizontal=True,
                     format_func={"real": "real, non-negative", "complex": "complex"}.get,
                     help="A grey image is real and non-negative: the DIP prior can use that, the other "
                          "algorithms here cannot")
    params["iters"] = int(c[3].number_input("Iterations", 10, 20000, DIP_DEFAULT_ITERS, 100, key="gpr_iters_dip"))
    params["seed"] = int(c[3].number_input("Seed", 0, 2**31 - 1, 0, key="gpr_seed"))
    patience = int(c[3].number_input("ES-WMV patience", 5, 5000, 150, 5, key="gpr_dip_patience"))
    params["dip"] = {"obj": obj, "patience": patience}
    return params


def draw_reconstruct_live(rid: str, was_active: bool) -> None:
    run, snap = live_header(rid, was_active)
    if snap["state"] == "queued":
        return  # nothing to draw yet: the header says what it waits for
    rows = snap["history"]
    last = rows[-1] if rows else {}
    params = run.spec.get("params", {})
    m = st.columns(3)
    budget = snap.get("extra", {}).get("max_iters", params.get("iters", "?"))
    m[0].metric("Iteration", f"{snap['iteration']} / {budget}")
    if last.get("error") is not None:
        m[1].metric("Error (mod global phase)", f"{last['error']:.2e}")
        m[2].metric("Amplitude residual", f"{last['loss']:.2e}")
    cols = st.columns([2, 1, 1])
    t_star = snap.get("extra", {}).get("es_iteration")
    # updated in place, not rebuilt twice a second
    live_chart(cols[0], rows, ["error", "loss"], "Error and loss", key="gpr-curve", log_y=True, marker=t_star,
               labels={"error": "relative error", "loss": "‖|Az|−√y‖/‖√y‖"})
    if any(r.get("es_variance") is not None for r in rows):
        live_chart(cols[0], rows, ["es_variance"], "ES-WMV variance", key="gpr-var-curve", log_y=True,
                   marker=t_star, labels={"es_variance": "variance"})
    if run.file("signal.png").exists():
        cols[1].image(display_uint8(np.asarray(_png(str(run.file("signal.png"))))), caption="Truth |x|")
    if snap.get("preview") is not None:
        cols[2].image(display_uint8(snap["preview"]), caption=f"|iterate|, iteration {snap['iteration']}")


@st.cache_data(show_spinner=False, max_entries=8)
def _png(path: str) -> np.ndarray:
    """A run's image, read once: the live panel draws it twice a second."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


def show_reconstruct_result(rid: str) -> None:
    run = manager().store.get(rid)
    summary = run.read_json("summary.json")
    if not summary:
        return
    ok = summary.get("success")
    (st.success if ok else st.warning)(
        f"{summary['algorithm_label']} from the {summary['init']} initializer: error {summary['error']:.2e} "
        f"after {summary['iterations']} iterations (m/n = {summary['ratio']:.2f}) — "
        + ("recovered up to global phase." if ok else f"not below {summary['tol']:g}."))
    if run.has_array("estimate") and len(summary.get("shape", [])) == 1:
        x, z = run.load_array("signal"), run.load_array("estimate")
        fig = go.Figure()
        fig.add_trace(go.Scatter(y=np.real(x), mode="lines", name="Re x"))
        fig.add_trace(go.Scatter(y=np.real(z), mode="lines", name="Re x̂ (phase-aligned)",
                                 line=dict(dash="dot")))
        fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), template="plotly_dark",
                          title="Signal and estimate")
        st.plotly_chart(fig, key="gpr-signal-plot")
    for w in summary.get("warnings") or []:
        st.warning(w, icon=":material/warning:")
    if run.file("estimate.png").exists() and len(summary.get("shape", [])) == 2:
        kept = f"at t* = {summary['es_iteration']}" if summary.get("es_iteration") else "final"
        c = st.columns(4)
        c[0].image(display_uint8(_png(str(run.file("signal.png"))), 192), caption="Truth |x|")
        c[1].image(display_uint8(_png(str(run.file("estimate.png"))), 192),
                   caption=f"Estimate |x̂| ({kept}, phase-aligned)")
    with st.expander("Summary"):
        st.json(summary)
    st.download_button("Summary JSON", json.dumps(summary, indent=1), f"{run.id}-summary.json",
                       "application/json", key="gpr-dl")


def reconstruct_tab() -> None:
    params = reconstruct_setup()
    rid = page_run("gpr", "gpr_run", active_run_id("gpr"))
    if run_button(key="gpr_run", rid=rid):
        try:
            if params["algorithm"] == DIP and params["signal"] == "random":
                raise InputError("The DIP prior draws images: pick a sample image as the signal, not a random "
                                 "vector.")
            new = manager().submit({"kind": "gpr", "params": params}, label=f"gpr-{params['algorithm']}")
        except InputError as e:
            st.error(str(e))
        else:
            started("gpr", "gpr_run", new, rid)
    if rid is None:
        st.caption("Pick a signal, a measurement model and an algorithm, then press **Run**. "
                   "Spectral + Wirtinger flow needs about m ≈ 4.5n complex Gaussian measurements; "
                   "amplitude flows and alternating minimization need fewer.")
        return
    active = is_active(snapshot(rid)["state"])
    st.fragment(run_every=0.5 if active else None)(draw_reconstruct_live)(rid, active)
    if not active:
        show_reconstruct_result(rid)


# ----------------------------------------------------------------------------- sweep

def transition_figure(table: dict, ratios: list[float], tol: float) -> go.Figure:
    """Success rate against m/n, one curve per algorithm."""
    fig = go.Figure()
    for i, (alg, rates) in enumerate(table.items()):
        xs = [r for r in ratios if f"{r:g}" in rates]
        fig.add_trace(go.Scatter(x=xs, y=[rates[f"{r:g}"] for r in xs], mode="lines+markers",
                                 name=_alg_label(alg), line=dict(color=PALETTE[i % len(PALETTE)])))
    fig.update_layout(title=dict(text=f"Success rate (error < {tol:g})", font=dict(size=14)), height=380,
                      margin=dict(l=10, r=10, t=40, b=10), template="plotly_dark",
                      legend=dict(orientation="h", y=-0.2, x=0))
    fig.update_xaxes(title_text="m / n")
    fig.update_yaxes(title_text="success rate", range=[-0.03, 1.03])
    return fig


def draw_sweep_live(sid: str, was_active: bool) -> None:
    mgr = manager()
    run = mgr.store.get(sid)
    snap = snapshot(sid)
    if was_active and not is_active(snap["state"]):
        st.rerun()
    extra = snap.get("extra", {})
    params = run.spec.get("params", {})
    c = st.columns([5, 1, 2, 1])
    done, total = extra.get("cells_done", 0), extra.get("cells_total")
    c[0].markdown(f"**{snap['state']}** · {done} / {total or '?'} cells · run `{run.id}`")
    if snap.get("message"):
        (st.error if snap["state"] == "failed" else st.info)(snap["message"])
    stop_button(c[1], sid, snap["state"])
    edit_button(c[2], run)
    if c[3].button("Close", icon=":material/close:", key=f"sweep-close-{sid}"):
        forget_run(sid)
        st.query_params.pop("sweep", None)
        st.rerun()
    if queue_note(sid):
        return
    if total:
        st.progress(done / total)
    summary = run.read_json("summary.json") if not is_active(snap["state"]) else None
    table = (summary or {}).get("success") or extra.get("table") or {}
    ratios = (summary or {}).get("ratios") or extra.get("ratios") or []
    if table:
        st.plotly_chart(transition_figure(table, ratios, float(params.get("tol", 1e-5))), key="sweep-fig")


def sweep_tab() -> None:
    c = st.columns(4)
    model = c[0].selectbox("Model", list(MODELS), format_func=MODEL_LABELS.get, key="sw_model")
    n = int(c[0].number_input("n", 4, 400, 64, 4, key="sw_n"))
    default_ratios = "1,2,3,4,5,6,8" if model == "cdp" else "1.5,2,2.5,3,3.5,4,4.5,5,6"
    ratios = c[1].text_input("m/n values" + (" (masks L)" if model == "cdp" else ""), default_ratios,
                             key=f"sw_ratios_{model == 'cdp'}")
    trials = int(c[1].number_input("Trials per m/n", 1, 100, 10, key="sw_trials"))
    algs = c[2].multiselect("Algorithms", SWEEP_CHOICES, default=["wf", "taf", "gs:optimal"],
                            format_func=_alg_label, key="sw_algs")
    tol = float(c[3].select_slider("Success if error <", [1e-3, 1e-4, 1e-5, 1e-6], value=1e-5,
                                      format_func=lambda v: f"{v:g}", key="sw_tol"))
    seed = int(c[3].number_input("Seed", 0, 2**31 - 1, 0, key="sw_seed"))
    iters = int(c[2].number_input("Iterations (0 = each algorithm's)", 0, 20000, 0, 100, key="sw_iters"))
    sid = st.query_params.get("sweep")
    if sid:
        try:
            if manager().store.get(sid).kind != "gpr_sweep":
                sid = None
        except ValueError:
            sid = None
    sid = page_run("gpr_sweep", "sw_run", sid, param="sweep")
    if run_button("Run sweep", key="sw_run", rid=sid, disabled=not algs):
        spec = {"kind": "gpr_sweep", "params": {"n": n, "ratios": ratios, "trials": trials, "model": model,
                                                "algorithms": algs, "tol": tol, "seed": seed,
                                                "iters": iters or None}}
        try:
            from engine.gpr.sweep import check_sweep, parse_ratios

            check_sweep(n, parse_ratios(ratios), trials, model)
            new = manager().submit(spec, label=f"sweep-{model}")
        except InputError as e:
            st.error(str(e))
        else:
            started("gpr_sweep", "sw_run", new, sid, param="sweep")
    if not sid:
        st.caption("Each cell runs all trials of one m/n for one algorithm at once; every algorithm solves "
                   "the same random problems. The curves fill in as cells finish.")
        return
    active = is_active(snapshot(sid)["state"])
    st.fragment(run_every=1.0 if active else None)(draw_sweep_live)(sid, active)
    if not active:
        summary = manager().store.get(sid).read_json("summary.json")
        if summary:
            rows = [{"algorithm": _alg_label(c["algorithm"]), "m/n": c["ratio"], "success": c["success"],
                     "median error": f"{c['median_error']:.1e}", "iterations": c["iterations"],
                     "seconds": c["seconds"]} for c in summary.get("cells", [])]
            st.dataframe(rows, hide_index=True)
            st.download_button("Sweep JSON", json.dumps(summary, indent=1), f"{sid}.json", "application/json",
                               key="sw-dl")


# ----------------------------------------------------------------------------- symmetries

def _signed(img: np.ndarray) -> np.ndarray:
    """Real part in [-max, max] mapped to [0, 1] (grey = 0)."""
    s = float(np.abs(img).max()) or 1.0
    return np.clip(0.5 + 0.5 * np.real(img) / s, 0, 1)


def symmetries_tab() -> None:
    st.markdown("A Fourier-magnitude measurement |F x| cannot tell apart **x**, its **circular shifts**, its "
                "**conjugate flip** x(−r)* and **e^{iφ} x**: all four give the same data, so any phase "
                "retrieval answer is defined only up to these.")
    c = st.columns(4)
    name = c[0].selectbox("Image", list(SAMPLES), index=list(SAMPLES).index("camera"), key="sym_img")
    size = c[0].select_slider("Size", [32, 64, 128], value=64, key="sym_size")
    dy = c[1].slider("Shift rows", -32, 32, 9, key="sym_dy")
    dx = c[1].slider("Shift columns", -32, 32, 17, key="sym_dx")
    phi = c[2].slider("Global phase φ (rad)", 0.0, 6.28, 2.0, 0.01, key="sym_phi")
    demo = fourier_symmetries(_grey_sample(name, size), shift=(dy, dx), phase=phi)
    names = {"original": "x", "shift": f"shift ({dy}, {dx})", "conj_flip": "conjugate flip x(−r)*",
             "global_phase": f"e^(i·{phi:.2f}) x"}
    cols = st.columns(4)
    for col, (key, label) in zip(cols, names.items()):
        col.image(display_uint8(_signed(demo.images[key]), 128), caption=f"Re {label}")
        col.image(display_uint8(demo.log_magnitude(key), 128), caption="log(1 + |F|)")
        col.metric("max |ΔF| / max|F|", f"{demo.max_magnitude_diff[key]:.1e}",
                   help=f"the image itself changed by up to {demo.max_image_diff[key]:.2f} of its maximum")
    st.caption("The Fourier magnitudes agree to rounding error (~1e-16) while the images differ: "
               "the data carry no information about these transformations.")


# ----------------------------------------------------------------------------- landscape

def landscape_figure(land, surface: bool) -> go.Figure:
    v = np.log10(land.values + 1e-6 * land.values.max())
    mins = np.array(land.minima)
    if surface:
        fig = go.Figure(go.Surface(x=land.z1, y=land.z2, z=v, colorscale="Viridis", showscale=False))
        fig.add_trace(go.Scatter3d(x=mins[:, 0], y=mins[:, 1], z=[float(v.min())] * 2, mode="markers+text",
                                   text=["+x", "−x"], marker=dict(size=6, color="#e8634c")))
        fig.update_layout(scene=dict(xaxis_title="z1", yaxis_title="z2", zaxis_title="log10 f"))
    else:
        fig = go.Figure(go.Contour(x=land.z1, y=land.z2, z=v, colorscale="Viridis", ncontours=30,
                                   colorbar=dict(title="log10 f")))
        fig.add_trace(go.Scatter(x=mins[:, 0], y=mins[:, 1], mode="markers+text", text=["+x", "−x"],
                                 textposition="top center",
                                 marker=dict(size=12, color="#e8634c", symbol="x")))
        fig.update_xaxes(title_text="z1")
        fig.update_yaxes(title_text="z2", scaleanchor="x")
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=30, b=10), template="plotly_dark",
                      showlegend=False)
    return fig


def landscape_tab() -> None:
    st.markdown("The generalized-PR loss of a real signal in R² with m Gaussian measurements. Its global "
                "minima are ±x (the sign ambiguity); with enough measurements the intensity loss has no other "
                "local minima, which is why simple gradient methods work (the amplitude loss can keep a few "
                "spurious ones: try it).")
    c = st.columns(4)
    x1 = c[0].slider("x1", -2.0, 2.0, 1.0, 0.05, key="land_x1")
    x2 = c[0].slider("x2", -2.0, 2.0, 0.5, 0.05, key="land_x2")
    m = c[1].slider("Measurements m", 2, 60, 20, key="land_m")
    loss = c[1].radio("Loss", ["intensity", "amplitude"], horizontal=True, key="land_loss",
                      help="intensity: mean((aᵀz)² − y)² (WF) · amplitude: mean(|aᵀz| − √y)² (RWF/TAF)")
    seed = int(c[2].number_input("Seed", 0, 10_000, 0, key="land_seed"))
    surface = c[3].toggle("3-D surface", key="land_surface")
    if x1 == 0 and x2 == 0:
        st.info("Pick a non-zero x.")
        return
    land = landscape_n2((x1, x2), m=m, loss=loss, grid=121, seed=seed)
    st.plotly_chart(landscape_figure(land, surface), key="land-fig")
    st.caption(minima_caption(land))


def _is_random(p: dict) -> bool:
    return p.get("signal") == "random"


def _is_cdp(p: dict) -> bool:
    return p.get("model") == "cdp"


def _alg_is(alg: str) -> Callable[[dict], bool]:
    return lambda p: p.get("algorithm") == alg


def _ratios_text(p: dict) -> str:
    r = p["ratios"]
    return ",".join(f"{float(v):g}" for v in r) if isinstance(r, list) else r


RECONSTRUCT_FORM = Form(settings={
    "gpr_signal": Setting("Signal", lambda p: p["signal"], options=list(SAMPLES) + ["random"]),
    "gpr_n": Setting("n", lambda p: p["n"], int, options=[16, 32, 64, 100, 128, 256], when=_is_random),
    "gpr_size": Setting("Image side", lambda p: p["size"], int, options=[8, 12, 16, 24, 32],
                        when=lambda p: not _is_random(p)),
    "gpr_model": Setting("Measurement model", lambda p: p["model"], options=list(MODELS)),
    "gpr_L": Setting("Masks L", lambda p: p["L"], int, lo=1, hi=12, when=_is_cdp),
    "gpr_ratio": Setting("m/n", lambda p: p["ratio"], float, lo=1.0, hi=10.0, when=lambda p: not _is_cdp(p)),
    "gpr_noise": Setting("Noise", lambda p: p["noise"], float, lo=0.0, hi=0.2),
    "gpr_alg": Setting("Algorithm", lambda p: p["algorithm"], options=list(ALGORITHMS) + [DIP]),
    "gpr_init": Setting("Initializer", lambda p: p.get("init", "default"), options=["default"] + list(INITIALIZERS),
                        when=lambda p: p.get("algorithm") != DIP),
    **{f"gpr_iters_{alg}": Setting("Iterations", lambda p: p["iters"], int, lo=10, hi=20000, when=_alg_is(alg))
       for alg in list(ALGORITHMS) + [DIP]},
    "gpr_seed": Setting("Seed", lambda p: p["seed"], int, lo=0, hi=2**31 - 1),
    "gpr_dip_obj": Setting("Object", lambda p: p["dip"]["obj"], options=["real", "complex"], when=_alg_is(DIP)),
    "gpr_dip_patience": Setting("ES-WMV patience", lambda p: p["dip"]["patience"], int, lo=5, hi=5000,
                                when=_alg_is(DIP)),
})
SWEEP_FORM = Form(settings={
    "sw_model": Setting("Model", lambda p: p["model"], options=list(MODELS)),
    "sw_n": Setting("n", lambda p: p["n"], int, lo=4, hi=400),
    "sw_ratios_True": Setting("m/n values (masks L)", _ratios_text, when=_is_cdp),
    "sw_ratios_False": Setting("m/n values", _ratios_text, when=lambda p: not _is_cdp(p)),
    "sw_trials": Setting("Trials per m/n", lambda p: p["trials"], int, lo=1, hi=100),
    "sw_algs": Setting("Algorithms", lambda p: p["algorithms"], list, options=SWEEP_CHOICES),
    "sw_tol": Setting("Success if error <", lambda p: p["tol"], float, options=[1e-3, 1e-4, 1e-5, 1e-6]),
    "sw_seed": Setting("Seed", lambda p: p["seed"], int, lo=0, hi=2**31 - 1),
    "sw_iters": Setting("Iterations", lambda p: p["iters"] or 0, int, lo=0, hi=20000),
})

take_edit({"gpr": RECONSTRUCT_FORM, "gpr_sweep": SWEEP_FORM})
# a reopened sweep (?sweep=ID), or one being edited, lives on the second tab: open there
tabs = st.tabs(["Reconstruct", "Phase transition", "Symmetries", "Landscape"],
               default="Phase transition" if st.query_params.get("sweep") or edited_kind() == "gpr_sweep"
               else None)
with tabs[0]:
    reconstruct_tab()
with tabs[1]:
    sweep_tab()
with tabs[2]:
    symmetries_tab()
with tabs[3]:
    landscape_tab()
