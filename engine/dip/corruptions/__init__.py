"""Image corruptions for the restoration studio: ImageNet-C, the ES-WMV noise levels, plain Gaussian sigma.

Every corruption takes a float image in [0, 1], grey (H, W) or RGB (H, W, 3), any size from 8 to 8192 px
a side, and returns a float32 image of the same shape in [0, 1]. Random ones draw only from their ``seed``
(an integer, a numpy Generator passed through, or None for fresh entropy), so a seed fixes the result.

Three kinds of names (see ``levels(name)`` for the valid severities of each):

- ImageNet-C (Hendrycks & Dietterich, ICLR 2019), severities 1..5, parameters in ``tables``:
  gaussian_noise, shot_noise, impulse_noise, speckle_noise (from the paper's extra set), defocus_blur,
  glass_blur, motion_blur, zoom_blur, snow, frost, fog, brightness, contrast, elastic_transform,
  pixelate, jpeg_compression. Sizes are in pixels of the reference's 224-pixel images (elastic and fog
  scale with the image). Deviations from the reference: motion blur (and the snow streaks) use a
  line-kernel reimplementation of ImageMagick's motion blur; frost uses a seeded procedural texture
  instead of the paper's frost photographs, so frost images differ from the published ones; glass blur
  keeps floats where the reference rounds to 8 bits between steps.
- ES-WMV levels (Wang et al., TMLR 2023): ``<noise>_eswmv`` for gaussian / shot / impulse / speckle
  noise, severities 1, 2, 3 = low, medium, high (``ESWMV_LEVELS`` holds the parameters).
- ``gaussian_sigma``: additive Gaussian noise whose "severity" is the std in 0-255 units (any number in
  [0, 255]; 25 gives std 25/255, the classic DIP denoising benchmark), clipped to [0, 1].

Example::

    noisy = corrupt(img, "gaussian_noise_eswmv", severity=2, seed=0)  # std 0.18
    noisy = CORRUPTIONS["shot_noise"](img, severity=3, seed=0)
    describe("gaussian_noise_eswmv", 2)  # 'Gaussian noise, std 0.18 (ES-WMV medium)'
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.errors import InputError
from engine.core.seeds import Seed
from engine.dip.corruptions import blur, digital, noise, tables, weather
from engine.dip.corruptions.common import check_image, finish, make_rng
from engine.dip.corruptions.tables import ESWMV_LEVEL_LABELS, ESWMV_LEVELS, GAUSSIAN_SIGMA_CHOICES

__all__ = [
    "CORRUPTIONS",
    "ESWMV_LEVELS",
    "ESWMV_LEVEL_LABELS",
    "INFO",
    "CorruptionInfo",
    "corrupt",
    "corruption_names",
    "describe",
    "levels",
]

Level = int | float


@dataclass(frozen=True)
class CorruptionInfo:
    """What the UI needs to offer a corruption.

    Attributes
    ----------
    name : registry key.
    label : short human name.
    family : "noise", "blur", "weather" or "digital".
    source : "imagenet-c", "es-wmv" or "dip".
    levels : valid severities (for "gaussian_sigma": suggested values; any number in [0, 255] works).
    random : whether the result depends on the seed.
    """

    name: str
    label: str
    family: str
    source: str
    levels: tuple[Level, ...]
    random: bool


def _fmt(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class _Entry:
    """An ImageNet-C corruption: its table and how to apply and describe one row of it."""

    label: str
    family: str
    random: bool
    table: tuple
    apply: Callable[[np.ndarray, Any, np.random.Generator], np.ndarray]  # (x (H, W, C), row, rng)
    text: Callable[[Any], str]  # row -> parameter text


def _elastic(x: np.ndarray, row: tuple, rng: np.random.Generator) -> np.ndarray:
    scale = tables.ELASTIC_SCALE * min(x.shape[:2])
    return digital.elastic(x, *(v * scale for v in row), rng)


_ANGLE = tables.MOTION_BLUR_ANGLE
_IMAGENET_C: dict[str, _Entry] = {
    "gaussian_noise": _Entry(
        "Gaussian noise", "noise", True, tables.GAUSSIAN_NOISE,
        apply=noise.add_gaussian,
        text=lambda p: f"std {_fmt(p)}",
    ),
    "shot_noise": _Entry(
        "Shot noise", "noise", True, tables.SHOT_NOISE,
        apply=noise.add_shot,
        text=lambda p: f"Poisson, {_fmt(p)} photons per unit intensity",
    ),
    "impulse_noise": _Entry(
        "Impulse noise", "noise", True, tables.IMPULSE_NOISE,
        apply=noise.add_impulse,
        text=lambda p: f"salt and pepper on {_fmt(100 * p)}% of values",
    ),
    "speckle_noise": _Entry(
        "Speckle noise", "noise", True, tables.SPECKLE_NOISE,
        apply=noise.add_speckle,
        text=lambda p: f"multiplicative, std {_fmt(p)}",
    ),
    "defocus_blur": _Entry(
        "Defocus blur", "blur", False, tables.DEFOCUS_BLUR,
        apply=lambda x, p, rng: blur.defocus(x, *p),
        text=lambda p: f"disk radius {_fmt(p[0])} px, anti-alias std {_fmt(p[1])} px",
    ),
    "glass_blur": _Entry(
        "Glass blur", "blur", True, tables.GLASS_BLUR,
        apply=lambda x, p, rng: blur.glass(x, *p, rng),
        text=lambda p: f"Gaussian std {_fmt(p[0])} px, pixel swaps up to {p[1]} px, {p[2]} passes",
    ),
    "motion_blur": _Entry(
        "Motion blur", "blur", True, tables.MOTION_BLUR,
        apply=lambda x, p, rng: blur.motion(x, *p, float(rng.uniform(*_ANGLE))),
        text=lambda p: f"radius {_fmt(p[0])} px, sigma {_fmt(p[1])} px, "
        f"random angle in [{_fmt(_ANGLE[0])}, {_fmt(_ANGLE[1])}] deg",
    ),
    "zoom_blur": _Entry(
        "Zoom blur", "blur", False, tables.ZOOM_BLUR,
        apply=lambda x, p, rng: blur.zoom(x, blur.zoom_factors(*p)),
        text=lambda p: f"mean of zooms {p[0]:.2f} to {p[1]:.2f} in steps of {_fmt(p[2])}",
    ),
    "snow": _Entry(
        "Snow", "weather", True, tables.SNOW,
        apply=lambda x, p, rng: weather.snow(x, *p, tables.SNOW_ANGLE, rng),
        text=lambda p: f"flakes N({_fmt(p[0])}, {_fmt(p[1])}) zoomed x{_fmt(p[2])} above {_fmt(p[3])}, "
        f"streaks radius {p[4]} px sigma {p[5]} px, image weight {_fmt(p[6])}",
    ),
    "frost": _Entry(
        "Frost", "weather", True, tables.FROST,
        apply=lambda x, p, rng: weather.frost(x, *p, rng),
        text=lambda p: f"procedural texture, image weight {_fmt(p[0])}, frost weight {_fmt(p[1])}",
    ),
    "fog": _Entry(
        "Fog", "weather", True, tables.FOG,
        apply=lambda x, p, rng: weather.fog(x, *p, tables.FOG_MAP_SIZE, rng),
        text=lambda p: f"plasma fractal strength {_fmt(p[0])}, decay {_fmt(p[1])}",
    ),
    "brightness": _Entry(
        "Brightness", "digital", False, tables.BRIGHTNESS,
        apply=lambda x, p, rng: digital.brightness(x, p),
        text=lambda p: f"+{_fmt(p)} on the HSV value",
    ),
    "contrast": _Entry(
        "Contrast", "digital", False, tables.CONTRAST,
        apply=lambda x, p, rng: digital.contrast(x, p),
        text=lambda p: f"deviation from the mean x{_fmt(p)}",
    ),
    "elastic_transform": _Entry(
        "Elastic transform", "digital", True, tables.ELASTIC_TRANSFORM,
        apply=_elastic,
        text=lambda p: "alpha {:.3g} px, sigma {:.3g} px, affine jitter {:.3g} px at 224 px "
        "(scaled with the short side)".format(*(v * 244 for v in p)),
    ),
    "pixelate": _Entry(
        "Pixelate", "digital", False, tables.PIXELATE,
        apply=lambda x, p, rng: digital.pixelate(x, p),
        text=lambda p: f"box-resampled to {_fmt(100 * p)}% of the side and back",
    ),
    "jpeg_compression": _Entry(
        "JPEG compression", "digital", False, tables.JPEG_COMPRESSION,
        apply=lambda x, p, rng: digital.jpeg(x, p),
        text=lambda p: f"quality {p}",
    ),
}  # fmt: skip

_ESWMV_NAMES = {f"{base}_eswmv": base for base in ESWMV_LEVELS}
_SIGMA_NAME = "gaussian_sigma"


def _build_info() -> dict[str, CorruptionInfo]:
    info = {}
    for name, e in _IMAGENET_C.items():
        sevs = tuple(range(1, len(e.table) + 1))
        info[name] = CorruptionInfo(name, e.label, e.family, "imagenet-c", sevs, e.random)
    for name, base in _ESWMV_NAMES.items():
        label = _IMAGENET_C[base].label
        info[name] = CorruptionInfo(name, f"{label} (ES-WMV)", "noise", "es-wmv", (1, 2, 3), True)
    info[_SIGMA_NAME] = CorruptionInfo(
        _SIGMA_NAME, "Gaussian noise (sigma /255)", "noise", "dip", GAUSSIAN_SIGMA_CHOICES, True
    )
    return info


INFO: dict[str, CorruptionInfo] = _build_info()


def corruption_names(source: str | None = None) -> list[str]:
    """Names of all corruptions (ImageNet-C first, then ES-WMV, then gaussian_sigma), or of one source."""
    return [n for n, i in INFO.items() if source is None or i.source == source]


def levels(name: str) -> tuple[Level, ...]:
    """Valid severities of ``name`` (suggested sigmas for "gaussian_sigma", which takes any in [0, 255])."""
    return _info(name).levels


def _info(name: str) -> CorruptionInfo:
    if not isinstance(name, str) or name not in INFO:
        raise InputError(f"unknown corruption {name!r}; expected one of: {', '.join(INFO)}")
    return INFO[name]


def _check_severity(name: str, severity: Level) -> Level:
    if isinstance(severity, (bool, np.bool_)) or not isinstance(severity, numbers.Real):
        raise InputError(f"severity of {name} must be a number, got {severity!r}")
    if name == _SIGMA_NAME:
        s = float(severity)
        if not 0.0 <= s <= 255.0:
            raise InputError(f"sigma of {name} is {s:g}; expected a std in 0-255 units, from 0 to 255")
        return s
    valid = INFO[name].levels
    if not isinstance(severity, numbers.Integral) or int(severity) not in valid:
        raise InputError(
            f"severity {severity!r} of {name} is not valid; expected an integer from 1 to {max(valid)}"
        )
    return int(severity)


def _params(name: str, severity: Level):
    """Table row for a checked severity."""
    if name in _ESWMV_NAMES:
        return ESWMV_LEVELS[_ESWMV_NAMES[name]][severity - 1]
    return _IMAGENET_C[name].table[severity - 1]


def _apply(name: str, x: np.ndarray, severity: Level, rng: np.random.Generator) -> np.ndarray:
    if name == _SIGMA_NAME:
        return noise.add_gaussian(x, severity / 255.0, rng)
    base = _ESWMV_NAMES.get(name, name)
    return _IMAGENET_C[base].apply(x, _params(name, severity), rng)


def describe(name: str, severity: Level) -> str:
    """Short human text of a corruption at a severity, e.g. "Gaussian noise, std 0.18"."""
    info = _info(name)
    severity = _check_severity(name, severity)
    if name == _SIGMA_NAME:
        return f"Gaussian noise, std {_fmt(severity)}/255 = {severity / 255:.3f}"
    base = _ESWMV_NAMES.get(name, name)
    entry = _IMAGENET_C[base]
    text = f"{entry.label}, {entry.text(_params(name, severity))}"
    if info.source == "es-wmv":
        text += f" (ES-WMV {ESWMV_LEVEL_LABELS[severity - 1]})"
    return text


def _make(name: str) -> Callable[..., np.ndarray]:
    def apply(img: np.ndarray, *, severity: Level = 3, seed: Seed = None) -> np.ndarray:
        sev = _check_severity(name, severity)
        x = check_image(img)
        return finish(_apply(name, x, sev, make_rng(seed)), img)

    info = INFO[name]
    apply.__name__ = apply.__qualname__ = name
    apply.__doc__ = (
        f"{info.label} ({info.source}), severity in {info.levels}; see ``describe('{name}', severity)``.\n\n"
        "Takes a float (H, W) or (H, W, 3) image in [0, 1], ``severity`` and ``seed`` (an int or a\n"
        "numpy Generator);\n"
        "returns float32 of the same shape in [0, 1]."
    )
    return apply


CORRUPTIONS: dict[str, Callable[..., np.ndarray]] = {name: _make(name) for name in INFO}


def corrupt(img: np.ndarray, name: str, *, severity: Level = 3, seed: Seed = 0) -> np.ndarray:
    """Apply corruption ``name`` at ``severity`` to ``img``.

    Parameters
    ----------
    img : float (H, W) or (H, W, 3) image in [0, 1].
    name : one of ``corruption_names()``.
    severity : 1..5 for ImageNet-C names, 1..3 (low, medium, high) for ``*_eswmv``, the std in 0-255
        units for "gaussian_sigma".
    seed : integer seed, numpy Generator, or None; the same seed gives the same image.

    Returns
    -------
    float32 array of the shape of ``img``, in [0, 1].

    Raises
    ------
    InputError
        Unknown name, invalid severity, or an image that is not a finite float image in [0, 1].
    """
    _info(name)
    return CORRUPTIONS[name](img, severity=severity, seed=seed)
