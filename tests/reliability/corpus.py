"""The bad-input corpus: files every reader must refuse cleanly, and the call that feeds each one to a reader.

A *sample* is one bad file (its name and a function that builds its bytes, run once per process and
cached). A *case* is a sample fed to one target: a library reader (which must raise ``InputError``) or
a CLI command run through :func:`engine.cli.main.main` (which must exit with status 2 and print one line).
The families below follow the readers: images, masks, diffraction files, DICOM and radiographs, MRI
k-space, checkpoints and models, run folders.

Bombs are built without holding their decoded size: zeros are deflated once per 1 MiB block with a full
flush, so the same compressed block can be repeated to declare a gigabyte in about a megabyte.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import struct
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

#: key of the environment variable holding the file a malicious payload would create when executed
MARKER_ENV = "RELIABILITY_MARKER"
#: what a pickle payload runs when it is (wrongly) loaded: it creates the marker file
PAYLOAD = "import os; open(os.environ['RELIABILITY_MARKER'], 'w').write('executed')"

_MIB = 1 << 20


@dataclass(frozen=True)
class Sample:
    """One bad file: its file name and the function that builds its bytes."""

    key: str
    filename: str
    build: Callable[[], bytes]


@dataclass
class Case:
    """One sample fed to one target.

    Attributes
    ----------
    family : the reader family (image, mask, diffraction, dicom, kspace, checkpoint, runfolder).
    sample : key of the :class:`Sample` (its file is written in the case folder).
    target : key of the runner's target (a library reader or a CLI command).
    expect : "refused" (InputError, or exit 2 with one line), "row" (``xray predict``: exit 1 and one
        error row per bad file, by design), "tolerated" (listing runs: exit 0 or 2, no traceback).
    options : target options (keyword arguments, extra flags).
    xfail : the reason, when the case fails for a cause outside the readers (not fixed here).
    """

    family: str
    sample: str
    target: str
    expect: str = "refused"
    options: dict = field(default_factory=dict)
    xfail: str | None = None

    @property
    def id(self) -> str:
        return f"{self.family}/{self.sample}@{self.target}"


SAMPLES: dict[str, Sample] = {}


def sample(key: str, filename: str) -> Callable[[Callable[[], bytes]], Callable[[], bytes]]:
    """Register a sample builder under ``key``; its bytes are cached per process."""

    def wrap(fn: Callable[[], bytes]) -> Callable[[], bytes]:
        cached = functools.cache(fn)
        SAMPLES[key] = Sample(key, filename, cached)
        return cached

    return wrap


def const(key: str, filename: str, data: bytes) -> None:
    """Register a sample whose bytes are given."""
    SAMPLES[key] = Sample(key, filename, lambda: data)


@functools.cache
def sample_bytes(key: str) -> bytes:
    return SAMPLES[key].build()


# ----------------------------------------------------------------------------------------------- helpers
def npy(arr: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    """An NPY header declaring ``shape`` of ``dtype``, without the data."""
    fmt = np.lib.format
    buf = io.BytesIO()
    fmt.write_array_header_1_0(buf, {"descr": fmt.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
                                     "shape": tuple(shape)})
    return buf.getvalue()


def png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def tiff(arr: np.ndarray, **kw) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


def grey(n: int = 64, m: int | None = None) -> np.ndarray:
    """A smooth 8-bit test picture (a valid image, pattern or film)."""
    m = n if m is None else m
    y, x = np.mgrid[0:n, 0:m]
    return ((x + 2 * y) * 255 // max(3 * max(n, m) - 3, 1)).astype(np.uint8)


def pattern(n: int = 32) -> np.ndarray:
    """A small valid diffraction pattern (counts centred in the array)."""
    y, x = np.mgrid[0:n, 0:n] - n // 2
    r = np.hypot(x, y) + 1.0
    return (1000.0 * (np.sinc(r / 3.0) ** 2) + 1.0).astype(np.float32)


def truncate(data: bytes, fraction: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * fraction))]


def deflate_zeros(prefix: bytes, n_zeros: int, *, with_crc: bool = True) -> tuple[bytes, int, int]:
    """Raw deflate of ``prefix`` + ``n_zeros`` zero bytes, built in about 1 MiB of memory.

    Returns (compressed bytes, CRC-32 of the uncompressed data, uncompressed size).
    """
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(_MIB)
    parts = [c.compress(prefix) + c.flush(zlib.Z_FULL_FLUSH)]
    full, rest = divmod(n_zeros, _MIB)
    crc = zlib.crc32(prefix)
    if full:
        # after a full flush the compressor's state is reset: every further 1 MiB block compresses alike
        first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
        again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
        parts += [first, again * (full - 1)] if full > 1 else [first]
        if with_crc:
            for _ in range(full):
                crc = zlib.crc32(block, crc)
    if rest:
        parts.append(c.compress(bytes(rest)))
        crc = zlib.crc32(bytes(rest), crc)
    parts.append(c.flush())
    return b"".join(parts), crc & 0xFFFFFFFF, len(prefix) + n_zeros


def zip_raw(members: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip archive from ready members: (name, data, method 0/8, crc, uncompressed size)."""
    out = io.BytesIO()
    central = []
    for name, data, method, crc, usize in members:
        offset = out.tell()
        nb = name.encode()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), usize,
                              len(nb), 0) + nb + data)
        central.append(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc,
                                   len(data), usize, len(nb), 0, 0, 0, 0, 0, offset) + nb)
    cd_offset = out.tell()
    cd = b"".join(central)
    out.write(cd)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(cd), cd_offset, 0))
    return out.getvalue()


def npz_bomb(shape: tuple[int, ...], dtype: str, *, name: str = "arr_0.npy") -> bytes:
    """An NPZ of zeros whose one member declares ``shape`` x ``dtype`` (honest sizes, a megabyte or so)."""
    header = npy_header(shape, dtype)
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    data, crc, usize = deflate_zeros(header, n)
    return zip_raw([(name, data, 8, crc, usize)])


