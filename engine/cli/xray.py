"""``inverse-studio xray ...``: batch prediction with optional saliency overlays, and training.

::

    inverse-studio xray predict IMAGE_OR_DIR... [--model default|PATH|xrv:NAME]
                                [--saliency gradcam|gradcampp|ig|occlusion --out DIR]
                                [--target PNEUMONIA|NORMAL] [--batch N] [--json]
    inverse-studio xray train --data DIR --out MODEL_DIR [--epochs N] [--seed S] ...

``predict`` prints one line per image (JSON with ``--json``): ``{"path", "label", "probability"
(P(PNEUMONIA), calibrated), "threshold", "model", "warnings"}``; a file that cannot be read gives
``{"path", "error"}`` and the run goes on; the exit code is 1 when any file failed, 2 for bad usage.
Directories are searched recursively for DICOM (.dcm/.dicom or no suffix), PNG and JPEG files.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine.cli.common import Parser, add_subparser
from engine.core.errors import InputError

IMAGE_SUFFIXES = {".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg"}
SALIENCY_METHODS = ("gradcam", "gradcampp", "ig", "occlusion")


def register(subparsers: argparse._SubParsersAction) -> None:
    from engine.xray.train import MODEL_NAME

    p = add_subparser(subparsers, "xray", help="chest X-ray prediction and the classifier's training")
    sub = p.add_subparsers(dest="xray_command", metavar="COMMAND", parser_class=Parser)

    ap = add_subparser(sub, "predict", help="classify chest X-rays", description="Classify chest X-rays.")
    ap.add_argument("inputs", nargs="+", help="image files (DICOM/PNG/JPEG) or folders")
    ap.add_argument("--model", default="default", help="default, a model .json, a TorchScript file or xrv:NAME")
    ap.add_argument("--saliency", choices=SALIENCY_METHODS, default=None)
    ap.add_argument("--target", default=None, help="class to explain (default: the predicted one)")
    ap.add_argument("--out", default=None, help="folder for saliency overlay PNGs")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for inference (default 1)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.set_defaults(func=run_predict)

    tp = add_subparser(sub, "train", help="train the chest X-ray classifier",
                       description="Train the chest X-ray classifier.")
    tp.add_argument("--data", required=True, help="folder with NORMAL/ and PNEUMONIA/ images")
    tp.add_argument("--out", required=True, help="folder for weights, config and model card")
    tp.add_argument("--name", default=MODEL_NAME)
    tp.add_argument("--epochs", type=int, default=10)
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("--size", type=int, default=160, help="square input side in pixels")
    tp.add_argument("--batch", type=int, default=64)
    tp.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (one-cycle)")
    tp.add_argument("--weight-decay", type=float, default=5e-4)
    tp.add_argument("--val-fraction", type=float, default=0.15)
    tp.add_argument("--widths", default="24,48,96,128")
    tp.add_argument("--strides", default="2,2,1", help="stride of each residual stage")
    tp.add_argument("--stem-stride", type=int, default=4)
    tp.add_argument("--threads", type=int, default=2)
    tp.add_argument("--limit", type=int, default=0, help="use only this many images per class (smoke runs)")
    tp.set_defaults(func=run_train)


# ------------------------------------------------------------------------------------------ predict
def _collect(paths: list[str]) -> list[Path]:
    """Files named, plus image files found recursively in named folders (sorted, no duplicates)."""
    out: list[Path] = []
    for s in paths:
        p = Path(s)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if (
                    f.is_file()
                    and not f.name.startswith(".")
                    and (f.suffix.lower() in IMAGE_SUFFIXES or (f.suffix == "" and _has_dicm(f)))
                ):
                    out.append(f)
        else:
            out.append(p)
    seen: set[Path] = set()
    return [f for f in out if not (f in seen or seen.add(f))]


def _has_dicm(f: Path) -> bool:
    try:
        with open(f, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def read_grey(path: Path) -> tuple[np.ndarray, list[str]]:
    """A file as a displayed grey [0, 1] image plus reader and domain warnings.

    Uses the DICOM-aware reader (:func:`engine.xray.read_xray`, default window, MONOCHROME1 inverted)
    with its domain checks.
    """
    from engine.xray.display import read_xray
    from engine.xray.domain import domain_warnings, image_stats
    from engine.xray.workflow import as_float, model_input

    xr = read_xray(path, path.name)
    img = as_float(model_input(xr))  # fixed preprocessing: independent of any display setting
    return img, list(xr.warnings) + domain_warnings(xr.header, image_stats(img))


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(rgb).save(tmp)  # PNG without metadata
    tmp.replace(path)


def _overlay_name(path: Path, method: str, used: set[str]) -> str:
    base = f"{path.stem}_{method}"
    name, k = base + ".png", 1
    while name in used:  # same stem in different folders
        k += 1
        name = f"{base}_{k}.png"
    used.add(name)
    return name


def _emit(row: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(row), flush=True)
    elif "error" in row:
        print(f"{row['path']}\tERROR\t{row['error']}", flush=True)
    else:
        extra = f"\t{row['saliency']}" if "saliency" in row else ""
        print(f"{row['path']}\t{row['label']}\t{row['probability']:.4f}{extra}", flush=True)


def run_predict(args: argparse.Namespace) -> int:
    """``inverse-studio xray predict``: one row per file; 1 when a file could not be read."""
    if args.saliency and not args.out:
        raise InputError("--saliency needs --out DIR for the overlay images")

    from engine.xray.predict import Classifier
    from engine.xray.saliency import overlay

    clf = Classifier.load(args.model)
    clf.threads = max(1, args.threads)
    files = _collect(args.inputs)
    if not files:
        raise InputError("no DICOM/PNG/JPEG files found")
    out_dir = Path(args.out) if args.out else None
    batch = max(1, args.batch)
    failed = 0
    used: set[str] = set()

    # Read a batch of files, predict them together (the bulk of the time is the forward pass).
    for i in range(0, len(files), batch):
        chunk = files[i : i + batch]
        ok: list[tuple[Path, np.ndarray, list[str]]] = []
        rows: dict[Path, dict] = {}
        for f in chunk:
            try:
                img, warns = read_grey(f)
                ok.append((f, img, warns))
            except (InputError, OSError, ValueError) as e:  # one bad file is a row, not the end of the run
                rows[f] = {"path": str(f), "error": str(e).splitlines()[0] if str(e) else type(e).__name__}
        if ok:
            probs = clf.predict_proba([img for _, img, _ in ok], batch_size=batch)
            for (f, img, warns), p in zip(ok, probs):
                row = {
                    "path": str(f),
                    "label": clf.label_for(float(p)),
                    "probability": round(float(p), 6),
                    "threshold": clf.threshold,
                    "model": clf.name,
                    "warnings": warns,
                }
                if args.saliency and out_dir is not None:
                    try:
                        sm = clf.saliency(img, args.saliency, args.target)
                        dest = out_dir / _overlay_name(f, args.saliency, used)
                        _save_png(dest, overlay(img, sm))
                        row["saliency"] = str(dest)
                        row["saliency_target"] = (
                            clf.labels[sm.target] if sm.target < len(clf.labels) else sm.target
                        )
                    except InputError as e:
                        row["warnings"] = warns + [f"saliency not made: {e}"]
                rows[f] = row
        for f in chunk:
            failed += "error" in rows[f]
            _emit(rows[f], args.json)
    return 1 if failed else 0


# -------------------------------------------------------------------------------------------- train
def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise InputError(f"{flag} must be positive integers, got {text!r}")
    return values


def run_train(args: argparse.Namespace) -> int:
    """``inverse-studio xray train``: progress and metrics on stdout, the model files in ``--out``."""
    from engine.xray.train import train

    train(args.data, args.out, name=args.name, epochs=args.epochs, seed=args.seed, size=args.size,
          batch=args.batch, lr=args.lr, weight_decay=args.weight_decay, val_fraction=args.val_fraction,
          widths=_int_list(args.widths, "--widths"), strides=_int_list(args.strides, "--strides"),
          stem_stride=args.stem_stride, threads=args.threads, limit=args.limit,
          progress=lambda line: print(line, flush=True))
    return 0
