"""Readers, validation and small helpers for coherent diffraction patterns (2D or 3D).

Formats: NPY, NPZ (``allow_pickle=False``), TIFF (tifffile), EDF (fabio), CXI / HDF5 (h5py).
Every reader accepts a path or the file's bytes (with a name that gives the suffix), so the UI can
read uploads from memory.

Conventions
-----------
* Patterns are returned as on the detector: the zero frequency near the middle of the array. The
  solvers shift once when they load the data.
* "Not measured" pixels are the union of (a) pixels whose value is NaN or negative (detectors and
  PyNX write -1 in gaps) and (b) pixels where a mask is nonzero (PyNX / CXI convention: mask nonzero =
  masked). ``DiffractionData.mask`` is a bool array, True = not measured; the intensity is 0 there.
* :func:`load_diffraction` also marks the zeros that were not measured (beamstop, gaps, dead border),
  hot pixels and, when asked, saturated pixels (:func:`engine.cdi.masks.unmeasured_mask`), and keeps
  the counts of each kind in ``DiffractionData.mask_stats``.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.core.errors import InputError
from engine.core.reading import check_declared, check_zip, npy_header, open_capped, quiet_logs

#: largest pattern accepted, in pixels (512^3 voxels: 512 MiB as float32)
MAX_ELEMENTS = 512 ** 3
#: largest file accepted, in bytes
MAX_FILE_BYTES = 2 * 1024 ** 3
#: largest decoded array accepted, in bytes (the largest pattern as float32), checked from headers
MAX_DECODED_BYTES = MAX_ELEMENTS * 4
SUFFIXES = (".npy", ".npz", ".tif", ".tiff", ".edf", ".cxi", ".h5", ".hdf5", ".nxs")
EXPECTED = "an array file (NPY, NPZ, TIFF, EDF, CXI or HDF5)"
#: dataset paths tried in order in CXI / HDF5 files
CXI_DATA_PATHS = ("entry_1/data_1/data", "entry_1/instrument_1/detector_1/data", "data", "intensity",
                  "iobs", "entry/data/data")
CXI_MASK_PATHS = ("entry_1/instrument_1/detector_1/mask", "entry_1/data_1/mask", "mask")
NPZ_DATA_KEYS = ("data", "intensity", "iobs", "arr_0")
NPZ_MASK_KEYS = ("mask",)


@dataclass
class DiffractionData:
    """A validated pattern.

    Attributes
    ----------
    intensity : ndarray, float32, (H, W) or (D, H, W)
        Counts, centred; 0 where not measured.
    mask : ndarray, bool, same shape
        True where the pixel is not measured (NaN, negative, or masked).
    source : str
        File name or description.
    notes : list of str
        What was done to the data, in plain words.
    mask_stats : dict
        Counts of not-measured pixels by kind (see :func:`engine.cdi.masks.unmeasured_mask`); empty
        when the mask was not built by :func:`load_diffraction`.
    """

    intensity: np.ndarray
    mask: np.ndarray
    source: str = ""
    notes: list[str] = field(default_factory=list)
    mask_stats: dict = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return self.intensity.ndim

    def stats(self) -> dict:
        return diffraction_stats(self.intensity, self.mask)


# --------------------------------------------------------------------------------------------
# sniffing


def _suffix(name: str) -> str:
    s = Path(name).suffix.lower()
    if s not in SUFFIXES:
        raise InputError(f"unsupported file type {s or '(none)'!r} for {Path(name).name!r}; "
                         f"expected one of {', '.join(SUFFIXES)}")
    return s


def _check_magic(head: bytes, suffix: str, name: str) -> None:
    """Refuse a file whose first bytes do not match its suffix."""
    ok = {
        ".npy": head.startswith(b"\x93NUMPY"),
        ".npz": head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"),
        ".tif": head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
        ".edf": head.lstrip()[:1] == b"{",
        ".cxi": head.startswith(b"\x89HDF\r\n\x1a\n"),
    }
    key = {".tiff": ".tif", ".h5": ".cxi", ".hdf5": ".cxi", ".nxs": ".cxi"}.get(suffix, suffix)
    if not ok[key]:
        kind = {".npy": "NPY", ".npz": "NPZ", ".tif": "TIFF", ".edf": "EDF", ".cxi": "HDF5/CXI"}[key]
        raise InputError(f"{Path(name).name!r} is not a valid {kind} file (its first bytes do not match); "
                         f"check the file or its suffix")


def _open_source(source: str | os.PathLike | bytes, name: str | None) -> tuple[bytes | Path, str]:
    """The bytes or the path of ``source`` and its name, refused when missing, empty or too large."""
    if isinstance(source, (bytes, bytearray, memoryview)) and name is None:
        raise InputError("a file name (for its suffix) is needed to read bytes")
    return open_capped(source, max_bytes=MAX_FILE_BYTES, name=name, expected=EXPECTED)


def _head(src: bytes | Path, n: int = 16) -> bytes:
    if isinstance(src, bytes):
        return src[:n]
    with open(src, "rb") as f:
        return f.read(n)


def _check_elements(shape: tuple[int, ...], name: str) -> None:
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if n > MAX_ELEMENTS:
        raise InputError(f"{name!r} holds {n:,} values (shape {tuple(shape)}); the limit is {MAX_ELEMENTS:,}")


# --------------------------------------------------------------------------------------------
# readers: return (array, mask or None)


def _read_npy(src: bytes | Path, name: str) -> tuple[np.ndarray, None]:
    f = io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")
    try:
        # read the header only, so the size is checked before any data is loaded
        shape, dtype, _ = npy_header(f, name=repr(name))
        _check_elements(shape, name)
        check_declared(shape, dtype.itemsize, max_bytes=MAX_DECODED_BYTES, name=repr(name),
                       what="NPY header")
        f.seek(0)
        return np.load(f, allow_pickle=False), None
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - any parse failure is a bad file for the user
        raise InputError(f"{name!r} could not be read as NPY ({type(e).__name__}: {e})") from None
    finally:
        f.close()


def _read_npz(src: bytes | Path, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    f = io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")
    try:
        # refuse zip bombs before decompressing anything: declared member sizes and NPY headers
        check_zip(f, max_member_bytes=MAX_DECODED_BYTES + 4096, max_total_bytes=2 * MAX_DECODED_BYTES,
                  name=repr(name))
        f.seek(0)
        with np.load(f, allow_pickle=False) as npz:
            keys = list(npz.files)
            data_key = next((k for k in NPZ_DATA_KEYS if k in keys), None)
            if data_key is None:
                cand = [k for k in keys if k not in NPZ_MASK_KEYS]
                if len(cand) != 1:
                    raise InputError(f"{name!r} holds arrays {keys}; expected one named "
                                     f"{' or '.join(NPZ_DATA_KEYS[:3])} (and optionally 'mask')")
                data_key = cand[0]
            data = npz[data_key]
            mask = npz["mask"] if "mask" in keys else None
        return data, mask
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{name!r} could not be read as NPZ ({type(e).__name__}: {e})") from None
    finally:
        f.close()


def _read_tiff(src: bytes | Path, name: str) -> tuple[np.ndarray, None]:
    import tifffile

    try:
        with quiet_logs("tifffile"), tifffile.TiffFile(io.BytesIO(src) if isinstance(src, bytes) else src) as tf:
            if not tf.series:
                raise InputError(f"{name!r} holds no image")
            series = tf.series[0]
            _check_elements(series.shape, name)
            check_declared(series.shape, series.dtype.itemsize, max_bytes=MAX_DECODED_BYTES,
                           name=repr(name), what="TIFF image")
            return series.asarray(), None
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{name!r} could not be read as TIFF ({type(e).__name__}: {e})") from None


_EDF_ITEMSIZE = {"unsignedbyte": 1, "signedbyte": 1, "unsignedshort": 2, "signedshort": 2,
                 "unsignedinteger": 4, "signedinteger": 4, "unsignedlong": 4, "signedlong": 4,
                 "float": 4, "floatvalue": 4, "real": 4, "doublevalue": 8, "double": 8,
                 "unsigned64": 8, "signed64": 8}


def _check_edf_header(head: bytes, name: str, size: int | None = None) -> None:
    """Refuse an EDF whose first header declares a compression, a size over the limits, or more data
    than the file's ``size`` bytes hold (fabio would pad a truncated file with zeros)."""
    end = head.find(b"}")
    if end < 0:
        raise InputError(f"{name!r}: EDF header has no closing '}}' in its first 64 KiB")
    keys: dict[str, str] = {}
    for line in head[:end].decode("latin-1").split(";"):
        if "=" in line:
            k, v = line.split("=", 1)
            keys[k.strip().strip("{").strip().lower()] = v.strip()
    try:
        dims = tuple(int(keys[k]) for k in ("dim_3", "dim_2", "dim_1") if k in keys)
    except ValueError:
        raise InputError(f"{name!r}: EDF header has a non-integer Dim_N") from None
    if not dims:
        raise InputError(f"{name!r}: EDF header declares no Dim_1/Dim_2")
    comp = keys.get("compression", "none").lower()
    if comp not in ("", "none", "no"):
        raise InputError(f"{name!r}: compressed EDF ({comp}) is not accepted; save it uncompressed")
    item = _EDF_ITEMSIZE.get(keys.get("datatype", "float").lower().replace(" ", ""), 8)
    _check_elements(dims, name)
    n = check_declared(dims, item, max_bytes=MAX_DECODED_BYTES, name=repr(name), what="EDF header")
    start = end + 1 + (head[end + 1:end + 2] == b"\n")
    if size is not None and size - start < n:
        raise InputError(f"{name!r}: the EDF header declares {n:,} bytes of data but the file holds "
                         f"{max(size - start, 0):,}; the file is truncated")


