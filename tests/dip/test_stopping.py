"""ES-WMV and ES-EMV on synthetic output sequences with a known variance minimum."""

import math

import pytest
import torch

from engine.dip.stopping import EMV, WMV, make_detector


def _amplitude(t: int, t_min: int = 120) -> float:
    """Noise amplitude of output t: high, falling to a minimum at t_min, rising again."""
    return 0.02 + 0.3 * ((t - t_min) / 100.0) ** 2


def _sequence(n: int, seed: int = 0, t_min: int = 120):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 16, 16, generator=g)
    for t in range(1, n + 1):
        yield t, base + _amplitude(t, t_min) * torch.randn(1, 3, 16, 16, generator=g)


def _brute_var(frames: list[torch.Tensor]) -> float:
    s = torch.stack(frames)
    return float(((s - s.mean(0)) ** 2).mean(dim=tuple(range(1, s.ndim))).mean())


def test_wmv_matches_window_definition():
    es = WMV(window=7, patience=1000)
    frames = []
    for t, x in _sequence(40):
        es.update(x, t)
        frames.append(x)
        if t >= 7:
            assert es.variance == pytest.approx(_brute_var(frames[-7:]), rel=1e-4)
        else:
            assert es.variance is None


def test_wmv_finds_minimum_and_stops_after_patience():
    es = WMV(window=10, patience=50)
    stop_at = None
    for t, x in _sequence(400):
        if es.update(x, t, keep=x * 0 + t):
            stop_at = t
            break
    assert stop_at is not None
    # the window centred on the noise minimum (t_min=120) ends about W/2 later
    assert 110 <= es.best_iteration <= 140
    assert stop_at == es.best_iteration + 50
    assert es.patience_left == 0 and es.stopped
    # the kept image is the one passed at t*, not the last
    assert float(es.best_output.mean()) == pytest.approx(es.best_iteration)


def test_wmv_patience_counts_down():
    es = WMV(window=5, patience=30)
    lefts = []
    for t, x in _sequence(200):
        es.update(x, t)
        lefts.append(es.patience_left)
    assert lefts[0] == 30
    assert min(lefts) == 0
    # before the minimum, patience stays full as the variance keeps falling
    assert all(v >= 29 for v in lefts[10:100])


def test_wmv_longer_window_smooths():
    # the minimum of a noisy signal is found more reliably with a longer window
    hits = {3: 0, 30: 0}
    for seed in range(2):
        for w in hits:
            es = WMV(window=w, patience=10_000)
            for t, x in _sequence(260, seed=seed, t_min=150):
                es.update(x, t)
            hits[w] += abs(es.best_iteration - w // 2 - 150) <= 25
    assert hits[30] >= hits[3]


def test_wmv_state_roundtrip_continues_identically():
    a, b = WMV(window=6, patience=40), WMV(window=6, patience=40)
    seq = list(_sequence(150))
    for t, x in seq[:60]:
        a.update(x, t)
    state = a.state_dict()
    b.load_state_dict({k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in state.items()})
    for t, x in seq[60:]:
        ra, rb = a.update(x, t), b.update(x, t)
        assert ra == rb and a.variance == b.variance
    assert a.best_iteration == b.best_iteration


def test_emv_tracks_minimum():
    es = EMV(alpha=0.1, patience=60)
    for t, x in _sequence(400):
        if es.update(x, t):
            break
    assert es.stopped
    assert 100 <= es.best_iteration <= 140
    # EMV of i.i.d. noise of std a around a fixed base tends to about a^2 (per pixel)
    assert es.best_variance == pytest.approx(_amplitude(es.best_iteration) ** 2, rel=0.6)


def test_emv_burn_in_and_constant_sequence():
    es = EMV(alpha=0.25, patience=5)
    x = torch.ones(1, 1, 4, 4)
    for t in range(1, es.burn_in + 1):
        assert not es.update(x, t)
        assert es.best_iteration is None
    es.update(x, es.burn_in + 1)
    assert es.variance == 0.0 and es.best_iteration == es.burn_in + 1


def test_make_detector_and_errors():
    assert isinstance(make_detector("wmv", window=3, patience=2), WMV)
    assert isinstance(make_detector("emv"), EMV)
    assert make_detector("none") is None
    with pytest.raises(ValueError):
        make_detector("nope")
    with pytest.raises(ValueError):
        WMV(window=1)
    with pytest.raises(ValueError):
        EMV(alpha=1.5)


def test_wmv_no_drift_over_many_updates():
    es = WMV(window=4, patience=10 ** 6)
    g = torch.Generator().manual_seed(1)
    frames = []
    for t in range(1, 601):
        x = 100.0 + torch.randn(1, 1, 8, 8, generator=g) * 1e-2
        es.update(x, t)
        frames.append(x)
    assert es.variance == pytest.approx(_brute_var(frames[-4:]), rel=1e-2)
    assert math.isfinite(es.best_variance)
