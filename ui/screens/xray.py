"""X-ray review: view chest X-rays like a radiology viewer, see the model's calibrated score, its saliency
map and a sanity check of that map, export a de-identified PNG and report; batches run as a job."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import streamlit as st
from PIL import Image

from engine.core.colors import COLORMAPS, blend
from engine.core.errors import InputError
from engine.xray import workflow as wf
from engine.xray.deid import export_png
from engine.xray.display import FULL, PRESETS, XrayImage, read_xray
from engine.xray.domain import NOT_ASSESSED, DomainCheck, assess_domain, check_film
from engine.xray.predict import DEFAULT_MODEL, Classifier
from engine.xray.saliency import METHODS, SaliencyMap, SanityResult, heat_rgba
from ui.jobs import active_run_id, manager, set_active_run
from ui.views.xray import fit, heat_figure, zoom_box
from ui.widgets import is_active, live_header

SAMPLE_FILE = "RG1_J2KI.dcm"
SAMPLE_NAME = "Sample: adult chest CR (pydicom RG1_J2KI.dcm)"
CUSTOM = "Custom (sliders)"
IMG = {"width": "stretch", "output_format": "PNG"}
PLOT_CONFIG = {"displayModeBar": False}
TARGETS = {"Predicted class": None, "PNEUMONIA": "PNEUMONIA", "NORMAL": "NORMAL"}
SPACING_SOURCE = {
    "PixelSpacing": "PixelSpacing (0028,0030)",
    "ImagerPixelSpacing": "ImagerPixelSpacing (0018,1164), at the detector: patient sizes are smaller",
    "NominalScannedPixelSpacing": "NominalScannedPixelSpacing (0018,2010), of the digitised film",
}

st.title("X-ray review")
st.caption("Pneumonia classifier for pediatric chest X-rays, with saliency maps. For demonstration and "
           "research only: not a medical device, not for diagnosis.")


# ------------------------------------------------------------------------------------------ cached
@st.cache_resource(show_spinner=False)
def _classifier() -> Classifier:
    return Classifier.default()


@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def _read(digest: str, _data: bytes, name: str) -> XrayImage:
    # keyed by the content digest: the same bytes give the same (read-only) image object
    return read_xray(_data, name)


@st.cache_resource(show_spinner=False, max_entries=8, ttl=3600)
def _analyse(digest: str, window: tuple[float, float] | None, invert: bool, preset: str,
             _xray: XrayImage) -> dict:
    # the classifier sees one fixed preprocessing of the stored pixels; window, preset and invert
    # change only what is drawn (the view and the exported overlay)
    grey = wf.as_float(wf.model_input(_xray))
    view = wf.as_float(_xray.display_uint8(window, invert, preset))
    label, p = _classifier().predict(grey)  # InputError for a film too small to classify
    return {"grey": grey, "view": view, "label": label, "p": p, "domain": check_film(_xray, grey)}


@st.cache_resource(show_spinner="Computing the saliency map…", max_entries=8, ttl=3600)
def _saliency(digest: str, window: tuple[float, float] | None, invert: bool, preset: str, method: str,
              target: str | None, _grey: np.ndarray) -> SaliencyMap:
    return _classifier().saliency(_grey, method, target)


def _sample_bytes() -> bytes | None:
    """pydicom's RG1_J2KI.dcm from the pydicom-data package (a test extra), or None; never downloads."""
    try:
        from pydicom.data import get_testdata_file

        path = get_testdata_file(SAMPLE_FILE, download=False)
    except Exception:  # pydicom-data absent or its index unreadable: the sample is optional
        return None
    if not path:
        return None
    with open(str(path), "rb") as f:
        return f.read()


