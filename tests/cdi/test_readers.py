"""Readers and validation of diffraction patterns (tiny files written in tmp_path)."""

from __future__ import annotations

import io

import h5py
import numpy as np
import pytest
import tifffile

from engine.cdi import readers as D
from engine.core.errors import InputError


def _pattern(shape=(32, 32)) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.poisson(50, shape).astype(np.float32)


def test_npy_good_and_bytes(tmp_path):
    p = tmp_path / "a.npy"
    data = _pattern()
    np.save(p, data)
    d = D.load_diffraction(p)
    assert d.intensity.shape == (32, 32) and d.intensity.dtype == np.float32
    assert not d.mask.any()
    d2 = D.load_diffraction(p.read_bytes(), name="upload.npy")
    np.testing.assert_array_equal(d.intensity, d2.intensity)


def test_npz_with_mask_and_3d(tmp_path):
    p = tmp_path / "a.npz"
    data = _pattern((16, 16, 16))
    mask = np.zeros(data.shape, np.uint8)
    mask[8, 8, 8] = 1
    np.savez(p, data=data, mask=mask)
    d = D.load_diffraction(p)
    assert d.ndim == 3 and d.mask[8, 8, 8] and d.mask.sum() == 1 and d.intensity[8, 8, 8] == 0


def test_negative_and_nan_are_not_measured(tmp_path):
    data = _pattern()
    data[0, 0] = -1
    data[1, 1] = np.nan
    d = D.validate_pattern(data)
    assert d.mask[0, 0] and d.mask[1, 1] and d.mask.sum() == 2
    assert d.stats()["masked"] == 2
    with pytest.raises(InputError, match="NaN or negative"):
        D.validate_pattern(data, negative="error")
    m = np.zeros(data.shape, bool)
    m[0, 0] = m[1, 1] = True
    assert D.validate_pattern(data, m, negative="error").mask.sum() == 2


def test_tiff_edf_good(tmp_path):
    import fabio

    data = _pattern()
    tifffile.imwrite(tmp_path / "a.tif", data)
    assert D.load_diffraction(tmp_path / "a.tif").intensity.shape == (32, 32)
    fabio.edfimage.EdfImage(data=data).write(str(tmp_path / "a.edf"))
    d = D.load_diffraction(tmp_path / "a.edf")
    np.testing.assert_array_equal(d.intensity, data)
    d2 = D.load_diffraction((tmp_path / "a.edf").read_bytes(), name="x.edf")
    np.testing.assert_array_equal(d2.intensity, data)


def test_cxi_with_mask_and_plain_h5(tmp_path):
    data = _pattern()
    with h5py.File(tmp_path / "a.cxi", "w") as h:
        h["entry_1/data_1/data"] = data
        m = np.zeros(data.shape, np.uint32)
        m[:2] = 1
        h["entry_1/instrument_1/detector_1/mask"] = m
    d = D.load_diffraction(tmp_path / "a.cxi")
    assert d.mask[:2].all() and d.mask.sum() == 64
    with h5py.File(tmp_path / "b.h5", "w") as h:
        h["scan/frame"] = data
    assert D.load_diffraction(tmp_path / "b.h5").intensity.shape == (32, 32)
    buf = (tmp_path / "b.h5").read_bytes()
    assert D.load_diffraction(buf, name="b.h5").intensity.shape == (32, 32)


def test_separate_mask_file(tmp_path):
    data = _pattern()
    np.save(tmp_path / "a.npy", data)
    m = np.zeros(data.shape, np.uint8)
    m[5:7] = 1
    tifffile.imwrite(tmp_path / "m.tif", m)
    d = D.load_diffraction(tmp_path / "a.npy", mask=tmp_path / "m.tif")
    assert d.mask.sum() == 64
    np.save(tmp_path / "bad_mask.npy", np.zeros((8, 8)))
    with pytest.raises(InputError, match="mask has shape"):
        D.load_diffraction(tmp_path / "a.npy", mask=tmp_path / "bad_mask.npy")


