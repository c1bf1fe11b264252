"""Size-capped reading of untrusted files and uploads, in one place.

Every reader in the engine (images, diffraction patterns, DICOM) takes either a path or the bytes of an
upload. The size is checked from the file system (or the buffer) before anything is read, and a path
must be a regular file: nothing else is opened.
"""

from __future__ import annotations

import os
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
