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


# ---------------------------------------------------------------------------------------------
# Detector logic on frames built so that the detector's signal follows a chosen curve exactly:
# flat images ``c_t * ones`` whose scalar values ``c_t`` give the wanted windowed variance (WMV)
# or exponential variance (EMV) at each update.

SHAPE = (1, 1, 4, 4)


def _wmv_frames(target: dict[int, float], n: int, window: int) -> list[float]:
    """Values c_1..c_n whose window variance at update t >= W is ``target[t]``."""
    c = [0.0] * (window - 1)
    sign = 1.0
    for t in range(window, n + 1):
        rest = c[-(window - 1):]
        m = sum(rest) / len(rest)
        s = sum((v - m) ** 2 for v in rest)
        d2 = (window * target[t] - s) * window / (window - 1)
        assert d2 >= 0, f"target {target[t]} at {t} below what the window allows"
        c.append(m + sign * math.sqrt(d2))
        sign = -sign                                   # alternate around the mean: no drift
    return c


def _emv_frames(target: dict[int, float], n: int, alpha: float) -> list[float]:
    """Values c_1..c_n whose EMV after update t >= 2 is ``target[t]``."""
    c, mu, v = [0.0], 0.0, 0.0
    sign = 1.0
    for t in range(2, n + 1):
        d2 = (target[t] / (1 - alpha) - v) / alpha
        assert d2 >= 0, f"target {target[t]} at {t} falls faster than alpha allows"
        d = sign * math.sqrt(d2)
        sign = -sign
        c.append(mu + d)
        v = (1 - alpha) * (v + alpha * d2)
        mu += alpha * d
    return c


def _curve(n: int, points: list[tuple[int, float]]) -> dict[int, float]:
    """Piecewise-linear curve through ``points`` (iteration, value), flat outside them."""
    out = {}
    for t in range(1, n + 1):
        if t <= points[0][0]:
            out[t] = points[0][1]
        elif t >= points[-1][0]:
            out[t] = points[-1][1]
        else:
            for (t0, v0), (t1, v1) in zip(points, points[1:]):
                if t0 <= t <= t1:
                    out[t] = v0 + (v1 - v0) * (t - t0) / (t1 - t0)
                    break
    return out


def _run(detector, values: list[float], target: dict[int, float] | None = None, first: int = 1):
    """Feed ``c_t * ones`` (kept image: ``t * ones``) until the detector fires; return the stop."""
    for t, c in enumerate(values, start=1):
        fired = detector.update(torch.full(SHAPE, c), t, keep=torch.full(SHAPE, float(t)))
        if target is not None and t >= first:
            assert detector.variance == pytest.approx(target[t], rel=1e-4, abs=1e-9)
        if fired:
            return t
    return None


def _detectors(n: int, points, patience: int):
    """(name, detector, frames, target, first tracked update) for WMV and EMV.

    WMV uses W = 2, where any curve can be followed exactly (a longer window cannot fall
    faster than its oldest frames leave); the logic after the variance does not depend on W.
    """
    target = _curve(n, points)
    yield "wmv", WMV(window=2, patience=patience), _wmv_frames(target, n, 2), target, 2
    emv = EMV(alpha=0.1, patience=patience)
    yield "emv", emv, _emv_frames(target, n, 0.1), target, emv.burn_in + 1


def test_detectors_move_t_star_to_a_lower_later_minimum_within_patience():
    # a false minimum at 100 (value 1.0), a bump, then a lower minimum at 150 < 100 + P
    P, n = 75, 400
    points = [(60, 4.0), (100, 1.0), (120, 1.6), (150, 0.5), (400, 3.0)]
    for name, det, frames, target, first in _detectors(n, points, P):
        stop = _run(det, frames, target, first)
        assert det.best_iteration == 150, name
        assert stop == 150 + P, name                  # not 100 + P: the later minimum reset the count
        assert det.best_variance == pytest.approx(0.5, rel=1e-4), name


def test_detectors_fire_exactly_patience_after_the_start_of_a_plateau():
    # falls to 1.0 at 120, then stays there: equal values are no improvement
    P, n = 75, 400
    for name, det, frames, target, first in _detectors(n, [(60, 4.0), (120, 1.0)], P):
        # the scalar construction is not bit-exact: lift the plateau by a hair so rounding
        # cannot make a later value a new strict minimum
        target = {t: v * (1 + 1e-5 * max(0, t - 120)) for t, v in target.items()}
        frames = (_wmv_frames(target, n, det.window) if isinstance(det, WMV)
                  else _emv_frames(target, n, det.alpha))
        stop = _run(det, frames, target, first)
        assert det.best_iteration == 120, name
        assert stop == 120 + P, name
        assert det.stopped and det.patience_left == 0, name


def test_wmv_plateau_exactly_flat():
    # dyadic values: the windowed variance of +-0.5 frames is exactly 0.25 at every update
    P = 75
    es = WMV(window=2, patience=P)
    values = [1.0, -1.0, 1.0, -1.0] + [-0.5 if t % 2 else 0.5 for t in range(200)]
    stop = _run(es, values)
    # updates 2..4 give variance 1.0; 5 gives (1 - (-0.5))^2 / 4 = 0.5625; 6 onward 0.25
    assert es.best_iteration == 6 and es.best_variance == 0.25
    assert stop == 6 + P


def test_detectors_late_minimum_after_a_long_decrease():
    # decreasing for 300 iterations, minimum at 320, then rising; the budget is long enough
    P, n = 75, 600
    for name, det, frames, _target, _first in _detectors(n, [(20, 9.0), (320, 1.0), (600, 3.0)], P):
        pl = []
        stop = None
        for t, c in enumerate(frames, start=1):
            if det.update(torch.full(SHAPE, c), t, keep=torch.full(SHAPE, float(t))):
                stop = t
                break
            pl.append(det.patience_left)
        assert det.best_iteration == 320, name
        assert stop == 320 + P, name
        # while the signal falls (updates 21..320) the patience stays full
        assert all(v == P for v in pl[20:320]), name
        assert pl[320 + 10 - 1] == P - 10, name


def test_detectors_keep_the_output_at_t_star_not_the_last():
    P, n = 75, 400
    for name, det, frames, _target, _first in _detectors(n, [(60, 4.0), (150, 0.5), (400, 3.0)], P):
        stop = _run(det, frames)
        assert stop == 150 + P, name
        # the kept image is the one passed at t* (value t*), not the one at the stop
        assert torch.equal(det.best_output, torch.full(SHAPE, 150.0)), name
    # without ``keep`` the detector keeps the frame itself
    target = _curve(n, [(60, 4.0), (150, 0.5), (400, 3.0)])
    es = WMV(window=2, patience=P)
    frames = _wmv_frames(target, n, 2)
    for t, c in enumerate(frames, start=1):
        if es.update(torch.full(SHAPE, c), t):
            break
    assert torch.allclose(es.best_output, torch.full(SHAPE, frames[149]))
    assert not torch.allclose(es.best_output, torch.full(SHAPE, frames[t - 1]))
