"""Domain checks: say when an X-ray lies outside what the default classifier was trained on.

The default model was trained on pediatric chest X-rays (children aged 1-5, Guangzhou Women and
Children's Medical Center; Kermany et al., Mendeley Data 2018, doi:10.17632/rscbjbr9sj.2), frontal views,
as 224 x 224 8-bit JPEG copies.

:func:`assess_domain` sorts what it finds into three kinds:

- ``reasons``: the DICOM header says the film is outside the training domain (an age outside the training
  children's, a lateral or other non-frontal view, a modality that is not a projection radiograph, a body
  part that is not the chest). Such a film gets no label (:data:`NOT_ASSESSED`); its score is research only.
- ``note``: one neutral sentence when there is no header (PNG/JPEG), so the domain cannot be checked.
- ``warnings``: the pixels look unlike the training images (size, aspect, grey level, contrast); the label
  is still given, with these next to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from engine.xray.display import XrayImage

DEFAULT_MODEL_CONFIG = Path(__file__).resolve().parents[2] / "assets" / "models" / "cxr_pneumonia_cv_ensemble.json"


def model_input_side(config: Path = DEFAULT_MODEL_CONFIG, fallback: int = 160) -> int:
    """Square input side of the default classifier, read from its JSON config (``input.size``).

    Read here rather than through :mod:`engine.xray.predict` so these checks do not import torch.
    """
    try:
        return int(json.loads(config.read_text(encoding="utf-8"))["input"]["size"])
    except (OSError, ValueError, KeyError, TypeError):
        return fallback


MODEL_INPUT_SIDE = model_input_side()
PROJECTION_MODALITIES = frozenset({"CR", "DX", "DR", "RG"})  # DR is not a DICOM code but shows up
CHEST_WORDS = ("CHEST", "THORAX", "THORAC", "LUNG", "TORSO")
FRONTAL_VIEWS = frozenset({"PA", "AP"})
NOT_ASSESSED = "NOT_ASSESSED"
NO_HEADER_NOTE = ("This file has no DICOM header (PNG/JPEG), so its age, view, modality and body part cannot be "
                  "checked against the training domain.")


@dataclass(frozen=True)
class ReferenceStats:
    """Grey-level statistics of the training images, per image, on a [0, 1] scale at model size."""

    mean_mean: float  # average of the per-image mean grey level
    mean_sd: float  # spread (standard deviation) of the per-image mean
    std_mean: float  # average of the per-image standard deviation (contrast)
    std_sd: float  # spread of the per-image standard deviation
    n_images: int
    age_range_years: tuple[float, float] = (1.0, 5.0)


# Computed on 300 images drawn at random (Python random.Random(0).sample over the sorted file list) from
# cxr-pneumonia/train (all 5,216 are 224 x 224 grey JPEGs; 212 of the 300 were PNEUMONIA): each image
# converted to grey with Pillow ('L'), scaled to [0, 1]; mean and standard deviation per image, then the
# mean and standard deviation of those over the 300. Observed ranges: means 0.254-0.710, stds 0.104-0.299.
TRAINING_REFERENCE = ReferenceStats(
    mean_mean=0.4799, mean_sd=0.0697, std_mean=0.2229, std_sd=0.0362, n_images=300
)


def image_stats(display: np.ndarray, side: int = MODEL_INPUT_SIDE) -> dict:
    """Statistics of a displayed image ([0, 1], bone white) as the model sees it: resized to side x side.

    Returns rows, cols, aspect (cols / rows) of the original, and mean and std at model size.
    """
    img = np.asarray(display, dtype=np.float32)
    rows, cols = img.shape[:2]
    small = (
        img
        if img.shape == (side, side)
        else np.asarray(
            Image.fromarray(img).resize((side, side), Image.Resampling.BILINEAR), dtype=np.float32
        )
    )
    return {
        "rows": int(rows),
        "cols": int(cols),
        "aspect": cols / rows,
        "mean": float(small.mean()),
        "std": float(small.std()),
    }


@dataclass(frozen=True)
class DomainCheck:
    """What :func:`assess_domain` found about one film.

    Attributes
    ----------
    reasons : header facts outside the training domain; any reason means the film is not assessed.
    note : :data:`NO_HEADER_NOTE` for a file without a DICOM header, else None (not a warning).
    warnings : image statistics unlike the training images' (the label is still given).
    """

    reasons: tuple[str, ...] = ()
    note: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def assessed(self) -> bool:
        """True when nothing in the header puts the film outside the training domain."""
        return not self.reasons

    def label(self, model_label: str) -> str:
        """The label to show: the model's, or :data:`NOT_ASSESSED` for an out-of-domain film."""
        return model_label if self.assessed else NOT_ASSESSED

    def messages(self) -> list[str]:
        """Reasons, note and warnings in one list (the form :func:`domain_warnings` returns)."""
        return [*self.reasons, *([self.note] if self.note else []), *self.warnings]