def _read_edf(src: bytes | Path, name: str) -> tuple[np.ndarray, None]:
    import fabio

    size = len(src) if isinstance(src, bytes) else src.stat().st_size
    _check_edf_header(_head(src, 64 * 1024), name, size)
    tmp = None
    try:
        if isinstance(src, bytes):  # fabio reads from a file name only
            fd, tmp = tempfile.mkstemp(suffix=".edf")
            with os.fdopen(fd, "wb") as f:
                f.write(src)
            path = tmp
        else:
            path = str(src)
        with quiet_logs("fabio", "fabio.edfimage", "fabio.fabioimage"):  # the message below says what is wrong
            img = fabio.open(path)
            frames = [img.data]
            for i in range(1, getattr(img, "nframes", 1)):
                frames.append(img.getframe(i).data)
                _check_elements((len(frames),) + frames[0].shape, name)
        data = frames[0] if len(frames) == 1 else np.stack(frames)
        if data is None:
            raise InputError(f"{name!r} holds no data")
        return np.asarray(data), None
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{name!r} could not be read as EDF ({type(e).__name__}: {e})") from None
    finally:
        if tmp is not None:
            os.unlink(tmp)


def _check_h5_links(h, name: str) -> None:
    """Refuse external links anywhere in the file, and soft links that point nowhere in it."""
    import h5py

    bad: list[str] = []

    def visit(path: str, link) -> None:
        if isinstance(link, h5py.ExternalLink):
            bad.append(f"{name!r}: {path!r} is an external link to {link.filename!r}; links out of the file "
                       f"are refused")
        elif isinstance(link, h5py.SoftLink) and h.get(path) is None:
            bad.append(f"{name!r}: {path!r} is a soft link to {link.path!r}, which is not in the file")

    h.visititems_links(visit)
    if bad:
        raise InputError(bad[0])


