"""Chest X-ray review: batch prediction as a job, and the model facts and report the X-ray Review page shows.

Batch params
------------
model : ``"default"`` (the shipped pediatric pneumonia classifier; the only one the page offers)
images : list of ``{"array": "img0", "name": "image 1", "header": {...}}``: one entry per run array.
    ``header`` holds de-identified header facts (:func:`job_header`); names carry no file names.
preset, invert : how the images were displayed before saving (for the record).

Run arrays ``img0``, ``img1``, ...: the displayed images (bone white, windowed) as uint8, which is
what :func:`model_input` gives the interactive page too, so both give the same probabilities.

Published per image: metrics ``done`` (images finished) and ``probability`` (calibrated P(PNEUMONIA)),
a thumbnail preview and ``extra`` ``total``. Summary: ``{"results": [...], "model", "threshold",
"count"}``; each result has ``index``, ``name``, ``label`` (NORMAL, PNEUMONIA, or NOT_ASSESSED when the
header puts the film outside the training domain), ``probability`` (reported either way, for research),
``reasons`` (why it is not assessed; empty when it is), ``note`` (the no-header sentence, or None) and
image ``warnings``.
The summary is a dict (the job manager adds ``wall_seconds`` to it); the per-image list is ``results``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from engine.core.errors import InputError
from engine.xray.deid import REPORT_HEADER_KEYS, build_report, coarse_age, report_json, sanitise
from engine.xray.domain import NOT_ASSESSED, assess_domain, image_stats

if TYPE_CHECKING:
    from engine.xray.display import XrayImage
    from engine.xray.predict import Classifier

MAX_BATCH = 64  # images per batch run; each is stored as uint8 at full size in the run folder
PREVIEW_SIDE = 192


# ------------------------------------------------------------------------------------------ images
def model_input(xray: XrayImage, *, window: tuple[float, float] | None = None, invert: bool = False,
                preset: str = "Default (header)") -> np.ndarray:
    """The classifier's fixed input as uint8: one preprocessing of the stored pixels, whatever the view.

    ``window``, ``invert`` and ``preset`` are accepted for old callers and ignored: window/level and
    invert are display-only. PNG/JPEG: the stored codes scaled by the code range of their bit depth
    (code / 255 for 8-bit, as in training). DICOM: the modality LUT (applied by the reader), then the
    header's VOI LUT or first window if present, else the 0.5-99.5 percentile range, then MONOCHROME1
    turned into MONOCHROME2 (bone white; a property of the data, not of the display).
    """
    del window, invert, preset
    if xray.header.get("source") in ("png", "jpeg"):
        bits = int(xray.header.get("bits_stored") or 8)
        top = 255.0 if bits <= 8 else float(2**bits - 1)
        return to_uint8(np.clip(xray.pixels / top, 0.0, 1.0))
    return xray.display_uint8(None, False, "Default (header)")


def as_float(img: np.ndarray) -> np.ndarray:
    """uint8 or float image -> float32 in [0, 1]."""
    a = np.asarray(img)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else np.clip(a, 0, 1).astype(np.float32)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] (or uint8) image -> uint8."""
    a = np.asarray(img)
    return a if a.dtype == np.uint8 else np.round(np.clip(a, 0, 1) * 255).astype(np.uint8)


def thumbnail(img: np.ndarray, *, side: int = PREVIEW_SIDE) -> np.ndarray:
    """uint8 copy whose longest side is at most ``side`` (for live previews)."""
    a = to_uint8(img)
    h, w = a.shape[:2]
    s = side / max(h, w)
    if s >= 1:
        return a
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(a).resize(size, Image.Resampling.BILINEAR))


# -------------------------------------------------------------------------------------- reporting
def model_facts(clf: Classifier) -> dict:
    """Name, version and the operating point of a classifier, from its config (for reports and the page)."""
    cfg = clf.config
    cv = isinstance(cfg.get("cross_validation"), dict) and "validation" not in cfg
    val = cfg.get("validation", cfg.get("cross_validation", {}))
    val = val if isinstance(val, dict) else {}
    # where the figures come from, in words: never an independent test set for the shipped models
    if cv:
        evaluation = (f"out-of-fold over {val.get('images')} training films ({val.get('folds', '?')}-fold "
                      "patient-grouped cross-validation: each film scored by a member that never saw its patient)")
    else:
        evaluation = f"on {val.get('images')} held-out validation films split off from the training folder"
    metrics = val.get("metrics", {}) if isinstance(val.get("metrics"), dict) else {}
    ci = val.get("ci95", {}) if isinstance(val.get("ci95"), dict) else {}
    return {
        "name": str(cfg.get("name", clf.name)),
        "version": str(cfg.get("version", "?")),
        "kind": clf.kind,
        "sha256": cfg.get("sha256"),
        "input_size": clf.input_size,
        "temperature": clf.temperature,
        "threshold": clf.threshold,
        "threshold_rule": cfg.get("threshold_rule"),
        "validation_images": val.get("images"),
        "evaluation": evaluation,
        "sensitivity": metrics.get("sensitivity"),
        "specificity": metrics.get("specificity"),
        "auc": metrics.get("auc"),
        "sensitivity_ci95": ci.get("sensitivity"),
        "specificity_ci95": ci.get("specificity"),
    }


