"""Which pixels are not measured: zero groups, dead border, hot pixels, modes (tiny synthetic patterns)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.cdi import readers as D
from engine.cdi.masks import unmeasured_mask
from engine.core.errors import InputError


def _bright(shape=(64, 64), level=200.0, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(level, shape).astype(np.float32)


def _disc(shape, r):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - shape[0] // 2) ** 2 + (xx - shape[1] // 2) ** 2 <= r * r


def test_beamstop_disc_is_masked():
    a = _bright()
    bs = _disc(a.shape, 5)
    a[bs] = 0
    m, st = unmeasured_mask(a)
    assert m[bs].all() and not m[~bs].any()
    assert st["auto_masked"] == bs.sum() and st["zero_groups"] == 1 and st["zeros_total"] == bs.sum()
    assert st["masked_total"] == bs.sum() and st["mode"] == "auto"


def test_gap_stripe_and_dead_border_are_masked():
    a = _bright()
    a[:, 30:32] = 0          # module gap across the pattern
    a[:2, :] = 0             # dead rows at the top
    a[:, -1] = 0             # dead column at the right
    m, st = unmeasured_mask(a)
    assert m[:, 30:32].all() and m[:2].all() and m[:, -1].all()
    assert m.sum() == (a == 0).sum() == st["auto_masked"]


def test_dead_border_at_low_counts():
    # neighbours of 0.5 count each: a zero pixel is common, but a whole line of zeros is not
    rng = np.random.default_rng(1)
    a = rng.poisson(0.5, (64, 64)).astype(np.float32)
    a[:, :2] = 0
    m, _ = unmeasured_mask(a)
    assert m[:, :2].all()
    assert m[:, 2:].sum() < 0.01 * (a[:, 2:] == 0).sum()


def test_low_count_zeros_stay_measured():
    from engine.cdi.simulate import simulate_pattern

    sim = simulate_pattern(shape=(128, 128), photons=1e5, beamstop=0, seed=1)
    m, st = unmeasured_mask(sim.intensity)
    assert st["zeros_total"] > 5000
    assert st["auto_masked"] < 0.01 * st["zeros_total"]  # nearly all zeros are real measurements
    sim = simulate_pattern(shape=(128, 128), photons=1e5, beamstop=3, seed=1)
    m, _ = unmeasured_mask(sim.intensity)
    assert m[sim.mask].all()


def test_small_zero_groups_are_speckle_minima():
    a = _bright()
    a[10, 10] = a[40, 20:22] = 0   # one and two zeros next to 200 counts: kept
    m, st = unmeasured_mask(a)
    assert not m.any() and st["auto_masked"] == 0 and st["zeros_total"] == 3
    b = _bright(level=5e4)
    b[10, 10] = 0                  # a dead pixel among very bright ones: masked
    assert unmeasured_mask(b)[0][10, 10]


def test_modes_all_none_and_user_mask():
    a = _bright()
    bs = _disc(a.shape, 5)
    a[bs] = 0
    a[3, 3] = 0
    m_all, st = unmeasured_mask(a, zeros="all")
    assert m_all.sum() == (a == 0).sum() == st["auto_masked"]
    m_none, st = unmeasured_mask(a, zeros="none")
    assert not m_none.any() and st["auto_masked"] == 0
    user = np.zeros(a.shape, np.uint8)
    user[0, :5] = 1
    m, st = unmeasured_mask(a, zeros="none", mask=user)
    assert m[0, :5].all() and m.sum() == 5 and st["user"] == 5
    with pytest.raises(InputError, match="zero mode"):
        unmeasured_mask(a, zeros="some")


def test_nan_negative_saturated_and_hot():
    a = _bright()
    a[1, 1] = np.nan
    a[2, 2] = -1
    a[20, 20] = 5000      # isolated hot pixel
    a[40:42, 40:42] = 900  # a bright 2x2 patch is not a hot pixel
    m, st = unmeasured_mask(a, saturation=4000)
    assert m[1, 1] and m[2, 2] and m[20, 20] and not m[40:42, 40:42].any()
    assert st["nan"] == 1 and st["negative"] == 1 and st["saturated"] == 1
    m, st = unmeasured_mask(a)
    assert m[20, 20] and st["hot"] == 1 and st["masked_total"] == 3


def test_mask_is_fast_at_512():
    import time

    from engine.cdi.simulate import simulate_pattern

    sim = simulate_pattern(shape=(512, 512), photons=1e9, beamstop=6, gaps=[(1, 40, 3)], seed=0)
    t = time.perf_counter()
    m, _ = unmeasured_mask(sim.intensity)
    assert time.perf_counter() - t < 1.0
    assert m[sim.mask].mean() > 0.99


def test_load_diffraction_applies_the_mask(tmp_path):
    a = _bright()
    bs = _disc(a.shape, 5)
    a[bs] = 0
    a[0, 0] = -1
    np.save(tmp_path / "p.npy", a)
    d = D.load_diffraction(tmp_path / "p.npy")
    assert d.mask[bs].all() and d.mask[0, 0] and d.mask.sum() == bs.sum() + 1
    assert d.mask_stats["auto_masked"] == bs.sum() and d.mask_stats["negative"] == 1
    assert d.mask_stats["masked_total"] == d.stats()["masked"]
    assert any("zero pixels" in n for n in d.notes)
    d = D.load_diffraction(tmp_path / "p.npy", mask_zeros="none")
    assert d.mask.sum() == 1 and d.stats()["zeros"] == bs.sum()
    d = D.load_diffraction(tmp_path / "p.npy", saturation=250)
    assert d.mask_stats["saturated"] == (a >= 250).sum() and (d.intensity < 250).all()
    with pytest.raises(InputError, match="zero masking"):
        D.load_diffraction(tmp_path / "p.npy", mask_zeros="x")
    with pytest.raises(InputError, match="left after masking"):
        D.load_diffraction(tmp_path / "p.npy", saturation=1)
