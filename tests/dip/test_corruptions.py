"""Tests of engine.dip.corruptions: shapes and ranges, seeding, severity order, ES-WMV levels, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage import data, transform

from engine.core.errors import InputError
from engine.dip.corruptions import (
    CORRUPTIONS,
    ESWMV_LEVELS,
    INFO,
    corrupt,
    corruption_names,
    describe,
    levels,
)
from engine.dip.corruptions.textures import plasma_fractal

IMAGENET_C = [
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
    "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
    "jpeg_compression",
]  # fmt: skip
ALL = corruption_names()


def _resize(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return transform.resize(img, shape, anti_aliasing=True).astype(np.float32)


RGB = _resize(data.astronaut(), (48, 48))
GREY = _resize(data.camera(), (64, 40))
ODD_RGB = _resize(data.coffee(), (37, 53))
ODD_GREY1 = _resize(data.camera(), (33, 41))[..., None]  # (H, W, 1)


def test_registry_lists_every_corruption():
    assert set(IMAGENET_C + ["speckle_noise"]) == set(corruption_names("imagenet-c"))
    assert corruption_names("es-wmv") == [f"{n}_eswmv" for n in ESWMV_LEVELS]
    assert set(ESWMV_LEVELS) == {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"}
    assert corruption_names("dip") == ["gaussian_sigma"]
    assert list(CORRUPTIONS) == ALL == list(INFO)
    for name in corruption_names("imagenet-c"):
        assert levels(name) == (1, 2, 3, 4, 5)
    for name in corruption_names("es-wmv"):
        assert levels(name) == (1, 2, 3)


@pytest.mark.parametrize("name", ALL)
def test_every_severity_on_grey_rgb_and_odd_sizes(name):
    for severity in levels(name):
        for img in (RGB, GREY, ODD_RGB, ODD_GREY1):
            out = CORRUPTIONS[name](img, severity=severity, seed=7)
            assert out.shape == img.shape and out.dtype == np.float32
            assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0
            assert not np.array_equal(out, img), f"{name} severity {severity} left {img.shape} unchanged"
    # Any float dtype is accepted; the result is float32 either way.
    assert corrupt(RGB.astype(np.float64), name, severity=levels(name)[0]).dtype == np.float32


@pytest.mark.parametrize("name", ALL)
def test_seed_fixes_the_result_and_leaves_global_state_alone(name):
    state = np.random.get_state()
    a = corrupt(RGB, name, severity=levels(name)[1], seed=3)
    assert np.array_equal(a, corrupt(RGB, name, severity=levels(name)[1], seed=3))
    assert np.array_equal(a, corrupt(RGB, name, severity=levels(name)[1], seed=np.random.default_rng(3)))
    b = corrupt(RGB, name, severity=levels(name)[1], seed=4)
    assert INFO[name].random == (not np.array_equal(a, b))
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def _mse(clean: np.ndarray, out: np.ndarray) -> float:
    return float(np.mean((out - clean) ** 2))


def _lowpass_mse(clean: np.ndarray, out: np.ndarray) -> float:
    """MSE after a Gaussian of std 2 px: distance at the scale of local pixel displacements."""
    s = (2.0, 2.0) + (0.0,) * (out.ndim - 2)
    return _mse(gaussian_filter(clean, s), gaussian_filter(out, s))


def _gradient_mse(clean: np.ndarray, out: np.ndarray) -> float:
    return sum(_mse(np.diff(clean, axis=a), np.diff(out, axis=a)) for a in (0, 1))


def _decorrelation(clean: np.ndarray, out: np.ndarray) -> float:
    """1 - Pearson correlation: how much of the result is no longer (an affine map of) the image."""
    a, b = out - out.mean(), clean - clean.mean()
    return float(1 - (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


CONSECUTIVE = ((1, 2), (2, 3), (3, 4), (4, 5))
# Where the published table is not monotone in plain MSE, a metric that is, or the pairs that are ordered:
MONOTONE = {
    # Sev 1 (std 0.7, swaps < 1 px, 2 passes) and 2 (0.9, < 2 px, 1 pass) are equally far in MSE;
    # at the scale of the swaps (low-passed MSE) the order is clear.
    "glass_blur": (_lowpass_mse, CONSECUTIVE),
    # Frost lowers the image weight and raises the frost weight; sev 3 -> 4 darkens the image a little
    # (0.7 -> 0.65), which brings it closer in MSE, but the share of the image keeps falling.
    "frost": (_decorrelation, CONSECUTIVE),
    # Sev 3 and 4 share the fog strength 2.5 and differ only in the plasma decay (1.7 vs 1.5, finer
    # fog), which no distance separates on small crops: see test_lower_plasma_decay_has_finer_structure.
    "fog": (_gradient_mse, ((1, 2), (2, 3), (4, 5), (3, 5))),
    # Sev 2 and 3 of the published table bring about the same amount of snow (sev 3: fewer, larger flakes).
    "snow": (_mse, ((1, 2), (1, 3), (3, 4), (4, 5))),
    # The published sev 1-2 are large affine warps (jitter 24 and 49 px at 224 px), sev 3-5 small affine
    # warps plus local wobble, so sev 2 moves more than sev 3; each group is ordered.
    "elastic_transform": (_mse, ((1, 2), (3, 4), (4, 5))),
}


@pytest.mark.parametrize("name", ALL)
def test_distance_from_clean_grows_with_severity(name):
    metric, pairs = MONOTONE.get(name, (_mse, None))
    sevs = levels(name)
    if pairs is None:
        pairs = tuple(zip(sevs[:-1], sevs[1:]))
    seeds = (0, 1, 2) if INFO[name].random else (0,)
    for img in (RGB, GREY):
        # The order holds in expectation; a few seeds average out the draw of one image.
        dist = {s: np.mean([metric(img, corrupt(img, name, severity=s, seed=seed)) for seed in seeds])
                for s in sevs}
        for lo, hi in pairs:
            assert dist[hi] > dist[lo], f"{name} {img.shape}: severity {hi} not further than {lo}: {dist}"
    if name == "elastic_transform":
        assert dist[2] > dist[3]  # the published inversion described above


def test_lower_plasma_decay_has_finer_structure():
    def fine(decay: float) -> float:
        p = plasma_fractal(256, decay, np.random.default_rng(0))
        return float(np.mean((p - gaussian_filter(p, 2, mode="wrap")) ** 2))

    assert fine(1.4) > fine(1.5) > fine(1.7) > fine(2.0)


FLAT = np.full((160, 160), 0.5, dtype=np.float32)
DARK = np.full((160, 160), 0.2, dtype=np.float32)


def _robust_std(noise: np.ndarray) -> float:
    """Std from the median absolute deviation, unaffected by clipping in the far tails."""
    return float(np.median(np.abs(noise)) / 0.6745)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_eswmv_levels_give_the_stated_noise(level):
    std = ESWMV_LEVELS["gaussian_noise"][level - 1]
    assert std == (0.12, 0.18, 0.26)[level - 1]
    noisy = corrupt(FLAT, "gaussian_noise_eswmv", severity=level, seed=level)
    assert _robust_std(noisy - 0.5) == pytest.approx(std, rel=0.03)
    # The ES-WMV Gaussian levels are ImageNet-C severities 2, 3, 4.
    assert np.array_equal(noisy, corrupt(FLAT, "gaussian_noise", severity=level + 1, seed=level))

    amount = ESWMV_LEVELS["impulse_noise"][level - 1]
    assert amount == (0.3, 0.5, 0.7)[level - 1]
    hit = corrupt(FLAT, "impulse_noise_eswmv", severity=level, seed=level)
    changed = hit != 0.5
    assert changed.mean() == pytest.approx(amount, abs=0.01)
    assert set(np.unique(hit[changed])) == {0.0, 1.0}
    assert (hit[changed] == 1.0).mean() == pytest.approx(0.5, abs=0.02)

    photons = ESWMV_LEVELS["shot_noise"][level - 1]
    shot = corrupt(DARK, "shot_noise_eswmv", severity=level, seed=level)
    assert shot.mean() == pytest.approx(0.2, abs=0.005)  # Poisson noise is unbiased
    assert shot.std() == pytest.approx(np.sqrt(0.2 / photons), rel=0.03)  # var = x / photons

    speckle = ESWMV_LEVELS["speckle_noise"][level - 1]
    noisy = corrupt(FLAT, "speckle_noise_eswmv", severity=level, seed=level)
    assert _robust_std(noisy - 0.5) == pytest.approx(0.5 * speckle, rel=0.03)  # std grows with x


def test_gaussian_sigma_is_in_255_units_and_clipped():
    noisy = corrupt(FLAT, "gaussian_sigma", severity=25, seed=0)
    assert _robust_std(noisy - 0.5) == pytest.approx(25 / 255, rel=0.03)
    white = corrupt(np.ones((32, 32), np.float32), "gaussian_sigma", severity=25, seed=0)
    assert white.max() == 1.0 and (white == 1.0).mean() == pytest.approx(0.5, abs=0.05)
    assert np.array_equal(corrupt(FLAT, "gaussian_sigma", severity=0, seed=0), FLAT)
    assert corrupt(FLAT, "gaussian_sigma", severity=12.5, seed=0).dtype == np.float32


def test_an_integer_seed_is_numpys_default_stream():
    noisy = corrupt(FLAT, "gaussian_sigma", severity=25, seed=5)
    expect = FLAT + np.random.default_rng(5).normal(0.0, 25 / 255, FLAT.shape).astype(np.float32)
    assert np.array_equal(noisy, np.clip(expect, 0, 1))


def test_describe_names_the_parameter():
    assert describe("gaussian_noise", 3) == "Gaussian noise, std 0.18"
    assert describe("gaussian_noise_eswmv", 1) == "Gaussian noise, std 0.12 (ES-WMV low)"
    high = "Impulse noise, salt and pepper on 70% of values (ES-WMV high)"
    assert describe("impulse_noise_eswmv", 3) == high
    assert describe("gaussian_sigma", 25) == "Gaussian noise, std 25/255 = 0.098"
    assert describe("jpeg_compression", 5) == "JPEG compression, quality 7"
    assert "radius 6 px" in describe("defocus_blur", 3)
    assert "procedural" in describe("frost", 1)
    for name in ALL:
        for s in levels(name):
            text = describe(name, s)
            assert text.startswith(INFO[name].label.split(" (")[0]) and "\n" not in text


@pytest.mark.parametrize(
    ("name", "severity"),
    [("gaussian_noise", 0), ("gaussian_noise", 6), ("fog", 2.5), ("fog", True), ("fog", "3"),
     ("speckle_noise_eswmv", 4), ("gaussian_sigma", -1), ("gaussian_sigma", 256), ("gaussian_sigma", None)],
)  # fmt: skip
def test_bad_severity_is_an_input_error(name, severity):
    with pytest.raises(InputError, match="severity|sigma"):
        corrupt(RGB, name, severity=severity)
    with pytest.raises(InputError):
        describe(name, severity)


def test_unknown_name_is_an_input_error_that_lists_the_names():
    with pytest.raises(InputError, match="unknown corruption 'rain'.*gaussian_noise"):
        corrupt(RGB, "rain", severity=3)
    with pytest.raises(InputError, match="unknown corruption"):
        describe("rain", 3)
    with pytest.raises(InputError, match="unknown corruption"):
        levels("rain")


@pytest.mark.parametrize(
    "img",
    [
        (RGB * 255).astype(np.uint8),
        np.zeros((16, 16, 4), np.float32),
        np.zeros((16,), np.float32),
        RGB * 2,
        np.full((16, 16), np.nan, np.float32),
        np.zeros((4, 16), np.float32),
        RGB.tolist(),
    ],
    ids=["uint8", "4-channel", "1-d", "above-1", "nan", "too-small", "list"],
)
def test_bad_image_is_an_input_error(img):
    with pytest.raises(InputError, match="image"):
        corrupt(img, "gaussian_noise", severity=1)


@pytest.mark.parametrize("seed", [-1, 1.5, "x", True])
def test_bad_seed_is_an_input_error(seed):
    with pytest.raises(InputError, match="seed"):
        corrupt(RGB, "gaussian_noise", severity=1, seed=seed)
