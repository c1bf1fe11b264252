"""Size-capped reading of untrusted files and uploads, in one place.

Every reader in the engine (images, diffraction patterns, DICOM) takes either a path or the bytes of an
upload. The size is checked from the file system (or the buffer) before anything is read, and a path
must be a regular file: nothing else is opened.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from engine.core.errors import InputError

Source = str | os.PathLike | bytes | bytearray | memoryview


def _mib(n: int) -> str:
    if n < 2**20:
        return f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{n} bytes"
    return f"{n / 2**20:.0f} MiB"


def open_capped(source: Source, *, max_bytes: int, name: str | None = None,
                expected: str = "a file") -> tuple[bytes | Path, str]:
    """Check ``source`` against ``max_bytes`` without reading it.

    Returns the bytes (for an upload) or the :class:`~pathlib.Path` (for a file, read later by the caller,
    possibly in pieces), and the name to use in messages.

    Raises
    ------
    InputError
        No such file, not a regular file, empty, or larger than ``max_bytes``.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = name or "upload"
        if len(data) > max_bytes:
            raise InputError(f"{name}: {_mib(len(data))}; the limit is {_mib(max_bytes)}")
        if not data:
            raise InputError(f"{name}: the file is empty; expected {expected}")
        return data, name
    path = Path(source)
    name = name or path.name
    if not path.is_file():
        raise InputError(f"{name}: no such file; expected {expected}")
    size = path.stat().st_size
    if size > max_bytes:
        raise InputError(f"{name}: file is {_mib(size)}; the limit is {_mib(max_bytes)}")
    if size == 0:
        raise InputError(f"{name}: the file is empty; expected {expected}")
    return path, name


def read_capped(source: Source, *, max_bytes: int, name: str | None = None,
                expected: str = "a file") -> tuple[bytes, str]:
    """The bytes of ``source`` and its name, refused before reading when over ``max_bytes``."""
    src, name = open_capped(source, max_bytes=max_bytes, name=name, expected=expected)
    if isinstance(src, bytes):
        return src, name
    with open(src, "rb") as f:
        data = f.read(max_bytes + 1)  # the file may have grown since stat()
    if len(data) > max_bytes:
        raise InputError(f"{name}: file is over the limit of {_mib(max_bytes)}")
    return data, name


# ------------------------------------------------------------------------------------------------
# declared sizes, checked from headers before anything is decoded


def _mp(n: int) -> str:
    return f"{n / 1e6:.1f}".rstrip("0").rstrip(".") + " MP"


def check_pixels(width: int, height: int, *, max_pixels: int, min_side: int = 1,
                 name: str = "image") -> None:
    """Refuse a declared ``width`` x ``height`` over ``max_pixels`` or under ``min_side`` per side.

    Raises
    ------
    InputError
        "image is 6000x6000 = 36 MP; at most 16.8 MP is accepted" or "image is 1x1 pixels; at least
        16x16 is needed".
    """
    width, height = int(width), int(height)
    if width * height > max_pixels:
        raise InputError(f"{name}: image is {width}x{height} = {_mp(width * height)}; at most "
                         f"{_mp(max_pixels)} is accepted")
    if min(width, height) < min_side:
        raise InputError(f"{name}: image is {width}x{height} pixels; at least {min_side}x{min_side} is needed")


def check_declared(shape: tuple[int, ...], itemsize: int, *, max_bytes: int, name: str = "array",
                   what: str = "array") -> int:
    """Refuse a declared array of ``shape`` x ``itemsize`` bytes over ``max_bytes``; return its size."""
    try:
        dims = [int(s) for s in shape]
    except (TypeError, ValueError):
        raise InputError(f"{name}: the {what} declares an unreadable shape {shape!r}") from None
    if any(d < 0 for d in dims):
        raise InputError(f"{name}: the {what} declares a negative size {tuple(dims)}")
    n = int(itemsize)
    for d in dims:  # Python ints: no overflow on absurd declared shapes
        n *= d
    if n > max_bytes:
        raise InputError(f"{name}: the {what} declares shape {tuple(dims)} = {_mib(n)} decoded; "
                         f"the limit is {_mib(max_bytes)}")
    return n


def _not_npy(f, start: int) -> str:
    """What a file that fails the NPY header check is, in words (a text file renamed .npy is common)."""
    f.seek(start)
    head = f.read(512)
    if not head:
        return "the file is empty; expected a NumPy .npy array"
    if head.startswith(b"\x93NUMPY"):
        return "its NPY header is damaged; save the array again with numpy.save"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(c.isprintable() or c in "\r\n\t" for c in text):
        return "this is a text file (e.g. CSV), not a NumPy .npy array; save the array with numpy.save"
    return "not a NumPy .npy array (it does not start with the NPY magic bytes); save the array with numpy.save"


