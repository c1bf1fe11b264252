"""``inverse-studio xray ...``: batch prediction with optional saliency overlays, and training.

::

    inverse-studio xray predict IMAGE_OR_DIR... [--model default|PATH|xrv:NAME]
                                [--saliency gradcam|gradcampp|ig|occlusion --out DIR]
                                [--target PNEUMONIA|NORMAL] [--window header|auto|full|lung|soft-tissue|bone|C,W]
                                [--invert] [--redact-paths] [--batch N] [--json]
    inverse-studio xray train --data DIR --out MODEL_DIR [--epochs N] [--seed S] ...

``predict`` prints one line per file (JSON with ``--json``), in the order the files were found:
``{"index", "input", "path", "label", "probability" (P(PNEUMONIA), calibrated), "threshold", "model",
"reasons", "note", "warnings"}``.

- ``label`` is NORMAL or PNEUMONIA, or NOT_ASSESSED when the DICOM header puts the film outside the
  model's training domain (not a frontal chest radiograph, or a patient outside the training children's
  ages); ``reasons`` then says why (it is empty otherwise) and ``probability`` is for research only.
  ``note`` is one neutral sentence for files without a header (PNG/JPEG), whose domain cannot be checked;
  ``warnings`` are reader messages and image statistics unlike the training images'.
- A file that cannot be read or classified (unreadable, 1xN, smaller than 8x8, ...) gives one row
  ``{"index", "input", "path", "error"}`` and the run goes on; the exit code is then 1 (2 for bad usage).
- ``--window``/``--invert`` change only the overlay images: the classifier always sees one fixed
  preprocessing of the stored pixels.
- Overlays are named by index, ``image0000_gradcam.png`` (file names often carry patient names or record
  numbers). Without ``--redact-paths``, ``inputs.json`` in ``--out`` maps each index to its input path.
- ``--redact-paths``: no path or file name anywhere in the output: ``input`` is the index, ``path`` is
  left out, error messages name no file, and no ``inputs.json`` is written.

Directories are searched recursively for DICOM (.dcm/.dicom or no suffix), PNG and JPEG files; saliency is
not computed for a NOT_ASSESSED film.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.cli.common import Parser, add_subparser, say
from engine.core.errors import InputError

if TYPE_CHECKING:
    from engine.xray.display import XrayImage
    from engine.xray.domain import DomainCheck

IMAGE_SUFFIXES = {".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg"}
SALIENCY_METHODS = ("gradcam", "gradcampp", "ig", "occlusion")
# --window names -> the display presets of engine.xray.display
WINDOW_PRESETS = {"header": "Default (header)", "auto": "Auto (percentile 0.5-99.5)", "full": "Full range",
                  "lung": "Lung", "soft-tissue": "Soft tissue", "bone": "Bone"}
MAPPING_FILE = "inputs.json"


def window_arg(text: str) -> tuple[str, tuple[float, float] | None]:
    """``--window`` value -> (preset, None) or ("custom", (center, width))."""
    key = text.strip().lower()
    if key in WINDOW_PRESETS:
        return WINDOW_PRESETS[key], None
    parts = key.split(",")
    try:
        center, width = (float(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(WINDOW_PRESETS)} or CENTER,WIDTH, got {text!r}") from None
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        raise argparse.ArgumentTypeError(f"window width must be a positive number, got {text!r}")
    return "custom", (center, width)


def register(subparsers: argparse._SubParsersAction) -> None:
    from engine.cli.xray_robustness import register as register_robustness
    from engine.xray.train import MODEL_NAME

    p = add_subparser(subparsers, "xray", help="chest X-ray prediction and the classifier's training")
    sub = p.add_subparsers(dest="xray_command", metavar="COMMAND", parser_class=Parser)

    ap = add_subparser(sub, "predict", help="classify chest X-rays", description="Classify chest X-rays.")
    ap.add_argument("inputs", nargs="+", help="image files (DICOM/PNG/JPEG) or folders")
    ap.add_argument("--model", default="default", help="default, a model .json, a TorchScript file or xrv:NAME")
    ap.add_argument("--saliency", choices=SALIENCY_METHODS, default=None)
    ap.add_argument("--target", default=None, help="class to explain (default: the predicted one)")
    ap.add_argument("--out", default=None, help="folder for saliency overlay PNGs")
    ap.add_argument("--window", type=window_arg, default=("Default (header)", None),
                    metavar="header|auto|full|lung|soft-tissue|bone|C,W",
                    help="window of the overlay images (default: the file's own); not used by the classifier")
    ap.add_argument("--invert", action="store_true", help="invert the grey scale of the overlay images")
    ap.add_argument("--redact-paths", action="store_true",
                    help="give file indices instead of paths in the output (no inputs.json mapping file)")
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
    tp.add_argument("--cv", type=int, default=0, metavar="K",
                    help="patient-grouped K-fold training of an ensemble of K fold models (the default model's "
                         "recipe, with acquisition-shift augmentation); 0: one model and a validation split")
    tp.set_defaults(func=run_train)
    register_robustness(sub)


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
    """A file as the classifier's grey [0, 1] input plus reader and domain messages (one list)."""
    _, img, domain, reader = read_film(path)
    return img, reader + domain.messages()


