"""Chest X-ray display: read DICOM/PNG/JPEG, then modality values -> VOI (window or LUT) -> presentation.

The pipeline follows DICOM PS3.3 C.11: the modality LUT (RescaleSlope/Intercept or a Modality LUT
Sequence) is applied while reading, so :attr:`XrayImage.pixels` holds modality values; :meth:`display`
applies the VOI stage (the header's VOI LUT, its first window, a preset or the user's center/width), then
the presentation stage: MONOCHROME1 is inverted so that bone is white, and ``invert=True`` flips the result
once more on request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.errors import InputError
from engine.xray.dicom import MAX_FILE_BYTES, MAX_PIXELS, DicomImage, is_dicom, parse, read_bytes
from engine.xray.dicom import decode as decode_dicom
from engine.xray.raster import is_raster, read_raster

DEFAULT = "Default (header)"
AUTO = "Auto (percentile 0.5-99.5)"
FULL = "Full range"
PRESETS: tuple[str, ...] = (DEFAULT, AUTO, FULL, "Lung", "Bone", "Soft tissue")
AUTO_PERCENTILES = (0.5, 99.5)

# Projection radiographs have no calibrated unit, so these presets are placed on the brightness scale
# between the auto percentiles (0 = darkest, 1 = brightest as displayed): (center, width). Heuristics.
RELATIVE_PRESETS: dict[str, tuple[float, float]] = {
    "Lung": (0.4, 0.8),  # the dark half: parenchyma and vessels
    "Bone": (0.7, 0.6),  # the bright part: ribs, spine, clavicles
    "Soft tissue": (0.55, 0.5),  # mid greys: mediastinum, diaphragm, soft tissue
}
# CT has Hounsfield units; commonly quoted windows (e.g. Radiopaedia, "Windowing (CT)"): (center, width).
CT_PRESETS_HU: dict[str, tuple[float, float]] = {
    "Lung": (-600.0, 1500.0),
    "Bone": (400.0, 1800.0),
    "Soft tissue": (40.0, 400.0),
}
_SUBSAMPLE_PIXELS = 1_000_000  # percentiles from a strided subset: same to ~0.1 % and 10x faster


def apply_window(values: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Map modality values to [0, 1] with a DICOM VOI window (PS3.3 C.11.2.1.2).

    ``function``: 'LINEAR' (the DICOM default, with its half-unit offsets; width >= 1), 'LINEAR_EXACT'
    (plain (x - c) / w + 0.5; width > 0) or 'SIGMOID'.
    """
    x = np.asarray(values, dtype=np.float32)
    c, w = float(center), float(width)
    if not (np.isfinite(c) and np.isfinite(w)) or w <= 0:
        raise InputError(f"window width must be a positive number, got center={center}, width={width}")
    fn = function.upper()
    if fn == "SIGMOID":
        y = 1.0 / (1.0 + np.exp(np.clip(-4.0 * (x - c) / w, -80.0, 80.0)))
    elif fn == "LINEAR_EXACT":
        y = (x - c) / w + 0.5
    elif w <= 1.0:  # LINEAR with width 1 is a threshold at c - 0.5
        y = (x > c - 0.5).astype(np.float32)
    else:
        y = (x - (c - 0.5)) / (w - 1.0) + 0.5
    return np.clip(y, 0.0, 1.0).astype(np.float32, copy=False)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0, 1] image -> uint8 (rounded)."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