def h5_bytes(build: Callable) -> bytes:
    """The bytes of an HDF5 file written by ``build(h5py.File)``."""
    import h5py

    fd, path = tempfile.mkstemp(suffix=".h5")
    os.close(fd)
    try:
        with h5py.File(path, "w") as h:
            build(h)
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def edf(dims: tuple[int, ...], data: bytes, *, datatype: str = "FloatValue", extra: str = "",
        close: bool = True) -> bytes:
    """An EDF file: a ``{...}`` header padded to 512 bytes, then ``data``."""
    keys = "".join(f"Dim_{i + 1} = {d} ;\n" for i, d in enumerate(dims))
    head = (f"{{\nHeaderID = EH:000001:000000:000000 ;\nImage = 1 ;\nByteOrder = LowByteFirst ;\n"
            f"DataType = {datatype} ;\n{keys}Size = {len(data)} ;\n{extra}")
    pad = (-(len(head) + 2)) % 512
    head = head + " " * pad + ("}\n" if close else "  ")
    return head.encode("latin-1") + data


class _Exec:
    """Pickles to a call of ``exec(PAYLOAD)``: loading it would run code."""

    def __reduce__(self):  # noqa: ANN204
        import builtins

        return (builtins.exec, (PAYLOAD,))


def pickle_payload() -> bytes:
    return pickle.dumps(_Exec(), protocol=2)


def dicom(rows: int = 64, cols: int = 64, *, pixels: bytes | None = None, syntax: str = "1.2.840.10008.1.2.1",
          pixel_data: bool = True, **tags) -> bytes:
    """A small secondary-capture DICOM file; ``tags`` override or add header values."""
    from pydicom.dataset import Dataset, FileMetaDataset

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7.8.9"
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    with warnings.catch_warnings():  # pydicom warns about the broken values these files are made of
        warnings.simplefilter("ignore")
        for k, v in tags.items():
            setattr(ds, k, v)
    if pixel_data:
        if pixels is None:
            pixels = (np.arange(rows * cols, dtype=np.uint32) % 4096).astype("<u2").tobytes()
        ds.PixelData = pixels
    buf = io.BytesIO()
    private = {} if syntax.startswith("1.2.840.10008.1.2") else {"implicit_vr": False, "little_endian": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(buf, enforce_file_format=True, **private)
    return buf.getvalue()


def dicom_deflate_bomb(inflated: int) -> bytes:
    """A Deflated Explicit VR DICOM whose body inflates to about ``inflated`` bytes (zeros)."""
    deflated = dicom(8, 8, syntax="1.2.840.10008.1.2.1.99")
    at = deflated.find(b"\x02\x00\x00\x00UL\x04\x00")
    meta_end = at + 12 + int.from_bytes(deflated[at + 8:at + 12], "little")
    plain = dicom(8, 8, pixels=bytes(2))
    pat = plain.find(b"\x02\x00\x00\x00UL\x04\x00")
    body = plain[pat + 12 + int.from_bytes(plain[pat + 8:pat + 12], "little"):]
    tag = body.rfind(b"\xe0\x7f\x10\x00")  # (7FE0,0010) Pixel Data, OW, 2 reserved bytes, 4-byte length
    head = body[:tag + 8] + struct.pack("<I", inflated)
    data, _, _ = deflate_zeros(head, inflated, with_crc=False)
    return deflated[:meta_end] + data


# ------------------------------------------------------------------------------------------------ images
@sample("npz_zeros_bomb", "bomb.npz")
def _npz_zeros_bomb() -> bytes:  # 1.1 MB of deflated zeros declaring a 1.1 GB array
    return npz_bomb((24000, 48000), "uint8")


@sample("tiff_36mp_zlib", "bomb36mp.tif")
def _tiff_36mp() -> bytes:
    return tiff(np.zeros((6000, 6000), np.uint16), compression="zlib")


@sample("png_36mp", "bomb36mp.png")
def _png_36mp() -> bytes:
    return png(np.zeros((6000, 6000), np.uint8))


def _patch_jpeg_size(data: bytes, h: int, w: int) -> bytes:
    i = 2
    while i < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2:i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return data[:i + 5] + struct.pack(">HH", h, w) + data[i + 9:]
        i += 2 + length
    raise ValueError("no SOF marker")


@sample("jpeg_huge_dims", "huge.jpg")
def _jpeg_huge() -> bytes:  # a 16x16 JPEG whose frame header says 65000 x 65000
    return _patch_jpeg_size(jpeg(grey(16)), 65000, 65000)


@sample("bmp_huge_dims", "huge.bmp")
def _bmp_huge() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grey(16)).save(buf, format="BMP")
    data = bytearray(buf.getvalue())
    data[18:26] = struct.pack("<ii", 30000, 30000)
    return bytes(data)


@sample("npy_header_huge", "huge.npy")
def _npy_huge() -> bytes:
    return npy_header((100000, 100000), "float64") + bytes(64)


@sample("npz_header_lies", "lies.npz")
def _npz_header_lies() -> bytes:  # the member is small (stored), its NPY header declares 80 GB
    head = npy_header((100000, 100000), "float64") + bytes(16)
    return zip_raw([("arr_0.npy", head, 0, zlib.crc32(head), len(head))])


@sample("npz_size_understated", "understated.npz")
def _npz_understated() -> bytes:  # the directory says 200 bytes, the member inflates to 64 MiB
    data, crc, _ = deflate_zeros(npy_header((8192, 8192), "uint8"), 8192 * 8192)
    return zip_raw([("arr_0.npy", data, 8, crc, 200)])


@sample("npz_many_members", "many.npz")
def _npz_many() -> bytes:
    return npz(**{f"a{i}": np.zeros(1, np.uint8) for i in range(80)})


