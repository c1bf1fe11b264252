"""Chest X-ray dataset: list the labelled folders, split by patient, load into memory.

The layout is the one of Kermany et al. (Mendeley Data 2018, doi:10.17632/rscbjbr9sj.2)::

    DIR/NORMAL/IM-0115-0001.jpeg, NORMAL2-IM-0383-0001.jpeg, ...
    DIR/PNEUMONIA/person123_bacteria_456.jpeg, person123_virus_789.jpeg, ...

Several files can come from one child (``person23`` has 30), so the validation split is drawn by
patient, never by file, or near-duplicates of one child would sit on both sides of the split.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from engine.core.errors import InputError
from engine.core.seeds import numpy_rng

LABELS: tuple[str, str] = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
MAX_IMAGE_BYTES = 64 * 1024 * 1024  # a chest film is at most a few tens of MB, even as 16-bit PNG

_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_NORMAL = re.compile(r"^((?:NORMAL2-)?IM-\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    """One labelled image file."""

    path: Path
    label: int  # index into LABELS
    patient: str  # group key for splitting


def patient_id(name: str, label: str) -> str:
    """Group key of a file name: the patient it comes from.

    ``person123_bacteria_456.jpeg`` -> ``PNEUMONIA/person123``; ``IM-0115-0001.jpeg`` ->
    ``NORMAL/IM-0115``; ``NORMAL2-IM-0383-0001.jpeg`` -> ``NORMAL/NORMAL2-IM-0383``. Names that fit
    neither pattern are their own group (the stem).
    """
    m = _PERSON.match(name) or _NORMAL.match(name)
    key = m.group(1) if m else Path(name).stem
    return f"{label}/{key}"


def list_dataset(root: str | Path) -> list[Item]:
    """List ``root/NORMAL`` and ``root/PNEUMONIA`` image files, sorted by path.

    Raises
    ------
    InputError
        If either class folder is missing or empty.
    """
    root = Path(root)
    items: list[Item] = []
    for k, lab in enumerate(LABELS):
        folder = root / lab
        if not folder.is_dir():
            raise InputError(f"no folder {folder}; expected {root}/NORMAL and {root}/PNEUMONIA with images")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"no .jpeg/.jpg/.png images in {folder}")
        items += [Item(p, k, patient_id(p.name, lab)) for p in files]
    return items


def patient_groups(items: list[Item], label: int, rng: np.random.Generator) -> tuple[dict[str, list[int]], list[str]]:
    """The indices of each patient's films of class ``label``, and the patients in a seeded shuffled order."""
    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        if it.label == label:
            groups.setdefault(it.patient, []).append(i)
    keys = sorted(groups)
    rng.shuffle(keys)
    return groups, keys


def split_by_patient(
    items: list[Item], *, val_fraction: float = 0.15, seed: int | np.random.Generator = 0
) -> tuple[list[int], list[int]]:
    """Seeded split stratified by class, with every patient's files on one side only.

    Returns
    -------
    train_idx, val_idx : list of int
        Indices into ``items``, each sorted.
    """
    rng = numpy_rng(seed)
    val: list[int] = []
    for k in range(len(LABELS)):
        groups, keys = patient_groups(items, k, rng)
        target = val_fraction * sum(len(v) for v in groups.values())
        n = 0
        for key in keys:  # take whole patients until the class has its share of files
            if n >= target:
                break
            val += groups[key]
            n += len(groups[key])
    vs = set(val)
    return [i for i in range(len(items)) if i not in vs], sorted(val)


def decode_grey(data: bytes | str | Path, size: int | None = None) -> np.ndarray:
    """Decode a PNG/JPEG to a float32 grey image in [0, 1], optionally resized to ``size`` x ``size``.

    This is the plain-Pillow path used for training data (and for prediction when the DICOM-aware
    reader is not available). 16-bit PNGs are scaled by their own maximum code (65535).
    """
    if isinstance(data, (str, Path)):
        p = Path(data)
        if p.stat().st_size > MAX_IMAGE_BYTES:
            raise InputError(
                f"{p.name} is larger than {MAX_IMAGE_BYTES >> 20} MB; expected a chest image file"
            )
        data = p.read_bytes()
    try:
        im = Image.open(io.BytesIO(data))
        im.load()
    except Exception as e:  # Pillow raises many types for corrupt input
        raise InputError(f"cannot decode image ({type(e).__name__}); expected a PNG or JPEG file") from e
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32)
        arr = arr / (65535.0 if arr.max() > 255 else 255.0)
    else:
        arr = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    if size is not None:
        arr = resize(arr, size)
    return np.clip(arr, 0.0, 1.0)


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Resize a float [0, 1] grey image to ``size`` x ``size`` (aspect not kept, as in training)."""
    if img.shape == (size, size):
        return img.astype(np.float32, copy=False)
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32))  # mode F
    return np.asarray(
        pil.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None), dtype=np.float32
    )


def load_uint8(items: list[Item], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode every item once into a ``(N, size, size)`` uint8 array plus a label vector.

    Preloading keeps JPEG decoding out of the training loop (5,216 images at 160^2 take 134 MB).
    """
    x = np.empty((len(items), size, size), dtype=np.uint8)
    for i, it in enumerate(items):
        im = Image.open(it.path).convert("L")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
        x[i] = np.asarray(im)
    return x, np.array([it.label for it in items], dtype=np.int64)