def read_film(path: Path, *, name: str | None = None) -> tuple[XrayImage, np.ndarray, DomainCheck, list[str]]:
    """(XrayImage, classifier input in [0, 1], DomainCheck, reader warnings) of one file.

    ``name`` labels error messages (default: the file name; "" for none).
    """
    from engine.xray.display import read_xray
    from engine.xray.domain import check_film
    from engine.xray.workflow import as_float, model_input

    xr = read_xray(path, path.name if name is None else name)
    img = as_float(model_input(xr))  # fixed preprocessing: independent of any display setting
    return xr, img, check_film(xr, img), list(xr.warnings)


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(rgb).save(tmp)  # PNG without metadata
    tmp.replace(path)


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.json")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    tmp.replace(path)


def overlay_name(index: int, method: str) -> str:
    """Overlay file name of the file at ``index``: never derived from the input's name."""
    return f"image{index:04d}_{method}.png"


def _error_text(e: Exception, path: Path, redact: bool) -> str:
    """One plain sentence for a file that failed; with ``redact``, naming no file."""
    if isinstance(e, OSError) and not isinstance(e, InputError):
        what = "the file" if redact else path.name
        return f"cannot read {what}: {e.strerror or type(e).__name__}"
    text = (str(e).splitlines() or [""])[0] or type(e).__name__
    if redact:
        for s in sorted({str(path), path.name}, key=len, reverse=True):
            if s:
                text = text.replace(s, "the file")
    return text


def _emit(row: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(row), flush=True)
    elif "error" in row:
        print(f"{row['input']}\tERROR\t{row['error']}", flush=True)
    else:
        extra = f"\t{row['saliency']}" if "saliency" in row else ""
        print(f"{row['input']}\t{row['label']}\t{row['probability']:.4f}{extra}", flush=True)


