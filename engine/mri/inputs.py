"""What an MRI run starts from: a grey image to simulate k-space from, or measured k-space with its mask.

Images: ``phantom`` (scikit-image's Shepp-Logan phantom), ``MR_small`` (pydicom's bundled 64x64 MR
slice), a bundled sample (:mod:`engine.dip.samples`, converted to grey) or an uploaded DICOM/PNG/JPEG/
TIFF/NPY/NPZ. Measured k-space: a complex ``.npy`` (the mask in a second file, or the nonzero columns),
an ``.npz`` with ``kspace`` and ``mask`` arrays, or an HDF5 file with a ``kspace`` dataset (fastMRI's
layout, ``(slices, H, W)`` allowed) and an optional ``mask``.

Every file is untrusted: sizes are checked before decoding, NumPy files are read without pickle, the
uncompressed size of NPZ members is checked from the archive's directory, and HDF5 datasets stored in
external files, virtual datasets and links to other files or paths are refused.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from engine.core.errors import InputError
from engine.core.reading import Source, check_declared, check_zip, read_capped
from engine.mri.kspace import MAX_SIDE, MIN_SIDE, check_shape

MAX_BYTES = 256 * 2**20
MAX_ELEMENTS = 64 * MAX_SIDE * MAX_SIDE  # a volume of 64 slices of 1024^2
BUILTIN_IMAGES = {"phantom": "Shepp-Logan phantom (scikit-image)",
                  "MR_small": "MR_small.dcm, a 64x64 MR slice bundled with pydicom"}
KSPACE_SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")
MASK_SUFFIXES = (".npy", ".npz", ".png", ".tif", ".tiff")


def image_names() -> list[str]:
    """Built-in images: the phantom, MR_small, then the bundled samples."""
    from engine.dip.samples import sample_names

    return list(BUILTIN_IMAGES) + sample_names()


def _grey(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img, np.float32)
    if img.ndim == 3:  # ITU-R BT.601 luma
        img = img[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return img


def _resize(img: np.ndarray, size: int | None) -> np.ndarray:
    if size is None or img.shape == (size, size):
        return img.astype(np.float32)
    from skimage.transform import resize

    h, w = img.shape
    s = min(h, w)  # centre square crop first, as the bundled samples do
    img = img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return np.clip(resize(img, (size, size), anti_aliasing=True), 0, 1).astype(np.float32)


def _unit(values: np.ndarray) -> np.ndarray:
    """Modality values to [0, 1] by their range (MR has no calibrated unit)."""
    v = np.asarray(values, np.float64)
    lo, hi = float(v.min()), float(v.max())
    if not np.isfinite([lo, hi]).all():
        raise InputError("image has NaN or infinite values")
    return ((v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)).astype(np.float32)


def builtin_image(name: str, size: int | None = None) -> np.ndarray:
    """A built-in grey image in [0, 1]; ``size`` resizes to ``size x size`` (None: phantom 128, MR_small 64)."""
    if name == "phantom":
        from skimage.data import shepp_logan_phantom

        return _resize(np.clip(shepp_logan_phantom(), 0, 1), size or 128)
    if name == "MR_small":
        from pydicom.data import get_testdata_file

        path = get_testdata_file("MR_small.dcm")
        if path is None:
            raise InputError("pydicom's MR_small.dcm test file is not installed")
        return _resize(read_grey(path), size)
    from engine.dip.samples import load_sample, sample_names

    if name not in sample_names():
        raise InputError(f"unknown image {name!r}; expected one of {', '.join(image_names())}")
    return _resize(_grey(load_sample(name, size or 128)), None)


def read_grey(source: Source, name: str | None = None, *, size: int | None = None) -> np.ndarray:
    """An uploaded or local image as grey float32 in [0, 1]: DICOM by content, else PNG/JPEG/TIFF/NPY/NPZ."""
    from engine.core.imageio import read_image

    if isinstance(source, (str, Path)):
        name = name or Path(source).name
    name = name or "upload"
    data, name = read_capped(source, max_bytes=MAX_BYTES, name=name, expected="an image or a DICOM file")
    suffix = Path(name).suffix.lower()
    if suffix in (".dcm", ".dicom", "") or data[128:132] == b"DICM":
        from engine.xray.display import read_xray

        img = _unit(read_xray(data, name).pixels)
    else:
        img = _grey(read_image(data, name))
    check_shape(img.shape, name)
    return _resize(img, size)


# ----------------------------------------------------------------------------- k-space files
def _check_elements(shape: tuple[int, ...], name: str) -> None:
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if n > MAX_ELEMENTS:
        raise InputError(f"{name}: array of shape {tuple(shape)} is too large; expected at most "
                         f"{MAX_ELEMENTS} elements")


def _npy_from(f: io.BufferedIOBase, name: str) -> np.ndarray:
    """One .npy stream, its header checked before the data are read; never unpickled."""
    try:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _fortran, dtype = read_header(f)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{name}: not a NumPy .npy array ({type(e).__name__})") from None
    if dtype.hasobject:
        raise InputError(f"{name}: holds Python objects; expected a numeric array (pickles are not read)")
    _check_elements(shape, name)
    # a plane's sides (all axes but the slices, and a last real/imaginary axis of 2) from the header, so
    # a megabyte of deflated zeros cannot make the reader inflate a gigabyte it would refuse afterwards
    sides = tuple(shape) if len(shape) <= 2 else tuple(shape[1:])
    if len(shape) >= 3 and shape[-1] == 2:
        sides = sides[:-1]
    if any(int(d) > MAX_SIDE for d in sides):
        raise InputError(f"{name}: array of shape {tuple(shape)} has a side over {MAX_SIDE}; expected sides of "
                         f"at most {MAX_SIDE} pixels")
    f.seek(0)
    try:
        return np.load(f, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{name}: could not be read as .npy ({type(e).__name__}: {e})") from None


def _read_npz(data: bytes, name: str) -> dict[str, np.ndarray]:
    buf = io.BytesIO(data)
    if not zipfile.is_zipfile(buf):
        raise InputError(f"{name}: not an NPZ archive")
    # declared member sizes and every NPY header (shape, pickles) first: nothing is inflated yet
    check_zip(buf, max_member_bytes=4 * MAX_BYTES, max_total_bytes=4 * MAX_BYTES, name=name)
    out = {}
    with zipfile.ZipFile(buf) as z:
        for i in (i for i in z.infolist() if i.filename.endswith(".npy")):
            try:
                with z.open(i) as f:  # streamed: the header's element count is checked before the data
                    out[i.filename[:-4]] = _npy_from(f, f"{name}:{i.filename}")
            except InputError:
                raise
            except Exception as e:  # noqa: BLE001 - a bad CRC or deflate stream
                raise InputError(f"{name}:{i.filename}: unreadable ({type(e).__name__}); "
                                 "the archive is corrupt") from None
    return out


def _read_h5(data: bytes, name: str, slice_index: int | None = None) -> dict[str, np.ndarray]:
    try:
        import h5py
    except ImportError:
        raise InputError(f"{name}: reading HDF5 needs the h5py package, which is not installed") from None
    out: dict[str, np.ndarray] = {}
    try:
        with h5py.File(io.BytesIO(data), "r") as h:
            for key in ("kspace", "mask"):
                if key not in h:
                    continue
                link = h.get(key, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    raise InputError(f"{name}: /{key} is a {type(link).__name__}; only datasets stored in the "
                                     "file itself are read")
                ds = h[key]
                if not isinstance(ds, h5py.Dataset):
                    raise InputError(f"{name}: /{key} is not a dataset")
                if ds.external or ds.is_virtual:
                    raise InputError(f"{name}: /{key} is stored outside the file (external or virtual dataset); "
                                     "refused")
                if ds.dtype.kind not in "biufc" and not (ds.dtype.names and set(ds.dtype.names) >= {"r", "i"}):
                    raise InputError(f"{name}: /{key} has dtype {ds.dtype}; expected numbers")
                _check_elements(ds.shape, f"{name}:/{key}")
                arr = _h5_read(ds, key, name, slice_index)
                if arr.dtype.names:  # the (r, i) compound some writers use for complex
                    arr = arr["r"] + 1j * arr["i"]
                out[key] = np.asarray(arr)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{name}: could not be read as HDF5 ({type(e).__name__}: {e})") from None
    if "kspace" not in out:
        raise InputError(f"{name}: no /kspace dataset; expected complex k-space under /kspace")
    return out


def _slice_of(n: int, slice_index: int | None, name: str) -> int:
    s = n // 2 if slice_index is None else int(slice_index)
    if not 0 <= s < n:
        raise InputError(f"{name}: slice {s} of {n}; expected 0 to {n - 1}")
    return s


def _h5_read(ds, key: str, name: str, slice_index: int | None) -> np.ndarray:  # noqa: ANN001 - an h5py Dataset
    """Read what is needed of ``/kspace`` or ``/mask``: of a volume one slice, its size checked first.

    A chunked dataset that was never written declares its size for a few bytes of file, so the size a
    read would take is checked from the header, not from the file's length.
    """
    shape = tuple(ds.shape)
    pair = ds.dtype.kind in "biuf" and len(shape) >= 3 and shape[-1] == 2  # (..., 2) = real, imaginary
    plane = shape[-3:-1] if pair else shape[-2:]
    if key == "kspace" and len(plane) == 2:
        check_shape(plane, f"{name}: k-space")
    if key == "mask":  # a mask is one plane of the k-space's size, or one row
        check_declared(shape, ds.dtype.itemsize, max_bytes=MAX_SIDE * MAX_SIDE * 16, name=f"{name}:/{key}",
                       what="dataset")
    if key == "kspace" and len(shape) == (4 if pair else 3):  # a volume: read the one slice used
        return np.asarray(ds[_slice_of(shape[0], slice_index, name)])
    return ds[()]


def _as_kspace(a: np.ndarray, name: str, slice_index: int | None) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind in "biuf" and a.ndim >= 3 and a.shape[-1] == 2:  # (..., 2) = real, imaginary
        a = a[..., 0] + 1j * a[..., 1].astype(np.float64)
    if a.dtype.kind != "c":
        raise InputError(f"{name}: k-space has dtype {a.dtype}; expected complex values (or a last axis of 2: "
                         "real, imaginary)")
    if a.ndim == 3:  # a volume: one slice (default the middle one)
        a = a[_slice_of(a.shape[0], slice_index, name)]
    check_shape(a.shape, f"{name}: k-space")
    if not np.isfinite(a).all():
        raise InputError(f"{name}: k-space has NaN or infinite values")
    if not np.abs(a).max() > 0:
        raise InputError(f"{name}: k-space is all zeros")
    return a.astype(np.complex64)


def as_mask(m: np.ndarray, shape: tuple[int, int], name: str = "mask") -> np.ndarray:
    """A mask as bool ``(H, W)``: 2-D of the k-space's size, or 1-D over the columns (broadcast)."""
    m = np.asarray(m)
    if m.ndim == 3 and m.shape[-1] in (3, 4):  # an RGB(A) picture of the mask
        m = m[..., 0]
    m = np.squeeze(m)
    if m.ndim == 1 and m.shape[0] == shape[1]:
        m = np.broadcast_to(m[None, :], shape)
    if m.shape != tuple(shape):
        raise InputError(f"{name} has shape {m.shape}; expected {tuple(shape)} or ({shape[1]},) (one value per "
                         "column)")
    if m.dtype.kind not in "biuf" or not np.isfinite(m).all():
        raise InputError(f"{name} must be numbers (nonzero = measured)")
    if m.dtype.kind == "b":
        out = m
    else:  # 0/1 masks and 0/255 pictures alike
        top = float(m.max())
        out = m > (0.5 * top if top > 1 else 0.5)
    if not out.any():
        raise InputError(f"{name} measures nothing; expected at least one nonzero entry")
    return np.array(out, dtype=bool)


