"""The DIP prior for phase retrieval on tiny inputs: the fit, the mask, resume, stopping, the GPR variant."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from engine.cdi.dip_prior import DIPPRSolver, cdi_solver, gpr_solver
from engine.core.errors import InputError


def _pattern(side: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obj = np.zeros((side, side))
    obj[side // 4:3 * side // 4, side // 4:3 * side // 4] = rng.random((side // 2, side // 2))
    inten = np.abs(np.fft.fftshift(np.fft.fft2(obj, norm="ortho"))) ** 2 * 100
    return inten, obj


def test_loss_decreases():
    inten, _ = _pattern()
    s = cdi_solver(inten, None, max_iters=60, stopping="none", obj="real")
    losses = [s.step()["loss"] for _ in range(60)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])


def test_unmeasured_pixels_do_not_enter_the_loss():
    inten, _ = _pattern()
    mask = np.zeros(inten.shape, bool)
    mask[7:10, 7:10] = True
    a = cdi_solver(inten, mask, max_iters=5, stopping="none")
    garbage = inten.copy()
    garbage[mask] = 1e9  # whatever the masked pixels read, the fit is the same
    b = cdi_solver(garbage, mask, max_iters=5, stopping="none")
    for _ in range(3):
        assert a.step()["loss"] == pytest.approx(b.step()["loss"], rel=1e-5)
    assert float(a.weight.sum()) == inten.size - 9


def test_state_dict_round_trip_resumes_exactly():
    inten, _ = _pattern()
    a = cdi_solver(inten, None, max_iters=40, window=5, patience=1000)
    for _ in range(12):
        a.step()
    saved = copy.deepcopy(a.state_dict())  # the net and optimiser tensors are live: copy them
    ref = [a.step()["loss"] for _ in range(6)]
    b = cdi_solver(inten, None, max_iters=40, window=5, patience=1000)
    b.load_state_dict(saved)
    assert [b.step()["loss"] for _ in range(6)] == pytest.approx(ref, rel=1e-6)
    assert b.iteration == a.iteration


def test_budget_without_early_stop_warns_and_es_can_fire():
    inten, _ = _pattern()
    s = cdi_solver(inten, None, max_iters=15, window=5, patience=1000)
    s.run()
    assert s.iteration == 15 and not s.es_fired and s.stop_reason() == "budget"
    assert any("No early stop fired" in w for w in s.warnings())
    f = cdi_solver(inten, None, max_iters=400, window=3, patience=2)
    f.run()
    assert f.es_fired and f.iteration < 400 and f.es_iteration is not None
    assert f.output().shape == inten.shape


def test_bad_input_is_reported():
    inten, _ = _pattern()
    with pytest.raises(InputError):
        cdi_solver(inten, None, obj="quaternion")
    with pytest.raises(InputError):
        cdi_solver(inten, np.ones(inten.shape, bool))


def test_gpr_variant_fits_a_gaussian_measurement():
    from engine.gpr.measurements import make_measurement, measure

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 64, generator=g, dtype=torch.float64).to(torch.complex128)
    op = make_measurement("complex-gaussian", 64, 4.0, seed=1)
    y = measure(op, x)
    s = gpr_solver(op, y, (8, 8), reference=x, max_iters=80, stopping="none")
    states = [s.step() for _ in range(80)]
    assert isinstance(s, DIPPRSolver)
    assert states[-1]["loss"] < states[0]["loss"]
    assert np.isfinite(states[-1]["error"])


def test_poisson_loss_stays_finite_on_zero_counts_and_decreases():
    inten, _ = _pattern()
    inten = np.floor(inten / inten.max() * 50)  # a weak pattern: many pixels count 0
    assert (inten == 0).sum() > 10
    for obj in ("real", "complex"):
        s = cdi_solver(inten, None, max_iters=40, stopping="none", obj=obj, loss="poisson")
        losses = [s.step()["loss"] for _ in range(40)]
        assert np.isfinite(losses).all(), obj
        assert np.mean(losses[-5:]) < np.mean(losses[:3]), obj
        assert torch.isfinite(s.output().abs()).all()