# ------------------------------------------------------------------------------------------- input
def load_images() -> list[dict]:
    """Uploaded files (and the sample), read and validated; one-line errors for the bad ones."""
    sb = st.sidebar
    sb.header("Images")
    ups = sb.file_uploader("Chest X-rays (DICOM, PNG, JPEG)", accept_multiple_files=True, key="upload",
                           help="DICOM files (compressed ones too) are recognised by content, so files "
                                "without an extension are fine.")
    sources: list[tuple[str, bytes]] = [(u.name, u.getvalue()) for u in ups or []]
    if sb.checkbox("Try a sample", key="sample",
                   help="pydicom's test file RG1_J2KI.dcm: a chest CR of an adult, JPEG 2000 compressed. "
                        "The model was trained on children, so this film is not assessed."):
        data = _sample_bytes()
        if data is None:
            sb.info("The sample needs the pydicom-data package (installed with the test extra: "
                    "pip install pydicom-data).")
        else:
            sb.caption("The sample is an **adult** chest CR: outside the model's domain (children aged "
                       "1-5), so it is not assessed; its score is kept for research.")
            sources.append((SAMPLE_NAME, data))
    items = []
    for name, data in sources:
        digest = hashlib.sha256(data).hexdigest()
        try:
            items.append({"name": name, "digest": digest, "xray": _read(digest, data, name)})
        except InputError as e:
            st.error(str(e))
        except (ValueError, OSError) as e:  # a decoder's own error: still one plain line, not a traceback
            st.error(f"{name}: cannot read this file ({type(e).__name__}); expected a DICOM, PNG or JPEG "
                     "chest X-ray")
    return items


def display_controls(xray: XrayImage, digest: str) -> tuple[tuple[float, float] | None, bool, str]:
    """Sidebar window/level (a preset or centre/width sliders) and invert: (window, invert, preset)."""
    sb = st.sidebar
    sb.header("Display")
    preset = sb.selectbox("Window preset", [*PRESETS, CUSTOM], key="preset",
                          help="Default: the file's own window. Lung/Bone/Soft tissue are placed on the "
                               "brightness range of this image (Hounsfield windows for CT).")
    window = None
    if preset == CUSTOM:
        lo, hi = xray.value_range
        span = max(hi - lo, 1e-6)
        c0, w0 = xray.window_for(PRESETS[1])  # start from the auto window
        step = float(span / 1000)
        center = sb.slider("Center (level)", float(lo), float(hi), float(np.clip(c0, lo, hi)), step,
                           key=f"center-{digest[:12]}")
        width = sb.slider("Width", step, float(2 * span), float(np.clip(w0, step, 2 * span)), step,
                          key=f"width-{digest[:12]}")
        window = (center, width)
        preset = FULL  # unused when a window is given
    invert = sb.checkbox("Invert", key="invert")
    return window, invert, preset


def zoom_controls() -> tuple[float, float, float]:
    sb = st.sidebar
    zoom = sb.select_slider("Zoom", [1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0], value=1.0, key="zoom",
                            format_func=lambda z: f"{z:g}x")
    cx = cy = 0.5
    if zoom > 1:
        cx = sb.slider("Pan left-right", 0.0, 1.0, 0.5, 0.01, key="pan_x")
        cy = sb.slider("Pan up-down", 0.0, 1.0, 0.5, 0.01, key="pan_y")
    return zoom, cx, cy


def saliency_controls() -> dict:
    sb = st.sidebar
    sb.header("Saliency")
    show = sb.checkbox("Show saliency overlay", value=True, key="overlay")
    method = sb.selectbox("Method", list(METHODS), format_func=METHODS.get, key="method",
                          help="Grad-CAM: 10x10 feature grid. Integrated Gradients: per input pixel. "
                               "Occlusion: grey-out patches. IG and Occlusion are signed (blue = against).")
    target = sb.selectbox("Target class", list(TARGETS), key="target")
    opacity = sb.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="opacity")
    colormap = sb.selectbox("Colormap", list(COLORMAPS), key="colormap",
                            help="For Grad-CAM maps; signed maps always use blue-white-red.")
    layout = sb.radio("Layout", ["Blended", "Side by side"], horizontal=True, key="layout")
    return {"show": show, "method": method, "target_name": target, "target": TARGETS[target],
            "opacity": opacity, "colormap": colormap, "layout": layout}