def read_mask(source: Source, shape: tuple[int, int], name: str | None = None) -> np.ndarray:
    """A mask file (NPY/NPZ: the ``mask`` array or the first one; PNG/TIFF: nonzero = measured)."""
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
    name = name or "mask"
    suffix = Path(name).suffix.lower()
    if suffix not in MASK_SUFFIXES:
        raise InputError(f"{name}: unsupported mask type {suffix or '(none)'}; expected one of "
                         f"{', '.join(MASK_SUFFIXES)}")
    data, name = read_capped(source, max_bytes=MAX_BYTES, name=name, expected="a mask")
    if suffix == ".npy":
        m = _npy_from(io.BytesIO(data), name)
    elif suffix == ".npz":
        arrays = _read_npz(data, name)
        if not arrays:
            raise InputError(f"{name}: the archive holds no arrays")
        m = arrays.get("mask", next(iter(arrays.values())))
    else:
        from engine.core.imageio import read_image

        m = read_image(data, name)
    return as_mask(m, shape, name)


def read_kspace(source: Source, name: str | None = None, *, mask: Source | None = None,
                mask_name: str | None = None, slice_index: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Measured k-space and its mask: complex64 ``(H, W)`` (zero off the mask) and bool ``(H, W)``.

    Parameters
    ----------
    source : path or bytes of a ``.npy``, ``.npz`` or ``.h5``/``.hdf5`` file
    name : str, optional
        File name (its suffix picks the reader); required with bytes.
    mask : path or bytes, optional
        A separate mask file; otherwise the file's own ``mask``, else the columns holding any nonzero sample.
    slice_index : int, optional
        For a volume ``(slices, H, W)``: the slice (default the middle one).

    Raises
    ------
    InputError
        Unknown type, too large, pickled or non-numeric data, not complex, wrong shape, links or external
        storage in HDF5, a mask that does not fit.
    """
    if isinstance(source, (str, Path)):
        name = name or Path(source).name
    name = name or "kspace"
    suffix = Path(name).suffix.lower()
    if suffix not in KSPACE_SUFFIXES:
        raise InputError(f"{name}: unsupported k-space file type {suffix or '(none)'}; expected one of "
                         f"{', '.join(KSPACE_SUFFIXES)}")
    data, name = read_capped(source, max_bytes=MAX_BYTES, name=name, expected="complex k-space")
    if suffix == ".npy":
        arrays = {"kspace": _npy_from(io.BytesIO(data), name)}
    elif suffix == ".npz":
        arrays = _read_npz(data, name)
        if "kspace" not in arrays:
            raise InputError(f"{name}: no 'kspace' array (found: {', '.join(arrays) or 'none'}); expected "
                             "arrays 'kspace' and, optionally, 'mask'")
    else:
        arrays = _read_h5(data, name, slice_index)  # a volume's one slice only
    k = _as_kspace(arrays["kspace"], name, slice_index)
    if mask is not None:
        m = read_mask(mask, k.shape, mask_name)
    elif "mask" in arrays:
        m = as_mask(arrays["mask"], k.shape, f"{name}: mask")
    else:  # the measured columns: those with any nonzero sample
        m = np.broadcast_to((np.abs(k) > 0).any(axis=0)[None, :], k.shape).copy()
    return (k * m).astype(np.complex64), m


__all__ = ["BUILTIN_IMAGES", "MAX_BYTES", "MIN_SIDE", "as_mask", "builtin_image", "image_names", "read_grey",
           "read_kspace", "read_mask"]
