"""Restoration studio: corrupt or upload an image, run the Deep Image Prior, watch ES-WMV live."""

from __future__ import annotations

import json

import numpy as np
import streamlit as st

from engine.core.device import pick_device
from engine.core.errors import InputError
from engine.core.imageio import encode_npz, encode_png, encode_tiff16, read_image
from engine.dip.corruptions import corruption_names, describe
from engine.dip.inputs import TASKS, prepare_inputs
from engine.dip.presets import PRESETS, default_preset, task_key
from engine.dip.samples import SAMPLES, load_sample
from engine.runs import Run
from ui.edit import Form, Setting, take_edit
from ui.jobs import active_run_id, manager, snapshot
from ui.views.curves import thin
from ui.views.images import display_uint8
from ui.views.restoration import (
    EsStatus,
    before_after_figure,
    forced_stop_captions,
    kernel_figure,
    live_status,
    result_caption,
    result_table,
    scrub_choices,
    stop_of,
    verdict,
)
from ui.widgets import (
    CURVES_EVERY_S,
    LIVE_EVERY_S,
    LIVE_POINTS,
    is_active,
    live_chart,
    live_header,
    live_image,
    live_run,
    page_run,
    png_image,
    run_button,
    started,
)

st.title("Restoration with the Deep Image Prior")


@st.cache_data(show_spinner=False, max_entries=8)
def _sample(name: str, size: int | None) -> np.ndarray:
    return load_sample(name, size)


@st.cache_data(show_spinner=False, max_entries=8)
def _decode(data: bytes, name: str) -> np.ndarray:
    return read_image(data, name)


@st.cache_data(show_spinner="Preparing the input…", max_entries=8)
def _prepare(image: np.ndarray, params_json: str, reference: np.ndarray | None,
             mask: np.ndarray | None) -> tuple[dict, dict]:
    return prepare_inputs(image, json.loads(params_json), reference=reference, mask=mask)


