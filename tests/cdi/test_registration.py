"""Registration modulo shift / twin / global phase, averaging and PRTF."""

from __future__ import annotations

import numpy as np

from engine.cdi.prtf import prtf, resolution_at
from engine.cdi.registration import (
    average_objects,
    fourier_shift,
    register,
    registered_error,
    similarity,
    twin,
)
from engine.cdi.simulate import complex_object


def _obj(shape=(32, 32)):
    small, _ = complex_object(None, tuple(s // 2 for s in shape), phase_range=2.0, seed=3)
    out = np.zeros(shape, np.complex64)
    sl = tuple(slice(s // 4, s // 4 + s // 2) for s in shape)
    out[sl] = small
    return out


def test_twin_is_involution_and_shift_roundtrip():
    x = _obj()
    np.testing.assert_allclose(twin(twin(x)), x)
    y = fourier_shift(fourier_shift(x, (2.5, -1.25)), (-2.5, 1.25))
    np.testing.assert_allclose(y, x, atol=1e-4)


def test_register_recovers_shift_twin_and_phase():
    x = _obj()
    y = np.exp(1.1j) * fourier_shift(twin(x), (3.0, -2.5))
    r = register(x, y)
    assert r.twin and r.similarity > 0.999
    assert registered_error(x, y) < 1e-2
    r2 = register(x, np.exp(-0.4j) * np.roll(x, (5, 7), axis=(0, 1)))
    assert not r2.twin and r2.similarity > 0.9999 and abs(r2.phase - 0.4) < 1e-3
    assert np.allclose(np.abs(r2.shift), (5, 7), atol=0.05)


def test_register_3d_and_similarity():
    x = _obj((16, 16, 16))
    r = register(x, np.roll(np.exp(0.3j) * x, 2, axis=0))
    assert r.similarity > 0.9999
    assert similarity(x, 2j * x) == np.float64(1.0) or abs(similarity(x, 2j * x) - 1) < 1e-6
    assert similarity(x, np.zeros_like(x)) == 0.0


def test_average_and_prtf():
    x = _obj()
    rng = np.random.default_rng(0)
    objs = [np.exp(1j * p) * np.roll(x, (s, -s), axis=(0, 1)) for p, s in zip(rng.random(3) * 6, (0, 2, 4))]
    avg, regs = average_objects(objs)
    assert all(r.similarity > 0.999 for r in regs)
    assert similarity(avg, objs[0]) > 0.999
    intensity = np.abs(np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(x), norm="ortho"))) ** 2
    q, curve = prtf(intensity, [r.aligned for r in regs], nbins=8)
    good = np.isfinite(curve)
    assert good.sum() >= 6 and np.allclose(curve[good], 1.0, atol=1e-2)
    assert resolution_at(q, curve) is None
    # random phases between starts: the PRTF falls
    noisy = [np.fft.ifftn(np.fft.fftn(x) * np.exp(2j * np.pi * rng.random(x.shape))) for _ in range(8)]
    _, c2 = prtf(intensity, np.stack([np.fft.fftshift(n) for n in noisy]), mask=None, nbins=8)
    assert np.nanmean(c2) < 0.6
