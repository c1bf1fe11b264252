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
import sys
from pathlib import Path

import numpy as np

from engine.core.errors import InputError

USAGE = """usage:
  inverse-studio xray predict IMAGE_OR_DIR... [--model default|PATH|xrv:NAME]
        [--saliency gradcam|gradcampp|ig|occlusion --out DIR] [--target CLASS] [--json]
  inverse-studio xray train --data DIR --out MODEL_DIR [--epochs N] [--seed S] ..."""
IMAGE_SUFFIXES = {".dcm", ".dicom", ".dic", ".png", ".jpg", ".jpeg"}


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
    with its domain checks; falls back to plain Pillow decoding if that module is unavailable.
    """
    try:
        from engine.xray.display import read_xray
    except ImportError:  # reader not installed in this checkout: PNG/JPEG only
        from engine.xray.data import decode_grey

        return decode_grey(path), []
    xr = read_xray(path, path.name)
    img = xr.display()
    warnings = list(xr.warnings)
    try:
        from engine.xray.domain import domain_warnings, image_stats

        warnings += domain_warnings(xr.header, image_stats(img))
    except ImportError:
        pass
    return img, warnings


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


def predict_main(argv: list[str]) -> int:
    """``inverse-studio xray predict``; returns the exit code."""
    ap = argparse.ArgumentParser(prog="inverse-studio xray predict", description="Classify chest X-rays.")
    ap.add_argument("inputs", nargs="+", help="image files (DICOM/PNG/JPEG) or folders")
    ap.add_argument(
        "--model", default="default", help="default, a model .json, a TorchScript file or xrv:NAME"
    )
    ap.add_argument("--saliency", choices=["gradcam", "gradcampp", "ig", "occlusion"], default=None)
    ap.add_argument("--target", default=None, help="class to explain (default: the predicted one)")
    ap.add_argument("--out", default=None, help="folder for saliency overlay PNGs")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for inference (default 1)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if a.saliency and not a.out:
        print("error: --saliency needs --out DIR for the overlay images", file=sys.stderr)
        return 2

    from engine.xray.predict import Classifier
    from engine.xray.saliency import overlay

    try:
        clf = Classifier.load(a.model)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    clf.threads = max(1, a.threads)
    files = _collect(a.inputs)
    if not files:
        print("error: no DICOM/PNG/JPEG files found", file=sys.stderr)
        return 2
    out_dir = Path(a.out) if a.out else None
    failed = 0
    used: set[str] = set()

    def emit(row: dict) -> None:
        if a.json:
            print(json.dumps(row), flush=True)
        elif "error" in row:
            print(f"{row['path']}\tERROR\t{row['error']}", flush=True)
        else:
            extra = f"\t{row['saliency']}" if "saliency" in row else ""
            print(f"{row['path']}\t{row['label']}\t{row['probability']:.4f}{extra}", flush=True)

    # Read a batch of files, predict them together (the bulk of the time is the forward pass).
    for i in range(0, len(files), max(1, a.batch)):
        chunk = files[i : i + max(1, a.batch)]
        ok: list[tuple[Path, np.ndarray, list[str]]] = []
        rows: dict[Path, dict] = {}
        for f in chunk:
            try:
                img, warns = read_grey(f)
                ok.append((f, img, warns))
            except (InputError, OSError, ValueError) as e:
                rows[f] = {"path": str(f), "error": str(e).splitlines()[0] if str(e) else type(e).__name__}
        if ok:
            probs = clf.predict_proba([img for _, img, _ in ok], batch_size=a.batch)
            for (f, img, warns), p in zip(ok, probs):
                row = {
                    "path": str(f),
                    "label": clf.label_for(float(p)),
                    "probability": round(float(p), 6),
                    "threshold": clf.threshold,
                    "model": clf.name,
                    "warnings": warns,
                }
                if a.saliency and out_dir is not None:
                    try:
                        sm = clf.saliency(img, a.saliency, a.target)
                        dest = out_dir / _overlay_name(f, a.saliency, used)
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
            emit(rows[f])
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    """``inverse-studio xray predict|train ...``; returns the exit code."""
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "predict":
        return predict_main(rest)
    if cmd == "train":
        from engine.xray.train import main as train_main

        try:
            return train_main(rest)
        except InputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print(f"error: unknown xray command {cmd!r}; expected predict or train", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))


def register(subparsers: argparse._SubParsersAction) -> None:
    from engine.cli.common import add_subparser

    p = add_subparser(subparsers, "xray", help="chest X-ray prediction and the classifier's training")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=lambda a: main(a.rest))
