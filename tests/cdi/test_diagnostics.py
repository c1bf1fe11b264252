"""Warnings about the beamstop and a reconstruction's outcome, each built to trigger (or not)."""

from __future__ import annotations

import numpy as np

from engine.cdi.diagnostics import beamstop_info, beamstop_warning, llk_bound, result_warnings


def _sim(beamstop):
    from engine.cdi.simulate import simulate_pattern

    return simulate_pattern(shape=(128, 128), photons=1e8, beamstop=beamstop, seed=0)


def test_beamstop_warning():
    sim = _sim(6)
    w = beamstop_warning(sim.intensity, sim.mask)
    assert w and "beamstop" in w and "support" in w
    assert beamstop_info(sim.intensity, sim.mask)["centre_hidden"]
    clean = _sim(0)
    assert beamstop_warning(clean.intensity, clean.mask) is None
    assert beamstop_warning(clean.intensity, None) is None
    gap = np.zeros(clean.mask.shape, bool)
    gap[:, 100:103] = True  # a gap far from the centre hides little
    assert beamstop_warning(np.where(gap, 0, clean.intensity), gap) is None


def _summary(**kw):
    s = {"shape": [128, 128], "photons": 1e6, "observed_pixels": 128 * 128, "support_source": "user",
         "support_history": [3000, 2800, 2700, 2650, 2640], "llk_per_pixel": 0.6}
    s.update(kw)
    return s


def test_clean_result_has_no_warning():
    assert result_warnings(_summary()) == []
    # an autocorrelation support shrinking to a quarter (its expected size) is not a collapse
    assert result_warnings(_summary(support_source="autocorrelation",
                                    support_history=[12000, 6000, 3500, 3100, 3000])) == []
    assert result_warnings({}) == []


def test_collapse_and_explosion():
    w = result_warnings(_summary(support_history=[3000, 1500, 400, 200]))
    assert len(w) == 1 and "collapsed" in w[0] and "support" in w[0]
    w = result_warnings(_summary(support_history=[3000, 6000, 9000, 12000]))
    assert any("grew" in x for x in w)
    w = result_warnings(_summary(support_history=[3000, 8000]))
    assert any("grew" in x for x in w)  # 49 % of the array
    # a support that starts far too large and stays too large did not grow: say what it did
    w = result_warnings(_summary(support_history=[14000, 9000, 8000]))
    assert any("ended at 8,000" in x for x in w) and not any("grew" in x for x in w)


def test_poor_fit_and_stall():
    mean = 1e6 / 128 ** 2
    bad = 10 * llk_bound(mean)
    w = result_warnings(_summary(llk_per_pixel=bad, support_history=[3000, 2800, 2700, 2690, 2688]))
    assert any("fit is poor" in x for x in w) and any("stopped changing" in x for x in w)
    w = result_warnings(_summary(llk_per_pixel=bad, support_history=[200, 400, 600, 800, 1000]))
    assert any("fit is poor" in x for x in w) and not any("stopped" in x for x in w)
    # bright data: a misfit of a few percent is far above Poisson noise but not a failure
    bright = _summary(photons=1e9, llk_per_pixel=100.0)
    assert result_warnings(bright) == []
    assert llk_bound(None) == 5.0


def test_autocorrelation_with_hidden_centre():
    beam = {"hidden_fraction": 0.35, "radius": 8.0, "centre_hidden": True}
    w = result_warnings(_summary(support_source="autocorrelation", beamstop=beam,
                                 support_history=[12000, 6000, 3500, 3100, 3000]))
    assert len(w) == 1 and "autocorrelation" in w[0] and "beamstop" in w[0]
    assert result_warnings(_summary(beamstop=beam)) == []  # a user support is not affected
