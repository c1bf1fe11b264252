"""Beamline CDI: load or simulate a diffraction pattern, run Fourier phase retrieval with many starts,
watch amplitude/phase and the likelihoods live, then rank, average, check the PRTF and export."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from engine.cdi.readers import diffraction_stats, load_diffraction
from engine.cdi.recipe import parse_recipe
from engine.cdi.simulate import simulate_pattern
from engine.cdi.solver import DEFAULT_RECIPE
from engine.cdi.workflow import amplitude_image, phase_image
from engine.core.colors import complex_to_rgb
from engine.core.device import pick_device
from engine.core.errors import InputError
from engine.dip.samples import SAMPLES, load_sample
from ui.jobs import active_run_id, manager, set_active_run
from ui.views.curves import curve_figure
from ui.views.images import display_uint8
from ui.widgets import is_active, live_header

st.title("Beamline CDI: Fourier phase retrieval")
st.caption("Recover a complex object x from its diffraction pattern |F x|², up to a translation, the "
           "conjugate flip x(−r)* and a global phase. Operators apply right to left, as in PyNX: "
           "`Sup*ER**5*HIO**50` runs 50 HIO cycles, then 5 ER, then one support update.")

PRESETS = {
    "Default: HIO + shrink-wrap, RAAR, ER": DEFAULT_RECIPE,
    "Quick look": "ER**50*(Sup*ER**5*HIO**40)**5",
    "RAAR only": "ER**100*(Sup*RAAR**50)**10",
    "ER / HIO (PyNX style)": "ER**200*(Sup*ER**5*HIO**50)**10",
    "Custom": None,
}
TYPES = ["npy", "npz", "tif", "tiff", "edf", "cxi", "h5", "hdf5"]


@st.cache_data(show_spinner="Simulating the pattern…", max_entries=4)
def _simulate(sample: str, size: int, photons: float, oversampling: float, beamstop: float, gap: bool,
              seed: int) -> dict:
    img = load_sample(sample, None)
    sim = simulate_pattern(img, shape=(size, size), oversampling=oversampling, photons=photons,
                           beamstop=beamstop, gaps=[(1, size // 16, max(1, size // 128))] if gap else None,
                           seed=seed)
    return {"intensity": sim.intensity, "mask": sim.mask, "truth": sim.obj}


@st.cache_data(show_spinner="Reading the file…", max_entries=4)
def _decode(data: bytes, name: str, mask: bytes | None, mask_name: str | None) -> dict:
    d = load_diffraction(data, name=name, mask=mask, mask_name=mask_name)
    return {"intensity": d.intensity, "mask": d.mask, "notes": d.notes}


def log_image(intensity: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """log10(1 + I) in [0, 1] as RGB, not-measured pixels tinted blue (3D: middle slice)."""
    a, m = intensity, mask
    while a.ndim > 2:
        a, m = a[a.shape[0] // 2], m[m.shape[0] // 2]
    v = np.log10(1 + np.maximum(a, 0))
    v = v / max(float(v.max()), 1e-12)
    rgb = np.stack([v, v, v], axis=-1)
    rgb[m] = (0.15, 0.25, 0.6)
    step = max(1, int(np.ceil(max(a.shape) / 512)))
    return (rgb[::step, ::step] * 255).astype(np.uint8)


def setup() -> dict | None:
    """The sidebar: pattern (simulated or uploaded) and the solver. Returns the inputs and params."""
    sb = st.sidebar
    sb.header("Pattern")
    source = sb.radio("Source", ["Simulate a pattern", "Upload"], horizontal=True, key="source")
    truth = None
    if source == "Simulate a pattern":
        sample = sb.selectbox("Object from image", list(SAMPLES), index=list(SAMPLES).index("camera"),
                              format_func=lambda n: f"{n} — {SAMPLES[n]}", key="sample")
        size = sb.selectbox("Detector size", [64, 128, 256, 512], index=2, key="size")
        photons = 10 ** sb.slider("Photons (log10)", 5.0, 10.0, 9.0, 0.5, key="photons")
        oversampling = sb.slider("Oversampling", 2.0, 4.0, 2.5, 0.1, key="oversampling")
        beamstop = sb.slider("Beamstop radius (px)", 0.0, 6.0, 1.0, 0.5, key="beamstop",
                             help="Larger than the central speckle, it removes the low frequencies that "
                                  "the support must then recover")
        gap = sb.checkbox("Detector gap", value=True, key="gap")
        sim_seed = sb.number_input("Simulation seed", 0, 10_000, 0, key="sim_seed")
        data = _simulate(sample, size, photons, oversampling, beamstop, gap, int(sim_seed))
        label = f"sim-{sample}-{size}"
        truth = data["truth"]
    else:
        up = sb.file_uploader("Pattern (NPY, NPZ, TIFF, EDF, CXI, HDF5)", type=TYPES, key="upload")
        mk = sb.file_uploader("Mask (optional, nonzero = not measured)", type=TYPES, key="mask_upload")
        if up is None:
            st.info("Upload a centred diffraction pattern in the sidebar, or simulate one.")
            return None
        try:
            data = _decode(up.getvalue(), up.name, None if mk is None else mk.getvalue(),
                           None if mk is None else mk.name)
        except InputError as e:
            st.error(str(e))
            return None
        label = up.name.rsplit(".", 1)[0]
        for note in data.get("notes", []):
            st.caption(note)

    sb.header("Solver")
    preset = sb.selectbox("Recipe", list(PRESETS), key="preset")
    recipe = PRESETS[preset]
    if recipe is None:
        recipe = sb.text_input("Operator chain", "ER**100*(Sup*ER**5*HIO**50)**8", key="recipe")
    else:
        sb.code(recipe, language=None)
    try:
        parsed = parse_recipe(recipe)
    except InputError as e:
        sb.error(str(e))
        return None
    sb.caption(f"{parsed.cycles} cycles, {parsed.support_updates} support updates")
    starts = sb.number_input("Random starts (one batch)", 1, 64, 4, key="starts")
    seed = sb.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
    opts: dict = {}
    with sb.expander("Advanced"):
        opts["beta_hio"] = st.slider("HIO β", 0.5, 1.0, 0.9, 0.05, key="beta_hio")
        opts["beta_raar"] = st.slider("RAAR β", 0.5, 1.0, 0.85, 0.05, key="beta_raar")
        opts["threshold"] = st.slider("Shrink-wrap threshold (× rms)", 0.05, 0.5, 0.25, 0.01, key="thr")
        opts["free_fraction"] = st.slider("Free pixels", 0.0, 0.1, 0.03, 0.01, key="free")
        opts["positivity"] = st.checkbox("Real, positive object", key="positivity")
        average = st.number_input("Best starts to average (0: half)", 0, 64, 0, key="average")
    params = {"recipe": recipe, "starts": int(starts), "seed": int(seed), "options": opts,
              "average": int(average), "publish_every": 10, "label": label}
    arrays = {"intensity": data["intensity"], "mask": data["mask"].astype(np.uint8)}
    return {"arrays": arrays, "params": params, "truth": truth, "label": label}


def show_pattern(arrays: dict) -> None:
    intensity, mask = arrays["intensity"], arrays["mask"].astype(bool)
    s = diffraction_stats(intensity, mask)
    cols = st.columns([2, 1])
    cols[0].image(log_image(intensity, mask), caption="Pattern, log scale (blue: not measured)")
    with cols[1]:
        st.metric("Photons", f"{s['photons']:.3g}")
        st.metric("Max count", f"{s['max']:.3g}")
        st.metric("Zero pixels (measured)", f"{s['zeros']:,} ({100 * s['zero_fraction']:.1f} %)")
        st.metric("Not measured", f"{s['masked']:,} ({100 * s['masked_fraction']:.2f} %)")
        st.caption(f"Shape {tuple(s['shape'])}")


def draw_live(rid: str, was_active: bool) -> None:
    """Redrawn every half second while the run goes: preview, likelihood curves, per-start LLK."""
    run, snap = live_header(rid, was_active)
    extra = snap.get("extra", {})
    rows = snap["history"]
    last = rows[-1] if rows else {}
    m = st.columns(4)
    m[0].metric("Cycle", f"{snap['iteration']} / {extra.get('cycles', '?')}")
    if last.get("llk") is not None:
        m[1].metric("LLK (best start)", f"{last['llk']:.4g}")
    if last.get("llk_free") is not None:
        m[2].metric("Free LLK", f"{last['llk_free']:.4g}")
    if extra.get("support_fraction") is not None:
        m[3].metric("Support fraction", f"{100 * extra['support_fraction']:.2f} %")
    cols = st.columns([1, 2])
    if snap.get("preview") is not None:
        cols[0].image(display_uint8(snap["preview"]),
                      caption=f"Best start {extra.get('best_start', '')} (hue: phase, brightness: amplitude)")
    cols[1].plotly_chart(curve_figure(rows, ["llk", "llk_free"], "Log-likelihood per pixel", log_y=True,
                                      labels={"llk": "LLK", "llk_free": "free LLK"}), key="llk-chart")
    if extra.get("llk_starts"):
        fig = go.Figure(go.Bar(x=list(range(len(extra["llk_starts"]))),
                               y=extra.get("llk_free_starts") or extra["llk_starts"]))
        title = "Current free LLK per start" if extra.get("llk_free_starts") else "LLK per start"
        fig.update_layout(title=title,
                          height=220, margin=dict(l=10, r=10, t=30, b=10), template="plotly_dark")
        fig.update_xaxes(title_text="start")
        fig.update_yaxes(type="log")
        cols[1].plotly_chart(fig, key="starts-chart")


def show_results(rid: str) -> None:
    run = manager().store.get(rid)
    summary = run.read_json("summary.json")
    if not summary or not run.file("object.npz").exists():
        return
    st.subheader("Result")
    with np.load(run.file("object.npz"), allow_pickle=False) as z:
        obj, objs = z["object"], z["objects"]
    cols = st.columns(3)
    k = summary.get("averaged", 1)
    cap = f"average of the best {k} starts" if k > 1 else f"start {summary.get('chosen_start')}"
    cols[0].image(display_uint8(amplitude_image(obj)), caption=f"Amplitude ({cap})")
    cols[1].image(display_uint8(phase_image(obj)), caption="Phase (where amplitude > 5 %)")
    cols[2].image(display_uint8(complex_to_rgb(obj)), caption="Composite (hue: phase)")

    c = st.columns(2)
    with c[0]:
        st.markdown("**Ranked starts** (by free LLK)")
        regs = summary.get("registration", [])
        table = []
        for pos, i in enumerate(summary.get("ranking", [])):
            row = {"rank": pos + 1, "start": i, "LLK": summary["llk"][i]}
            if summary.get("llk_free"):
                row["free LLK"] = summary["llk_free"][i]
            if pos < len(regs):
                row["similarity to best"] = round(regs[pos]["similarity"], 4)
                row["twin"] = regs[pos]["twin"]
            table.append(row)
        st.dataframe(table, hide_index=True)
        if len(objs) > 1:
            pick = st.select_slider("Registered start (rank)", list(range(1, len(objs) + 1)),
                                    key=f"rank-{rid}")
            st.image(display_uint8(complex_to_rgb(objs[pick - 1])), caption=f"Rank {pick}, registered")
    with c[1]:
        prtf = run.read_json("prtf.json")
        if prtf:
            q = [qq for qq, v in zip(prtf["q_nyquist"], prtf["prtf"]) if v is not None]
            v = [vv for vv in prtf["prtf"] if vv is not None]
            fig = go.Figure(go.Scatter(x=q, y=v, mode="lines+markers", name="PRTF"))
            fig.add_hline(y=1 / np.e, line_dash="dash", line_color="#f0b429", annotation_text="1/e")
            fig.update_layout(title="PRTF of the best starts (registered)", height=300,
                              template="plotly_dark", margin=dict(l=10, r=10, t=30, b=10))
            fig.update_xaxes(title_text="spatial frequency (fraction of Nyquist)")
            fig.update_yaxes(range=[0, 1.05])
            st.plotly_chart(fig, key="prtf-chart")
        facts = {key: summary.get(key) for key in ("recipe", "starts", "chosen_start", "averaged",
                                                   "prtf_resolution_nyquist", "wall_seconds", "device",
                                                   "cycles_done") if summary.get(key) is not None}
        st.json(facts)
    stem = run.spec.get("params", {}).get("label", "object")
    d = st.columns(4)
    d[0].download_button("NPZ", run.file("object.npz").read_bytes(), f"{stem}-object.npz", key="dl-npz")
    d[1].download_button("CXI", run.file("object.cxi").read_bytes(), f"{stem}-object.cxi", key="dl-cxi")
    d[2].download_button("PNG", run.file("object.png").read_bytes(), f"{stem}-amplitude.png", "image/png",
                         key="dl-png")
    d[3].download_button("Summary JSON", run.file("summary.json").read_bytes(), f"{stem}-summary.json",
                         "application/json", key="dl-json")


prepared = setup()
rid = active_run_id("cdi")
if st.sidebar.button("Run", type="primary", icon=":material/play_arrow:", disabled=prepared is None,
                     key="run"):
    rid = manager().submit({"kind": "cdi", "params": prepared["params"]}, arrays=prepared["arrays"],
                           label=prepared["label"])
    set_active_run(rid)

if rid is None:
    if prepared is not None:
        show_pattern(prepared["arrays"])
        st.caption(f"Runs on {pick_device(None)}. Set up the pattern and the recipe in the sidebar, "
                   f"then press **Run**.")
else:
    active = is_active(manager().snapshot(rid)["state"])
    st.fragment(run_every=0.5 if active else None)(draw_live)(rid, active)
    if not active:
        show_results(rid)