# ----------------------------------------------------------------------------------------- drawing
def png(img: np.ndarray) -> bytes:
    """Lossless PNG for the screen (no JPEG artefacts on a film). Pillow's zlib level 1 takes ~60 ms
    on a 900-pixel RGB film against ~300 ms at its default; Streamlit passes PNG bytes on unchanged."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def header_panel(xray: XrayImage) -> None:
    h = xray.header
    rows, cols = xray.shape
    spacing = h.get("pixel_spacing_mm")
    if spacing and all(s and s > 0 for s in spacing):
        src = SPACING_SOURCE.get(str(h.get("pixel_spacing_source")), str(h.get("pixel_spacing_source")))
        sp = (f"{spacing[0]:.3f} x {spacing[1]:.3f} mm (row x column), from {src}; image "
              f"{cols * spacing[1] / 10:.1f} x {rows * spacing[0] / 10:.1f} cm")
    else:
        sp = "not given: sizes are in pixels only"
    age = h.get("patient_age_years")
    facts = {
        "Modality": h.get("modality", "unknown"),
        "View": f"{h.get('view_position', 'unknown')}"
                + (f" (from {h['view_source']})" if h.get("view_source") else ""),
        "Body part": h.get("body_part", "unknown"),
        "Size": f"{cols} x {rows} pixels",
        "Pixel spacing": sp,
        "Bits stored": h.get("bits_stored") or "unknown",
        "Photometric": h.get("photometric", "unknown"),
        "Transfer syntax": h.get("transfer_syntax", "n/a")
                           + (" (lossy)" if h.get("lossy_compression") else ""),
        "Manufacturer": h.get("manufacturer", "unknown"),
        "Age": f"{age:.0f} years" if isinstance(age, (int, float)) and age >= 2
               else (f"{age * 12:.0f} months" if isinstance(age, (int, float)) else "unknown"),
    }
    st.markdown("\n".join(["| Header | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in facts.items()]))


def score_panel(clf: Classifier, label: str, p: float, domain: DomainCheck) -> None:
    facts = wf.model_facts(clf)
    if not domain.assessed:
        # no label, not even a grey one: a coloured word is what people read, whatever the caveat says
        st.markdown("Prediction: **not assessed**: the film is outside the model's training domain.")
        with st.expander("Research only: the model's score on this film"):
            st.metric("Calibrated P(pneumonia)", f"{p:.3f}")
            st.caption("Not validated for films like this one, so it is not a result: the calibration and "
                       "the threshold hold only for pediatric frontal chest X-rays.")
        _model_card(facts)
        return
    st.metric("Calibrated P(pneumonia)", f"{p:.3f}")
    colour = "red" if label == "PNEUMONIA" else "green"
    side = ">=" if p >= clf.threshold else "<"
    st.markdown(f"Prediction: :{colour}[**{label}**] (P {side} threshold {clf.threshold:.3f})")
    sens, spec = facts.get("sensitivity"), facts.get("specificity")
    ci = facts.get("sensitivity_ci95"), facts.get("specificity_ci95")
    perf = ""
    if sens is not None and spec is not None:
        perf = (f" At this threshold, {facts['evaluation']}: "
                f"sensitivity {sens:.3f}" + (f" (95% CI {ci[0][0]:.3f}-{ci[0][1]:.3f})" if ci[0] else "")
                + f", specificity {spec:.3f}" + (f" (95% CI {ci[1][0]:.3f}-{ci[1][1]:.3f})" if ci[1] else "")
                + ". The threshold was chosen on these same predictions and no independent test set was used, "
                "so these figures are optimistic: expect lower ones on other patients and hospitals.")
    st.caption(f"**What the score means.** A calibrated probability of pneumonia (temperature scaling, "
               f"T = {facts['temperature']:.3f}) for films like the training ones: pediatric frontal "
               f"chest X-rays from one hospital. The label is PNEUMONIA when P >= the operating threshold "
               f"{facts['threshold']:.3f} ({facts.get('threshold_rule') or 'from the model config'})."
               + perf + " The model sees one fixed preprocessing of the stored pixels, so the window and "
               "invert change only the view.")
    _model_card(facts)


def _model_card(facts: dict) -> None:
    card = wf.model_card(DEFAULT_MODEL)
    if card:
        with st.expander(f"Model card: {facts['name']} v{facts['version']}"):
            st.markdown(card)


def viewer(state: dict, smap: SaliencyMap | None, opts: dict, zoom: tuple[float, float, float]) -> None:
    """Draw the film (and its map, blended or beside it) at the chosen zoom and pan."""
    grey = state["view"]
    top, bottom, left, right = zoom_box(grey.shape, *zoom)
    view = fit(grey[top:bottom, left:right])
    caption = f"{right - left} x {bottom - top} pixels shown"
    if zoom[0] > 1:
        caption += f" ({zoom[0]:g}x zoom)"
    if smap is None:
        st.image(png(wf.to_uint8(view)), caption=caption, **IMG)
        return
    heat = fit(smap.upsampled[top:bottom, left:right])
    rgba = heat_rgba(heat, smap, opts["colormap"])
    name = METHODS[smap.method]
    if opts["layout"] == "Blended":
        st.image(png(blend(view, rgba, opacity=opts["opacity"])), caption=f"{caption}; {name} blended", **IMG)
    else:
        c = st.columns(2)
        c[0].image(png(wf.to_uint8(view)), caption=caption, **IMG)
        colours = np.round(rgba[..., :3] * 255).astype(np.uint8)
        c[1].image(png(colours), caption=f"{name} (upsampled from {smap.grid})", **IMG)


def sanity_panel(xray_key: tuple, grey: np.ndarray, opts: dict) -> float | None:
    """The 'Explain this map' model-randomisation check; returns the rank correlation once computed."""
    key = (*xray_key, opts["method"], opts["target"])
    st.markdown("**Is this map about the model?** The check re-runs the method on a copy of the model "
                "whose weights are re-initialised at random (Adebayo et al., NeurIPS 2018). A map that "
                "stays the same does not depend on what the model learnt.")
    if st.button("Explain this map", key="sanity", icon=":material/science:"):
        with st.spinner("Running the method on a weight-randomised copy…"):
            res = _classifier().sanity_check(grey, opts["method"], opts["target"])
        st.session_state["xray_sanity"] = {"key": key, "result": res}
    saved = st.session_state.get("xray_sanity")
    if not saved or saved["key"] != key:
        return None
    res: SanityResult = saved["result"]
    rho = res.spearman
    c = st.columns(2)
    c[0].plotly_chart(heat_figure(res.original, "Trained model", opts["colormap"], 260), key="sanity-orig",
                      config=PLOT_CONFIG)
    c[1].plotly_chart(heat_figure(res.randomized, "Randomised weights", opts["colormap"], 260),
                      key="sanity-rand", config=PLOT_CONFIG)
    m = st.columns([2, 3])
    m[0].metric("Rank correlation", "n/a" if not np.isfinite(rho) else f"{rho:.2f}",
                help="Spearman correlation of the two maps at true resolution (of |values| for signed maps)")
    if not np.isfinite(rho) and np.ptp(res.randomized.map) == 0 and np.ptp(res.original.map) > 0:
        # Grad-CAM of a randomised network is often flat (the ReLU of a negative sum): the map is gone
        m[1].caption("The randomised model's map is flat: the trained model's map depends on what it learnt, "
                     "as it should (no correlation can be computed against a constant).")
    elif not np.isfinite(rho):
        m[1].caption("One map is constant, so no correlation can be computed.")
    elif abs(rho) < 0.5:
        m[1].caption("Low (|rho| < 0.5, a rule of thumb): the map changes when the weights are "
                      "destroyed, as it should.")
    else:
        m[1].caption("High: the map barely depends on the trained weights; do not read much into it.")
    return rho if np.isfinite(rho) else None


def review(item: dict) -> None:
    """The viewer, score, saliency, sanity check and export of one image."""
    xray: XrayImage = item["xray"]
    digest = item["digest"]
    window, invert, preset = display_controls(xray, digest)
    zoom = zoom_controls()
    opts = saliency_controls()
    try:
        state = _analyse(digest, window, invert, preset, xray)
    except InputError as e:  # e.g. a 3x3 film: readable, but too small to classify
        st.error(f"{item['name']}: {e}")
        return
    clf = _classifier()
    domain: DomainCheck = state["domain"]
    if not domain.assessed:
        st.warning("**Not assessed**: the header says this film is outside what the model was trained on "
                   "(pediatric frontal chest X-rays), so no label is given.\n\n"
                   + "\n".join(f"- {w}" for w in domain.reasons), icon=":material/block:")
    if domain.warnings:
        st.warning("**The image differs from the training images**: check the file before trusting the "
                   "score.\n\n" + "\n".join(f"- {w}" for w in domain.warnings), icon=":material/warning:")
    if domain.note:
        st.caption(domain.note)
    for w in xray.warnings:
        st.info(w)
    smap = None
    if opts["show"] and not domain.assessed:
        st.caption("Saliency maps are drawn only for films the model assesses.")
    elif opts["show"]:
        try:
            smap = _saliency(digest, window, invert, preset, opts["method"], opts["target"], state["grey"])
        except InputError as e:
            st.error(str(e))
    left, right = st.columns([3, 2])
    with left:
        viewer(state, smap, opts, zoom)
    with right:
        score_panel(clf, state["label"], state["p"], domain)
        header_panel(xray)
    rho = None
    if smap is not None:
        st.subheader(f"{METHODS[smap.method]} at its true resolution: {smap.grid}")
        c = st.columns([2, 3])
        c[0].plotly_chart(heat_figure(smap, f"Target class {clf.labels[smap.target]}",
                                      opts["colormap"]), key="heat-true", config=PLOT_CONFIG)
        with c[1]:
            st.caption("Each block is one cell of the map as computed; the overlay is this grid "
                       "interpolated to the film. "
                       + ("Red: evidence for the target class, blue: against it." if smap.signed else
                          "The colour bar gives the value range (0 = no contribution).")
                       + " Saliency shows what drives the score, not where disease is.")
            rho = sanity_panel((digest, window, invert, preset), state["grey"], opts)
    export(item, state, smap, opts, window, invert, preset, rho, domain)


def export(item: dict, state: dict, smap: SaliencyMap | None, opts: dict, window, invert: bool, preset: str,
           rho: float | None, domain: DomainCheck) -> None:
    xray: XrayImage = item["xray"]
    clf = _classifier()
    st.subheader("Export")
    st.caption("Without patient identifiers: the PNG holds pixels only (no metadata), the report no names, "
               "IDs, dates, institutions or UIDs. Text burned into the pixels is not removed.")
    params = {"target": opts["target_name"], "opacity": opts["opacity"], "colormap": opts["colormap"],
              "layout": opts["layout"], "overlay": opts["show"],
              "window": list(window) if window else preset, "invert": invert}
    if smap is not None:
        params.update(grid=smap.grid, value_range=[smap.vmin, smap.vmax], signed=smap.signed)
    extra = {"sanity_check_spearman": rho} if rho is not None else {}
    if domain.note:
        extra["domain_note"] = domain.note
    method = opts["method"] if smap is not None else "none"
    try:
        text = wf.review_report(clf, xray, state["p"], method=method, params=params,
                                warnings=[*domain.warnings, *xray.warnings], extra=extra or None,
                                reasons=domain.reasons)
    except ValueError as e:  # the report refused to carry an identifying value
        st.error(str(e))
        text = None

    def export_file() -> bytes:
        overlay = None if smap is None else heat_rgba(smap.upsampled, smap, opts["colormap"])
        return export_png(state["view"], overlay, opacity=opts["opacity"])

    d = st.columns(4)
    d[0].download_button("De-identified PNG", export_file, "xray-review.png", "image/png", key="dl-png",
                         icon=":material/image:")
    if text is not None:
        d[1].download_button("Report JSON", text, "xray-report.json", "application/json", key="dl-json",
                             icon=":material/description:")
    st.session_state["xray_report"] = text  # kept in the session for checks; never written to disk


# ------------------------------------------------------------------------------------------- batch
def draw_live(rid: str, was_active: bool, names: list[str]) -> None:
    run, snap = live_header(rid, was_active)
    total = len(run.spec.get("params", {}).get("images", [])) or 1
    done = snap["iteration"]
    st.progress(min(1.0, done / total), text=f"{done} of {total} images")
    rows = [r for r in snap["history"] if "probability" in r]
    summary = run.read_json("summary.json") if not is_active(snap["state"]) else None
    entries = run.spec.get("params", {}).get("images", [])
    if summary and summary.get("results"):
        # a NOT_ASSESSED film's score stays out of the table; it is in the expander below, for research
        table = [{"image": r["name"],
                  "file (this session)": names[r["index"]] if r["index"] < len(names) else "",
                  "prediction": "not assessed" if r["label"] == NOT_ASSESSED else r["label"],
                  "P(pneumonia)": None if r["label"] == NOT_ASSESSED else round(r["probability"], 3),
                  "why not assessed": "; ".join(r.get("reasons", [])),
                  "image warnings": len(r.get("warnings", []))} for r in summary["results"]]
    else:
        table = []
        for r in rows:
            entry = entries[r["done"] - 1] if 0 < r["done"] <= len(entries) else {}
            ok = assess_domain(wf.check_header(entry.get("header", {}))).assessed
            table.append({"image": entry.get("name", r["done"]),
                          "P(pneumonia)": round(r["probability"], 3) if ok else None})
    c = st.columns([3, 1])
    if table:
        c[0].dataframe(table, hide_index=True, key=f"batch-table-{rid}-{len(table)}")
    if snap.get("preview") is not None and is_active(snap["state"]):
        c[1].image(snap["preview"], caption=f"image {done}")
    if summary and summary.get("results"):
        with st.expander("Per image: why not assessed, image warnings, research scores"):
            for r in summary["results"]:
                lines = [f"- not assessed: {w}" for w in r.get("reasons", [])]
                if r["label"] == NOT_ASSESSED:
                    lines.append(f"- research only: calibrated P(pneumonia) {r['probability']:.3f}")
                lines += [f"- {w}" for w in r.get("warnings", [])]
                if lines:
                    st.markdown(f"**{r['name']}**\n" + "\n".join(lines))
        headerless = sum(bool(r.get("note")) for r in summary["results"])
        if headerless:  # said once for the batch, not once per file
            st.caption(f"{headerless} of {len(summary['results'])} images have no DICOM header (PNG/JPEG): "
                       "their age, view, modality and body part cannot be checked against the training domain.")
        st.download_button("Batch results JSON", json.dumps(summary, indent=1), "xray-batch.json",
                           "application/json", key="dl-batch")


def batch(items: list[dict]) -> None:
    rid = active_run_id("xray")
    if len(items) > 1:
        st.subheader(f"Batch: {len(items)} images")
        if st.button(f"Predict all {len(items)} in the background", key="batch", icon=":material/play_arrow:",
                     type="primary"):
            try:
                arrays, params = wf.batch_params([(it["name"], it["xray"]) for it in items])
            except InputError as e:
                st.error(str(e))
            else:
                rid = manager().submit({"kind": "xray", "params": params}, arrays=arrays,
                                       label=f"{len(items)} chest X-rays")
                set_active_run(rid)
    if rid is None:
        return
    if len(items) <= 1:
        st.subheader("Batch run")
    names = [it["name"] for it in items]
    active = is_active(manager().snapshot(rid)["state"])
    st.fragment(run_every=0.5 if active else None)(draw_live)(rid, active, names)


# -------------------------------------------------------------------------------------------- page
items = load_images()
batch(items)
if not items:
    st.info("Drop one or more chest X-rays (DICOM, PNG or JPEG) in the sidebar, or tick **Try a sample**.")
else:
    if len(items) > 1:
        pick = st.selectbox("Image to review", range(len(items)), format_func=lambda i: items[i]["name"],
                            key="pick")
    else:
        pick = 0
    review(items[pick])
