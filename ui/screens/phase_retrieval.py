"""Beamline CDI: load or simulate a diffraction pattern, check its unmeasured pixels, draw the initial
support, run Fourier phase retrieval with many starts, watch amplitude/phase and the likelihoods live,
then read the warnings, rank, average, compare with the data, check the PRTF and export."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from engine.cdi.diagnostics import beamstop_warning
from engine.cdi.masks import unmeasured_mask
from engine.cdi.readers import diffraction_stats, load_diffraction
from engine.cdi.recipe import parse_recipe
from engine.cdi.simulate import simulate_pattern
from engine.cdi.solver import DEFAULT_RECIPE, SUPPORT_RECIPE
from engine.core.colors import complex_to_rgb
from engine.core.device import pick_device
from engine.core.errors import InputError
from engine.core.imageio import read_image
from engine.dip.presets import preset_names
from engine.dip.samples import SAMPLES, load_sample
from ui.edit import Form, Setting, take_edit
from ui.jobs import active_run_id, manager, snapshot
from ui.views import cdi as views
from ui.views.images import display_uint8
from ui.widgets import is_active, live_chart, live_header, page_run, run_button, started

st.title("Beamline CDI: Fourier phase retrieval")
st.caption("Recover a complex object x from its diffraction pattern |F x|², up to a translation, the "
           "conjugate flip x(−r)* and a global phase. Operators apply right to left, as in PyNX: "
           "`Sup*ER**5*HIO**50` runs 50 HIO cycles, then 5 ER, then one support update.")

AUTO = "auto"
PRESETS = {
    "Default (follows the support)": AUTO,
    "Quick look": "ER**50*(Sup*ER**5*HIO**40)**5",
    "RAAR only": "ER**100*(Sup*RAAR**50)**10",
    "ER / HIO (PyNX style)": "ER**200*(Sup*ER**5*HIO**50)**10",
    "Custom": None,
}
TYPES = ["npy", "npz", "tif", "tiff", "edf", "cxi", "h5", "hdf5"]
SUPPORT_TYPES = ["png", "tif", "tiff", "npy", "npz"]
MASK_MODES = {
    "auto": "Auto: zero groups next to exposed pixels",
    "all": "Every zero pixel (PyNX mask=zero)",
    "none": "None: zeros are measured",
}
SUPPORT_MODES = {
    "autocorrelation": "Autocorrelation threshold",
    "disc": "Disc",
    "rectangle": "Rectangle",
    "upload": "Upload an image",
}
WHEEL_CAPTION = "Phase wheel: 0 rad right, +π/2 top, ±π left; brightness = amplitude"
SOLVERS = {"classic": "Classic recipe (HIO/ER/RAAR + shrink-wrap)", "dip": "DIP prior (network, ES-WMV)"}
DIP_OBJECTS = {"complex": "Complex (amplitude and phase)", "real": "Real, non-negative"}
DIP_LOSSES = {"amplitude": "Amplitude (|F x| − √I)²", "poisson": "Poisson likelihood"}
DIP_LOSS_TITLE = "DIP loss (measured pixels)"
DIP_VAR_TITLE = "ES-WMV variance"


# --------------------------------------------------------------------------------------------
# cached computations


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
    # the zero groups are found by _unmeasured, with the mode chosen on the page (as the job does)
    d = load_diffraction(data, name=name, mask=mask, mask_name=mask_name, mask_zeros="none")
    return {"intensity": d.intensity, "mask": d.mask, "notes": d.notes}


@st.cache_data(show_spinner=False, max_entries=8)
def _unmeasured(intensity: np.ndarray, base: np.ndarray, mode: str) -> tuple[np.ndarray, dict]:
    """The job's own mask: the same function on the same arrays and mode."""
    return unmeasured_mask(intensity, zeros=mode, mask=base)