def _check_h5_dataset(ds, name: str) -> None:
    """Refuse datasets stored outside the file (external raw files, virtual datasets) and huge ones."""
    if ds.is_virtual:
        raise InputError(f"{name!r}: dataset {ds.name!r} is a virtual dataset (it maps other files); "
                         f"save the data in the file itself")
    if ds.external:
        raise InputError(f"{name!r}: dataset {ds.name!r} is stored in external files; "
                         f"save the data in the file itself")
    if ds.dtype.kind not in "uifb":
        kind = "complex" if ds.dtype.kind == "c" else str(ds.dtype)
        raise InputError(f"{name!r}: dataset {ds.name!r} holds {kind} values; expected real photon counts")
    _check_elements(ds.shape or (), name)
    check_declared(ds.shape or (), ds.dtype.itemsize, max_bytes=MAX_DECODED_BYTES, name=repr(name),
                   what=f"dataset {ds.name!r}")


def _read_h5(src: bytes | Path, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    import h5py

    try:
        # bytes are read through h5py's file-object driver: no temporary file; no file locking
        with h5py.File(io.BytesIO(src) if isinstance(src, bytes) else src, "r", locking=False) as h:
            _check_h5_links(h, name)
            ds = next((h[p] for p in CXI_DATA_PATHS if isinstance(h.get(p), h5py.Dataset)), None)
            if ds is None:  # a plain HDF5 file with exactly one 2D/3D numeric dataset is fine too
                found: list = []
                h.visititems(lambda _n, o: found.append(o) if isinstance(o, h5py.Dataset)
                             and o.ndim in (2, 3) and o.dtype.kind in "uif" else None)
                found = [d for d in found if not d.name.lower().endswith("mask")]
                if len(found) != 1:
                    raise InputError(f"{name!r} has no /entry_1/data_1/data (CXI) and "
                                     f"{len(found)} candidate 2D/3D datasets; expected exactly one")
                ds = found[0]
            _check_h5_dataset(ds, name)
            data = ds[()]
            mask = None
            for p in CXI_MASK_PATHS:
                m = h.get(p)
                if isinstance(m, h5py.Dataset) and m.shape[-data.ndim:] == data.shape[-m.ndim:]:
                    _check_h5_dataset(m, name)
                    mask = m[()]
                    break
        return np.asarray(data), mask
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{name!r} could not be read as HDF5/CXI ({type(e).__name__}: {e})") from None


_READERS = {".npy": _read_npy, ".npz": _read_npz, ".tif": _read_tiff, ".tiff": _read_tiff, ".edf": _read_edf,
            ".cxi": _read_h5, ".h5": _read_h5, ".hdf5": _read_h5, ".nxs": _read_h5}


def read_array(source: str | os.PathLike | bytes, *,
               name: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the raw array (and a mask stored in the same file, if any) without validation.

    Parameters
    ----------
    source : path or bytes
    name : str, optional
        File name (its suffix picks the reader); required with bytes.
    """
    src, name = _open_source(source, name)
    suffix = _suffix(name)
    _check_magic(_head(src), suffix, name)
    return _READERS[suffix](src, name)


# --------------------------------------------------------------------------------------------
# validation


def validate_pattern(data: np.ndarray, mask: np.ndarray | None = None, *, name: str = "data",
                     negative: str = "mask") -> DiffractionData:
    """Check a pattern and build its not-measured mask.

    Parameters
    ----------
    data : ndarray
        2D or 3D real counts (singleton axes are dropped).
    mask : ndarray, optional
        Nonzero = not measured (PyNX convention); same shape as ``data`` (or broadcastable 2D over 3D).
    negative : {"mask", "error"}
        "mask": NaN and negative values are not measured (detector gaps written as -1).
        "error": NaN or a negative value outside ``mask`` raises :class:`InputError`.

    Raises
    ------
    InputError
        wrong rank (1D, 4D+), non-numeric or complex values, infinities, NaN/negative values with
        ``negative="error"``, a mask of another shape, no measured pixel, all measured pixels zero,
        too many values.
    """
    arr = np.asarray(data)
    if arr.dtype.kind not in "uifb":
        kind = "complex" if arr.dtype.kind == "c" else str(arr.dtype)
        raise InputError(f"{name!r} holds {kind} values; expected real photon counts")
    if arr.ndim > 2:
        arr = arr.reshape([s for s in arr.shape if s != 1] or [1])
    if arr.ndim < 2 or arr.ndim > 3:
        raise InputError(f"{name!r} is {arr.ndim}D (shape {tuple(np.shape(data))}); "
                         f"expected a 2D or 3D pattern")
    if min(arr.shape) < 4:
        raise InputError(f"{name!r} has shape {arr.shape}; expected at least 4 pixels along each axis")
    _check_elements(arr.shape, name)
    arr = arr.astype(np.float32, copy=True)
    if np.isinf(arr).any():
        raise InputError(f"{name!r} contains infinite values; expected finite counts (NaN or negative "
                         f"values mark pixels that are not measured)")
    bad = np.isnan(arr) | (arr < 0)
    masked = np.zeros(arr.shape, bool)
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype.kind not in "uifb":
            raise InputError(f"the mask holds {m.dtype} values; expected integers or booleans")
        if m.ndim > arr.ndim:
            m = m.reshape([s for s in m.shape if s != 1])
        try:
            masked = np.broadcast_to(np.nan_to_num(m) != 0, arr.shape).copy()
        except ValueError:
            raise InputError(f"the mask has shape {m.shape} but the pattern has shape {arr.shape}; "
                             f"they must match") from None
    if negative == "error" and (bad & ~masked).any():
        n = int((bad & ~masked).sum())
        raise InputError(f"{name!r} has {n} NaN or negative pixels outside the mask; counts must be >= 0 "
                         f"(mask those pixels, or let negative values mark them as not measured)")
    full = bad | masked
    arr[full] = 0.0
    if full.all():
        raise InputError(f"{name!r} has no measured pixel (all are masked, NaN or negative)")
    if not (arr > 0).any():
        raise InputError(f"{name!r} is all zeros where measured; expected a diffraction pattern with counts")
    notes = []
    if bad.any():
        notes.append(f"{int(bad.sum())} NaN/negative pixels marked as not measured")
    return DiffractionData(intensity=arr, mask=full, source=name, notes=notes)


def load_diffraction(source: str | os.PathLike | bytes, *, name: str | None = None,
                     mask: str | os.PathLike | bytes | np.ndarray | None = None, mask_name: str | None = None,
                     negative: str = "mask", mask_zeros: str = "auto",
                     saturation: float | None = None) -> DiffractionData:
    """Read and validate a pattern, with an optional separate mask file (nonzero = not measured).

    Parameters
    ----------
    source : path or bytes
        NPY, NPZ, TIFF, EDF, CXI or HDF5 file.
    name : str, optional
        File name for bytes (its suffix picks the reader).
    mask : path, bytes or ndarray, optional
        Overrides a mask stored in the data file. Any supported format.
    mask_name : str, optional
        Name of the mask file when given as bytes.
    negative : {"mask", "error"}
        See :func:`validate_pattern`.
    mask_zeros : {"auto", "all", "none"}
        Which zeros are not measured: "auto" the groups of zeros bordered by well-exposed pixels
        (beamstop, gaps, dead pixels) and a dead border, "all" every zero, "none" no zero. Hot pixels
        are always masked. See :func:`engine.cdi.masks.unmeasured_mask`.
    saturation : float, optional
        Pixels at or above this count are not measured.

    Raises
    ------
    InputError
        As :func:`validate_pattern`; also an unknown ``mask_zeros``, a ``saturation`` that is not a
        positive number, or no measured pixel with counts left after masking.
    """
    from engine.cdi.masks import ZERO_MODES, unmeasured_mask

    if mask_zeros not in ZERO_MODES:
        raise InputError(f"unknown zero masking {mask_zeros!r}; expected one of {', '.join(ZERO_MODES)}")
    if saturation is not None and not (np.isfinite(saturation) and saturation > 0):
        raise InputError(f"the saturation level must be a positive number of counts, got {saturation}")
    data, file_mask = read_array(source, name=name)
    label = name or Path(str(source)).name if not isinstance(source, (bytes, bytearray)) else name
    if mask is not None:
        if isinstance(mask, np.ndarray):
            file_mask = mask
        else:
            file_mask, _ = read_array(mask, name=mask_name)
    label = label or "data"
    d = validate_pattern(data, file_mask, name=label, negative=negative)
    # the raw values (NaN and negatives kept), shaped as the validated pattern
    raw = np.asarray(data).astype(np.float32).reshape(d.intensity.shape)
    full, stats = unmeasured_mask(raw, zeros=mask_zeros, mask=file_mask, saturation=saturation)
    full |= d.mask  # the same pixels as validate_pattern, at least
    stats["masked_total"] = int(full.sum())
    intensity = np.where(full, 0, raw).astype(np.float32)
    if full.all() or not (intensity > 0).any():
        raise InputError(f"{label!r} has no measured pixel with counts left after masking "
                         f"({stats['masked_total']:,} of {full.size:,} pixels not measured); "
                         f"check the mask, the saturation level or the zero masking")
    notes = list(d.notes)
    if stats["auto_masked"]:
        what = (f"all {stats['auto_masked']:,} zero pixels" if mask_zeros == "all" else
                f"{stats['auto_masked']:,} zero pixels in {stats['zero_groups']:,} groups bordered by "
                f"exposed pixels (beamstop, gaps, dead border)")
        notes.append(f"{what} marked as not measured")
    if stats["hot"]:
        notes.append(f"{stats['hot']} hot pixels (far above all their neighbours) marked as not measured")
    if stats["saturated"]:
        notes.append(f"{stats['saturated']:,} pixels at or above the saturation level {saturation:g} "
                     f"marked as not measured")
    return DiffractionData(intensity=intensity, mask=full, source=label, notes=notes, mask_stats=stats)


# --------------------------------------------------------------------------------------------
# statistics and helpers


def diffraction_stats(intensity: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """Photons, max, measured zeros and masked pixels of a pattern (plain Python numbers)."""
    m = np.zeros(intensity.shape, bool) if mask is None else mask.astype(bool)
    obs = intensity[~m]
    return {
        "shape": list(intensity.shape),
        "photons": float(obs.sum(dtype=np.float64)),
        "max": float(obs.max()) if obs.size else 0.0,
        "zeros": int((obs == 0).sum()),
        "zero_fraction": float((obs == 0).mean()) if obs.size else 0.0,
        "masked": int(m.sum()),
        "masked_fraction": float(m.mean()),
    }


def crop_center(arr: np.ndarray, shape: tuple[int, ...], *,
                center: tuple[int, ...] | None = None) -> np.ndarray:
    """Crop ``arr`` to ``shape`` around ``center`` (default: the array centre), clipped to the borders."""
    if len(shape) != arr.ndim:
        raise InputError(f"crop shape {tuple(shape)} does not match a {arr.ndim}D pattern")
    center = tuple(s // 2 for s in arr.shape) if center is None else tuple(int(round(c)) for c in center)
    sl = []
    for n, s, c in zip(arr.shape, shape, center):
        if s > n or s < 1:
            raise InputError(f"cannot crop an axis of {n} pixels to {s}")
        start = min(max(c - s // 2, 0), n - s)
        sl.append(slice(start, start + s))
    return arr[tuple(sl)]


def bin_pattern(intensity: np.ndarray, mask: np.ndarray | None = None, *,
                factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``factor``^ndim blocks; a binned pixel is not measured when any pixel in its block is not."""
    if factor < 1:
        raise InputError(f"bin factor must be >= 1, got {factor}")
    m = np.zeros(intensity.shape, bool) if mask is None else mask.astype(bool)
    if factor == 1:
        return intensity.copy(), m.copy()
    shape = tuple(s // factor for s in intensity.shape)
    if min(shape) < 4:
        raise InputError(f"binning {intensity.shape} by {factor} leaves too few pixels")
    crop = tuple(slice(0, s * factor) for s in shape)
    new = []
    for s in shape:
        new += [s, factor]
    axes = tuple(range(1, 2 * len(shape), 2))
    out = intensity[crop].reshape(new).sum(axis=axes, dtype=np.float64).astype(np.float32)
    mout = m[crop].reshape(new).any(axis=axes)
    out[mout] = 0
    return out, mout


def center_pattern(intensity: np.ndarray, mask: np.ndarray | None = None, *, method: str = "max",
                   shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Move the maximum (``method="max"``) or centre of mass (``"com"``) to the array centre.

    The array is rolled (circularly) and optionally cropped; pixels that wrapped around are marked as
    not measured so they never constrain the solver.
    """
    m = np.zeros(intensity.shape, bool) if mask is None else mask.astype(bool)
    w = np.where(m, 0, intensity).astype(np.float64)
    if method == "max":
        c = np.unravel_index(int(np.argmax(w)), w.shape)
    elif method == "com":
        tot = w.sum()
        profiles = [w.sum(axis=tuple(j for j in range(w.ndim) if j != i)) for i in range(w.ndim)]
        c = tuple(int(round((pr * np.arange(pr.size)).sum() / tot)) for pr in profiles)
    else:
        raise InputError(f"unknown centring method {method!r}; expected 'max' or 'com'")
    shift = tuple(n // 2 - ci for n, ci in zip(w.shape, c))
    out = np.roll(intensity, shift, axis=tuple(range(w.ndim)))
    wrapped = np.zeros(w.shape, bool)
    for ax, s in enumerate(shift):  # mark the rows/columns that came around the edge
        idx = [slice(None)] * w.ndim
        if s > 0:
            idx[ax] = slice(0, s)
        elif s < 0:
            idx[ax] = slice(s, None)
        else:
            continue
        wrapped[tuple(idx)] = True
    mout = np.roll(m, shift, axis=tuple(range(w.ndim))) | wrapped
    out = np.where(mout, 0, out).astype(np.float32)
    if shape is not None:
        out, mout = crop_center(out, shape), crop_center(mout, shape)
    return out, mout


def mark_beamstop(mask: np.ndarray, *, radius: float, center: tuple[float, ...] | None = None) -> np.ndarray:
    """Return ``mask`` with a disc (sphere in 3D) of ``radius`` pixels around ``center`` marked."""
    center = tuple(s // 2 for s in mask.shape) if center is None else center
    grids = np.ogrid[tuple(slice(0, s) for s in mask.shape)]
    r2 = sum((g - c) ** 2 for g, c in zip(grids, center))
    return mask.astype(bool) | (r2 <= radius ** 2)


def mark_gap(mask: np.ndarray, *, axis: int, start: int, width: int) -> np.ndarray:
    """Return ``mask`` with ``width`` pixels from ``start`` along ``axis`` marked (a detector module gap)."""
    out = mask.astype(bool).copy()
    idx = [slice(None)] * out.ndim
    idx[axis] = slice(max(start, 0), max(start + width, 0))
    out[tuple(idx)] = True
    return out


def mark_saturated(intensity: np.ndarray, mask: np.ndarray, *, level: float) -> np.ndarray:
    """Return ``mask`` with pixels at or above ``level`` counts marked (saturated pixels are not reliable)."""
    return mask.astype(bool) | (intensity >= level)


def save_pattern_npz(path: str | os.PathLike, intensity: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Write a pattern as NPZ (keys ``data`` and ``mask``, mask nonzero = not measured)."""
    arrays = {"data": np.asarray(intensity, np.float32)}
    if mask is not None:
        arrays["mask"] = np.asarray(mask, np.uint8)
    np.savez_compressed(path, **arrays)


def write_cxi_object(path: str | os.PathLike, obj: np.ndarray, support: np.ndarray | None = None, *,
                     params: dict | None = None) -> None:
    """Write a reconstructed object as CXI (HDF5): ``/entry_1/image_1/data`` (complex), its support
    (``/entry_1/image_1/mask``, nonzero = inside) and the recipe and parameters as JSON text in
    ``/entry_1/image_1/process_1/configuration``."""
    import json

    import h5py

    with h5py.File(path, "w") as h:
        h.attrs["default"] = "entry_1"
        h.create_dataset("cxi_version", data=150)
        e = h.create_group("entry_1")
        e.attrs["NX_class"] = "NXentry"
        e.create_dataset("program_name", data="inverse-studio")
        img = e.create_group("image_1")
        img.attrs["NX_class"] = "NXdata"
        img.create_dataset("data", data=np.asarray(obj, np.complex64), compression="gzip")
        img.create_dataset("data_type", data="electron density")
        img.create_dataset("data_space", data="real")
        if support is not None:
            img.create_dataset("mask", data=np.asarray(support, np.uint8), compression="gzip")
        proc = img.create_group("process_1")
        proc.create_dataset("program", data="inverse-studio phase retrieval")
        proc.create_dataset("configuration", data=json.dumps(params or {}, default=str))
        if params and "recipe" in params:
            proc.create_dataset("command", data=str(params["recipe"]))
