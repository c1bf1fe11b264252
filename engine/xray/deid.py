"""De-identified export: PNG files without metadata and JSON reports without patient identifiers.

The PNG writer emits only the IHDR, IDAT and IEND chunks (no text, time, EXIF or ICC chunks), so nothing
but pixels leaves. Burned-in text in the pixels themselves (names printed on the film) is not detected.

The report builder keeps an allowlist of header facts and then passes everything through
:func:`sanitise`, which drops keys that name identifiers (DICOM PS3.15 Annex E style: names, IDs, dates,
institution, accession number, UIDs...) and blanks values that look like identifiers (UIDs, dates, DICOM
person names, any string found in the source file's identifying fields). :func:`report_json` refuses to
return text that still contains one of those strings.
"""

from __future__ import annotations

import json
import math
import re
import struct
import zlib
from collections.abc import Iterable, Mapping, Sequence, Set

import numpy as np
from PIL import Image

from engine.core.colors import blend
from engine.xray.dicom import PHI_KEYWORDS

REPORT_SCHEMA = "inverse-studio/xray-report/1"
REMOVED = "[removed]"
_MIN_NUMERIC_ID = 6  # shorter numbers (rows, widths) may equal a short time or ID by chance
AGE_CAP = 90  # HIPAA Safe Harbor: ages over 89 are reported as one group
MAX_ARRAY_ITEMS = 4096  # larger arrays belong in a file, not in a report
REPORT_HEADER_KEYS: tuple[str, ...] = (
    "source",
    "modality",
    "view_position",
    "body_part",
    "rows",
    "cols",
    "frames",
    "bits_stored",
    "photometric",
    "pixel_spacing_mm",
    "pixel_spacing_source",
    "age_years",
    "manufacturer",
    "transfer_syntax",
    "lossy_compression",
    "presentation_inverted",
)

_PHI_KEYS = frozenset(k.lower() for k in PHI_KEYWORDS) | {
    "dob",
    "mrn",
    "ssn",
    "filename",
    "file",
    "path",
    "filepath",
}
_DENY_WORDS = frozenset(
    """patient patients birth dob institution institutional accession physician physicians operator operators
    referring performing requesting address telephone phone email uid uids mrn ssn station serial admission
    date dates datetime filename path""".split()
)
_ID_OK_WORDS = frozenset({"run", "model", "job", "class", "label", "preset", "layer"})
_UID = re.compile(r"\b\d+(?:\.\d+){4,}\b")  # real UIDs have many components; versions like 3.0.2 do not
_DA = re.compile(r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b")
_ISO_DATE = re.compile(r"\b(?:19|20)\d{2}[-/.](?:0[1-9]|1[0-2])[-/.](?:0[1-9]|[12]\d|3[01])\b")
_PERSON_NAME = re.compile(r"[^\s\^=\"',;]*\^[^\s\"',;]*")  # DICOM PN uses ^ between name parts


# ------------------------------------------------------------------------------------------------ PNG
def encode_png(img: np.ndarray, *, level: int = 3) -> bytes:
    """Encode an image as PNG with only IHDR, IDAT and IEND chunks.

    ``img``: (H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA; uint8, or float in [0, 1]. ``level``: zlib
    level (3 is ~3x faster than 6 on a 2k x 2k film for a ~10 % larger file).
    """
    a = np.asarray(img)
    if a.dtype != np.uint8:
        a = np.round(np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0) * 255.0).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    colour_type = {2: 0, 3: {3: 2, 4: 6}.get(a.shape[-1] if a.ndim == 3 else 0)}.get(a.ndim)
    if colour_type is None or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(
            f"cannot write an image of shape {a.shape} as PNG; expected (H, W), (H, W, 3) or (H, W, 4)"
        )
    h, w = a.shape[:2]
    rows = a.reshape(h, -1)
    # Filter 2 ("Up": difference to the row above; the first row sees zeros) suits smooth radiographs.
    up = rows.copy()
    up[1:] -= rows[:-1]  # uint8 arithmetic wraps modulo 256, as PNG requires
    raw = np.concatenate([np.full((h, 1), 2, np.uint8), up], axis=1).tobytes()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw, level))
        + chunk(b"IEND", b"")
    )


