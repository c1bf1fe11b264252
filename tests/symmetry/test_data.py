"""The symmetries of |F x| in the generated data, the restriction, and the U-Net's shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.core.errors import InputError
from engine.symmetry.data import (
    SETTINGS,
    apply_setting,
    base_objects,
    canonicalize,
    flip,
    fourier_magnitude,
    make_split,
    shift,
)
from engine.symmetry.model import SmallUNet, parameter_count


@pytest.fixture(scope="module")
def base() -> np.ndarray:
    return base_objects(40, seed=3)


def test_magnitude_is_invariant_under_flip_and_shift(base):
    m = fourier_magnitude(base)
    assert np.allclose(fourier_magnitude(flip(base)), m, atol=1e-4)
    assert np.allclose(fourier_magnitude(shift(base, 5, -7)), m, atol=1e-4)
    for s in SETTINGS:
        assert np.allclose(fourier_magnitude(apply_setting(base, s, seed=1)), m, atol=1e-4)
    # and it is not blind to everything: a different object changes it
    assert not np.allclose(fourier_magnitude(base[1:]), m[:-1], atol=1e-2)


@pytest.mark.parametrize("setting", SETTINGS)
def test_restriction_is_idempotent_and_picks_one_representative(base, setting):
    copies = apply_setting(base, setting, seed=7)
    rep = canonicalize(copies, setting)
    assert np.array_equal(canonicalize(rep, setting), rep)
    assert np.allclose(canonicalize(base, setting), rep)
    if "flip" in setting:
        assert np.allclose(canonicalize(flip(copies), setting), rep)
    if "shift" in setting:
        assert np.allclose(canonicalize(shift(copies, 3, 11), setting), rep)


def test_settings_hold_symmetric_copies(base):
    assert np.array_equal(apply_setting(base, "none", seed=1), base)
    assert not np.allclose(apply_setting(base, "flip", seed=1), base)
    _, targets, truth = make_split(8, "shift", restricted=True, seed=0)
    assert np.allclose(targets, centre_all(truth))


def centre_all(x: np.ndarray) -> np.ndarray:
    return canonicalize(x, "shift")


def test_bad_setting_is_reported():
    with pytest.raises(InputError, match="unknown symmetry setting"):
        canonicalize(np.zeros((32, 32)), "rotate")


def test_unet_shape_and_size():
    net = SmallUNet(32)
    assert 10_000 < parameter_count(net) < 200_000
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 1, 32, 32)
