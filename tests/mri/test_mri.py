"""MRI engine: adjoints, masks, TV baseline, a short DIP run, k-space files, the workflow and the CLI glue."""

from __future__ import annotations

import argparse
import io
import json

import numpy as np
import pytest
import torch

from engine.core.errors import InputError
from engine.core.metrics import psnr
from engine.core.operator import adjointness_gap
from engine.mri.inputs import builtin_image, read_kspace
from engine.mri.kspace import (
    KSpace,
    KSpaceStacked,
    acceleration_of,
    center_is_sampled,
    fft2c,
    ifft2c,
    make_mask,
    simulate_kspace,
    stack_complex,
    zero_filled,
)
from engine.mri.tv import tv_reconstruct
from tests.mri.operator_examples import EXAMPLES


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_adjoint(name):
    op, x, y = EXAMPLES[name]()
    assert op.A(x).shape == y.shape
    assert adjointness_gap(op, x, y) < 1e-9


def test_fft_is_unitary_and_centred():
    x = torch.randn(9, 14, dtype=torch.float64)
    assert torch.allclose(ifft2c(fft2c(x)).real, x, atol=1e-12)
    assert abs(float(fft2c(x).abs().norm()) - float(x.norm())) < 1e-9
    k = fft2c(torch.ones(8, 8, dtype=torch.float64))
    assert abs(float(k[4, 4].abs()) - 8.0) < 1e-9  # DC at (H//2, W//2)


@pytest.mark.parametrize("kind", ["random", "equispaced"])
@pytest.mark.parametrize("acc", [2, 4, 8])
def test_mask_acceleration_and_centre(kind, acc):
    m = make_mask((64, 128), kind=kind, acceleration=acc, seed=3)
    assert abs(acceleration_of(m) - acc) / acc < 0.05
    assert center_is_sampled(m, n=max(2, int(128 * {2: 0.16, 4: 0.08, 8: 0.04}[acc]) - 1))
    assert (m == m[:1]).all()  # whole columns
    assert np.array_equal(m, make_mask((64, 128), kind=kind, acceleration=acc, seed=3))


def test_random_masks_differ_by_seed_and_bad_masks_are_refused():
    assert not np.array_equal(make_mask((32, 64), seed=0), make_mask((32, 64), seed=1))
    with pytest.raises(InputError, match="mask kind"):
        make_mask((32, 32), kind="radial")
    with pytest.raises(InputError, match="acceleration"):
        make_mask((32, 32), acceleration=40)


def test_tv_beats_zero_filled_and_keeps_the_data():
    img = builtin_image("phantom", 64)
    m = make_mask(img.shape, acceleration=4, seed=0)
    k = simulate_kspace(img, m, noise_sigma=0.005, seed=0)
    zf = zero_filled(k)
    tv = tv_reconstruct(k, KSpace(m), iters=40)
    assert psnr(img, tv.image) > psnr(img, zf) + 3
    assert tv.dc_residual < 0.05
    assert tv.losses[-1] < tv.losses[0]


def test_dip_fits_kspace_on_32x32():
    from engine.dip.solver import DIPSolver

    img = builtin_image("phantom", 32)
    m = make_mask(img.shape, acceleration=2, seed=0)
    k = simulate_kspace(img, m)
    s = DIPSolver(stack_complex(k), operator=KSpaceStacked(m), out_shape=img.shape, preset="cpu", task="mri",
                  max_iters=40)
    losses = [s.step()["loss"] for _ in range(40)]
    assert min(losses[-5:]) < 0.5 * losses[0]
    assert s.output().shape == (32, 32)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_read_kspace_files(tmp_path):
    img = builtin_image("phantom", 32)
    m = make_mask(img.shape, acceleration=4, seed=0)
    k = simulate_kspace(img, m)
    kk, mm = read_kspace(_npz(kspace=k, mask=m[0].astype(np.uint8)), "slice.npz")
    assert np.array_equal(mm, m) and np.allclose(kk, k)
    np.save(tmp_path / "k.npy", k)
    kk, mm = read_kspace(tmp_path / "k.npy")  # mask from the nonzero columns
    assert np.array_equal(mm, m)
    np.save(tmp_path / "m.npy", m.astype(np.float32))
    kk, mm = read_kspace(tmp_path / "k.npy", mask=tmp_path / "m.npy")
    assert np.array_equal(mm, m)


