"""MRI reconstruction: undersampled k-space, zero-filled vs total variation vs the Deep Image Prior, live."""

from __future__ import annotations

import numpy as np
import streamlit as st

from engine.core.device import pick_device
from engine.core.errors import InputError
from engine.dip.presets import PRESETS, default_preset
from engine.mri.inputs import BUILTIN_IMAGES, builtin_image, image_names, read_grey, read_kspace
from engine.mri.kspace import log_magnitude
from engine.mri.workflow import prepare_inputs
from ui.edit import Form, Setting, take_edit
from ui.jobs import active_run_id, manager, snapshot
from ui.views.curves import thin
from ui.views.images import display_uint8
from ui.widgets import (
    CURVES_EVERY_S,
    LIVE_EVERY_S,
    LIVE_POINTS,
    is_active,
    live_chart,
    live_header,
    live_image,
    page_run,
    run_button,
    started,
)

st.title("MRI reconstruction with the Deep Image Prior")
st.caption("Single-coil Cartesian k-space y = M ⊙ F x: whole columns measured, a fully sampled centre. "
           "Zero-filled inverse FFT, total variation (FISTA with data consistency) and DIP with ES-WMV.")


@st.cache_data(show_spinner=False, max_entries=8)
def _builtin(name: str, size: int | None) -> np.ndarray:
    return builtin_image(name, size)


def setup() -> tuple[dict, dict] | None:
    sb = st.sidebar
    sb.header("Input")
    names = image_names() + ["upload image", "upload k-space"]
    src = sb.selectbox("Input", names, key="mri_src",
                       format_func=lambda n: BUILTIN_IMAGES.get(n, n if n.startswith("upload") else f"{n} (sample)"))
    params: dict = {"image": src}  # the input chosen, so that "Edit as a new run" can choose it again
    image = kspace = mask = None
    if src == "upload k-space":
        up = sb.file_uploader("Complex k-space (NPY, NPZ with kspace + mask, HDF5)", type=["npy", "npz", "h5"],
                              key="mri_kspace")
        if up is None:
            st.info("Upload measured k-space, or pick an image to simulate from.")
            return None
        try:
            kspace, mask = read_kspace(up.getvalue(), up.name)
        except InputError as e:
            st.error(str(e))
            return None
    else:
        size = sb.selectbox("Size", [32, 64, 128, 256], index=2, key="mri_size",
                            help="MR_small is 64x64 natively") if src != "MR_small" else None
        params["size"] = size
        if src == "upload image":
            up = sb.file_uploader("Grey image (DICOM, PNG, JPEG, TIFF)", key="mri_upload")
            if up is None:
                st.info("Upload an image, or pick a built-in one.")
                return None
            try:
                image = read_grey(up.getvalue(), up.name, size=size)
            except InputError as e:
                st.error(str(e))
                return None
        else:
            image = _builtin(src, size)
        params["mask_kind"] = sb.selectbox("Mask", ["random", "equispaced"], key="mri_mask_kind")
        params["acceleration"] = sb.selectbox("Acceleration", [2, 4, 8], index=1, key="mri_acc")
        params["noise_sigma"] = sb.select_slider("k-space noise σ", [0.0, 0.005, 0.01, 0.02, 0.05], value=0.01,
                                                 key="mri_noise")
    sb.header("Solver")
    device = pick_device(None)
    presets = list(PRESETS)
    params["preset"] = sb.selectbox("Preset", presets, index=presets.index(default_preset(device)), key="mri_preset")
    params["max_iters"] = int(sb.number_input("DIP budget (0 = default)", 0, 20000, 0, 50, key="mri_iters"))
    params["seed"] = int(sb.number_input("Seed", 0, 2**31 - 1, 0, key="mri_seed"))
    params["device"] = device
    try:
        arrays, params = prepare_inputs(params, image=image, kspace=kspace, mask=mask)
    except InputError as e:
        st.error(str(e))
        return None
    return arrays, params


def show_inputs(arrays: dict) -> None:
    c = st.columns(3)
    c[0].image(display_uint8(arrays["mask"].astype(np.float32), 192), caption="Mask (white = measured)")
    c[1].image(display_uint8(log_magnitude(arrays["kspace"]), 192), caption="k-space, log(1 + |y|)")
    if "reference" in arrays:
        c[2].image(display_uint8(arrays["reference"], 192), caption="Reference")


def draw_live(rid: str, was_active: bool) -> None:
    """The numbers and the preview, redrawn more than twice a second while the run is going."""
    run, snap = live_header(rid, was_active)
    if snap["state"] == "queued":
        return  # nothing to draw yet: the header says what it waits for
    extra = snap.get("extra", {})
    history = snap["history"]
    m = st.columns([1, 1, 1, 1, 2])
    m[0].metric("Iteration", f"{snap['iteration']} / {extra.get('max_iters', '?')}")
    if extra.get("zf_psnr") is not None:
        m[1].metric("Zero-filled PSNR", f"{extra['zf_psnr']:.2f} dB")
    if extra.get("tv_psnr") is not None:
        m[2].metric("TV PSNR", f"{extra['tv_psnr']:.2f} dB")
    last = next((r for r in reversed(history) if r.get("loss") is not None), {})
    if last.get("psnr") is not None:
        m[3].metric("DIP PSNR now", f"{last['psnr']:.2f} dB")
    if snap.get("preview") is not None:
        live_image(m[4], snap["preview"], key="mri-preview", caption=f"DIP, iteration {snap['iteration']}",
                   min_side=192)