@sample("tiff_tags_huge", "tags.tif")
def _tiff_tags_huge() -> bytes:  # a 16x16 TIFF whose ImageWidth/ImageLength tags say 60000 x 60000
    data = bytearray(tiff(grey(16)))
    ifd = int.from_bytes(data[4:8], "little")
    n = int.from_bytes(data[ifd:ifd + 2], "little")
    for k in range(n):
        e = ifd + 2 + 12 * k
        tag, typ = struct.unpack("<HH", data[e:e + 4])
        if tag in (256, 257):
            data[e + 8:e + 12] = struct.pack("<H", 60000) + b"\0\0" if typ == 3 else struct.pack("<I", 60000)
    return bytes(data)


@sample("npy_pickle", "pickle.npy")
def _npy_pickle() -> bytes:
    return npy(np.array([_Exec(), 1], dtype=object), allow_pickle=True)


@sample("npz_pickle", "pickle.npz")
def _npz_pickle() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, data=np.array([_Exec(), 1], dtype=object))
    return buf.getvalue()


const("npy_text", "text.npy", b"1,2,3\n4,5,6\nthis is a CSV file renamed .npy\n")
const("npy_raw_pickle", "raw.npy", pickle_payload())


@sample("png_truncated", "cut.png")
def _png_cut() -> bytes:
    return truncate(png(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)), 0.6)


@sample("jpeg_truncated", "cut.jpg")
def _jpeg_cut() -> bytes:
    return truncate(jpeg(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)), 0.4)


@sample("tiff_truncated", "cut.tif")
def _tiff_cut() -> bytes:
    return truncate(tiff(grey(64)), 0.3)


@sample("tiff_truncated_ifd", "cutifd.tif")
def _tiff_cut_ifd() -> bytes:  # the header points past the end of the file
    return tiff(grey(64))[:8]


@sample("npy_truncated", "cut.npy")
def _npy_cut() -> bytes:
    return truncate(npy(np.ones((64, 64), np.float32) * 0.5), 0.5)


@sample("npy_truncated_header", "cuthead.npy")
def _npy_cut_head() -> bytes:
    return npy(np.ones((64, 64), np.float32))[:20]


@sample("npz_truncated", "cut.npz")
def _npz_cut() -> bytes:
    return truncate(npz(arr_0=np.ones((64, 64), np.float32) * 0.5), 0.5)


for _suffix in ("png", "jpg", "tif", "npy", "npz", "bmp"):
    const(f"empty_{_suffix}", f"empty.{_suffix}", b"")


@sample("random_png", "random.png")
def _random_png() -> bytes:
    return np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()


@sample("png_as_tif", "png.tif")
def _png_as_tif() -> bytes:
    return png(grey(64))


@sample("png_as_npy", "png.npy")
def _png_as_npy() -> bytes:
    return png(grey(64))


@sample("npy_as_npz", "npy.npz")
def _npy_as_npz() -> bytes:
    return npy(np.ones((64, 64), np.float32))


@sample("zip_not_npz", "notnpz.npz")
def _zip_not_npz() -> bytes:
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not an array")
    return buf.getvalue()


def _float(n: int = 64, value: float = 0.5) -> np.ndarray:
    return np.full((n, n), value, np.float32)


@sample("npy_nan", "nan.npy")
def _npy_nan() -> bytes:
    a = _float()
    a[3, 5] = np.nan
    return npy(a)


@sample("npy_inf", "inf.npy")
def _npy_inf() -> bytes:
    a = _float()
    a[7, 7] = np.inf
    return npy(a)


@sample("npy_complex", "complex.npy")
def _npy_complex() -> bytes:
    return npy(_float().astype(np.complex64) * (1 + 1j))


@sample("npy_out_of_range", "range.npy")
def _npy_range() -> bytes:
    return npy(_float(value=1.0) * np.linspace(0, 4, 64, dtype=np.float32))


@sample("npy_negative_int", "negative.npy")
def _npy_negative() -> bytes:
    return npy(np.full((64, 64), -3, np.int16))


@sample("png_1x1", "one.png")
def _png_1x1() -> bytes:
    return png(np.zeros((1, 1), np.uint8))


@sample("png_1xN", "line.png")
def _png_1xn() -> bytes:
    return png(grey(1, 256))


@sample("npy_1x1", "one.npy")
def _npy_1x1() -> bytes:
    return npy(np.zeros((1, 1), np.float32))


@sample("npy_1xN", "line.npy")
def _npy_1xn() -> bytes:
    return npy(np.zeros((1, 512), np.float32))


@sample("npy_1d", "vector.npy")
def _npy_1d() -> bytes:
    return npy(np.ones(4096, np.float32))


@sample("npy_4d", "four.npy")
def _npy_4d() -> bytes:
    return npy(np.ones((2, 2, 32, 32), np.float32) * 0.5)


@sample("npy_5d", "five.npy")
def _npy_5d() -> bytes:
    return npy(np.ones((2, 2, 2, 16, 16), np.float32) * 0.5)


@sample("npy_5_channels", "channels.npy")
def _npy_5ch() -> bytes:
    return npy(np.ones((64, 64, 5), np.float32) * 0.5)


@sample("npy_strings", "strings.npy")
def _npy_strings() -> bytes:
    return npy(np.full((64, 64), "pixel", dtype="<U5"))


@sample("npy_bytes", "bytes.npy")
def _npy_bytes() -> bytes:
    return npy(np.full((64, 64), b"px", dtype="S2"))


@sample("npy_datetime", "dates.npy")
def _npy_dates() -> bytes:
    return npy(np.full((64, 64), np.datetime64("2026-01-01"), dtype="M8[D]"))


@sample("npy_structured", "records.npy")
def _npy_records() -> bytes:
    return npy(np.zeros((64, 64), dtype=[("a", "<f4"), ("b", "<i4")]))


@sample("npy_empty", "empty_array.npy")
def _npy_empty() -> bytes:
    return npy(np.zeros((0, 64), np.float32))


@sample("npz_empty", "noarrays.npz")
def _npz_empty() -> bytes:
    buf = io.BytesIO()
    np.savez(buf)
    return buf.getvalue()