def test_bad_kspace_files_are_refused(tmp_path):
    k = np.ones((16, 16), np.complex64)
    with pytest.raises(InputError, match="complex"):
        read_kspace(_npz(kspace=np.ones((16, 16))), "real.npz")
    with pytest.raises(InputError, match="Python objects|pickle"):
        buf = io.BytesIO()
        np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        read_kspace(buf.getvalue(), "obj.npy")
    with pytest.raises(InputError, match="no 'kspace'"):
        read_kspace(_npz(data=k), "x.npz")
    with pytest.raises(InputError, match="mask"):
        read_kspace(_npz(kspace=k, mask=np.ones(5)), "x.npz")
    with pytest.raises(InputError, match="unsupported"):
        read_kspace(b"abc", "x.txt")
    with pytest.raises(InputError, match="sides"):
        read_kspace(_npz(kspace=np.ones((4, 4), np.complex64)), "tiny.npz")
    with pytest.raises(InputError, match="NaN"):
        read_kspace(_npz(kspace=np.full((16, 16), np.nan, np.complex64)), "nan.npz")


def test_h5_refuses_external_storage(tmp_path):
    h5py = pytest.importorskip("h5py")
    k = np.ones((16, 16), np.complex64)
    good = tmp_path / "good.h5"
    with h5py.File(good, "w") as h:
        h["kspace"] = k
    assert read_kspace(good)[0].shape == (16, 16)
    (tmp_path / "raw.bin").write_bytes(np.zeros(256, np.float32).tobytes())
    bad = tmp_path / "ext.h5"
    with h5py.File(bad, "w") as h:
        h.create_dataset("kspace", shape=(16, 16), dtype=np.float32, external=[(str(tmp_path / "raw.bin"), 0, 1024)])
    with pytest.raises(InputError, match="outside the file|complex"):
        read_kspace(bad)
    link = tmp_path / "link.h5"
    with h5py.File(link, "w") as h:
        h["kspace"] = h5py.ExternalLink(str(good), "/kspace")
    with pytest.raises(InputError, match="ExternalLink"):
        read_kspace(link)


def _parser():
    from engine.mri.cli import add_arguments

    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("--out")
    ap.add_argument("--max-iters", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quiet", action="store_true")
    add_arguments(ap)
    return ap


def test_cli_simulate_writes_summary(tmp_path):
    from engine.mri.cli import run_from_args

    out = tmp_path / "run"
    a = _parser().parse_args(["phantom", "--simulate", "--size", "32", "--factor", "4", "--out", str(out),
                              "--max-iters", "60", "--quiet"])
    assert run_from_args(a) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["input_psnr"] is not None and s["es_psnr"] is not None and s["tv_psnr"] > s["input_psnr"]
    assert s["measured_acceleration"] == pytest.approx(4, rel=0.05)
    for f in ("zero_filled.png", "tv.png", "dip.png", "mask.png", "kspace.png", "metrics.csv"):
        assert (out / f).exists()
    with pytest.raises(InputError, match="already holds a run"):
        run_from_args(a)


def test_cli_measured_kspace_has_no_reference(tmp_path):
    from engine.mri.cli import run_from_args

    img = builtin_image("MR_small")
    m = make_mask(img.shape, kind="equispaced", acceleration=4, seed=0)
    f = tmp_path / "k.npz"
    f.write_bytes(_npz(kspace=simulate_kspace(img, m) * 1000, mask=m))
    a = _parser().parse_args([str(f), "--out", str(tmp_path / "r"), "--max-iters", "20", "--quiet"])
    assert run_from_args(a) == 0
    s = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert s["input_psnr"] is None and s["source"] == "measured" and s["phase_model"]
    assert any("No reference" in w for w in s["warnings"])
    with pytest.raises(InputError, match="--size"):
        run_from_args(_parser().parse_args([str(f), "--out", str(tmp_path / "x"), "--size", "32"]))