@pytest.mark.parametrize("arr, match", [
    (np.ones(32, np.float32), "1D"),
    (np.ones((2, 3, 8, 8), np.float32), "4D"),
    (np.zeros((32, 32), np.float32), "all zeros"),
    (np.full((32, 32), -1, np.float32), "no measured pixel"),
    (np.full((32, 32), np.inf, np.float32), "infinite"),
    (np.ones((32, 32), np.complex64), "complex"),
    (np.ones((2, 32), np.float32), "at least 4"),
])
def test_bad_arrays(tmp_path, arr, match):
    np.save(tmp_path / "bad.npy", arr)
    with pytest.raises(InputError, match=match):
        D.load_diffraction(tmp_path / "bad.npy")


def test_bad_files(tmp_path, monkeypatch):
    np.save(tmp_path / "a.npy", _pattern())
    (tmp_path / "fake.tif").write_bytes((tmp_path / "a.npy").read_bytes())
    with pytest.raises(InputError, match="not a valid TIFF"):
        D.load_diffraction(tmp_path / "fake.tif")
    (tmp_path / "fake.cxi").write_bytes(b"hello world, not hdf5")
    with pytest.raises(InputError, match="not a valid HDF5"):
        D.load_diffraction(tmp_path / "fake.cxi")
    (tmp_path / "a.png").write_bytes(b"\x89PNG")
    with pytest.raises(InputError, match="unsupported file type"):
        D.load_diffraction(tmp_path / "a.png")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="objects"):
        D.load_diffraction(tmp_path / "obj.npy")
    with pytest.raises(InputError, match="missing.npy: no such file"):
        D.load_diffraction(tmp_path / "missing.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        D.load_diffraction(tmp_path / "empty.npy")
    with pytest.raises(InputError, match="file name"):
        D.load_diffraction((tmp_path / "a.npy").read_bytes())
    monkeypatch.setattr(D, "MAX_FILE_BYTES", 100)
    with pytest.raises(InputError, match="the limit is 100 bytes"):
        D.load_diffraction(tmp_path / "a.npy")
    with pytest.raises(InputError, match="the limit is 100 bytes"):
        D.load_diffraction((tmp_path / "a.npy").read_bytes(), name="up.npy")
    monkeypatch.undo()
    trunc = (tmp_path / "a.npy").read_bytes()[:200]
    with pytest.raises(InputError, match="could not be read"):
        D.load_diffraction(trunc, name="t.npy")
    monkeypatch.setattr(D, "MAX_ELEMENTS", 100)
    with pytest.raises(InputError, match="limit"):
        D.load_diffraction(tmp_path / "a.npy")


def test_ambiguous_h5_and_npz(tmp_path):
    with h5py.File(tmp_path / "two.h5", "w") as h:
        h["a"] = _pattern()
        h["b"] = _pattern()
    with pytest.raises(InputError, match="exactly one"):
        D.load_diffraction(tmp_path / "two.h5")
    buf = io.BytesIO()
    np.savez(buf, x=_pattern(), y=_pattern())
    with pytest.raises(InputError, match="expected one named"):
        D.load_diffraction(buf.getvalue(), name="two.npz")


def test_stats_and_helpers():
    data = np.zeros((32, 32), np.float32)
    data[10, 12] = 100
    data[11, 12] = 50
    m = D.mark_beamstop(np.zeros(data.shape, bool), radius=2)
    assert m[16, 16] and m[16, 18] and not m[16, 19]
    m = D.mark_gap(m, axis=1, start=0, width=2)
    assert m[:, :2].all()
    m2 = D.mark_saturated(data, np.zeros(data.shape, bool), level=60)
    assert m2.sum() == 1
    s = D.diffraction_stats(data, m)
    assert s["photons"] == 150 and s["max"] == 100 and s["masked"] == int(m.sum())
    c, cm = D.center_pattern(data, None, method="max")
    assert c[16, 16] == 100 and cm[:6].all() and cm[:, :4].all() and not cm[6:, 4:].any()
    c2, _ = D.center_pattern(data, None, method="com", shape=(16, 16))
    assert c2.shape == (16, 16) and c2.max() == 100
    b, bm = D.bin_pattern(data, m, factor=2)
    assert b.shape == (16, 16) and b.sum() == 150 and bm[:, 0].all()
    assert D.crop_center(data, (8, 8), center=(10, 12))[4, 4] == 100