const("gif_suffix", "image.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
const("no_suffix", "image", b"\x89PNG\r\n\x1a\n")

IMAGE_SAMPLES = [
    "npz_zeros_bomb", "tiff_36mp_zlib", "png_36mp", "jpeg_huge_dims", "bmp_huge_dims", "npy_header_huge",
    "npz_header_lies", "npz_size_understated", "npz_many_members", "tiff_tags_huge", "npy_pickle", "npz_pickle",
    "npy_text", "npy_raw_pickle", "png_truncated", "jpeg_truncated", "tiff_truncated", "tiff_truncated_ifd",
    "npy_truncated", "npy_truncated_header", "npz_truncated", "empty_png", "empty_jpg", "empty_tif",
    "empty_npy", "empty_npz", "empty_bmp", "random_png", "png_as_tif", "png_as_npy", "npy_as_npz",
    "zip_not_npz", "npy_nan", "npy_inf", "npy_complex", "npy_out_of_range", "npy_negative_int", "png_1x1",
    "png_1xN", "npy_1x1", "npy_1xN", "npy_1d", "npy_4d", "npy_5d", "npy_5_channels", "npy_strings",
    "npy_bytes", "npy_datetime", "npy_structured", "npy_empty", "npz_empty", "gif_suffix", "no_suffix",
    "png_100mp",
]


# ------------------------------------------------------------------------------------------------- masks
@sample("mask_wrong_shape", "mask32.png")
def _mask_shape() -> bytes:
    return png(np.full((32, 32), 255, np.uint8))


@sample("mask_all_zero", "mask0.png")
def _mask_zero() -> bytes:
    return png(np.zeros((64, 64), np.uint8))


@sample("mask_nan", "masknan.npy")
def _mask_nan() -> bytes:
    a = np.ones((64, 64), np.float32)
    a[0, 0] = np.nan
    return npy(a)


@sample("mask_4d", "mask4d.npy")
def _mask_4d() -> bytes:
    return npy(np.ones((2, 2, 64, 64), np.uint8))


@sample("mask_npy_wrong_shape", "mask32.npy")
def _mask_npy_shape() -> bytes:
    return npy(np.ones((32, 32), np.uint8))


@sample("mask_npy_zero", "mask0.npy")
def _mask_npy_zero() -> bytes:
    return npy(np.zeros((64, 64), np.uint8))


@sample("mask_jpg", "mask.jpg")
def _mask_jpg() -> bytes:
    return jpeg(np.full((64, 64), 255, np.uint8))


@sample("mask_complex", "maskc.npy")
def _mask_complex() -> bytes:
    return npy(np.ones((32, 32), np.complex64))


@sample("mask_pattern_shape", "mask16.npy")
def _mask_pattern_shape() -> bytes:
    return npy(np.zeros((16, 16), np.uint8))


@sample("mask_all_masked", "maskall.npy")
def _mask_all() -> bytes:
    return npy(np.ones((32, 32), np.uint8))


@sample("reference_wrong_shape", "ref48.png")
def _ref_shape() -> bytes:
    return png(grey(48))


# ----------------------------------------------------------------------------------------- diffraction
@sample("npz_pr_bomb", "bomb_pr.npz")
def _npz_pr_bomb() -> bytes:  # 0.97 MB: the member's file_size declares about 1 GB
    return npz_bomb((16000, 16000), "float32", name="data.npy")


@sample("tiff_tags_huge_pr", "tags.tiff")
def _tiff_tags_pr() -> bytes:
    return _tiff_tags_huge()


@sample("edf_dims_huge", "huge.edf")
def _edf_huge() -> bytes:
    return edf((60000, 60000), bytes(64))


@sample("edf_compressed", "gz.edf")
def _edf_gz() -> bytes:
    return edf((32, 32), zlib.compress(pattern().tobytes()), extra="Compression = gzip ;\n")


@sample("edf_dims_text", "text.edf")
def _edf_text() -> bytes:
    return edf((32, 32), pattern().tobytes()).replace(b"Dim_1 = 32", b"Dim_1 = 3x")


@sample("edf_no_close", "open.edf")
def _edf_open() -> bytes:
    return edf((32, 32), b"", close=False)


@sample("edf_no_dims", "nodims.edf")
def _edf_nodims() -> bytes:
    return edf((), pattern().tobytes())


@sample("edf_truncated", "cut.edf")
def _edf_cut() -> bytes:
    return edf((32, 32), pattern().tobytes()[:1000])


const("edf_not_edf", "plain.edf", b"this is not an EDF header\n" * 4)


def _cxi_path(h, obj) -> None:  # noqa: ANN001
    h.create_group("entry_1/data_1")
    h["entry_1/data_1/data"] = obj


@sample("h5_external_raw", "external.cxi")
def _h5_external_raw() -> bytes:
    return h5_bytes(lambda h: h.create_dataset("entry_1/data_1/data", shape=(32, 32), dtype="f4",
                                               external=[("/etc/hostname", 0, 32 * 32 * 4)]))


def _virtual(h, path: str = "entry_1/data_1/data", dtype: str = "f4") -> None:  # noqa: ANN001
    import h5py

    layout = h5py.VirtualLayout(shape=(32, 32), dtype=dtype)
    layout[:] = h5py.VirtualSource("/tmp/elsewhere.h5", "data", shape=(32, 32))
    h.create_virtual_dataset(path, layout, fillvalue=0 if dtype == "f4" else None)


@sample("h5_virtual", "virtual.cxi")
def _h5_virtual() -> bytes:
    return h5_bytes(_virtual)


@sample("h5_external_link", "extlink.cxi")
def _h5_extlink() -> bytes:
    import h5py

    def build(h) -> None:  # noqa: ANN001
        h["intensity"] = pattern()
        h["entry_1/data_1/data"] = h5py.ExternalLink("/etc/hostname", "/data")

    return h5_bytes(build)


@sample("h5_soft_dangling", "softlink.h5")
def _h5_soft() -> bytes:
    import h5py

    def build(h) -> None:  # noqa: ANN001
        h["intensity"] = pattern()
        h["entry_1/data_1/data"] = h5py.SoftLink("/nowhere/data")

    return h5_bytes(build)


@sample("h5_huge_declared", "huge.cxi")
def _h5_huge() -> bytes:  # chunked and never written: a few KB declaring 40 GB
    return h5_bytes(lambda h: h.create_dataset("entry_1/data_1/data", shape=(100000, 100000), dtype="f4",
                                               chunks=(64, 64)))


@sample("h5_complex", "complex.h5")
def _h5_complex() -> bytes:
    return h5_bytes(lambda h: h.create_dataset("data", data=pattern().astype(np.complex64)))


@sample("h5_strings", "strings.h5")
def _h5_strings() -> bytes:
    import h5py

    return h5_bytes(lambda h: h.create_dataset("data", data=np.array([["a"] * 8] * 8, dtype=object),
                                               dtype=h5py.string_dtype()))


@sample("h5_4d", "four.h5")
def _h5_4d() -> bytes:
    return h5_bytes(lambda h: h.create_dataset("data", data=np.ones((2, 2, 16, 16), np.float32)))


@sample("h5_no_dataset", "empty.h5")
def _h5_none() -> bytes:
    return h5_bytes(lambda h: h.create_group("entry_1"))


@sample("h5_two_candidates", "two.h5")
def _h5_two() -> bytes:
    def build(h) -> None:  # noqa: ANN001
        h["a"] = pattern()
        h["b"] = pattern()

    return h5_bytes(build)


@sample("h5_truncated", "cut.cxi")
def _h5_cut() -> bytes:
    return truncate(h5_bytes(lambda h: _cxi_path(h, pattern())), 0.5)


@sample("npy_as_h5", "npy.h5")
def _npy_as_h5() -> bytes:
    return npy(pattern())


def _pr(a: np.ndarray) -> bytes:
    return npy(a.astype(np.float32))


@sample("pr_all_nan", "allnan.npy")
def _pr_nan() -> bytes:
    return _pr(np.full((32, 32), np.nan))


@sample("pr_all_negative", "allneg.npy")
def _pr_neg() -> bytes:
    return _pr(-pattern())


@sample("pr_all_zero", "zeros.npy")
def _pr_zero() -> bytes:
    return _pr(np.zeros((32, 32)))


@sample("pr_some_negative", "someneg.npy")
def _pr_someneg() -> bytes:  # fine when negatives mark gaps; refused with negative="error"
    a = pattern()
    a[4:6, :] = -1
    a[10, 10] = np.nan
    return _pr(a)


@sample("pr_inf", "inf.npy")
def _pr_inf() -> bytes:
    a = pattern()
    a[16, 16] = np.inf
    return _pr(a)


@sample("pr_tiny", "tiny.npy")
def _pr_tiny() -> bytes:
    return _pr(np.ones((2, 2)))


@sample("pr_4d", "four.npy")
def _pr_4d() -> bytes:
    return _pr(np.ones((2, 2, 8, 8)))


@sample("pr_5d", "five.npy")
def _pr_5d() -> bytes:
    return _pr(np.ones((2, 2, 2, 8, 8)))


@sample("pr_1d", "vector.npy")
def _pr_1d() -> bytes:
    return _pr(np.ones(1024))


@sample("pr_npz_no_data", "keys.npz")
def _pr_npz_keys() -> bytes:
    return npz(first=pattern(), second=pattern())


const("empty_edf", "empty.edf", b"")
const("empty_cxi", "empty.cxi", b"")
const("unsupported_png", "pattern.png", b"\x89PNG\r\n\x1a\n")

DIFFRACTION_SAMPLES = [
    "npz_pr_bomb", "npz_header_lies", "npz_size_understated", "npz_many_members", "npy_header_huge",
    "tiff_tags_huge_pr", "tiff_36mp_zlib", "edf_dims_huge", "edf_compressed", "edf_dims_text", "edf_no_close",
    "edf_no_dims", "edf_truncated", "edf_not_edf", "h5_external_raw", "h5_virtual", "h5_external_link",
    "h5_soft_dangling", "h5_huge_declared", "h5_complex", "h5_strings", "h5_4d", "h5_no_dataset",
    "h5_two_candidates", "h5_truncated", "npy_as_h5", "npy_pickle", "npz_pickle", "npy_raw_pickle", "npy_text",
    "npy_truncated", "npz_truncated", "tiff_truncated", "empty_npy", "empty_npz", "empty_tif", "empty_edf",
    "empty_cxi", "png_as_npy", "npy_as_npz", "pr_all_nan", "pr_all_negative", "pr_all_zero", "pr_inf",
    "pr_tiny", "pr_4d", "pr_5d", "pr_1d", "npy_complex", "npy_strings", "npy_structured", "pr_npz_no_data",
    "unsupported_png",
]
#: HDF5 files whose refusal must hold from a path as well as from bytes
H5_LINK_SAMPLES = ["h5_external_raw", "h5_virtual", "h5_external_link", "h5_soft_dangling", "h5_huge_declared"]


# ----------------------------------------------------------------------------------- DICOM and radiographs
@sample("dcm_deflate_bomb", "bomb.dcm")
def _dcm_bomb() -> bytes:  # inflates to 200 MiB of zeros
    return dicom_deflate_bomb(200 * _MIB)


@sample("dcm_deflate_bomb_no_preamble", "bomb_raw.dcm")
def _dcm_bomb_raw() -> bytes:
    return _dcm_bomb()[132:]


@sample("dcm_rows_cols_huge", "huge.dcm")
def _dcm_huge() -> bytes:
    return dicom(65535, 65535, pixels=bytes(16))


@sample("dcm_frames_huge", "frames.dcm")
def _dcm_frames() -> bytes:  # one 512x512 frame stored, a million declared
    return dicom(512, 512, NumberOfFrames=1000000)


@sample("dcm_bits_7", "bits7.dcm")
def _dcm_bits() -> bytes:
    return dicom(BitsAllocated=7)


@sample("dcm_samples_5", "samples5.dcm")
def _dcm_samples() -> bytes:
    return dicom(SamplesPerPixel=5)


@sample("dcm_slope_nan", "slope.dcm")
def _dcm_slope() -> bytes:
    return dicom(RescaleSlope="NaN", RescaleIntercept="0")


@sample("dcm_intercept_inf", "intercept.dcm")
def _dcm_intercept() -> bytes:
    return dicom(RescaleSlope="1", RescaleIntercept="inf")


@sample("dcm_1x1", "one.dcm")
def _dcm_1x1() -> bytes:
    return dicom(1, 1)


@sample("dcm_1xN", "line.dcm")
def _dcm_1xn() -> bytes:
    return dicom(1, 512)


@sample("dcm_rows_zero", "zero.dcm")
def _dcm_rows0() -> bytes:
    return dicom(0, 64, pixels=bytes(0))


@sample("dcm_no_pixels", "report.dcm")
def _dcm_nopix() -> bytes:
    return dicom(pixel_data=False, Modality="SR")


@sample("dcm_short_pixels", "short.dcm")
def _dcm_short() -> bytes:
    return dicom(256, 256, pixels=bytes(100))


@sample("dcm_truncated", "cut.dcm")
def _dcm_cut() -> bytes:
    return truncate(dicom(), 0.3)


@sample("dcm_truncated_meta", "cutmeta.dcm")
def _dcm_cut_meta() -> bytes:
    return dicom()[:150]


@sample("dcm_unknown_syntax", "syntax.dcm")
def _dcm_syntax() -> bytes:
    return dicom(syntax="1.2.826.0.1.3680043.99.1")


@sample("dcm_dicm_garbage", "garbage.dcm")
def _dcm_garbage() -> bytes:
    return bytes(128) + b"DICM" + np.random.default_rng(2).integers(0, 256, 2048, dtype=np.uint8).tobytes()


const("empty_dcm", "empty.dcm", b"")


@sample("random_dcm", "random.dcm")
def _random_dcm() -> bytes:
    return np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes()


@sample("png_100mp", "film100mp.png")
def _png_100mp() -> bytes:
    return png(np.zeros((10000, 10000), np.uint8))


@sample("gif_film", "film.gif")
def _gif() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(grey(64)).save(buf, format="GIF")
    return buf.getvalue()


@sample("png_1x1_film", "one_film.png")
def _png_1x1_film() -> bytes:
    return png(np.zeros((1, 1), np.uint8))


DICOM_SAMPLES = [
    "dcm_deflate_bomb", "dcm_deflate_bomb_no_preamble", "dcm_rows_cols_huge", "dcm_frames_huge", "dcm_bits_7",
    "dcm_samples_5", "dcm_slope_nan", "dcm_intercept_inf", "dcm_1x1", "dcm_1xN", "dcm_rows_zero",
    "dcm_no_pixels", "dcm_short_pixels", "dcm_truncated", "dcm_truncated_meta", "dcm_unknown_syntax",
    "dcm_dicm_garbage", "empty_dcm", "random_dcm", "jpeg_huge_dims", "png_100mp", "png_truncated",
    "jpeg_truncated", "png_1x1_film", "png_1xN", "gif_film",
]
#: radiographs that also go through the MRI image reader (restore --task mri --simulate)
MRI_IMAGE_SAMPLES = [
    "dcm_deflate_bomb", "dcm_deflate_bomb_no_preamble", "dcm_rows_cols_huge", "dcm_frames_huge",
    "dcm_slope_nan", "dcm_1xN", "dcm_truncated", "dcm_no_pixels", "random_dcm", "png_36mp", "npy_pickle",
    "npz_zeros_bomb",
]


# ------------------------------------------------------------------------------------------------ k-space
def _k(shape: tuple[int, ...] = (64, 64)) -> np.ndarray:
    rng = np.random.default_rng(4)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@sample("ks_pickle", "kpickle.npy")
def _ks_pickle() -> bytes:
    return _npy_pickle()


@sample("ks_real", "kreal.npy")
def _ks_real() -> bytes:
    return npy(np.ones((64, 64), np.float32))


@sample("ks_bool", "kbool.npy")
def _ks_bool() -> bytes:
    return npy(np.ones((64, 64), bool))


@sample("ks_strings", "kstr.npy")
def _ks_strings() -> bytes:
    return npy(np.full((64, 64), "k", dtype="<U1"))


@sample("ks_nan", "knan.npy")
def _ks_nan() -> bytes:
    k = _k()
    k[3, 3] = np.nan
    return npy(k)


@sample("ks_inf", "kinf.npy")
def _ks_inf() -> bytes:
    k = _k()
    k[3, 3] = np.inf
    return npy(k)


@sample("ks_zeros", "kzero.npy")
def _ks_zero() -> bytes:
    return npy(np.zeros((64, 64), np.complex64))


@sample("ks_4d", "k4d.npy")
def _ks_4d() -> bytes:
    return npy(_k((2, 2, 32, 32)))


@sample("ks_1xN", "kline.npy")
def _ks_line() -> bytes:
    return npy(_k((1, 256)))


@sample("ks_tiny", "ktiny.npy")
def _ks_tiny() -> bytes:
    return npy(_k((4, 4)))


@sample("ks_header_huge", "khuge.npy")
def _ks_huge() -> bytes:
    return npy_header((100000, 100000), "complex64") + bytes(64)


@sample("ks_npz_no_kspace", "knokey.npz")
def _ks_nokey() -> bytes:
    return npz(data=_k())


@sample("ks_npz_bomb", "kbomb.npz")
def _ks_npz_bomb() -> bytes:  # about 1 MB; its member declares 0.94 GiB, under the archive's 1 GiB check
    return npz_bomb((60, 1024, 2048), "complex64", name="kspace.npy")


@sample("ks_npz_header_lies", "klies.npz")
def _ks_npz_lies() -> bytes:
    head = npy_header((100000, 100000), "complex64") + bytes(16)
    return zip_raw([("kspace.npy", head, 0, zlib.crc32(head), len(head))])


@sample("ks_npz_pickle", "kpickle.npz")
def _ks_npz_pickle() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, kspace=np.array([_Exec(), 1], dtype=object))
    return buf.getvalue()