def assess_domain(
    header: dict,
    stats: dict | None = None,
    *,
    reference: ReferenceStats = TRAINING_REFERENCE,
    z_limit: float = 3.0,
    max_age_years: float = 10.0,
) -> DomainCheck:
    """Check a film against the training domain of the default model.

    Parameters
    ----------
    header : header facts of :class:`engine.xray.display.XrayImage` ('unknown'/None where absent).
    stats : :func:`image_stats` of the model's input image; grey-level checks are skipped without it.
    reference : training-set statistics.
    z_limit : how many standard deviations from the training mean a grey-level statistic may lie.
    max_age_years : ages above this are outside the domain (the training children were 1-5 years old;
        the margin keeps a 6-year-old from being refused on the strength of one year).
    """
    reasons: list[str] = []
    lo_age, hi_age = reference.age_range_years
    age = header.get("patient_age_years")
    if age is not None and age > max_age_years:
        # HIPAA Safe Harbor: ages over 89 are one group, "90+"; an exact age narrows identity
        shown = "90+" if age >= 90 else f"{age:.0f}"
        reasons.append(
            f"patient age {shown} years: the model was trained on children aged {lo_age:.0f}-{hi_age:.0f}; "
            "its output on older patients is not validated"
        )
    elif age is not None and age < lo_age:
        reasons.append(
            f"patient age {age * 12:.0f} months: younger than the training children "
            f"({lo_age:.0f}-{hi_age:.0f} years)"
        )
    view = str(header.get("view_position") or "unknown").upper()
    if view == "LAT":
        reasons.append("lateral view: the model was trained on frontal (PA/AP) chest X-rays only")
    elif view not in FRONTAL_VIEWS and view != "UNKNOWN":
        reasons.append(f"view position {view}: the model was trained on frontal (PA/AP) chest X-rays only")
    modality = str(header.get("modality") or "unknown").upper()
    if modality != "UNKNOWN" and modality not in PROJECTION_MODALITIES:
        reasons.append(f"modality {modality}: the model was trained on projection radiographs (CR/DX), not this")
    body = str(header.get("body_part") or "unknown").upper()
    if body != "UNKNOWN" and not any(w in body for w in CHEST_WORDS):
        reasons.append(f"body part {body}: the model was trained on chest X-rays only")
    note = NO_HEADER_NOTE if header.get("source") in ("png", "jpeg") else None
    warnings = _image_warnings(stats, reference, z_limit) if stats else []
    return DomainCheck(tuple(reasons), note, tuple(warnings))


def domain_warnings(
    header: dict,
    stats: dict | None = None,
    reference: ReferenceStats = TRAINING_REFERENCE,
    z_limit: float = 3.0,
    max_age_years: float = 10.0,
) -> list[str]:
    """All of :func:`assess_domain`'s messages in one list (reasons, the no-header note, image warnings)."""
    return assess_domain(header, stats, reference=reference, z_limit=z_limit,
                         max_age_years=max_age_years).messages()


def _image_warnings(stats: dict, ref: ReferenceStats, z_limit: float) -> list[str]:
    out = []
    side = min(stats["rows"], stats["cols"])
    if side < MODEL_INPUT_SIDE:
        out.append(
            f"image is only {stats['cols']} x {stats['rows']} pixels; the model input is "
            f"{MODEL_INPUT_SIDE} x {MODEL_INPUT_SIDE}, so it is enlarged"
        )
    aspect = stats["aspect"]
    if not 0.5 <= aspect <= 2.0:
        out.append(
            f"aspect ratio {aspect:.2f} (width/height): the image is squeezed to a square for the model"
        )
    z_mean = (stats["mean"] - ref.mean_mean) / ref.mean_sd
    z_std = (stats["std"] - ref.std_mean) / ref.std_sd
    if abs(z_mean) > z_limit:
        hint = ""
        if abs((1.0 - stats["mean"] - ref.mean_mean) / ref.mean_sd) <= z_limit:
            hint = "; is the grey scale inverted?"
        out.append(
            f"mean grey level {stats['mean']:.2f} is far from the training images' "
            f"({ref.mean_mean:.2f} ± {ref.mean_sd:.2f}): check the window{hint}"
        )
    if abs(z_std) > z_limit:
        word = "low" if z_std < 0 else "high"
        out.append(
            f"contrast (grey-level std {stats['std']:.2f}) is {word} compared with the training images' "
            f"({ref.std_mean:.2f} ± {ref.std_sd:.2f}): check the window"
        )
    return out


def check_xray(
    xray: XrayImage,
    window: tuple[float, float] | None = None,
    invert: bool = False,
    preset: str = "Default (header)",
) -> list[str]:
    """Domain warnings for an :class:`~engine.xray.display.XrayImage` displayed as given."""
    return domain_warnings(xray.header, image_stats(xray.display(window, invert, preset)))


def check_film(xray: XrayImage, model_image: np.ndarray) -> DomainCheck:
    """:func:`assess_domain` of a film, with the image statistics of ``model_image`` (the model's input)."""
    return assess_domain(xray.header, image_stats(model_image))