def png_chunks(data: bytes) -> list[str]:
    """Chunk types of a PNG file in order, e.g. ['IHDR', 'IDAT', 'IEND'] (for checks)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError("not a PNG file")
    out, pos = [], 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append(data[pos + 4 : pos + 8].decode("latin-1"))
        pos += 12 + length
    return out


def export_png(
    image: np.ndarray, overlay: np.ndarray | None = None, *, opacity: float = 0.4, max_side: int | None = None
) -> bytes:
    """De-identified PNG of a displayed image (+ optional overlay): pixels only, no metadata chunks.

    ``overlay`` and ``opacity`` are drawn by :func:`engine.core.colors.blend` (a 2-D heat in [0, 1]
    with the Hot ramp, or RGB/RGBA colours). ``max_side`` shrinks the export (Pillow, Lanczos) so its
    longer side is at most that many pixels.
    """
    rgb = blend(image, overlay, opacity=opacity) if overlay is not None else np.asarray(image)
    if max_side and max(rgb.shape[:2]) > max_side:
        s = max_side / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
        pil = Image.fromarray(
            rgb if rgb.dtype == np.uint8 else np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
        )
        rgb = np.asarray(pil.resize(size, Image.Resampling.LANCZOS))
    return encode_png(rgb)


# --------------------------------------------------------------------------------------------- report
def _words(key: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", key))
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def is_identifier_key(key: str) -> bool:
    """True for keys that name identifying data (PatientName, study_date, InstitutionName, uid, ...)."""
    words = _words(str(key))
    flat = "".join(words)
    if flat in _PHI_KEYS or any(w in _DENY_WORDS for w in words):
        return True
    return ("id" in words or "ids" in words) and not any(w in _ID_OK_WORDS for w in words)


def scrub_text(text: str, forbid: Iterable[str] = ()) -> str:
    """Replace UIDs, dates, DICOM person names and the ``forbid`` strings inside ``text`` by '[removed]'."""
    out = text
    for value in sorted({f for f in forbid if f and len(f) >= 3}, key=len, reverse=True):
        out = re.sub(re.escape(value), REMOVED, out, flags=re.IGNORECASE)
    for pattern in (_UID, _ISO_DATE, _DA, _PERSON_NAME):
        out = pattern.sub(REMOVED, out)
    return out


def sanitise(obj: object, forbid: Iterable[str] = (), _path: str = "", _removed: list[str] | None = None):
    """Copy of a JSON-like object with identifiers removed; returns (clean, removed_paths).

    Keys naming identifiers are dropped; strings are scrubbed (:func:`scrub_text`); numbers equal to a
    ``forbid`` string are dropped; ages of 90 and over become 90; numpy values become Python ones; bytes,
    pydicom objects and arrays over 4096 items are dropped.
    """
    forbid = frozenset(str(f) for f in forbid)
    removed: list[str] = [] if _removed is None else _removed
    clean = _clean(obj, forbid, _path, removed, key_words=[])
    return clean, removed


def _clean(obj: object, forbid: frozenset[str], path: str, removed: list[str], key_words: list[str]):
    drop = _DROP
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            key = str(k)
            sub = f"{path}.{key}" if path else key
            if is_identifier_key(key) or scrub_text(key, forbid) != key:
                removed.append(sub if scrub_text(key, forbid) == key else f"{path or '<root>'}.<key>")
                continue
            c = _clean(v, forbid, sub, removed, _words(key))
            if not isinstance(c, _Drop):
                out[key] = c
        return out
    if isinstance(obj, (Sequence, Set)) and not isinstance(obj, (str, bytes, bytearray)):
        items = [_clean(v, forbid, f"{path}[{i}]", removed, key_words) for i, v in enumerate(obj)]
        return [v for v in items if not isinstance(v, _Drop)]
    if isinstance(obj, np.ndarray):
        if obj.size > MAX_ARRAY_ITEMS or obj.dtype.kind not in "biuf":
            removed.append(path)
            return drop
        return _clean(obj.tolist(), forbid, path, removed, key_words)
    if isinstance(obj, np.generic):
        obj = obj.item()
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, (int, float)):
        if isinstance(obj, float) and not math.isfinite(obj):
            return None
        if len(str(obj)) >= _MIN_NUMERIC_ID and str(obj) in forbid:
            removed.append(path)
            return drop
        if "age" in key_words and obj >= AGE_CAP:
            return AGE_CAP
        return obj
    if isinstance(obj, str):
        s = scrub_text(obj, forbid)
        if s != obj:
            removed.append(path)
        return s
    # bytes, pydicom Dataset/DataElement/PersonName and anything else unknown: never exported
    removed.append(path)
    return drop


class _Drop:
    """Marker for a value that must not appear in the output."""


_DROP = _Drop()


def coarse_age(age: float | None) -> float | None:
    """Age for export: whole years from 2 on (tenths below), capped at 90; exact ages narrow identity."""
    if age is None:
        return None
    return float(min(AGE_CAP, int(age))) if age >= 2 else round(float(age), 1)


def build_report(
    *,
    model: dict | str,
    score: dict | float | None,
    method: str,
    params: dict | None = None,
    header: dict | None = None,
    warnings: Iterable[str] = (),
    extra: dict | None = None,
    forbid: Iterable[str] = (),
) -> dict:
    """JSON-ready review report without patient identifiers.

    Parameters
    ----------
    model : model name/version/card facts.
    score : prediction, e.g. {'PNEUMONIA': 0.83}.
    method, params : saliency method and its parameters.
    header : image header facts; only :data:`REPORT_HEADER_KEYS` are kept, the rest is ignored.
    warnings : domain/reader warnings to keep with the result.
    extra : anything else small and JSON-like.
    forbid : identifying strings of the source (``XrayImage.phi_values``); none can appear in the output.
    """
    facts = dict(header or {})
    if "patient_age_years" in facts:  # 'patient' keys are refused by the sanitiser; the age alone is kept
        facts["age_years"] = coarse_age(facts.pop("patient_age_years"))
    image = {k: facts[k] for k in REPORT_HEADER_KEYS if k in facts}
    raw = {
        "schema": REPORT_SCHEMA,
        "model": model,
        "score": score,
        "saliency": {"method": method, "params": params or {}},
        "image": image,
        "warnings": list(warnings),
        "extra": extra or {},
    }
    clean, removed = sanitise(raw, forbid)
    clean["deidentification"] = {
        "header_fields_kept": sorted(image),
        "removed": removed,
        "note": "no names, IDs, dates, institutions or UIDs; ages over 89 reported as 90",
    }
    return clean


def report_json(report: dict, forbid: Iterable[str] = ()) -> str:
    """Serialise a report (sanitised once more); refuses with ValueError if a ``forbid`` string remains."""
    clean, _ = sanitise(report, forbid)
    text = json.dumps(clean, indent=2, sort_keys=True, allow_nan=False)
    found = leaks(text, forbid)
    if found:
        raise ValueError(f"report still holds {len(found)} identifying value(s); not written")
    return text


def leaks(data: str | bytes, forbid: Iterable[str]) -> list[str]:
    """The ``forbid`` strings (3+ characters) found in ``data``, case-insensitively."""
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    low = text.lower()
    return sorted(f for f in set(forbid) if f and len(f) >= 3 and f.lower() in low)