def npy_header(f, *, name: str = "array") -> tuple[tuple[int, ...], object, bool]:
    """Shape, dtype and Fortran order from an open ``.npy`` stream, without reading the data.

    The stream is left at the start of the data. A pickled (object) dtype is refused here.
    """
    import numpy as np

    fmt = np.lib.format
    start = f.tell() if f.seekable() else None
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = fmt.read_array_header_2_0(f)
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError and others on a bad header
        raise InputError(f"{name}: {_not_npy(f, start)}" if start is not None else
                         f"{name}: not a readable NPY file ({_one_line(e)})") from None
    if dtype.hasobject:
        raise InputError(f"{name}: holds pickled Python objects, which are never loaded; "
                         "save a plain numeric array")
    return tuple(shape), dtype, fortran


def check_npy(data: bytes, *, max_bytes: int, name: str = "array") -> None:
    """Refuse NPY bytes whose header declares an object dtype or more than ``max_bytes`` of data."""
    import io

    shape, dtype, _ = npy_header(io.BytesIO(data), name=name)
    check_declared(shape, dtype.itemsize, max_bytes=max_bytes, name=name, what="NPY header")


def check_zip(f, *, max_member_bytes: int, max_total_bytes: int | None = None,
              name: str = "archive") -> list:
    """Refuse a zip (NPZ) archive whose members declare more than the limits; check each NPY header.

    The declared ``file_size`` is checked first; then each ``.npy`` member's header is read (a few
    hundred bytes of decompressed data) and its shape x itemsize checked too, since ``file_size`` can
    lie. Returns the member infos.
    """
    import zipfile

    total_cap = max_member_bytes if max_total_bytes is None else max_total_bytes
    try:
        z = zipfile.ZipFile(f)
    except Exception as e:  # noqa: BLE001
        raise InputError(f"{name}: not a readable NPZ/zip archive ({_one_line(e)})") from None
    with z:
        infos = z.infolist()
        if len(infos) > 64:
            raise InputError(f"{name}: the archive holds {len(infos)} members; at most 64 are accepted")
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > max_member_bytes:
                raise InputError(f"{name}: member {info.filename!r} declares {_mib(info.file_size)} "
                                 f"uncompressed; the limit is {_mib(max_member_bytes)}")
            if total > total_cap:
                raise InputError(f"{name}: members declare {_mib(total)} uncompressed in all; "
                                 f"the limit is {_mib(total_cap)}")
            if info.filename.endswith(".npy"):
                try:
                    with z.open(info) as m:
                        shape, dtype, _ = npy_header(m, name=f"{name}: member {info.filename!r}")
                except InputError:
                    raise
                except Exception as e:  # noqa: BLE001 - a bad CRC, a bad deflate stream ...
                    raise InputError(f"{name}: member {info.filename!r} is unreadable "
                                     f"({_one_line(e)})") from None
                check_declared(shape, dtype.itemsize, max_bytes=max_member_bytes,
                               name=f"{name}: member {info.filename!r}", what="NPY header")
    return infos


def inflate_capped(data: bytes | memoryview, *, limit: int, wbits: int = -15, chunk: int = 1 << 16,
                   keep: bool = True, name: str = "file") -> bytes:
    """Inflate a deflate stream, never holding more than ``limit`` output bytes.

    The output is produced in bounded steps (``zlib.decompressobj`` with ``max_length``); past
    ``limit`` it is refused at once, so the check itself stays under the cap. With ``keep=False``
    the output is only counted (the check holds ``chunk`` bytes) and ``b""`` is returned.
    """
    import zlib

    d = zlib.decompressobj(wbits)
    out = bytearray()
    total = 0
    view = memoryview(data)
    pos = 0
    try:
        buf = b""
        while not d.eof:
            if not buf:
                if pos >= len(view):
                    break
                buf = bytes(view[pos:pos + chunk])
                pos += chunk
            piece = d.decompress(buf, chunk)
            buf = d.unconsumed_tail
            total += len(piece)
            if keep:
                out += piece
            if total > limit:
                raise InputError(f"{name}: the deflated data inflates to over {_mib(limit)}; refused")
            if not piece and not buf and pos >= len(view):
                break
        rest = d.flush()
        total += len(rest)
        if keep:
            out += rest
    except zlib.error as e:
        raise InputError(f"{name}: cannot inflate the deflated data ({e}); the file is corrupt") from None
    if total > limit:
        raise InputError(f"{name}: the deflated data inflates to over {_mib(limit)}; refused")
    return bytes(out)


class _QuietWhileReading(logging.Filter):
    """Drops a logger's records in a thread that is inside :func:`quiet_logs`; other threads log as before."""

    state = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(self.state, "depth", 0)


_QUIET = _QuietWhileReading()


@contextlib.contextmanager
def quiet_logs(*names: str) -> Iterator[None]:
    """Silence the named libraries' loggers in this thread while a file is read.

    tifffile and fabio log what they find wrong in a damaged file as warnings and errors, which Python
    prints on stderr when no handler is set; the reader's own one-line message says what is wrong instead.
    """
    for n in names:
        logger = logging.getLogger(n)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)
    state = _QuietWhileReading.state
    state.depth = getattr(state, "depth", 0) + 1
    try:
        yield
    finally:
        state.depth -= 1


def _one_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    return (msg[:160] + "...") if len(msg) > 160 else (msg or type(e).__name__)