@st.cache_data(show_spinner=False, max_entries=8)
def _autocorrelation(intensity: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return views.autocorrelation(intensity, mask)


@st.cache_data(show_spinner=False, max_entries=16)
def _ac_support(intensity: np.ndarray, mask: np.ndarray, threshold: float) -> np.ndarray:
    return views.autocorrelation_support(intensity, mask, threshold=threshold)


@st.cache_data(show_spinner=False, max_entries=8)
def _beamstop_note(intensity: np.ndarray, mask: np.ndarray) -> str | None:
    return beamstop_warning(intensity, mask)


@st.cache_data(show_spinner=False, max_entries=4)
def _support_image(data: bytes, name: str) -> np.ndarray:
    return read_image(data, name)


# --------------------------------------------------------------------------------------------
# setup (sidebar)


def _pattern(sb) -> dict | None:  # noqa: ANN001
    sb.header("Pattern")
    source = sb.radio("Source", ["Simulate a pattern", "Upload"], horizontal=True, key="source")
    if source == "Simulate a pattern":
        sample = sb.selectbox("Object from image", list(SAMPLES), index=list(SAMPLES).index("camera"),
                              format_func=lambda n: f"{n} — {SAMPLES[n]}", key="sample")
        size = sb.selectbox("Detector size", [64, 128, 256, 512], index=2, key="size")
        log_photons = sb.slider("Photons (log10)", 5.0, 10.0, 9.0, 0.5, key="photons")
        photons = 10 ** log_photons
        oversampling = sb.slider("Oversampling", 2.0, 4.0, 2.5, 0.1, key="oversampling")
        beamstop = sb.slider("Beamstop radius (px)", 0.0, 6.0, 1.0, 0.5, key="beamstop",
                             help="Larger than the central speckle, it removes the low frequencies that "
                                  "the support must then recover")
        gap = sb.checkbox("Detector gap", value=True, key="gap")
        sim_seed = sb.number_input("Simulation seed", 0, 10_000, 0, key="sim_seed")
        data = _simulate(sample, size, photons, oversampling, beamstop, gap, int(sim_seed))
        given = sb.checkbox("Give the solver the simulated beamstop and gap mask", value=True, key="sim_mask",
                            help="Untick to see what the page finds on its own, as with a real detector "
                                 "file that reads 0 behind the beamstop")
        base = data["mask"] if given else np.zeros(data["mask"].shape, bool)
        # how the pattern was made, so that "Edit as a new run" can make it again
        simulation = {"sample": sample, "size": size, "photons_log10": log_photons,
                      "oversampling": oversampling, "beamstop": beamstop, "gap": gap, "seed": int(sim_seed),
                      "given_mask": given}
        return {"intensity": data["intensity"], "base": base, "truth": data["truth"],
                "label": f"sim-{sample}-{size}", "notes": [], "simulation": simulation}
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
    return {"intensity": data["intensity"], "base": data["mask"], "truth": None,
            "label": up.name.rsplit(".", 1)[0], "notes": data.get("notes", []), "simulation": None}


def _support(sb, intensity: np.ndarray, mask: np.ndarray) -> tuple[str, np.ndarray, float | None] | None:  # noqa: ANN001
    """The initial support chosen in the sidebar: (mode, bool support, autocorrelation threshold)."""
    sb.header("Initial support")
    mode = sb.radio("Support", list(SUPPORT_MODES), format_func=SUPPORT_MODES.get, key="support_mode",
                    help="The region the object may occupy at the start. The autocorrelation estimate is "
                         "too small when the beamstop hides the central speckle: then draw a disc or a "
                         "rectangle a little larger than the object, or upload one.")
    shape = intensity.shape
    side = min(shape)
    if mode == "autocorrelation":
        thr = sb.slider("Autocorrelation threshold (fraction of its max)", 0.01, 0.9, 0.1, 0.01,
                        key="ac_threshold")
        return mode, _ac_support(intensity, mask, float(thr)), float(thr)
    if mode == "disc":
        pct = sb.slider("Disc diameter (% of the array side)", 2, 95, 40, key="disc_size")
        d = max(2, round(pct / 100 * side))
        sb.caption(f"Diameter {d} px, centred")
        return mode, views.disc_support(shape, d / 2), None
    if mode == "rectangle":
        ph = sb.slider("Height (% of the array side)", 2, 95, 40, key="rect_h")
        pw = sb.slider("Width (% of the array side)", 2, 95, 40, key="rect_w")
        h, w = max(2, round(ph / 100 * shape[-2])), max(2, round(pw / 100 * shape[-1]))
        sb.caption(f"{h} × {w} px, centred")
        return mode, views.box_support(shape, [h, w]), None
    up = sb.file_uploader("Support image (white / nonzero = inside; pattern's shape or smaller)",
                          type=SUPPORT_TYPES, key="support_upload")
    if up is None:
        st.info("Upload a support image in the sidebar, or choose another way to draw it.")
        return None
    try:
        return mode, views.fit_support(_support_image(up.getvalue(), up.name), shape), None
    except InputError as e:
        st.error(str(e))
        return None


def _support_drawn() -> dict:
    """How the initial support was drawn (its mode and sizes), so that "Edit as a new run" can draw it again."""
    ss = st.session_state
    mode = ss.get("support_mode", "autocorrelation")
    sizes = {"disc": ["disc_size"], "rectangle": ["rect_h", "rect_w"]}.get(mode, [])
    return {"mode": mode, **{k: ss[k] for k in sizes if k in ss}}


def _origin(pat: dict) -> dict:
    """The params that say how the page made the pattern and the support (the job reads none of them)."""
    return {"simulation": pat["simulation"], "initial_support": pat["support_drawn"]}


def setup() -> dict | None:
    """The sidebar: pattern, unmeasured pixels, initial support and the solver. Returns what to run."""
    sb = st.sidebar
    pat = _pattern(sb)
    if pat is None:
        return None
    intensity, base = pat["intensity"], np.asarray(pat["base"], bool)

    sb.header("Unmeasured pixels")
    mode = sb.radio("Zero pixels", list(MASK_MODES), format_func=MASK_MODES.get, key="mask_zeros",
                    help="Auto masks the beamstop, gaps and a dead border (groups of zeros bordered by "
                         "well-exposed pixels) and keeps the zeros of a weak pattern as measured. Every zero "
                         "is PyNX's mask=zero, right for strong patterns. NaN, negative and hot pixels, and "
                         "the given mask, are always masked.")
    mask, info = _unmeasured(intensity, base, mode)
    mask = np.asarray(mask, bool)

    chosen = _support(sb, intensity, mask)
    pat = dict(pat, support_drawn=_support_drawn())

    sb.header("Solver")
    solver = sb.radio("Solver", list(SOLVERS), format_func=SOLVERS.get, key="solver",
                      help="The classic recipe iterates projections from random starts; the DIP prior fits a "
                           "small network whose output is the object, so that |F x| matches the measured "
                           "magnitudes, and stops by ES-WMV. The prior helps most with few photons.")
    if solver == "dip":
        return _dip_setup(sb, pat, intensity, base, mask, info, mode, chosen)
    preset = sb.selectbox("Recipe", list(PRESETS), key="preset")
    recipe = PRESETS[preset]
    drawn = chosen is not None and chosen[0] != "autocorrelation"
    if recipe == AUTO:
        recipe = SUPPORT_RECIPE if drawn else DEFAULT_RECIPE
        sb.caption("PyNX's recipe for a given support" if drawn else "Autocorrelation support, shrink-wrap")
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
    smode, support, thr = chosen if chosen is not None else (None, None, None)
    runnable = support is not None and bool(support.any())
    if support is not None and not runnable:
        st.error("The initial support is empty: lower the autocorrelation threshold or draw a larger one.")
    if thr is not None:
        opts["autocorr_threshold"] = thr
    params = {"recipe": recipe, "starts": int(starts), "seed": int(seed), "options": opts,
              "average": int(average), "publish_every": 10, "label": pat["label"], "mask_zeros": mode,
              "recipe_preset": preset, **_origin(pat)}
    return _job(pat, params, intensity=intensity, base=base, mask=mask, info=info, support=support, smode=smode,
                runnable=runnable)


def _job(pat: dict, params: dict, *, intensity: np.ndarray, base: np.ndarray, mask: np.ndarray, info: dict,
         support: np.ndarray, smode: str, runnable: bool) -> dict:
    """The prepared job of either solver: its input arrays, its params and what the page draws before a run."""
    arrays = {"intensity": intensity, "mask": base.astype(np.uint8)}
    if runnable and smode != "autocorrelation":
        arrays["support"] = support.astype(np.uint8)
    if pat["truth"] is not None:
        arrays["truth"] = np.asarray(pat["truth"], np.complex64)
    return {"arrays": arrays, "params": params, "truth": pat["truth"], "label": pat["label"],
            "mask": mask, "mask_info": info, "base": base, "support": support, "support_mode": smode,
            "notes": pat["notes"], "runnable": runnable}


def _dip_setup(sb, pat: dict, intensity: np.ndarray, base: np.ndarray, mask: np.ndarray, info: dict,  # noqa: ANN001
               mode: str, chosen: tuple | None) -> dict | None:
    """The DIP-prior options in the sidebar; returns what to run, as :func:`setup` does."""
    if intensity.ndim != 2:
        sb.error("The DIP prior takes 2-D patterns; this one is 3-D. Pick the classic recipe.")
        return None
    names = ["pr"] + [n for n in preset_names() if n != "pr"]
    preset = sb.selectbox("Network preset", names, key="dip_preset",
                          help="pr: a light four-level skip network for arrays of 16 to 128 pixels (default); "
                               "the others are the image-restoration presets")
    iters = sb.number_input("Iterations (budget)", 10, 100_000, 1500, 100, key="dip_iters",
                            help="ES-WMV usually stops well before the budget; the object kept is the one at t*")
    seed = sb.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
    with sb.expander("Advanced", expanded=False):
        obj = st.radio("Object", list(DIP_OBJECTS), format_func=DIP_OBJECTS.get, key="dip_object")
        loss = st.radio("Loss", list(DIP_LOSSES), format_func=DIP_LOSSES.get, key="dip_loss")
        lr = st.number_input("Learning rate", 1e-4, 0.1, 0.01, 0.001, format="%.4f", key="dip_lr")
        patience = st.number_input("ES-WMV patience", 5, 5000, 150, 5, key="dip_patience")
        shrink = st.number_input("Shrink-wrap every (0: keep the support)", 0, 5000, 0, 50, key="dip_shrink")
    smode, support, thr = chosen if chosen is not None else (None, None, None)
    runnable = support is not None and bool(support.any())
    if support is not None and not runnable:
        st.error("The initial support is empty: lower the autocorrelation threshold or draw a larger one.")
    dip = {"preset": preset, "max_iters": int(iters), "obj": obj, "loss": loss, "lr": float(lr),
           "patience": int(patience), "shrink_every": int(shrink)}
    params = {"solver": "dip", "dip": dip, "seed": int(seed), "publish_every": 10, "label": pat["label"],
              "mask_zeros": mode, "options": {} if thr is None else {"autocorr_threshold": thr}, **_origin(pat)}
    return _job(pat, params, intensity=intensity, base=base, mask=mask, info=info, support=support, smode=smode,
                runnable=runnable)


# --------------------------------------------------------------------------------------------
# before the run


def show_pattern(prep: dict) -> None:
    """The pattern with its unmeasured pixels, and the initial support over the autocorrelation."""
    intensity, mask, base = prep["arrays"]["intensity"], prep["mask"], prep["base"]
    for note in prep.get("notes", []):
        st.caption(note)
    s = diffraction_stats(intensity, mask)
    cols = st.columns([2, 1])
    cols[0].image(views.mask_overlay(intensity, mask, user=base),
                  caption="Pattern, log scale (blue: unmeasured pixels found here; orange: the given mask)")
    with cols[1]:
        st.metric("Photons", f"{s['photons']:.3g}")
        st.metric("Max count", f"{s['max']:.3g}")
        st.metric("Zero pixels (measured)", f"{s['zeros']:,} ({100 * s['zero_fraction']:.1f} %)")
        st.metric("Not measured", f"{s['masked']:,} ({100 * s['masked_fraction']:.2f} %)")
        st.caption(f"Shape {tuple(s['shape'])}")
    info = prep["mask_info"]
    st.markdown(f"**Unmeasured pixels** (mode: {MASK_MODES.get(info.get('mode', ''), info.get('mode'))})")
    st.dataframe(views.mask_rows(info, intensity.size), hide_index=True, key="mask-table")

    sup = prep["support"]
    if sup is None:
        return
    st.subheader("Initial support")
    ac = _autocorrelation(intensity, mask)
    c = st.columns([2, 1])
    c[0].image(views.support_overlay(ac, sup),
               caption=f"{SUPPORT_MODES[prep['support_mode']]} (yellow) over the autocorrelation")
    with c[1]:
        st.metric("Support pixels", f"{int(sup.sum()):,}")
        st.metric("Support fraction", f"{100 * sup.mean():.2f} %",
                  help="Oversampling needs the object below about half of the array in 2D")
    note = _beamstop_note(intensity, mask)
    if note:
        what = (" Draw a disc or rectangle a little larger than the object in the sidebar (Initial support), "
                "or upload one." if prep["support_mode"] == "autocorrelation" else "")
        st.warning(note + what, icon=":material/warning:")


# --------------------------------------------------------------------------------------------
# live


def show_warnings(warnings: list[str] | None, *, live: bool = False) -> None:
    for w in warnings or []:
        st.warning(w, icon=":material/warning:")
    if warnings and not live:
        st.caption("The result is still shown below; treat it with care until the warnings are fixed.")


def _support_track(rid: str, snap: dict, size: int) -> list[tuple[int, float]]:
    """(cycle, support pixels) seen so far: from the history when logged there, else gathered from the
    live state at every redraw."""
    rows = snap.get("history") or []
    logged = [(r["iteration"], r["support_pixels"]) for r in rows if r.get("support_pixels") is not None]
    if not logged:
        logged = [(r["iteration"], r["support_fraction"] * size) for r in rows
                  if r.get("support_fraction") is not None]
    if logged:
        return logged
    track = st.session_state.setdefault(f"support-track-{rid}", {})
    frac = (snap.get("extra") or {}).get("support_fraction")
    if frac is not None:
        track[int(snap["iteration"])] = float(frac) * size
    return sorted(track.items())


@st.cache_data(show_spinner=False, max_entries=16)
def _pattern_size(rid: str) -> int | None:
    run = manager().store.get(rid)
    if not run.has_array("intensity"):
        return None
    return int(np.prod(np.load(run.path / "arrays" / "intensity.npy", mmap_mode="r").shape))


def draw_live(rid: str, was_active: bool) -> None:
    """Redrawn every half second while the run goes: preview, likelihood and support curves."""
    run, snap = live_header(rid, was_active)
    if snap["state"] == "queued":
        return  # nothing to draw yet: the header says what it waits for
    extra = snap.get("extra", {})
    rows = snap["history"]
    if run.spec.get("params", {}).get("solver") == "dip":
        _draw_dip_live(snap, extra, rows)
        return
    last = rows[-1] if rows else {}
    size = _pattern_size(rid)
    m = st.columns(4)
    m[0].metric("Cycle", f"{snap['iteration']} / {extra.get('cycles', '?')}")
    if last.get("llk") is not None:
        m[1].metric("LLK (best start)", f"{last['llk']:.4g}")
    if last.get("llk_free") is not None:
        m[2].metric("Free LLK", f"{last['llk_free']:.4g}")
    if extra.get("support_fraction") is not None:
        px = f" ({extra['support_fraction'] * size:,.0f} px)" if size else ""
        m[3].metric("Support", f"{100 * extra['support_fraction']:.2f} %{px}")
    show_warnings(extra.get("warnings"), live=True)
    cols = st.columns([1, 2])
    if snap.get("preview") is not None:
        cols[0].image(display_uint8(snap["preview"]),
                      caption=f"Best start {extra.get('best_start', '')} (hue: phase, brightness: amplitude)")
        cols[0].image(views.phase_wheel(96), caption=WHEEL_CAPTION, width=96)
    cols[1].plotly_chart(views.log_curve_figure(rows, ["llk", "llk_free"], "Log-likelihood per pixel",
                                                labels={"llk": "LLK", "llk_free": "free LLK"}),
                         key="llk-chart")
    if size:
        track = _support_track(rid, snap, size)
        if track:
            cols[1].plotly_chart(views.support_figure(track, "Support size (best start)"), key="support-chart")
    if extra.get("llk_starts"):
        vals = extra.get("llk_free_starts") or extra["llk_starts"]
        title = "Current free LLK per start" if extra.get("llk_free_starts") else "LLK per start"
        cols[1].plotly_chart(views.bar_log_figure(vals, title), key="starts-chart")


def _draw_dip_live(snap: dict, extra: dict, rows: list[dict]) -> None:
    """The DIP prior's live view: iteration, t*, loss, the loss and ES-WMV variance curves, the object."""
    last = rows[-1] if rows else {}
    t_star = extra.get("es_iteration")
    m = st.columns(4)
    m[0].metric("Iteration", f"{snap['iteration']} / {extra.get('cycles', '?')}")
    m[1].metric("t* (lowest variance)", "—" if t_star is None else str(t_star),
                help="The iteration whose output ES-WMV keeps: the minimum of the windowed variance; the run "
                     "stops once it has held for the patience")
    if last.get("loss") is not None:
        m[2].metric("Loss", f"{last['loss']:.4g}")
    if extra.get("patience_left") is not None:
        m[3].metric("Patience left", f"{extra['patience_left']}")
    cols = st.columns([1, 2])
    if snap.get("preview") is not None:
        cols[0].image(display_uint8(snap["preview"]),
                      caption=f"Current object, iteration {snap['iteration']} (hue: phase, brightness: amplitude)")
        cols[0].image(views.phase_wheel(96), caption=WHEEL_CAPTION, width=96)
    # updated in place, not rebuilt: a figure built twice a second kept the page's redraws busy
    live_chart(cols[1], rows, ["loss"], DIP_LOSS_TITLE, key="dip-loss-chart", log_y=True, marker=t_star,
               labels={"loss": "loss"})
    if any(r.get("es_variance") is not None for r in rows):
        live_chart(cols[1], rows, ["es_variance"], DIP_VAR_TITLE, key="dip-var-chart", log_y=True, marker=t_star,
                   labels={"es_variance": "variance"})
    else:
        cols[1].caption("The ES-WMV variance appears once its window of outputs is full.")


# --------------------------------------------------------------------------------------------
# results


@st.cache_data(show_spinner="Comparing with the data…", max_entries=4)
def _data_views(rid: str, version: str) -> dict:
    """Radial profiles, side by side images and the truth comparison of a finished run."""
    run = manager().store.get(rid)
    p = run.spec.get("params", {})
    intensity = run.load_array("intensity")
    base = run.load_array("mask") if run.has_array("mask") else np.zeros(intensity.shape, np.uint8)
    mask, _ = _unmeasured(intensity, np.asarray(base) != 0, str(p.get("mask_zeros", "auto")))
    with np.load(run.file("object.npz"), allow_pickle=False) as z:
        obj = z["object"]
    model = views.model_intensity(obj, intensity, mask)
    r, meas = views.radial_profile(intensity, mask)
    _, calc = views.radial_profile(model, mask)
    left, right = views.log_pair(intensity, model, mask)
    out = {"r": r, "measured": meas, "model": calc, "left": left, "right": right}
    if run.has_array("truth"):
        t, a, sim = views.compare_to_truth(run.load_array("truth"), obj)
        out.update(truth=complex_to_rgb(t), aligned=complex_to_rgb(a), similarity=sim,
                   truth_pixels=int((np.abs(run.load_array("truth")) > 0).sum()))
    return out


def _ranked_starts(summary: dict, objs: np.ndarray, rid: str) -> None:
    """The classic solver's starts, ranked by free LLK, and a registered start to look at."""
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
        pick = st.select_slider("Registered start (rank)", list(range(1, len(objs) + 1)), key=f"rank-{rid}")
        st.image(display_uint8(complex_to_rgb(objs[pick - 1])), caption=f"Rank {pick}, registered")


def show_results(rid: str) -> None:
    run = manager().store.get(rid)
    summary = run.read_json("summary.json")
    if not summary or not run.file("object.npz").exists():
        return
    st.subheader("Result")
    show_warnings(summary.get("warnings"))
    with np.load(run.file("object.npz"), allow_pickle=False) as z:
        obj, objs = z["object"], z["objects"]
    k = summary.get("averaged", 1)
    dip = summary.get("solver") == "dip"
    cap = f"average of the best {k} starts" if k > 1 else f"start {summary.get('chosen_start')}"
    if dip:
        t = summary.get("es_iteration")
        cap = f"DIP prior, object at t* = {t}" if t else f"DIP prior, iteration {summary.get('iterations')}"
    cols = st.columns([3, 3, 1, 3])
    # plotly heatmaps carry their scale: amplitude from 0, phase in radians on a cyclic scale
    cols[0].plotly_chart(views.amplitude_figure(obj, title=f"Amplitude ({cap})"), key="amp-fig")
    cols[1].plotly_chart(views.phase_figure(obj, title="Phase (where amplitude > 5 %)"), key="phase-fig")
    cols[2].plotly_chart(views.phase_wheel_figure(rings=6, title="phase (rad), brightness: amplitude"),
                         key="wheel-fig")
    cols[3].image(display_uint8(complex_to_rgb(obj)), caption="Composite (hue: phase, brightness: amplitude)")

    c = st.columns(2)
    with c[0]:
        if dip:
            st.markdown("**DIP prior**")
            st.json({key: summary.get(key) for key in ("preset", "object_model", "loss", "iterations", "max_iters",
                                                       "es_iteration", "stop", "llk_per_pixel", "support_source",
                                                       "wall_seconds", "device")})
        else:
            _ranked_starts(summary, objs, rid)
    with c[1]:
        prtf = run.read_json("prtf.json")
        if prtf:
            import plotly.graph_objects as go

            q = [qq for qq, v in zip(prtf["q_nyquist"], prtf["prtf"]) if v is not None]
            v = [vv for vv in prtf["prtf"] if vv is not None]
            fig = go.Figure(go.Scatter(x=q, y=v, mode="lines+markers", name="PRTF"))
            fig.add_hline(y=1 / np.e, line_dash="dash", line_color="#f0b429", annotation_text="1/e")
            fig.update_layout(title="PRTF of the DIP object" if dip else "PRTF of the best starts (registered)",
                              height=300,
                              template="plotly_dark", margin=dict(l=10, r=10, t=30, b=10))
            fig.update_xaxes(title_text="spatial frequency (fraction of Nyquist)")
            fig.update_yaxes(range=[0, 1.05])
            st.plotly_chart(fig, key="prtf-chart")
        facts = {key: summary.get(key) for key in ("recipe", "starts", "chosen_start", "averaged",
                                                   "support_source", "llk_per_pixel",
                                                   "prtf_resolution_nyquist", "wall_seconds", "device",
                                                   "cycles_done") if summary.get(key) is not None}
        st.json(facts)

    dv = _data_views(rid, f"{summary.get('cycles_done')}-{summary.get('wall_seconds')}")
    st.markdown("**The result against the data**")
    c = st.columns([2, 1, 1])
    c[0].plotly_chart(views.profile_figure(dv["r"], dv["measured"], dv["model"]), key="profile-chart")
    c[1].image(display_uint8(dv["left"]), caption="Measured (log; blue: not measured)")
    c[2].image(display_uint8(dv["right"]), caption="|F x|² of the result (same log scale)")
    hist = summary.get("support_history")
    if hist:
        ref = dv.get("truth_pixels")
        st.plotly_chart(views.support_figure(list(enumerate(hist)), "Support size after each update",
                                             x_title="support update (0: initial)", reference=ref,
                                             reference_label="true object" if ref else ""),
                        key="support-history-chart")
    if "similarity" in dv:
        st.markdown("**Simulation: the truth beside the result**")
        t = st.columns([2, 2, 1])
        t[0].image(display_uint8(dv["truth"]), caption="True object")
        t[1].image(display_uint8(dv["aligned"]), caption="Result, registered (shift, twin, phase)")
        t[2].metric("Similarity to the truth", f"{dv['similarity']:.3f}",
                    help="|<truth, result>| / (|truth| |result|) after registration; 1 = identical")

    stem = run.spec.get("params", {}).get("label", "object")
    d = st.columns(4)
    d[0].download_button("NPZ", run.file("object.npz").read_bytes(), f"{stem}-object.npz", key="dl-npz")
    d[1].download_button("CXI", run.file("object.cxi").read_bytes(), f"{stem}-object.cxi", key="dl-cxi")
    d[2].download_button("PNG", run.file("object.png").read_bytes(), f"{stem}-amplitude.png", "image/png",
                         key="dl-png")
    d[3].download_button("Summary JSON", run.file("summary.json").read_bytes(), f"{stem}-summary.json",
                         "application/json", key="dl-json")


def _sim(p: dict) -> dict:
    return p["simulation"]


def _simulated(p: dict) -> bool:
    return isinstance(p.get("simulation"), dict)


def _classic(p: dict) -> bool:
    return p.get("solver", "classic") != "dip"


def _dip(p: dict) -> bool:
    return p.get("solver") == "dip"


def _drawn(p: dict) -> dict:
    return p["initial_support"]


def _mode_is(*modes: str) -> Callable[[dict], bool]:
    return lambda p: isinstance(p.get("initial_support"), dict) and p["initial_support"].get("mode") in modes


def _recipe_preset(p: dict) -> str:
    if "recipe_preset" in p:
        return p["recipe_preset"]
    named = [name for name, chain in PRESETS.items() if chain is not None and chain == p.get("recipe")]
    return named[0] if named else "Custom"  # a run made before the page recorded the preset


def _notes(p: dict) -> list[str]:
    """The inputs that were uploaded: files are not kept as uploads, so they must be given again."""
    notes = []
    if not _simulated(p):
        notes.append(f"The pattern was an uploaded file ({p.get('label') or 'no name recorded'}), with its mask if "
                     "one was given. Uploaded files are not kept for editing: upload them again in the sidebar.")
    if isinstance(p.get("initial_support"), dict) and p["initial_support"].get("mode") == "upload":
        notes.append("The initial support was an uploaded image: upload it again in the sidebar.")
    return notes


def _opt(name: str) -> Callable[[dict], Any]:
    return lambda p: p["options"][name]


def _dip_opt(name: str) -> Callable[[dict], Any]:
    return lambda p: p["dip"][name]


EDIT_FORM = Form(settings={
    "source": Setting("Source", lambda p: "Simulate a pattern" if _simulated(p) else "Upload",
                      options=["Simulate a pattern", "Upload"]),
    "sample": Setting("Object from image", lambda p: _sim(p)["sample"], options=list(SAMPLES), when=_simulated),
    "size": Setting("Detector size", lambda p: _sim(p)["size"], int, options=[64, 128, 256, 512], when=_simulated),
    "photons": Setting("Photons (log10)", lambda p: _sim(p)["photons_log10"], float, lo=5.0, hi=10.0,
                       when=_simulated),
    "oversampling": Setting("Oversampling", lambda p: _sim(p)["oversampling"], float, lo=2.0, hi=4.0,
                            when=_simulated),
    "beamstop": Setting("Beamstop radius", lambda p: _sim(p)["beamstop"], float, lo=0.0, hi=6.0, when=_simulated),
    "gap": Setting("Detector gap", lambda p: _sim(p)["gap"], bool, when=_simulated),
    "sim_seed": Setting("Simulation seed", lambda p: _sim(p)["seed"], int, lo=0, hi=10_000, when=_simulated),
    "sim_mask": Setting("Give the solver the simulated mask", lambda p: _sim(p)["given_mask"], bool,
                        when=_simulated),
    "mask_zeros": Setting("Zero pixels", lambda p: p["mask_zeros"], options=list(MASK_MODES)),
    "support_mode": Setting("Support", lambda p: _drawn(p)["mode"], options=list(SUPPORT_MODES)),
    "ac_threshold": Setting("Autocorrelation threshold", _opt("autocorr_threshold"), float, lo=0.01, hi=0.9,
                            when=_mode_is("autocorrelation")),
    "disc_size": Setting("Disc diameter", lambda p: _drawn(p)["disc_size"], int, lo=2, hi=95, when=_mode_is("disc")),
    "rect_h": Setting("Height", lambda p: _drawn(p)["rect_h"], int, lo=2, hi=95, when=_mode_is("rectangle")),
    "rect_w": Setting("Width", lambda p: _drawn(p)["rect_w"], int, lo=2, hi=95, when=_mode_is("rectangle")),
    "solver": Setting("Solver", lambda p: "dip" if _dip(p) else "classic", options=list(SOLVERS)),
    "preset": Setting("Recipe", _recipe_preset, options=list(PRESETS), when=_classic),
    "recipe": Setting("Operator chain", lambda p: p["recipe"], when=lambda p: _classic(p)
                      and _recipe_preset(p) == "Custom"),
    "starts": Setting("Random starts", lambda p: p["starts"], int, lo=1, hi=64, when=_classic),
    "seed": Setting("Seed", lambda p: p["seed"], int, lo=0, hi=2**31 - 1),
    "beta_hio": Setting("HIO β", _opt("beta_hio"), float, lo=0.5, hi=1.0, when=_classic),
    "beta_raar": Setting("RAAR β", _opt("beta_raar"), float, lo=0.5, hi=1.0, when=_classic),
    "thr": Setting("Shrink-wrap threshold", _opt("threshold"), float, lo=0.05, hi=0.5, when=_classic),
    "free": Setting("Free pixels", _opt("free_fraction"), float, lo=0.0, hi=0.1, when=_classic),
    "positivity": Setting("Real, positive object", _opt("positivity"), bool, when=_classic),
    "average": Setting("Best starts to average", lambda p: p["average"], int, lo=0, hi=64, when=_classic),
    "dip_preset": Setting("Network preset", _dip_opt("preset"), options=["pr"] + preset_names(), when=_dip),
    "dip_iters": Setting("Iterations (budget)", _dip_opt("max_iters"), int, lo=10, hi=100_000, when=_dip),
    "dip_object": Setting("Object", _dip_opt("obj"), options=list(DIP_OBJECTS), when=_dip),
    "dip_loss": Setting("Loss", _dip_opt("loss"), options=list(DIP_LOSSES), when=_dip),
    "dip_lr": Setting("Learning rate", _dip_opt("lr"), float, lo=1e-4, hi=0.1, when=_dip),
    "dip_patience": Setting("ES-WMV patience", _dip_opt("patience"), int, lo=5, hi=5000, when=_dip),
    "dip_shrink": Setting("Shrink-wrap every", _dip_opt("shrink_every"), int, lo=0, hi=5000, when=_dip),
}, notes=_notes)

take_edit({"cdi": EDIT_FORM})
prepared = setup()
rid = page_run("cdi", "run", active_run_id("cdi"))
runnable = bool(prepared and prepared["runnable"])
if run_button(key="run", rid=rid, disabled=not runnable, where=st.sidebar):
    started("cdi", "run", manager().submit({"kind": "cdi", "params": prepared["params"]}, arrays=prepared["arrays"],
                                           label=prepared["label"]), rid)

if rid is None:
    if prepared is not None:
        show_pattern(prepared)
        st.caption(f"Runs on {pick_device(None)}. Set up the pattern, its unmeasured pixels, the initial "
                   f"support and the recipe in the sidebar, then press **Run**.")
else:
    active = is_active(snapshot(rid)["state"])
    st.fragment(run_every=0.5 if active else None)(draw_live)(rid, active)
    if not active:
        show_results(rid)
