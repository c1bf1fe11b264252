"""Read and write the images the restoration studio works on.

Inputs are untrusted: sizes are capped, NumPy files are read without pickle, and every
rejection says what was wrong and what is expected.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import numpy as np

from engine.core.errors import InputError
from engine.core.reading import check_declared, check_npy, check_pixels, check_zip, quiet_logs, read_capped

MAX_BYTES = 200 * 1024 * 1024  # a bigger upload is refused before it is decoded
MAX_PIXELS = 4096 * 4096  # what the DIP solver accepts (engine.dip.solver.MAX_PIXELS): 16.8 MP
MAX_DECODED_BYTES = MAX_PIXELS * 3 * 2  # RGB 16-bit at the pixel cap: 96 MiB decoded, at most
MIN_SIDE = 8
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy", ".npz")


def read_image(source: str | Path | bytes, name: str | None = None) -> np.ndarray:
    """Read an image as float32 in [0, 1], shape (H, W) or (H, W, 3).

    Parameters
    ----------
    source : path or bytes
        PNG, JPEG, TIFF, NPY or NPZ (the first array). Integer data is scaled by its
        type's maximum; float data must already lie in [0, 1].
    name : str, optional
        File name used to pick the decoder when ``source`` is bytes, and in messages.

    Raises
    ------
    InputError
        Missing file, unknown type, undecodable content, wrong shape, NaN, pickled arrays, too large.
    """
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
    data, name = read_capped(source, max_bytes=MAX_BYTES, name=name, expected="an image (PNG/JPEG/TIFF/NPY/NPZ)")
    suffix = Path(name).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{name}: unsupported file type {suffix or '(none)'}; expected one of "
                         f"{', '.join(SUFFIXES)}")
    if suffix in (".npy", ".npz"):
        arr = _read_numpy(data, name, suffix)
    elif suffix in (".tif", ".tiff"):
        arr = _read_tiff(data, name)
    else:
        arr = _read_pillow(data, name)
    return normalize_image(arr, name)


def _read_numpy(data: bytes, name: str, suffix: str) -> np.ndarray:
    try:
        if suffix == ".npz":
            if not zipfile.is_zipfile(io.BytesIO(data)):
                raise InputError(f"{name}: not an NPZ archive")
            # declared sizes of every member (and its NPY header) before anything is inflated
            check_zip(io.BytesIO(data), max_member_bytes=MAX_PIXELS * 3 * 8,
                      max_total_bytes=MAX_PIXELS * 3 * 8, name=name)
        else:
            check_npy(data, max_bytes=MAX_PIXELS * 3 * 8, name=name)
        if suffix == ".npz":
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                if not z.files:
                    raise InputError(f"{name}: the NPZ archive holds no array")
                return z[z.files[0]]
        return np.load(io.BytesIO(data), allow_pickle=False)
    except InputError:
        raise
    except ValueError as e:
        if "pickle" in str(e).lower() or "object" in str(e).lower():
            raise InputError(f"{name}: holds pickled Python objects, which are never loaded; "
                             "save a plain numeric array") from None
        raise InputError(f"{name}: not a readable NumPy file ({e})") from None
    except Exception as e:
        raise InputError(f"{name}: not a readable NumPy file ({type(e).__name__})") from None


def _read_tiff(data: bytes, name: str) -> np.ndarray:
    import tifffile

    try:
        with quiet_logs("tifffile"), tifffile.TiffFile(io.BytesIO(data)) as tf:
            if not len(tf.pages):
                raise InputError(f"{name}: the TIFF file holds no image")
            page = tf.pages[0]
            shape = tuple(int(s) for s in page.shape)
            if len(shape) >= 2:  # width x height first, for the plain message
                check_pixels(shape[1] if len(shape) == 2 or shape[-1] in (1, 3, 4) else shape[-1],
                             shape[0] if len(shape) == 2 or shape[-1] in (1, 3, 4) else shape[-2],
                             max_pixels=MAX_PIXELS, name=name)
            check_declared(shape, page.dtype.itemsize if page.dtype is not None else 8,
                           max_bytes=MAX_DECODED_BYTES * 4, name=name, what="TIFF page")
            return page.asarray()
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{name}: not a readable TIFF file ({type(e).__name__})") from None


def _read_pillow(data: bytes, name: str) -> np.ndarray:
    from PIL import Image

    # Pillow's own bomb check, as a second line behind ours (it raises past twice this)
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, MAX_PIXELS)
    try:
        with warnings.catch_warnings():
            # Pillow warns (on stderr) about pictures between its limit and twice it; ours refuses them
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:  # reads the header only
                check_pixels(im.width, im.height, max_pixels=MAX_PIXELS, name=name)
                if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                    return np.asarray(im).astype(np.uint16 if im.mode.startswith("I;16") else np.int32)
                if im.mode not in ("L", "RGB"):
                    im = im.convert("RGB")  # palette, CMYK, alpha: composite to plain RGB
                return np.asarray(im)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None


def normalize_image(arr: np.ndarray, name: str = "array") -> np.ndarray:
    """Validate an array and bring it to float32 [0, 1], shape (H, W) or (H, W, 3)."""
    arr = np.asarray(arr)
    if arr.dtype == object or arr.dtype.kind not in "uifb":
        raise InputError(f"{name}: array of type {arr.dtype} is not an image; expected uint8/uint16 or float")
    if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4) and arr.shape[0] in (1, 3):
        arr = np.moveaxis(arr, 0, -1)  # channels-first array
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[-1] == 4:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise InputError(f"{name}: shape {arr.shape} is not an image; "
                         "expected (H, W), (H, W, 3) or (3, H, W)")
    h, w = arr.shape[:2]
    check_pixels(w, h, max_pixels=MAX_PIXELS, min_side=MIN_SIDE, name=name)
    if arr.size == 0:
        raise InputError(f"{name}: the array is empty")
    if arr.dtype.kind == "b":
        return arr.astype(np.float32)
    if arr.dtype.kind in "ui":
        if arr.dtype.kind == "i" and arr.min() < 0:
            raise InputError(f"{name}: integer image with negative values; expected unsigned intensities")
        top = 255.0 if arr.max() <= 255 and arr.dtype.itemsize == 1 else float(np.iinfo(arr.dtype).max)
        if arr.dtype.itemsize > 1 and arr.max() <= 255:
            top = 255.0  # 8-bit content stored in a wider type
        return (arr.astype(np.float32) / top).astype(np.float32)
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(f"{name}: {bad} pixels are NaN or infinite; expected finite values in [0, 1]")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(f"{name}: float values span [{lo:.3g}, {hi:.3g}]; expected [0, 1] "
                         "(or save as uint8/uint16)")
    return np.clip(arr, 0.0, 1.0)


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of a float [0, 1] image (8-bit)."""
    from PIL import Image

    from engine.runs.store import to_uint8

    buf = io.BytesIO()
    Image.fromarray(to_uint8(img)).save(buf, format="PNG")
    return buf.getvalue()


def encode_tiff16(img: np.ndarray) -> bytes:
    """16-bit TIFF bytes of a float [0, 1] image."""
    import tifffile

    buf = io.BytesIO()
    arr = (np.clip(img, 0, 1) * 65535 + 0.5).astype(np.uint16)
    tifffile.imwrite(buf, arr, photometric="rgb" if arr.ndim == 3 else "minisblack")
    return buf.getvalue()


def encode_npz(**arrays: np.ndarray) -> bytes:
    """Compressed NPZ bytes (no pickled objects)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()
