"""Teaching panels: Fourier-magnitude symmetries and the n = 2 generalized-PR landscape."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.errors import InputError
from engine.dip.samples import load_sample
from engine.gpr.teaching import conj_flip, fourier_symmetries, landscape_n2, loss_at, minima_caption


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


# ----------------------------------------------------------------------------- counting minima

def test_minima_are_counted_along_rays_not_from_the_grid() -> None:
    # m = 2, seed 0: a narrow flat valley where the 121-point grid shows 22 strict "minima"
    lands = {g: landscape_n2((1.0, 0.5), m=2, loss="intensity", grid=g, seed=0) for g in (41, 81, 121)}
    assert len(lands[121].grid_local_minima()) > 4  # the artefact this replaces
    found = {g: land.local_minima() for g, land in lands.items()}
    assert [len(v) for v in found.values()] == [4, 4, 4]
    for g in (81, 121):
        np.testing.assert_allclose([mm.z for mm in found[g]], [mm.z for mm in found[41]], atol=1e-8)
    mins = found[41]
    assert all(mm.zero_loss for mm in mins)  # two measurements fit four signals exactly
    np.testing.assert_allclose(sorted(mm.z for mm in mins if mm.is_x), [(-1.0, -0.5), (1.0, 0.5)], atol=1e-8)
    # stable across the angle sampling too
    assert len(lands[41].local_minima(samples=256)) == len(lands[41].local_minima(samples=8192)) == 4
    caption = minima_caption(lands[41])
    assert caption.startswith("4 local minima") and "±(1.00, 0.50) = ±x" in caption
    assert "2 measurements do not determine x" in caption


def _is_local_min(land, z, f) -> bool:
    for rho in (1e-4, 1e-3, 1e-2):
        for t in np.linspace(0, 2 * np.pi, 48, endpoint=False):
            if loss_at(land, np.asarray(z) + rho * np.array([np.cos(t), np.sin(t)])) < f - 1e-14:
                return False
    return True


@pytest.mark.parametrize("loss,m,seed,count", [("amplitude", 20, 0, 8), ("intensity", 3, 0, 4),
                                               ("intensity", 40, 2, 2)])
def test_reported_minima_are_genuine_and_complete(loss: str, m: int, seed: int, count: int) -> None:
    from scipy.optimize import minimize

    land = landscape_n2((1.0, 0.5), m=m, loss=loss, grid=41, seed=seed)
    mins = land.local_minima()
    assert len(mins) == count
    assert all(_is_local_min(land, mm.z, mm.loss) for mm in mins)
    assert mins[0].is_x and mins[1].is_x and mins[0].loss < 1e-12
    pts = np.array([mm.z for mm in mins])
    rng = np.random.default_rng(0)
    for _ in range(40):  # descent from anywhere ends at one of them
        r = minimize(lambda z: loss_at(land, z), rng.uniform(-2.2, 2.2, 2), method="Nelder-Mead",
                     options={"xatol": 1e-10, "fatol": 1e-16, "maxiter": 4000})
        assert np.linalg.norm(pts - r.x, axis=1).min() < 1e-3, r.x
    spurious = [mm for mm in mins if not mm.zero_loss]
    caption = minima_caption(land, mins)
    assert ("spurious (loss" in caption) == bool(spurious)
    assert ("no spurious minimum" in caption) == (not spurious)


def test_local_minima_rejects_bad_sampling() -> None:
    with pytest.raises(InputError):
        landscape_n2(grid=11).local_minima(samples=4)