def setup() -> tuple[dict, dict] | None:
    """The sidebar: image, corruption, task, preset. Returns (arrays, params) or None."""
    sb = st.sidebar
    sb.header("Input")
    source = sb.radio("Image", ["Bundled sample", "Upload"], horizontal=True, key="source")
    reference = None
    already_corrupted = False
    origin: dict = {}  # which bundled sample, so that "Edit as a new run" can choose it again
    if source == "Bundled sample":
        name = sb.selectbox("Sample", list(SAMPLES), format_func=lambda n: f"{n} — {SAMPLES[n]}",
                            key="sample")
        size = sb.selectbox("Size", [64, 128, 256, 512], index=2, key="size",
                            help="Centre crop, resized. 256² is the benchmark size.")
        image = _sample(name, size)
        label = name
        origin = {"sample": name, "size": size}
    else:
        up = sb.file_uploader("Image (PNG, JPEG, TIFF, NPY, NPZ)", type=["png", "jpg", "jpeg", "tif", "tiff",
                                                                         "npy", "npz"], key="upload")
        if up is None:
            st.info("Upload an image in the sidebar, or pick a bundled sample.")
            return None
        try:
            image = _decode(up.getvalue(), up.name)
        except InputError as e:
            st.error(str(e))
            return None
        label = up.name.rsplit(".", 1)[0]
        already_corrupted = sb.checkbox("This image is already corrupted", key="already")
        if already_corrupted:
            ref = sb.file_uploader("Clean reference (optional, same size)",
                                   type=["png", "jpg", "jpeg", "tif", "tiff", "npy", "npz"], key="ref")
            if ref is not None:
                try:
                    reference = _decode(ref.getvalue(), ref.name)
                except InputError as e:
                    st.error(str(e))
                    return None

    sb.header("Task")
    task = sb.selectbox("Task", list(TASKS), format_func=lambda t: TASKS[t], key="task")
    params: dict = {"task": task, "simulate": not already_corrupted, **origin}
    mask = None
    if task == "denoise" and not already_corrupted:
        names = ["gaussian_sigma"] + [n for n in corruption_names() if n != "gaussian_sigma"]
        corr = sb.selectbox("Corruption", names, key="corruption")
        if corr == "gaussian_sigma":
            sev = sb.slider("Noise σ (of 255)", 5, 75, 25, key="sigma")
        else:
            sev = sb.slider("Severity", 1, 5, 3, key="severity")
        sb.caption(describe(corr, sev))
        params.update(corrupt=corr, severity=sev)
    elif task == "inpaint":
        kind = sb.selectbox("Mask", ["random", "text", "blocks", "upload"], key="mask_kind")
        params["mask_kind"] = kind
        if kind == "random":
            params["mask_fraction"] = sb.slider("Missing pixels", 0.1, 0.9, 0.5, 0.05, key="mask_frac")
        if kind == "upload":
            mf = sb.file_uploader("Mask (white = known pixel)", type=["png", "tif", "tiff", "npy"], key="mask")
            if mf is None:
                st.info("Upload a mask, or choose a generated one.")
                return None
            try:
                mask = _decode(mf.getvalue(), mf.name)
            except InputError as e:
                st.error(str(e))
                return None
    elif task == "sr":
        params["factor"] = sb.selectbox("Factor", [2, 4, 8], index=1, key="factor")
    elif task == "deblur":
        params["kernel"] = sb.selectbox("Kernel", ["gaussian", "motion"], key="kernel")
    elif task == "jpeg":
        params["quality"] = sb.slider("JPEG quality", 5, 50, 10, key="quality")

    sb.header("Solver")
    device = pick_device(None)
    presets = list(PRESETS)
    preset = sb.selectbox("Preset", presets, index=presets.index(default_preset(device)), key="preset",
                          help="\n\n".join(f"**{n}**: {PRESETS[n].description}" for n in presets))
    p = PRESETS[preset]
    tk = task_key(task, factor=params.get("factor", 4))
    # a new preset or task brings its own W, P and budget; edits stick until then
    defaults = {"window": p.window, "patience": p.patience, "max_iters": p.budget(tk)}
    if st.session_state.get("solver_defaults_for") != (preset, tk):
        st.session_state.update(defaults, solver_defaults_for=(preset, tk))
    for key, value in defaults.items():
        # a script run that stopped before these widgets (waiting for an upload) dropped their values
        if key not in st.session_state:
            st.session_state[key] = value
    with sb.expander("Advanced"):
        params["loss"] = st.selectbox("Loss", ["mse", "l1", "huber"], key="loss")
        params["stopping"] = st.selectbox("Early stopping", ["wmv", "emv", "none"], key="stopping",
                                          format_func={"wmv": "ES-WMV (windowed variance)",
                                                       "emv": "ES-EMV (exponential)", "none": "none"}.get)
        params["window"] = st.number_input("Window W", 2, 1000, key="window")
        params["patience"] = st.number_input("Patience P", 5, 5000, key="patience")
        params["max_iters"] = st.number_input("Iteration budget", 10, 20000, key="max_iters")
        params["run_to_budget"] = st.checkbox("Keep going after the stop is detected", key="to_budget")
        params["seed"] = st.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
    params.update(preset=preset, device=device)
    try:
        arrays, params = _prepare(image, json.dumps(params, sort_keys=True), reference, mask)
    except InputError as e:
        st.error(str(e))
        return None
    params["label"] = label
    return arrays, params


def show_inputs(arrays: dict) -> None:
    cols = st.columns(3)
    cols[0].image(display_uint8(arrays["observed"]), caption="Observed (input to the solver)")
    if "reference" in arrays:
        cols[1].image(display_uint8(arrays["reference"]), caption="Clean reference")
    if "mask" in arrays:
        cols[2].image(display_uint8(arrays["mask"].astype(np.float32)), caption="Mask (white = known)")


@st.cache_data(show_spinner=False, max_entries=16)
def _observed_png(rid: str) -> bytes | None:
    # a run's input never changes: read and encode it once, not on every redraw
    run = manager().store.get(rid)
    return png_image(run.load_array("observed")) if run.has_array("observed") else None