def _ks_h5(build: Callable) -> bytes:
    return h5_bytes(build)


@sample("ks_h5_external_link", "kext.h5")
def _ks_h5_ext() -> bytes:
    import h5py

    return _ks_h5(lambda h: h.__setitem__("kspace", h5py.ExternalLink("/etc/hostname", "/kspace")))


@sample("ks_h5_soft_dangling", "ksoft.h5")
def _ks_h5_soft() -> bytes:
    import h5py

    return _ks_h5(lambda h: h.__setitem__("kspace", h5py.SoftLink("/nowhere")))


@sample("ks_h5_soft_valid", "ksoftok.h5")
def _ks_h5_softok() -> bytes:  # a soft link to a real dataset: only datasets stored at /kspace are read
    import h5py

    def build(h) -> None:  # noqa: ANN001
        h["other"] = _k()
        h["kspace"] = h5py.SoftLink("/other")

    return _ks_h5(build)


@sample("ks_h5_virtual", "kvirtual.h5")
def _ks_h5_virtual() -> bytes:
    return _ks_h5(lambda h: _virtual(h, "kspace", "c8"))


@sample("ks_h5_external_raw", "kraw.h5")
def _ks_h5_raw() -> bytes:
    return _ks_h5(lambda h: h.create_dataset("kspace", shape=(64, 64), dtype="c8",
                                             external=[("/etc/hostname", 0, 64 * 64 * 8)]))


