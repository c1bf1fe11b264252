"""Chest X-rays: reading (DICOM/PNG/JPEG), display, de-identified export, domain checks, data and model.

Modules: ``display`` (:func:`read_xray`, :class:`XrayImage`, window presets), ``deid`` (PNG without
metadata, sanitised JSON reports), ``domain`` (out-of-domain warnings), ``data`` (training set) and
``model`` (the classifier). ``read_xray`` and ``XrayImage`` are also importable from here; they load on
first use so that importing the package for training does not import pydicom.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.xray.display import XrayImage, read_xray

__all__ = ["XrayImage", "read_xray"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from engine.xray import display

        return getattr(display, name)
    raise AttributeError(f"module 'engine.xray' has no attribute {name!r}")