def _live_state(run: Run, snap: dict) -> tuple[dict, dict, EsStatus]:
    """(params, extra, status) of a run as its live panel tells them."""
    extra = dict(snap.get("extra", {}))
    params = run.spec.get("params", {})
    stopping = params.get("stopping", "wmv") or "none"
    if not is_active(snap["state"]):
        # a finished run's own account wins over the last published extras (absent after a restart)
        summary = run.read_json("summary.json") or {}
        extra.update({k: summary[k] for k in ("es_iteration", "es_fired") if k in summary})
    if params.get("run_to_budget"):
        extra["run_to_budget"] = True
    status = live_status(extra, stopping=stopping, iteration=int(snap["iteration"]),
                         window=_opt_int(params.get("window")), patience=_opt_int(params.get("patience")))
    return params, extra, status


def draw_live(rid: str, was_active: bool) -> None:
    """The numbers and images that redraw more than twice a second while the run is going."""
    run, snap = live_header(rid, was_active)
    if snap["state"] == "queued":
        return  # nothing to draw yet: the header says what it waits for
    params, extra, status = _live_state(run, snap)
    active = is_active(snap["state"])
    history = snap["history"]
    t_star = status.t_star
    m = st.columns(4)
    m[0].metric("Iteration", f"{snap['iteration']} / {params.get('max_iters', '?')}")
    last = history[-1] if history else {}
    if last.get("psnr") is not None:
        m[1].metric("PSNR now", f"{last['psnr']:.2f} dB")
    if status.phase == "detected":
        m[2].metric(status.label, t_star, help="the variance minimum held for P iterations: the stop")
    elif status.phase == "candidate":
        label = status.label if active else "Candidate t* (not detected)"
        m[2].metric(label, t_star, help="the variance minimum so far; not a decision until it holds for P "
                                        "iterations")
    if status.phase == "candidate" and active and extra.get("patience_left") is not None:
        left = int(extra["patience_left"])
        m[3].metric("Patience left", left)
        st.progress(1 - left / max(1, int(params.get("patience", 1))), text="early-stopping countdown")
    if status.phase == "detected" or (active and status.phase == "candidate"):
        st.caption(status.text)
    img_cols = st.columns(2)
    observed = _observed_png(rid)
    if observed is None:  # a run folder copied without its arrays, or damaged by hand
        img_cols[0].warning("This run folder has no input image (arrays/observed.npy is missing).")
    else:
        img_cols[0].image(observed, caption="Observed", output_format="PNG")
    if snap.get("preview") is not None:
        live_image(img_cols[1], snap["preview"], key="preview",
                   caption=f"Reconstruction, iteration {snap['iteration']}")


def draw_curves(rid: str) -> None:
    """The curves, redrawn once a second while the run is going (a chart costs the browser most)."""
    run, snap = live_run(rid), snapshot(rid)
    if snap["state"] == "queued":
        return
    _, _, status = _live_state(run, snap)
    rows = thin(snap["history"], LIVE_POINTS)
    t_star = status.t_star
    c = st.columns(3)
    live_chart(c[0], rows, ["loss"], "Loss", key="loss-chart", log_y=True)
    if any(r.get("psnr") is not None for r in rows):
        live_chart(c[1], rows, ["psnr"], "PSNR vs reference (dB)", key="psnr-chart", marker=t_star)
    if any(r.get("es_variance") is not None for r in rows):
        live_chart(c[2], rows, ["es_variance"], "ES variance", key="var-chart", log_y=True, marker=t_star)
    elif status.phase == "warmup":
        c[2].info(status.text)


def _opt_int(v: object) -> int | None:
    try:
        return int(v) or None
    except (TypeError, ValueError):
        return None


