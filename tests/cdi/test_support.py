"""Support update, flat start and default recipes: recovery from a support 3x too large or too small (128^2)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_dilation, binary_erosion

from engine.cdi.registration import register
from engine.cdi.simulate import simulate_pattern
from engine.cdi.solver import DEFAULT_RECIPE, SUPPORT_RECIPE, CDISolver, default_recipe


def _resized(support: np.ndarray, factor: float) -> np.ndarray:
    """Dilate / erode ``support`` until its area is ``factor`` times the original."""
    s, n0 = support.copy(), support.sum()
    while (s.sum() < factor * n0) if factor > 1 else (s.sum() > factor * n0):
        s = binary_dilation(s) if factor > 1 else binary_erosion(s)
    return s


def _sim(seed: int):
    return simulate_pattern(None, shape=(128, 128), oversampling=3.0, photons=1e8, beamstop=0, seed=seed,
                            phase_range=0.5)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("factor", [3.0, 1 / 3])
def test_support_recovers_from_a_wrong_size(seed, factor):
    sim = _sim(seed)
    true = int(sim.support.sum())
    start = _resized(sim.support, factor)
    assert abs(start.sum() / true - factor) < 0.3 * factor
    s = CDISolver(sim.intensity, mask=sim.mask, recipe=SUPPORT_RECIPE, support=start, seed=0)
    assert s.init == "flat"
    s.run()
    hist = [h[0] for h in s.support_history]
    assert len(hist) == 21 and hist[0] == int(start.sum())
    assert 0.9 * true < hist[-1] < 1.25 * true
    # one update changes the size by at most the growth factor
    assert all(b <= 2.0 * a + 1 and b >= a / 2.0 - 1 for a, b in zip(hist, hist[1:]))
    assert register(sim.obj, s.objects()[0] * s.supports()[0]).similarity > 0.98


def test_flat_start_is_real_and_options():
    sim = _sim(1)
    s = CDISolver(sim.intensity, recipe="ER**2", support=sim.support, starts=2, seed=0)
    x = s.x.numpy()
    assert s.init == "flat" and np.abs(x.imag).max() == 0
    a = np.abs(x[0][s.support[0].numpy()])
    assert a.min() >= 0.79 * a.max()  # amplitude uniform in [0.8, 1]
    assert not np.array_equal(x[0], x[1])  # the starts still differ
    r = CDISolver(sim.intensity, recipe="ER**2", support=sim.support, options={"init": "random"})
    assert r.init == "random" and np.abs(r.x.numpy().imag).max() > 0
    assert CDISolver(sim.intensity, recipe="ER**2").init == "random"  # autocorrelation support
    assert default_recipe(True) == SUPPORT_RECIPE and default_recipe(False) == DEFAULT_RECIPE
    steps = CDISolver(sim.intensity, recipe=SUPPORT_RECIPE).recipe.steps
    # right to left: HIO**200 (merged with the first HIO**40) runs first, ER**100 last
    assert [(st.name, st.count) for st in steps[:3]] == [("HIO", 240), ("ER", 5), ("Sup", 1)]
    assert [(st.name, st.count) for st in steps[-2:]] == [("Sup", 1), ("ER", 100)]


def test_support_history_resumes():
    sim = _sim(1)
    recipe = "ER**5*(Sup*HIO**5)**3"
    full = CDISolver(sim.intensity, recipe=recipe, seed=0)
    full.run()
    part = CDISolver(sim.intensity, recipe=recipe, seed=0)
    for _ in range(13):
        part.step(llk_every=0)
    again = CDISolver(sim.intensity, recipe=recipe, seed=0)
    again.load_state_dict(part.state_dict())
    again.run()
    assert again.support_history == full.support_history and len(full.support_history) == 4


def test_simulate_realistic_defects():
    sim = simulate_pattern(None, shape=(256, 256), photons=1e8, seed=3, object_fraction=0.02,
                           beamstop_fraction=0.3, center_offset=(2, -1), dead_border=2, hot_pixels=4,
                           gaps=[(1, 20, 4)], phase_range=0.5)
    p = sim.params
    assert 0.012 < sim.support.mean() < 0.03
    assert 0.25 < p["photons_hidden_fraction"] < 0.4 and p["hot_pixels"] == 4
    hot = sim.mask & (sim.intensity > 0)
    assert hot.sum() == 4  # hot pixels read high; every other unmeasured pixel reads 0
    assert (sim.intensity[sim.mask & ~hot] == 0).all()
    assert sim.mask[:2].all() and sim.mask[:, -2:].all()
    # the direct beam is off centre: the beamstop sits there, and obj is what the counts describe
    assert sim.mask[128 + 2, 128 - 1] and not sim.mask[128 - 6, 128 + 6]
    clean = simulate_pattern(None, shape=(64, 64), seed=1, beamstop=0, noise=False, center_offset=(2, -1))
    ref = simulate_pattern(None, shape=(64, 64), seed=1, beamstop=0, noise=False)
    np.testing.assert_allclose(clean.intensity, np.roll(ref.intensity, (2, -1), (0, 1)),
                               atol=1e-5 * ref.intensity.max())
    ft = np.abs(np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(clean.obj)))) ** 2
    np.testing.assert_allclose(ft / ft.sum(), clean.intensity / clean.intensity.sum(), atol=1e-7)