def model_card(config_path: str | Path) -> str | None:
    """Text of the model card (``<config stem>.md`` next to the config), or None."""
    p = Path(config_path).with_suffix(".md")
    return p.read_text(encoding="utf-8") if p.is_file() else None


def job_header(header: dict, *, forbid: Iterable[str] = ()) -> dict:
    """Header facts safe to store with a run: the report allowlist, a coarse age, identifiers removed."""
    facts = {k: header[k] for k in REPORT_HEADER_KEYS if k in header}
    if header.get("patient_age_years") is not None:
        facts["age_years"] = coarse_age(header["patient_age_years"])
    clean, _ = sanitise(facts, forbid)
    return clean


def check_header(facts: dict) -> dict:
    """A :func:`job_header` dict in the form :func:`engine.xray.domain.domain_warnings` reads."""
    h = dict(facts)
    if "age_years" in h:
        h["patient_age_years"] = h.pop("age_years")
    return h


def review_report(clf: Classifier, xray: XrayImage, probability: float, *, method: str, params: dict,
                  warnings: Iterable[str] = (), extra: dict | None = None, reasons: Iterable[str] = ()) -> str:
    """The de-identified JSON report the page offers for download (no names, IDs, dates, UIDs).

    ``reasons``: why the film is outside the training domain; with any, the label is NOT_ASSESSED and
    the score is kept for research only.
    """
    why = [str(r) for r in reasons]
    score = {"PNEUMONIA": round(float(probability), 4),
             "label": NOT_ASSESSED if why else clf.label_for(probability),
             "threshold": clf.threshold, "calibrated": True}
    if why:
        score["reasons"] = why
    report = build_report(
        model=model_facts(clf),
        score=score,
        method=method, params=params, header=xray.header, warnings=warnings, extra=extra,
        forbid=xray.phi_values)
    return report_json(report, xray.phi_values)


# -------------------------------------------------------------------------------------------- job
def batch_params(items: list[tuple[str, XrayImage]], *, preset: str = "Default (header)",
                 invert: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, params) for a batch run of ``(display name, image)`` pairs (names are not stored)."""
    if not items:
        raise InputError("no images to predict; upload chest X-rays first")
    if len(items) > MAX_BATCH:
        raise InputError(f"{len(items)} images in one batch; at most {MAX_BATCH} are accepted")
    arrays, entries = {}, []
    for i, (name, xr) in enumerate(items):
        key = f"img{i}"
        arrays[key] = model_input(xr)
        ext = Path(name).suffix.lower()[:6] if name else ""
        entries.append({"array": key, "name": f"image {i + 1}{f' ({ext})' if ext else ''}",
                        "header": job_header(xr.header, forbid=xr.phi_values)})
    return arrays, {"model": "default", "images": entries, "preset": preset, "invert": bool(invert)}


def run(ctx: Any) -> dict:
    """Predict every image of the run, publishing progress after each one."""
    from engine.xray.predict import Classifier

    params = ctx.run.spec.get("params", {})
    entries = params.get("images") or []
    if not entries:
        raise InputError("the batch has no images")
    if len(entries) > MAX_BATCH:
        raise InputError(f"{len(entries)} images in one batch; at most {MAX_BATCH} are accepted")
    if params.get("model", "default") != "default":
        raise InputError("only the default model can run in a batch")
    clf = Classifier.default()
    results: list[dict] = []
    for i, entry in enumerate(entries):
        if ctx.cancelled():
            break
        img = ctx.run.load_array(str(entry["array"]))
        if img.ndim != 2 or img.dtype != np.uint8:
            raise InputError(f"{entry.get('name')}: expected a 2-D uint8 image, got {img.dtype} {img.shape}")
        grey = as_float(img)
        label, p = clf.predict(grey)
        domain = assess_domain(check_header(entry.get("header", {})), image_stats(grey))
        results.append({"index": i, "name": str(entry.get("name", f"image {i + 1}")),
                        "label": domain.label(label), "probability": round(p, 6),
                        "reasons": list(domain.reasons), "note": domain.note, "warnings": list(domain.warnings)})
        ctx.publish(i + 1, {"done": i + 1, "probability": p}, preview=thumbnail(img), total=len(entries))
    return {"results": results, "model": clf.name, "threshold": clf.threshold, "count": len(results)}