@sample("ks_h5_huge_declared", "khuge.h5")
def _ks_h5_huge() -> bytes:  # chunked, never written: a few KB declaring 1 GiB of complex128
    return _ks_h5(lambda h: h.create_dataset("kspace", shape=(64, 1024, 1024), dtype="c16", chunks=(1, 64, 64)))


@sample("ks_h5_plane_huge", "kplane.h5")
def _ks_h5_plane() -> bytes:  # one 8192 x 8192 complex128 plane (1 GiB), never written
    return _ks_h5(lambda h: h.create_dataset("kspace", shape=(8192, 8192), dtype="c16", chunks=(64, 64)))


@sample("ks_h5_mask_huge", "kmask.h5")
def _ks_h5_mask() -> bytes:  # a valid k-space beside a mask declaring 2 GiB
    def build(h) -> None:  # noqa: ANN001
        h["kspace"] = _k()
        h.create_dataset("mask", shape=(16384, 16384), dtype="f8", chunks=(64, 64))

    return _ks_h5(build)


@sample("ks_npz_plane_bomb", "kplane.npz")
def _ks_npz_plane() -> bytes:  # about 1 MB declaring one 8192 x 8192 complex128 plane (1 GiB)
    return npz_bomb((8192, 8192), "complex128", name="kspace.npy")


