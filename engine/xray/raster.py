"""PNG/JPEG chest images: decode with Pillow into float grey values plus 'unknown' header facts.

The result has the same fields as :class:`engine.xray.dicom.DicomImage`, so the display pipeline treats
both alike. An ordinary picture carries no modality, view, age or spacing, so those facts are 'unknown'.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from engine.core.errors import InputError
from engine.xray.dicom import MAX_PIXELS, MIN_SIDE, DicomImage

FORMATS = ("PNG", "JPEG")
_COLOUR_TOLERANCE = 2.0  # grey levels; JPEG chroma noise in a grey picture stays below this


def is_raster(data: bytes) -> bool:
    """True when ``data`` starts with the PNG or JPEG signature."""
    return data.startswith(b"\x89PNG\r\n\x1a\n") or data.startswith(b"\xff\xd8\xff")


def unknown_header(fmt: str, rows: int, cols: int, bits: int) -> dict:
    """Header facts of a picture without DICOM metadata (same keys as the DICOM reader)."""
    return {
        "source": fmt.lower(),
        "modality": "unknown",
        "sop_class": "unknown",
        "transfer_syntax": "unknown",
        "lossy_compression": True if fmt == "JPEG" else None,
        "view_position": "unknown",
        "view_source": None,
        "body_part": "unknown",
        "rows": rows,
        "cols": cols,
        "frames": 1,
        "bits_stored": bits,
        "bits_allocated": bits,
        "samples_per_pixel": 1,
        "photometric": "MONOCHROME2",
        "pixel_spacing_mm": None,
        "pixel_spacing_source": None,
        "pixel_spacing_note": "",
        "patient_age_years": None,
        "age_source": None,
        "manufacturer": "unknown",
        "manufacturer_model": "unknown",
        "rescale_slope": None,
        "rescale_intercept": None,
        "rescale_type": None,
        "window_center": None,
        "window_width": None,
        "presentation_inverted": False,
        "voi_lut": False,
    }


def read_raster(data: bytes, *, max_pixels: int = MAX_PIXELS) -> DicomImage:
    """Decode PNG/JPEG bytes into grey values (0-255, or 0-65535 for 16-bit PNG).

    The default window maps the full code range of the file to [0, 1] (8-bit: 0..255), so the picture
    shows as saved; 16-bit files are mapped from their minimum to their maximum value.

    Raises
    ------
    InputError
        For other formats, pictures over ``max_pixels`` and truncated or corrupt files.
    """
    notes: list[str] = []
    try:
        with warnings.catch_warnings():
            # Pillow warns (on stderr) between its own limit and twice it; max_pixels below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as e:
        raise InputError(f"picture is too large to decode safely ({_first_words(e)})") from e
    except Exception as e:  # Pillow raises several types for unknown input
        raise InputError("not a DICOM, PNG or JPEG file") from e
    if im.format not in FORMATS:
        raise InputError(f"{im.format} pictures are not supported; expected DICOM, PNG or JPEG")
    w, h = im.size
    if w * h > max_pixels:  # checked before decoding: Image.open reads only the header
        raise InputError(f"picture is {w} x {h} pixels, over the {max_pixels / 2**20:.0f} Mpixel limit")
    if min(w, h) < MIN_SIDE:
        raise InputError(f"image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.load()
            im = ImageOps.exif_transpose(im)
    except Exception as e:
        raise InputError(
            f"cannot decode the {im.format} picture ({type(e).__name__}); it may be truncated"
        ) from e
    fmt = im.format or ("PNG" if data.startswith(b"\x89PNG") else "JPEG")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(im, dtype=np.float32)
        bits = 16 if im.mode.startswith("I;16") or float(pixels.max(initial=0)) <= 65535 else 32
        lo, hi = float(pixels.min()), float(pixels.max())
        window = ((lo + hi) / 2, max(hi - lo, 1.0))
    else:
        if "A" in im.mode or "transparency" in im.info:
            notes.append("transparency ignored")
        if im.mode not in ("1", "L", "LA", "I;16"):
            rgb = np.asarray(im.convert("RGB"), dtype=np.float32)
            if np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).max() > _COLOUR_TOLERANCE:
                notes.append(
                    "colour picture converted to grey (luminance); a radiograph is expected to be grey"
                )
        pixels = np.asarray(im.convert("L"), dtype=np.float32)
        bits = 8
        window = (127.5, 255.0)
    rows, cols = pixels.shape
    header = unknown_header(fmt, rows, cols, bits)
    header["window_center"], header["window_width"] = window
    return DicomImage(pixels, header, notes, [window], "LINEAR_EXACT")


def _first_words(e: BaseException) -> str:
    return " ".join(str(e).split())[:120]