@dataclass
class XrayImage:
    """One radiograph: modality values, header facts, reader warnings and the display pipeline.

    Attributes
    ----------
    pixels : (rows, cols) float32 modality values (grey; not inverted, not windowed).
    header : facts (see :func:`engine.xray.dicom.header_facts`): modality, view_position, body_part, rows,
        cols, bits_stored, photometric, pixel_spacing_mm + pixel_spacing_source, patient_age_years,
        manufacturer, ...; 'unknown' or None where the file does not say. No identifiers.
    warnings : one-line messages from reading (frames dropped, colour converted, spacing invalid, ...).
    windows : header (center, width) pairs; the first is the default.
    voi_function : VOI function for header and user windows.
    voi_image : header VOI LUT result in [0, 1] (before presentation), or None.
    inverted : MONOCHROME1: displayed inverted so that bone is white.
    phi_values : identifying strings of the source file, for leak checks (never shown).
    """

    pixels: np.ndarray = field(repr=False)
    header: dict
    warnings: list[str]
    windows: list[tuple[float, float]] = field(default_factory=list)
    voi_function: str = "LINEAR"
    voi_image: np.ndarray | None = field(default=None, repr=False)
    inverted: bool = False
    phi_values: frozenset[str] = field(default=frozenset(), repr=False)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_decoded(cls, img: DicomImage) -> XrayImage:
        """Wrap a reader result."""
        return cls(
            img.pixels,
            img.header,
            list(img.warnings),
            list(img.windows),
            img.voi_function,
            img.voi_image,
            img.inverted,
            img.phi_values,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.pixels.shape  # type: ignore[return-value]

    @property
    def value_range(self) -> tuple[float, float]:
        """(min, max) of the modality values, e.g. for window/level slider limits."""
        if "range" not in self._cache:
            self._cache["range"] = (float(self.pixels.min()), float(self.pixels.max()))
        return self._cache["range"]

    def percentiles(
        self, lo: float = AUTO_PERCENTILES[0], hi: float = AUTO_PERCENTILES[1]
    ) -> tuple[float, float]:
        """Percentiles of the modality values (from a strided subset of large images)."""
        key = ("pct", lo, hi)
        if key not in self._cache:
            step = max(1, int(np.sqrt(self.pixels.size / _SUBSAMPLE_PIXELS)))
            sub = self.pixels[::step, ::step]
            self._cache[key] = tuple(float(v) for v in np.percentile(sub, [lo, hi]))
        return self._cache[key]

    def window_for(self, preset: str = DEFAULT) -> tuple[float, float] | None:
        """(center, width) in modality units for a preset; None for the header's VOI LUT.

        'Default (header)' is the header's VOI LUT (None) or its first window, else the auto window.
        """
        if preset == DEFAULT:
            if self.voi_image is not None:
                return None
            if self.windows:
                return self.windows[0]
            preset = AUTO
        if preset == FULL:
            lo, hi = self.value_range
            return (lo + hi) / 2.0, max(hi - lo, 1e-6)
        if preset == AUTO:
            lo, hi = self.percentiles()
            if hi <= lo:
                lo, hi = self.value_range
            return (lo + hi) / 2.0, max(hi - lo, 1e-6)
        if preset in CT_PRESETS_HU and self._is_ct_hu():
            return CT_PRESETS_HU[preset]
        if preset in RELATIVE_PRESETS:
            lo, hi = self.percentiles()
            span = max(hi - lo, 1e-6)
            bc, bw = RELATIVE_PRESETS[preset]
            # Brightness runs against the values for MONOCHROME1 (low values show white).
            center = hi - bc * span if self.inverted else lo + bc * span
            return center, bw * span
        raise InputError(f"unknown window preset {preset!r}; expected one of {', '.join(PRESETS)}")

    def display(
        self, window: tuple[float, float] | None = None, invert: bool = False, preset: str = DEFAULT
    ) -> np.ndarray:
        """Grey image for the screen, float32 in [0, 1], bone white unless ``invert``.

        Parameters
        ----------
        window : (center, width) in modality units; overrides ``preset`` when given.
        invert : flip the grey scale after the presentation stage (a viewer's invert button).
        preset : one of :data:`PRESETS`.
        """
        if window is not None:
            y = apply_window(self.pixels, window[0], window[1], self.voi_function)
        else:
            win = self.window_for(preset)
            if win is None:
                y = self.voi_image.astype(np.float32, copy=True)  # type: ignore[union-attr]
            else:
                from_header = preset == DEFAULT and bool(self.windows) and win == self.windows[0]
                y = apply_window(
                    self.pixels, win[0], win[1], self.voi_function if from_header else "LINEAR_EXACT"
                )
        if self.inverted != bool(invert):
            y = 1.0 - y
        return y

    def display_uint8(
        self, window: tuple[float, float] | None = None, invert: bool = False, preset: str = DEFAULT
    ) -> np.ndarray:
        """:meth:`display` as uint8."""
        return to_uint8(self.display(window, invert, preset))

    def _is_ct_hu(self) -> bool:
        h = self.header
        return h.get("modality") == "CT" and (
            h.get("rescale_type") in (None, "HU") and h.get("rescale_intercept") is not None
        )


def read_xray(
    data: bytes | str | Path, name: str = "", *, max_bytes: int = MAX_FILE_BYTES, max_pixels: int = MAX_PIXELS
) -> XrayImage:
    """Read a chest X-ray from DICOM, PNG or JPEG bytes (or a path), choosing the reader by content.

    DICOM is recognised by 'DICM' at byte 128, PNG/JPEG by their signatures; anything else is tried as
    DICOM without preamble (older files). ``name`` only labels error messages.

    Raises
    ------
    InputError
        With a one-line reason (see :func:`engine.xray.dicom.read_dicom` and
        :func:`engine.xray.raster.read_raster`).
    """
    label = f"{name}: " if name else ""
    try:
        raw = read_bytes(data, max_bytes=max_bytes, name=name or None)
        if is_dicom(raw):
            img = decode_dicom(parse(raw, max_bytes=max_bytes), max_pixels=max_pixels)
        elif is_raster(raw):
            img = read_raster(raw, max_pixels=max_pixels)
        else:
            try:
                ds = parse(raw, force=True, max_bytes=max_bytes)
            except InputError:
                raise InputError("not a DICOM, PNG or JPEG file") from None
            img = decode_dicom(ds, max_pixels=max_pixels)
    except InputError as e:
        if label and not str(e).startswith(label):
            raise InputError(label + str(e)) from e
        raise
    return XrayImage.from_decoded(img)