@sample("ks_h5_strings", "kstr.h5")
def _ks_h5_str() -> bytes:
    import h5py

    return _ks_h5(lambda h: h.create_dataset("kspace", data=np.array([["a"] * 8] * 8, dtype=object),
                                             dtype=h5py.string_dtype()))


@sample("ks_h5_no_kspace", "knone.h5")
def _ks_h5_none() -> bytes:
    return _ks_h5(lambda h: h.create_dataset("data", data=_k()))


@sample("ks_h5_truncated", "kcut.h5")
def _ks_h5_cut() -> bytes:
    return truncate(_ks_h5(lambda h: h.create_dataset("kspace", data=_k())), 0.5)


@sample("ks_volume", "kvol.npy")
def _ks_volume() -> bytes:
    return npy(_k((3, 64, 64)))


const("ks_text_h5", "ktext.h5", b"not an HDF5 file at all\n" * 8)
const("ks_unsupported", "kspace.mat", b"MATLAB 5.0 MAT-file")
const("empty_h5", "kempty.h5", b"")

KSPACE_SAMPLES = [
    "ks_pickle", "ks_real", "ks_bool", "ks_strings", "ks_nan", "ks_inf", "ks_zeros", "ks_4d", "ks_1xN", "ks_tiny",
    "ks_header_huge", "ks_npz_no_kspace", "ks_npz_bomb", "ks_npz_header_lies", "ks_npz_pickle",
    "ks_h5_external_link", "ks_h5_soft_dangling", "ks_h5_soft_valid", "ks_h5_virtual", "ks_h5_external_raw",
    "ks_h5_huge_declared", "ks_h5_plane_huge", "ks_h5_mask_huge", "ks_npz_plane_bomb",
    "ks_h5_strings", "ks_h5_no_kspace", "ks_h5_truncated", "ks_text_h5",
    "ks_unsupported", "empty_h5", "npy_text", "npy_truncated", "empty_npy", "npz_truncated",
]


# ------------------------------------------------------------------------------- checkpoints and models
@sample("ckpt_pickle_exec", "checkpoint.pt")
def _ck_pickle() -> bytes:  # a plain pickle (the legacy torch format) that runs code when loaded
    return pickle_payload()


@sample("ckpt_torch_exec", "checkpoint.pt")
def _ck_torch() -> bytes:  # torch's zip format holding a pickle that runs code when loaded
    import torch

    buf = io.BytesIO()
    torch.save({"net": {"w": torch.zeros(2)}, "extra": _Exec()}, buf)
    return buf.getvalue()


@sample("ckpt_truncated", "checkpoint.pt")
def _ck_cut() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"net": {"w": torch.zeros(64)}}, buf)
    return truncate(buf.getvalue(), 0.5)


@sample("ckpt_zip_garbage", "checkpoint.pt")
def _ck_zip() -> bytes:
    return _zip_not_npz()


const("ckpt_text", "checkpoint.pt", b"this is not a checkpoint\n")
const("ckpt_empty", "checkpoint.pt", b"")