def show_results(rid: str) -> None:
    run = manager().store.get(rid)
    summary = run.read_json("summary.json")
    if not summary or not run.has_array("result"):
        return
    st.subheader("Result")
    res = run.load_array("result")
    stopping = run.spec["params"].get("stopping", "wmv") or "none"
    said = verdict(summary, stopping=stopping)
    if said is not None:
        (st.warning if said[0] == "warning" else st.info)(said[1])
    forced = stopping != "none" and stop_of(summary) == "user" and not summary.get("es_fired")
    if forced:
        # stopped before the detector decided: the candidate and the last image side by side, never "t*"
        caps = forced_stop_captions(summary)
        shown = ([(res, caps["best"])] if "best" in caps else []) + \
            [(run.load_array("last") if run.has_array("last") else res, caps["last"])]
    else:
        shown = [(res, result_caption(summary, stopping=stopping))]
    cols = st.columns(len(shown) + 2)
    for col, (img, cap) in zip(cols, shown):
        col.image(display_uint8(img), caption=cap)
    scrub, info = cols[len(shown)], cols[len(shown) + 1]
    snaps = run.snapshots()
    if snaps:
        # the scrubber reaches t* itself (its image is the result), not only the saved snapshots
        t_star = None if forced else summary.get("es_iteration")
        its, start = scrub_choices([i for i, _ in snaps], t_star)
        pick = scrub.select_slider("Scrub snapshots", its, value=start, key=f"scrub-{rid}")
        if pick in dict(snaps):
            scrub.image(str(dict(snaps)[pick]), caption=f"Snapshot at iteration {pick}", width=256)
        else:
            scrub.image(display_uint8(res), caption=f"t* = {pick}: the result", width=256)
    with info:
        st.dataframe(result_table(summary), hide_index=True, key=f"facts-{rid}")
    observed = run.load_array("observed") if run.has_array("observed") else None
    fig_cols = st.columns([3, 1])
    if observed is not None:
        fig_cols[0].plotly_chart(before_after_figure(observed, res, title="Before / after: drag the slider"),
                                 key=f"ba-{rid}")
    if run.has_array("kernel"):
        fig_cols[1].plotly_chart(kernel_figure(run.load_array("kernel")), key=f"kernel-{rid}")
    d = st.columns(5)
    stem = run.spec.get("params", {}).get("label", "result")
    d[0].download_button("PNG", encode_png(res), f"{stem}-restored.png", "image/png", key="dl-png")
    d[1].download_button("16-bit TIFF", encode_tiff16(res), f"{stem}-restored.tif", "image/tiff", key="dl-tif")
    d[2].download_button("NPZ", encode_npz(result=res), f"{stem}-restored.npz", key="dl-npz")
    rows = run.metrics()
    keys = ["iteration", "loss", "psnr", "ssim", "es_variance"]
    csv = "\n".join([",".join(keys)] + [",".join("" if r.get(k) is None else str(r.get(k)) for k in keys)
                                          for r in rows]) + "\n"
    d[3].download_button("Metrics CSV", csv, f"{stem}-metrics.csv", "text/csv", key="dl-csv")
    d[4].download_button("Config JSON", json.dumps(run.spec, indent=1), f"{stem}-config.json",
                         "application/json", key="dl-json")


def _bundled(p: dict) -> bool:
    return bool(p.get("sample"))


def _noise(p: dict) -> bool:
    return p.get("task") == "denoise" and bool(p.get("simulate"))


def _derive(run: Run, p: dict) -> dict:
    """What a run made before the page recorded its sample tells through its label and saved reference."""
    if not p.get("sample") and p.get("label") in SAMPLES and p.get("simulate"):
        p["sample"] = p["label"]
        shape = run.array_shape("reference") or ()
        if len(shape) >= 2 and shape[0] == shape[1]:
            p["size"] = shape[0]
    p["_reference_saved"] = run.has_array("reference")
    return p


def _notes(p: dict) -> list[str]:
    """The inputs that were uploaded: files are not kept as uploads, so they must be given again."""
    notes = []
    if not _bundled(p):
        notes.append(f"The image was an uploaded file ({p.get('label') or 'no name recorded'}). Uploaded files "
                     "are not kept for editing: upload it again in the sidebar.")
        if not p.get("simulate") and p.get("_reference_saved"):
            notes.append("The run also had a clean reference, an uploaded file: upload it again to compare "
                         "against it.")
    if p.get("task") == "inpaint" and p.get("mask_kind") == "upload":
        notes.append("The inpainting mask was an uploaded file: upload it again in the sidebar.")
    return notes


def _corruptions() -> list[str]:
    return ["gaussian_sigma"] + [n for n in corruption_names() if n != "gaussian_sigma"]


