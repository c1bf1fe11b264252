"""Teaching panels: Fourier-magnitude symmetries and the n = 2 generalized-PR landscape."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import InputError
from engine.dip.samples import load_sample
from engine.gpr.teaching import conj_flip, fourier_symmetries, landscape_n2, loss_at


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return load_sample("camera", size=32)


def test_fourier_magnitude_is_invariant(image) -> None:
    demo = fourier_symmetries(image, shift=(5, 9), phase=0.7)
    assert set(demo.images) == {"original", "shift", "conj_flip", "global_phase"}
    for name in demo.images:
        assert demo.max_magnitude_diff[name] < 1e-12, (name, demo.max_magnitude_diff[name])
    # ... while the images themselves change
    for name in ("shift", "conj_flip", "global_phase"):
        assert demo.max_image_diff[name] > 0.05, name
    assert demo.magnitudes["shift"].shape == image.shape
    lm = demo.log_magnitude("original")
    assert lm.shape == image.shape and 0 <= lm.min() and lm.max() == pytest.approx(1.0)


def test_symmetries_hold_for_complex_rgb_and_odd_sizes() -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((7, 10)) + 1j * rng.standard_normal((7, 10))
    demo = fourier_symmetries(z, shift=(3, -4), phase=2.5)
    assert max(demo.max_magnitude_diff.values()) < 1e-12
    rgb = rng.random((9, 9, 3))
    assert max(fourier_symmetries(rgb).max_magnitude_diff.values()) < 1e-12
    # conj_flip is an involution and equals conj(x[-r mod N])
    np.testing.assert_array_equal(conj_flip(conj_flip(z)), z)
    assert conj_flip(z)[1, 2] == np.conj(z[6, 8])
    with pytest.raises(InputError):
        fourier_symmetries(np.zeros(5))


@pytest.mark.parametrize("loss", ["intensity", "amplitude"])
def test_landscape_minima_at_plus_minus_x(loss: str) -> None:
    x = (1.0, 0.5)
    land = landscape_n2(x, m=20, loss=loss, grid=101, seed=1)
    assert land.values.shape == (101, 101) and land.values.min() >= 0
    assert land.minima == [[1.0, 0.5], [-1.0, -0.5]]
    assert loss_at(land, x) == 0 and loss_at(land, (-1.0, -0.5)) == 0
    # the grid minimum sits within one grid step of +x or -x
    step = land.z1[1] - land.z1[0]
    i, j = np.unravel_index(np.argmin(land.values), land.values.shape)
    zmin = np.array([land.z1[j], land.z2[i]])
    assert min(np.linalg.norm(zmin - np.array(x)), np.linalg.norm(zmin + np.array(x))) <= 1.5 * step


def test_intensity_landscape_is_benign() -> None:
    x = np.array([0.3, -1.2])
    land = landscape_n2(tuple(x), m=40, loss="intensity", grid=121, seed=2)
    mins = np.array(land.grid_local_minima())
    step = land.z1[1] - land.z1[0]
    assert len(mins) >= 2
    d = np.minimum(np.linalg.norm(mins - x, axis=1), np.linalg.norm(mins + x, axis=1))
    assert (d <= 1.5 * step).all(), mins  # no spurious local minimum


def test_landscape_rejects_bad_input() -> None:
    with pytest.raises(InputError):
        landscape_n2(loss="bogus")
    with pytest.raises(InputError):
        landscape_n2(x=(0.0, 0.0))
    with pytest.raises(InputError):
        landscape_n2(grid=5)
