"""Fourier phase retrieval engine: operators, likelihoods, solvers, workflow and CLI (32^2 / 16^3)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.cdi import fourier as F
from engine.cdi.registration import register
from engine.cdi.simulate import simulate_pattern
from engine.cdi.solver import CDIOptions, CDISolver, crop_to_support
from engine.core.errors import InputError


def _sim(shape=(32, 32), **kw):
    kw.setdefault("beamstop", 0)
    kw.setdefault("noise", False)
    return simulate_pattern(None, shape=shape, oversampling=2.5, photons=1e6, seed=1, **kw)


def _error(sim, solver, start=0):
    return 1 - register(sim.obj, solver.objects()[start]).similarity


@pytest.mark.parametrize("recipe", ["ER**60", "ER**50*HIO**200", "ER**50*RAAR**200"])
def test_known_support_converges(recipe):
    sim = _sim()
    s = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=1, seed=0, support=sim.support,
                  options={"free_fraction": 0})
    llk0 = s.likelihoods()[0][0]
    s.run()
    llk1 = s.likelihoods()[0][0]
    assert llk1 < (0.1 if recipe == "ER**60" else 0.01) * llk0
    if recipe != "ER**60":  # ER alone may stagnate; HIO/RAAR must find the object
        assert _error(sim, s) < 1e-3


def test_3d_runs_and_converges():
    sim = _sim((16, 16, 16))
    s = CDISolver(sim.intensity, mask=sim.mask, recipe="ER**30*HIO**100", starts=2, seed=0,
                  support=sim.support, options={"free_fraction": 0})
    s.run()
    assert s.objects().shape == (2, 16, 16, 16)
    assert min(_error(sim, s, i) for i in range(2)) < 1e-2


def test_shrink_wrap_recovers_support_and_respects_guards():
    sim = _sim()
    s = CDISolver(sim.intensity, mask=sim.mask, recipe="ER**50*(Sup*HIO**30)**6", starts=2, seed=0)
    assert s.support_fraction()[0] > sim.support.mean()  # autocorrelation support is loose
    s.run()
    frac = s.support_fraction()
    assert (frac < 2.0 * sim.support.mean()).all()
    g = CDISolver(sim.intensity, mask=sim.mask, recipe="Sup*ER**5", starts=2, seed=0,
                  options={"min_support_fraction": 0.3, "max_support_fraction": 0.4, "threshold": 0.9,
                           "support_mode": "inside"})
    g.run()
    assert (np.abs(g.support_fraction() - 0.3) < 0.01).all() and g.guard_hits == 2
    h = CDISolver(sim.intensity, mask=sim.mask, recipe="Sup*ER**5", starts=1, seed=0,
                  options={"max_support_fraction": 0.05, "threshold": 0.01, "support_mode": "inside"})
    h.run()
    assert abs(h.support_fraction()[0] - 0.05) < 0.01


def test_masked_pixels_are_left_free():
    psi = torch.tensor([[3 + 4j, 1 + 0j], [0 + 2j, 6 + 8j]], dtype=torch.complex64)
    amp = torch.tensor([[10.0, 0.0], [1.0, 0.0]])
    free = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    out = F.amplitude_projection_(psi.clone(), amp, free)
    np.testing.assert_allclose(out.abs().numpy(), [[10, 1], [1, 10]], rtol=1e-5)
    np.testing.assert_allclose(out[1, 1].numpy(), 6 + 8j, rtol=1e-6)  # free: untouched
    # a solver with masked pixels still converges: masked values float and the object is found
    sim = _sim()
    mask = np.zeros(sim.mask.shape, bool)
    mask[16, 14:19] = True
    s = CDISolver(sim.intensity, mask=mask, recipe="ER**50*HIO**200", support=sim.support,
                  options={"free_fraction": 0})
    assert float(s.free_one[0, 0]) == 1.0  # index 0 is the (masked) centre after the shift
    s.run()
    assert _error(sim, s) < 1e-3


def test_free_pixels_friedel_and_llk_free():
    sim = _sim()
    s = CDISolver(sim.intensity, mask=sim.mask, recipe="ER**5", options={"free_fraction": 0.1})
    free = s.free
    assert torch.equal(free, F.friedel_mate(free, 2) & s.observed)
    assert 0.05 < float(free.float().mean()) < 0.15
    assert float((s.w_obs * s.w_free).sum()) == 0
    llk, llk_free = s.likelihoods()
    assert llk.shape == (1,) and llk_free.shape == (1,)


def test_likelihood_known_values():
    io = torch.tensor([[4.0, 0.0], [1.0, 9.0]])
    ic = torch.tensor([[2.0, 1.0], [1.0, 9.0]])
    w = torch.ones(2, 2)
    expected = ((2 - 4 + 4 * np.log(2)) + 1 + 0 + 0) / 4
    assert F.poisson_llk(io, ic, w, ndim=2).item() == pytest.approx(expected, rel=1e-6)
    assert F.poisson_llk(io, io, w, ndim=2).item() == pytest.approx(0.0, abs=1e-9)
    g = ((2 - 4) ** 2 / (2 * 5) + 1 / 2) / 4
    assert F.gaussian_llk(io, ic, w, ndim=2).item() == pytest.approx(g, rel=1e-6)
    assert F.llk(io, ic, w, ndim=2, noise="gaussian").item() == pytest.approx(g, rel=1e-6)
    w2 = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    assert F.poisson_llk(io, ic, w2, ndim=2).item() == pytest.approx(2 - 4 + 4 * np.log(2), rel=1e-6)


def test_batched_starts_match_single_runs():
    sim = _sim()
    recipe = "ER**5*(Sup*HIO**10)**2"
    batch = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=3, seed=4)
    batch.run()
    for i in range(3):
        one = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=1, seed=4, first_start=i)
        one.run()
        np.testing.assert_allclose(one.objects()[0], batch.objects()[i], rtol=1e-3, atol=1e-3 * np.abs(
            batch.objects()[i]).max())
    assert len(set(np.round(batch.likelihoods()[0], 6))) == 3  # the starts differ


def test_step_reports_state_and_options():
    sim = _sim()
    s = CDISolver(sim.intensity, recipe="ER**4*Sup*HIO**4", starts=2)
    assert s.total_operations == 9 and not s.done
    states = []
    while not s.done:
        states.append(s.step(llk_every=2))
    assert [st.op for st in states] == ["HIO"] * 4 + ["Sup"] + ["ER"] * 4
    assert [st.operation for st in states] == list(range(1, 10))
    assert states[-1].cycle == 8 and states[-1].llk.shape == (2,) and states[0].llk is None
    assert states[1].llk is not None and states[2].llk is None  # every 2nd cycle
    assert states[4].support_fraction.shape == (2,)
    with pytest.raises(RuntimeError, match="finished"):
        s.step()
    final = s.run()  # nothing left: the final likelihoods all the same
    assert final.cycle == 8 and final.llk.shape == (2,)
    with pytest.raises(TypeError):
        CDISolver(sim.intensity, sim.mask)  # options are keyword-only
    with pytest.raises(InputError, match="integer seed"):
        CDISolver(sim.intensity, seed=np.random.default_rng(0))
    with pytest.raises(InputError):
        CDIOptions.from_dict({"beta_hio": 2})
    with pytest.raises(InputError):
        CDIOptions.from_dict({"nope": 1})
    p = CDISolver(sim.intensity, recipe="ER**10", options={"positivity": True})
    p.run()
    x = p.x.numpy()
    assert np.abs(x.imag).max() == 0 and x.real.min() >= 0


def test_fourier_operator_is_the_unitary_fft():
    from engine.core.operator import Operator, adjointness_gap
    from tests.cdi.operator_examples import EXAMPLES

    for name, make in EXAMPLES.items():
        op, x, y = make()
        assert isinstance(op, Operator), name
        assert adjointness_gap(op, x, y) < 1e-6, name
        torch.testing.assert_close(op.A_adjoint(op.A(x)), x, rtol=1e-5, atol=1e-5)
    x = EXAMPLES["cdi.FourierTransform-2d"]()[1]
    op = F.FourierTransform(2)
    assert torch.equal(op(x), torch.fft.fftn(x, dim=(-2, -1), norm="ortho"))
    assert torch.equal(op.A_adjoint(x), torch.fft.ifftn(x, dim=(-2, -1), norm="ortho"))


def test_run_callback_only_observes_and_a_raise_leaves_it_resumable():
    sim = _sim()
    recipe = "ER**5*(Sup*HIO**5)**2"
    ref = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=2, seed=3)
    ref_state = ref.run()
    seen = []
    s = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=2, seed=3)
    final = s.run(lambda st: seen.append(st.op) or True, llk_every=5)  # the return value is ignored
    assert len(seen) == s.total_operations == 17 and s.done
    np.testing.assert_allclose(final.llk, ref_state.llk, rtol=1e-6)
    np.testing.assert_array_equal(s.objects(), ref.objects())

    class Stop(Exception):
        pass

    def stop_at_7(st):
        if st.operation == 7:
            raise Stop

    t = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=2, seed=3)
    with pytest.raises(Stop):
        t.run(stop_at_7)
    assert t.operation == 7 and not t.done
    t.run()
    np.testing.assert_array_equal(t.objects(), ref.objects())


def test_crop_to_support_wraps():
    obj = np.zeros((16, 16), np.complex64)
    sup = np.zeros((16, 16), bool)
    sup[0:2, 0:3] = sup[-2:, 0:3] = True
    obj[sup] = 1
    o, s = crop_to_support(obj, sup, margin=1)
    assert s.sum() == 12 and o.shape == (6, 5)


def test_workflow_and_cli(tmp_path):
    from engine.cli import main as cli_main

    def main(argv):
        return cli_main(["pr", *argv])
    from engine.jobs.manager import run_inline
    from engine.runs.store import RunStore

    sim = _sim(beamstop=1)
    run = RunStore.create_at(tmp_path / "run", {"kind": "cdi", "params": {
        "recipe": "ER**10*(Sup*HIO**20)**2", "starts": 2, "seed": 0, "publish_every": 5}})
    run.save_array("intensity", sim.intensity)
    run.save_array("mask", sim.mask.astype(np.uint8))
    rows = []
    state, summary = run_inline(run, "cpu", on_publish=lambda i, row, extra: rows.append((row, extra)))
    assert state == "done", run.status()
    assert summary["starts"] == 2 and len(summary["llk"]) == 2 and summary["chosen_start"] in (0, 1)
    assert rows and "llk" in rows[-1][0] and "llk_starts" in rows[-1][1]
    with np.load(run.file("object.npz"), allow_pickle=False) as z:
        assert z["object"].dtype == np.complex64 and z["support"].shape == z["object"].shape
    assert run.file("object.png").exists() and run.file("object.cxi").exists()

    np.save(tmp_path / "p.npy", sim.intensity)
    out = tmp_path / "out"
    rc = main([str(tmp_path / "p.npy"), "--out", str(out), "--recipe", "ER**5*HIO**10", "--starts", "2",
               "--quiet"])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["recipe"] == "ER**5*HIO**10" and len(s["llk_free"]) == 2 and "wall_seconds" in s
    assert (out / "object.npz").exists() and (out / "object.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pr-")]


def test_cli_bad_input_leaves_nothing(tmp_path, capsys):
    from engine.cli import main as cli_main

    def main(argv):
        return cli_main(["pr", *argv])

    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not a numpy file")
    out = tmp_path / "out"
    assert main([str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a valid NPY" in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]
    np.save(tmp_path / "ok.npy", np.ones((8, 8)))
    assert main([str(tmp_path / "ok.npy"), "--out", str(out), "--recipe", "ER**"]) == 2
    assert "position 4" in capsys.readouterr().err
    assert not out.exists()


def test_checkpoint_resume_matches_uninterrupted():
    sim = _sim()
    recipe = "ER**10*(Sup*HIO**10)**2"
    full = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=2, seed=1)
    full.run()
    part = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=2, seed=1)
    for _ in range(15):
        part.step(llk_every=0)
    ck = part.state_dict()
    again = CDISolver(sim.intensity, mask=sim.mask, recipe=recipe, starts=2, seed=1)
    again.load_state_dict(ck)
    again.run()
    assert again.cycle == full.cycle == 30
    np.testing.assert_allclose(again.objects(), full.objects(), rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError):
        CDISolver(sim.intensity, mask=sim.mask, recipe="ER**3", starts=2).load_state_dict(ck)