EDIT_FORM = Form(settings={
    "source": Setting("Image", lambda p: "Bundled sample" if _bundled(p) else "Upload",
                      options=["Bundled sample", "Upload"]),
    "sample": Setting("Sample", lambda p: p["sample"], options=list(SAMPLES), when=_bundled),
    "size": Setting("Size", lambda p: p["size"], int, options=[64, 128, 256, 512], when=_bundled),
    "already": Setting("This image is already corrupted", lambda p: not p["simulate"], bool,
                       when=lambda p: not _bundled(p)),
    "task": Setting("Task", lambda p: p["task"], options=list(TASKS)),
    "corruption": Setting("Corruption", lambda p: p["corrupt"], options=_corruptions(), when=_noise),
    "sigma": Setting("Noise σ", lambda p: p["severity"], int, lo=5, hi=75,
                     when=lambda p: _noise(p) and p.get("corrupt") == "gaussian_sigma"),
    "severity": Setting("Severity", lambda p: p["severity"], int, lo=1, hi=5,
                        when=lambda p: _noise(p) and p.get("corrupt") != "gaussian_sigma"),
    "mask_kind": Setting("Mask", lambda p: p["mask_kind"], options=["random", "text", "blocks", "upload"],
                         when=lambda p: p.get("task") == "inpaint"),
    "mask_frac": Setting("Missing pixels", lambda p: p["mask_fraction"], float, lo=0.1, hi=0.9,
                         when=lambda p: p.get("task") == "inpaint" and p.get("mask_kind") == "random"),
    "factor": Setting("Factor", lambda p: p["factor"], int, options=[2, 4, 8], when=lambda p: p.get("task") == "sr"),
    "kernel": Setting("Kernel", lambda p: p["kernel"], options=["gaussian", "motion"],
                      when=lambda p: p.get("task") == "deblur"),
    "quality": Setting("JPEG quality", lambda p: p["quality"], int, lo=5, hi=50,
                       when=lambda p: p.get("task") == "jpeg"),
    "preset": Setting("Preset", lambda p: p["preset"], options=list(PRESETS)),
    "loss": Setting("Loss", lambda p: p["loss"], options=["mse", "l1", "huber"]),
    "stopping": Setting("Early stopping", lambda p: p["stopping"], options=["wmv", "emv", "none"]),
    "window": Setting("Window W", lambda p: p["window"], int, lo=2, hi=1000),
    "patience": Setting("Patience P", lambda p: p["patience"], int, lo=5, hi=5000),
    "max_iters": Setting("Iteration budget", lambda p: p["max_iters"], int, lo=10, hi=20000),
    "to_budget": Setting("Keep going after the stop is detected", lambda p: p["run_to_budget"], bool),
    "seed": Setting("Seed", lambda p: p["seed"], int, lo=0, hi=2**31 - 1),
}, notes=_notes, derive=_derive)


def _keep_solver_settings() -> None:
    """After an edit: the run's W, P and budget stay, rather than the preset's (setup sets them anew on a
    new preset or task); setup fills in with the preset's what the run did not record."""
    ss = st.session_state
    preset = ss.get("preset") or default_preset(pick_device(None))
    ss["solver_defaults_for"] = (preset, task_key(ss.get("task") or "denoise", factor=ss.get("factor") or 4))


if take_edit({"restore": EDIT_FORM}) is not None:
    _keep_solver_settings()
prepared = setup()
rid = page_run("restore", "run", active_run_id("restore"))
if run_button(key="run", rid=rid, disabled=prepared is None, where=st.sidebar):
    arrays, params = prepared
    started("restore", "run", manager().submit({"kind": "restore", "params": params}, arrays=arrays,
                                               label=params["label"]), rid)

if rid is None:
    if prepared is not None:
        show_inputs(prepared[0])
        st.caption("Set up the input and the solver in the sidebar, then press **Run**.")
else:
    active = is_active(snapshot(rid)["state"])
    st.fragment(run_every=LIVE_EVERY_S if active else None)(draw_live)(rid, active)
    st.fragment(run_every=CURVES_EVERY_S if active else None)(draw_curves)(rid)
    if not active:
        show_results(rid)