CHECKPOINT_SAMPLES = ["ckpt_pickle_exec", "ckpt_torch_exec", "ckpt_truncated", "ckpt_zip_garbage", "ckpt_text",
                      "ckpt_empty"]


@sample("model_pickle_exec", "model.pt")
def _model_pickle() -> bytes:
    return pickle_payload()


@sample("model_torch_exec", "model.pt")
def _model_torch() -> bytes:
    return _ck_torch()


const("model_text", "model.pt", b"not a TorchScript archive\n")
const("model_json_garbage", "model.json", b"{ this is not JSON")

MODEL_SAMPLES = ["model_pickle_exec", "model_torch_exec", "model_text", "model_json_garbage"]
#: weights files behind a model config (the state_dict path, torch.load with weights_only=True)
MODEL_WEIGHT_SAMPLES = ["ckpt_pickle_exec", "ckpt_torch_exec", "ckpt_truncated", "ckpt_text"]


# ------------------------------------------------------------------------------------------- run folders
const("spec_not_json", "spec.json", b'{"kind": "restore", "params": {')
const("spec_list", "spec.json", b"[1, 2, 3]")
const("spec_string", "spec.json", b'"restore"')
const("spec_null", "spec.json", b"null")
const("spec_kind_unknown", "spec.json", b'{"kind": "no-such-kind", "params": {}}')
const("spec_params_list", "spec.json", b'{"kind": "restore", "params": [1, 2]}')
const("spec_binary", "spec.json", bytes(range(256)) * 4)
const("spec_deep", "spec.json", b"[" * 200000 + b"]" * 200000)
const("status_list", "status.json", b"[]")
const("status_not_json", "status.json", b'{"state": "fail')
const("status_deep", "status.json", b'{"a":' * 100000 + b"1" + b"}" * 100000)
const("status_state_number", "status.json", b'{"state": 7, "iteration": "many"}')

RUN_FOLDER_SAMPLES = ["spec_not_json", "spec_list", "spec_string", "spec_null", "spec_kind_unknown",
                      "spec_params_list", "spec_binary", "spec_deep", "status_list", "status_not_json",
                      "status_deep", "status_state_number"]


# ----------------------------------------------------------------------------------------------- cases
def cases() -> list[Case]:
    """Every case of the corpus, in a fixed order."""
    return list(_cases())


def _cases() -> Iterator[Case]:
    for s in IMAGE_SAMPLES:
        yield Case("image", s, "image")
        yield Case("image", s, "restore")
    yield Case("image", "missing", "image-path")
    yield Case("image", "folder", "image-path")
    yield Case("image", "missing", "restore")
    yield Case("image", "folder", "restore")

    for s in ("mask_wrong_shape", "mask_all_zero", "mask_nan", "mask_4d", "npy_pickle", "png_truncated",
              "png_36mp", "npz_zeros_bomb"):
        yield Case("mask", s, "restore-mask")
    for s in ("reference_wrong_shape", "npy_nan", "npy_pickle"):
        yield Case("mask", s, "restore-reference")
    for s in ("mask_npy_wrong_shape", "mask_npy_zero", "mask_nan", "npy_pickle", "npy_strings", "mask_wrong_shape",
              "mask_jpg", "png_truncated", "empty_npy", "npz_empty", "ks_npz_bomb"):
        yield Case("mask", s, "mri-mask")
        yield Case("mask", s, "restore-mri-mask")
    for s in ("mask_pattern_shape", "mask_complex", "npy_strings", "npy_pickle", "mask_all_masked",
              "h5_external_link"):
        yield Case("mask", s, "diffraction-mask")
        yield Case("mask", s, "pr-mask")
    for s in ("npy_pickle", "npy_text", "h5_soft_dangling"):
        yield Case("mask", s, "pr-support")

    for s in DIFFRACTION_SAMPLES:
        yield Case("diffraction", s, "diffraction")
        yield Case("diffraction", s, "pr")
    for s in H5_LINK_SAMPLES:
        yield Case("diffraction", s, "diffraction-path")
    yield Case("diffraction", "pr_some_negative", "diffraction", options={"negative": "error"})

    for s in DICOM_SAMPLES:
        yield Case("dicom", s, "xray")
        yield Case("dicom", s, "xray-predict", expect="row")
    for s in ("dcm_deflate_bomb", "dcm_rows_cols_huge", "png_truncated"):
        yield Case("dicom", s, "xray-predict-saliency", expect="row")
    for s in MRI_IMAGE_SAMPLES:
        yield Case("dicom", s, "mri-image")
        yield Case("dicom", s, "restore-mri-simulate")

    for s in KSPACE_SAMPLES:
        yield Case("kspace", s, "kspace")
        yield Case("kspace", s, "restore-mri")
    yield Case("kspace", "ks_volume", "kspace", options={"slice_index": 7})
    yield Case("kspace", "ks_volume", "restore-mri", options={"flags": ["--slice", "7"]})

    for s in CHECKPOINT_SAMPLES:
        yield Case("checkpoint", s, "resume")
    for s in MODEL_SAMPLES:
        yield Case("checkpoint", s, "model")
    for s in MODEL_WEIGHT_SAMPLES:
        yield Case("checkpoint", s, "model-weights")

    for s in RUN_FOLDER_SAMPLES:
        yield Case("runfolder", s, "runs", expect="tolerated")
        # a run whose spec cannot be read must not be queued; a damaged status may be rewritten
        yield Case("runfolder", s, "resume", expect="refused" if s.startswith("spec") else "tolerated")



#: a control the runner always adds: its target allocates 256 MiB, then refuses (checks the peak measurement)
CONTROL = Case("control", "control", "control-alloc")
CONTROL_MB = 256
const("control", "control.bin", b"control")
const("missing", "missing.png", b"")  # the runner does not write it: the path names no file
const("folder", "folder.png", b"")  # the runner makes a folder under this name

__all__ = ["CONTROL", "CONTROL_MB", "MARKER_ENV", "SAMPLES", "Case", "Sample", "cases", "sample_bytes"]