def run_predict(args: argparse.Namespace) -> int:
    """``inverse-studio xray predict``: one row per file; 1 when a file could not be read or classified."""
    if args.saliency and not args.out:
        raise InputError("--saliency needs --out DIR for the overlay images")

    from engine.xray.predict import Classifier
    from engine.xray.saliency import overlay

    clf = Classifier.load(args.model)
    clf.threads = max(1, args.threads)
    files = _collect(args.inputs)
    if not files:
        raise InputError("no DICOM/PNG/JPEG files found")
    preset, window = args.window
    if not args.saliency and (window is not None or preset != WINDOW_PRESETS["header"] or args.invert):
        say("note: --window and --invert change only the saliency overlays (with --saliency); "
            "the prediction is the same without them")
    redact = bool(args.redact_paths)
    out_dir = Path(args.out) if args.out else None
    batch = max(1, args.batch)
    failed = 0
    mapping: list[dict] = []

    def base(index: int, f: Path) -> dict:
        return {"index": index, "input": index} if redact else {"index": index, "input": str(f), "path": str(f)}

    # Read a batch of files, predict them together (the bulk of the time is the forward pass).
    for i in range(0, len(files), batch):
        chunk = list(enumerate(files[i : i + batch], start=i))
        ok: list[tuple] = []
        rows: dict[int, dict] = {}
        for k, f in chunk:
            try:
                xr, img, domain, reader = read_film(f, name="" if redact else None)
                try:
                    clf.check_image(img)  # a 3x3 film is this file's error, not the batch's
                except InputError as e:
                    raise InputError(f"{f.name}: {e}" if not redact else str(e)) from e
                ok.append((k, f, xr, img, domain, reader))
            except (InputError, OSError, ValueError) as e:  # one bad file is a row, not the end of the run
                rows[k] = {**base(k, f), "error": _error_text(e, f, redact)}
        if ok:
            probs = clf.predict_proba([item[3] for item in ok], batch_size=batch)
            for (k, f, xr, img, domain, reader), p in zip(ok, probs):
                row = {
                    **base(k, f),
                    "label": domain.label(clf.label_for(float(p))),
                    "probability": round(float(p), 6),
                    "threshold": clf.threshold,
                    "model": clf.name,
                    "reasons": list(domain.reasons),
                    "note": domain.note,
                    "warnings": reader + list(domain.warnings),
                }
                if args.saliency and out_dir is not None and not domain.assessed:
                    row["warnings"].append("saliency not made: the film is not assessed")
                elif args.saliency and out_dir is not None:
                    try:
                        sm = clf.saliency(img, args.saliency, args.target)
                        dest = out_dir / overlay_name(k, args.saliency)
                        # window and invert change only what is drawn under the map
                        _save_png(dest, overlay(xr.display(window, args.invert, preset), sm))
                        row["saliency"] = str(dest)
                        row["saliency_target"] = (
                            clf.labels[sm.target] if sm.target < len(clf.labels) else sm.target
                        )
                    except InputError as e:
                        row["warnings"].append(f"saliency not made: {e}")
                rows[k] = row
        for k, f in chunk:
            failed += "error" in rows[k]
            _emit(rows[k], args.json)
            if not redact:
                mapping.append({"index": k, "input": str(f),
                                "saliency": Path(rows[k]["saliency"]).name if "saliency" in rows[k] else None})
    # the mapping names overlays: with none written (every file failed) it would only leak the paths
    if out_dir is not None and args.saliency and not redact and any(m["saliency"] for m in mapping):
        _write_json(out_dir / MAPPING_FILE, {"inputs": mapping})
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


def _default_name() -> str:
    from engine.xray.train import MODEL_NAME

    return MODEL_NAME


def run_train(args: argparse.Namespace) -> int:
    """``inverse-studio xray train``: progress and metrics on stdout, the model files in ``--out``."""
    from engine.xray.train import train

    if args.cv:
        from engine.xray.train_cv import MODEL_NAME as CV_NAME
        from engine.xray.train_cv import train_cv

        if args.cv < 2:
            raise InputError(f"--cv must be at least 2 folds, got {args.cv}")
        train_cv(args.data, args.out, name=CV_NAME if args.name == _default_name() else args.name,
                 folds=args.cv, epochs=args.epochs, seed=args.seed, size=args.size, batch=args.batch, lr=args.lr,
                 weight_decay=args.weight_decay, widths=_int_list(args.widths, "--widths"),
                 strides=_int_list(args.strides, "--strides"), stem_stride=args.stem_stride, threads=args.threads,
                 limit=args.limit, progress=lambda line: print(line, flush=True))
        return 0
    train(args.data, args.out, name=args.name, epochs=args.epochs, seed=args.seed, size=args.size,
          batch=args.batch, lr=args.lr, weight_decay=args.weight_decay, val_fraction=args.val_fraction,
          widths=_int_list(args.widths, "--widths"), strides=_int_list(args.strides, "--strides"),
          stem_stride=args.stem_stride, threads=args.threads, limit=args.limit,
          progress=lambda line: print(line, flush=True))
    return 0
