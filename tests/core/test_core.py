"""The shared core: metrics (reference first), the device policy, size-capped reading, seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.core.device import pick_device
from engine.core.errors import InputError
from engine.core.metrics import psnr, ssim
from engine.core.reading import open_capped, read_capped
from engine.core.seeds import numpy_rng, torch_generator


def test_psnr_takes_the_reference_first_and_clips_only_the_estimate():
    ref = np.full((8, 8), 1.0)
    est = np.full((8, 8), 1.5)  # clipped to 1: a perfect estimate of ref
    assert psnr(ref, est) == float("inf")
    # swapped, the (unclipped) 1.5 would be the reference and the error 0.5: 6.02 dB
    assert psnr(est, ref) == pytest.approx(10 * np.log10(1 / 0.25))


def test_psnr_tensor_and_array_agree_and_options_are_keyword_only():
    rng = np.random.default_rng(0)
    ref, est = rng.random((3, 16, 16)), rng.random((3, 16, 16))
    a = psnr(ref, est)
    t = psnr(torch.from_numpy(ref)[None], torch.from_numpy(est)[None])
    assert a == pytest.approx(t, rel=1e-6)
    assert psnr(ref * 2, est * 2, data_range=2.0) == pytest.approx(a, rel=1e-6)
    with pytest.raises(TypeError):
        psnr(ref, est, 1.0)  # type: ignore[misc]


def test_ssim_is_one_for_identical_images_and_lower_for_noise():
    rng = np.random.default_rng(1)
    ref = rng.random((32, 32))
    assert ssim(ref, ref) == pytest.approx(1.0)
    assert ssim(ref, np.clip(ref + 0.3 * rng.standard_normal(ref.shape), 0, 1)) < 0.9


def test_pick_device_auto_cpu_and_explicit_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device(None) == "cpu"
    assert pick_device("auto") == "cpu"
    assert pick_device("cpu") == "cpu"
    with pytest.raises(InputError, match="no CUDA device"):
        pick_device("cuda")
    with pytest.raises(InputError, match="unknown device"):
        pick_device("tpu")


def test_pick_device_prefers_cuda_when_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert pick_device(None) == "cuda"
    assert pick_device("cuda:0") == "cuda:0"
    with pytest.raises(InputError, match="does not exist"):
        pick_device("cuda:3")


def test_reading_refuses_before_reading(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(InputError, match="limit"):
        open_capped(big, max_bytes=1024)
    with pytest.raises(InputError, match="limit"):
        read_capped(b"x" * 2048, max_bytes=1024, name="upload.png")
    with pytest.raises(InputError, match="no such file"):
        read_capped(tmp_path / "missing.png", max_bytes=1024)
    with pytest.raises(InputError, match="no such file"):
        read_capped(tmp_path, max_bytes=1024)  # a folder is not a file
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_capped(tmp_path / "empty.png", max_bytes=1024)
    data, name = read_capped(big, max_bytes=4096)
    assert data == b"x" * 2048 and name == "big.bin"
    src, _ = open_capped(big, max_bytes=4096)
    assert src == big  # a path is handed back unread, for readers that stream


def test_seeds_are_reproducible_and_streams_independent():
    a = numpy_rng(3).random(4)
    np.testing.assert_array_equal(a, numpy_rng(3).random(4))
    assert not np.allclose(numpy_rng(3, 1).random(4), numpy_rng(3, 2).random(4))
    g = np.random.default_rng(5)
    assert numpy_rng(g) is g
    for bad in (-1, 1.5, "7", True):
        with pytest.raises(InputError):
            numpy_rng(bad)
    t1 = torch.rand(3, generator=torch_generator(9))
    torch.testing.assert_close(t1, torch.rand(3, generator=torch_generator(9)))