def draw_curves(rid: str) -> None:
    """The DIP curves, redrawn once a second while the run is going (a chart costs the browser most)."""
    snap = snapshot(rid)
    if snap["state"] == "queued":
        return
    t_star = snap.get("extra", {}).get("es_iteration")
    rows = thin([r for r in snap["history"] if r.get("loss") is not None], LIVE_POINTS)
    c = st.columns(2)
    live_chart(c[0], rows, ["loss"], "DIP data loss", key="mri-loss", log_y=True)
    if any(r.get("psnr") is not None for r in rows):
        live_chart(c[1], rows, ["psnr"], "DIP PSNR (dB)", key="mri-psnr", marker=t_star)
    if any(r.get("es_variance") is not None for r in rows):
        live_chart(c[1], rows, ["es_variance"], "ES-WMV variance", key="mri-var", log_y=True, marker=t_star)


def show_results(rid: str) -> None:
    run = manager().store.get(rid)
    s = run.read_json("summary.json")
    if not s:
        return
    st.subheader("Reconstructions")
    for w in s.get("warnings") or []:
        st.warning(w)

    def cap(name: str, p: str, q: str) -> str:
        return name + (f" · {s[p]:.2f} dB · SSIM {s[q]:.3f}" if s.get(p) is not None else "")

    c = st.columns(5)
    c[0].image(str(run.file("mask.png")), caption="Mask", width=192)
    c[1].image(str(run.file("kspace.png")), caption="k-space (log)", width=192)
    c[2].image(display_uint8(run.load_array("zero_filled").clip(0, 1), 192), caption=cap("Zero-filled", "input_psnr",
                                                                                        "input_ssim"))
    c[3].image(display_uint8(run.load_array("tv"), 192), caption=cap("TV", "tv_psnr", "tv_ssim"))
    if run.has_array("dip"):
        c[4].image(display_uint8(run.load_array("dip"), 192),
                   caption=cap(f"DIP at t* = {s.get('es_iteration')}", "es_psnr", "es_ssim"))
    with st.expander("Summary"):
        st.json(s)


def _simulated(p: dict) -> bool:
    return p.get("source", "simulated") == "simulated"


def _image(p: dict) -> str:
    if "image" in p:
        return p["image"]
    if p.get("source") == "measured":
        return "upload k-space"
    raise KeyError("image")  # a run made before the page recorded its input


def _notes(p: dict) -> list[str]:
    """The inputs that were uploaded: files are not kept as uploads, so they must be given again."""
    if p.get("source") == "measured":
        return ["The k-space was an uploaded file. Uploaded files are not kept for editing: upload it again in "
                "the sidebar."]
    if p.get("image") == "upload image":
        return ["The image was an uploaded file. Uploaded files are not kept for editing: upload it again in "
                "the sidebar (its size, mask and solver settings are filled in)."]
    return []


EDIT_FORM = Form(settings={
    "mri_src": Setting("Input", _image, options=image_names() + ["upload image", "upload k-space"]),
    "mri_size": Setting("Size", lambda p: p["size"], int, options=[32, 64, 128, 256],
                        when=lambda p: _simulated(p) and p.get("image") != "MR_small"),
    "mri_mask_kind": Setting("Mask", lambda p: p["mask_kind"], options=["random", "equispaced"], when=_simulated),
    "mri_acc": Setting("Acceleration", lambda p: p["acceleration"], int, options=[2, 4, 8], when=_simulated),
    "mri_noise": Setting("k-space noise σ", lambda p: p["noise_sigma"], float,
                         options=[0.0, 0.005, 0.01, 0.02, 0.05], when=_simulated),
    "mri_preset": Setting("Preset", lambda p: p["preset"], options=list(PRESETS)),
    "mri_iters": Setting("DIP budget", lambda p: p["max_iters"], int, lo=0, hi=20000),
    "mri_seed": Setting("Seed", lambda p: p["seed"], int, lo=0, hi=2**31 - 1),
}, notes=_notes)

take_edit({"mri": EDIT_FORM})
prepared = setup()
rid = page_run("mri", "mri_run", active_run_id("mri"))
if run_button(key="mri_run", rid=rid, disabled=prepared is None, where=st.sidebar):
    arrays, params = prepared
    started("mri", "mri_run", manager().submit({"kind": "mri", "params": params}, arrays=arrays, label="mri"), rid)
if rid is None:
    if prepared is not None:
        show_inputs(prepared[0])
        st.caption("Pick an input, a mask and a preset in the sidebar, then press **Run**.")
else:
    active = is_active(snapshot(rid)["state"])
    st.fragment(run_every=LIVE_EVERY_S if active else None)(draw_live)(rid, active)
    st.fragment(run_every=CURVES_EVERY_S if active else None)(draw_curves)(rid)
    if not active:
        show_results(rid)
