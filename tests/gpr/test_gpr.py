"""Generalized phase retrieval: operators, error metric, initialisers, algorithms, sweep, CLI, workflows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from engine.cli import main as cli_main
from engine.core.errors import InputError
from engine.gpr.algorithms import ALGORITHMS, GPRSolver, align_phase, recover, relative_error
from engine.gpr.initializers import INITIALIZERS, initialize
from engine.gpr.measurements import CodedDiffraction, GaussianMeasurement, make_measurement, measure
from engine.gpr.sweep import parse_algorithms, phase_transition

torch.set_num_threads(1)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _cx(*shape: int, g: torch.Generator) -> torch.Tensor:
    return torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                         torch.randn(shape, generator=g, dtype=torch.float64))


def _ops() -> list:
    g = _gen(1)
    return [GaussianMeasurement.random(12, 40, seed=g),
            GaussianMeasurement.random(12, 40, complex=False, seed=g),
            GaussianMeasurement.random(12, 40, batch=3, seed=g),
            CodedDiffraction.random(12, 3, seed=g),
            CodedDiffraction.random((4, 6), 2, seed=g),
            CodedDiffraction.random((4, 5), 3, batch=3, seed=g)]


@pytest.mark.parametrize("op", _ops(),
                         ids=["cgauss", "rgauss", "cgauss-batch", "cdp1d", "cdp2d", "cdp-batch"])
def test_adjoint_identity(op) -> None:
    g = _gen(2)
    b = op.batch or 2
    make = (lambda *s: _cx(*s, g=g)) if op.is_complex else (lambda *s: torch.randn(s, generator=g,
                                                                                       dtype=torch.float64))
    x, v = make(b, op.n), make(b, op.m)
    lhs = (op.A(x).conj() * v).sum(-1)  # <Ax, v>
    rhs = (x.conj() * op.A_adjoint(v)).sum(-1)  # <x, A^* v>
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)
    assert op.A(x).shape == (b, op.m) and op.A_adjoint(v).shape == (b, op.n)
    torch.testing.assert_close(op(x), op.A(x))  # called as a module, an operator applies A


def test_cdp_matches_explicit_matrix() -> None:
    n, L = 8, 3
    op = CodedDiffraction.random(n, L, seed=_gen(3))
    F = np.fft.fft(np.eye(n))  # DFT matrix, F @ v == fft(v)
    d = op.masks.numpy()
    A = np.concatenate([F @ np.diag(d[k]) for k in range(L)])
    np.testing.assert_allclose(op.dense().numpy(), A, atol=1e-12)
    x = _cx(n, g=_gen(4))
    np.testing.assert_allclose(op.A(x).numpy(), A @ x.numpy(), atol=1e-12)
    # least squares through the diagonal A^* A equals a dense solve
    v = _cx(L * n, g=_gen(5))
    np.testing.assert_allclose(op.lstsq(v).numpy(), np.linalg.lstsq(A, v.numpy(), rcond=None)[0], atol=1e-10)
    # 2-D and batched operators agree with their dense forms too
    op2 = CodedDiffraction.random((3, 4), 2, batch=2, seed=_gen(6))
    x2 = _cx(2, 12, g=_gen(7))
    torch.testing.assert_close(op2.A(x2), (op2.dense() @ x2.unsqueeze(-1)).squeeze(-1))


@pytest.mark.parametrize("m", [30, 8])
def test_gaussian_lstsq_matches_numpy(m: int) -> None:
    op = GaussianMeasurement.random(10, m, batch=2, seed=_gen(20))
    v = _cx(2, m, g=_gen(21))
    for b in range(2):
        ref = np.linalg.lstsq(op.dense()[b].numpy(), v[b].numpy(), rcond=None)[0]
        np.testing.assert_allclose(op.lstsq(v)[b].numpy(), ref, atol=1e-9)


def test_octanary_mask_values() -> None:
    d = CodedDiffraction.random(4000, 1, seed=_gen(8)).masks
    mags = d.abs().unique(sorted=True)
    torch.testing.assert_close(mags, torch.tensor([1 / math.sqrt(2), math.sqrt(3)], dtype=torch.float64))
    assert abs(float((d.abs() ** 2).mean()) - 1.0) < 0.1  # E|d|^2 = 1
    phases = torch.angle(d) / (math.pi / 2)
    assert torch.allclose(phases, phases.round(), atol=1e-9)


def test_error_metric_invariant_to_global_phase() -> None:
    g = _gen(9)
    x = _cx(3, 10, g=g)
    z = x + 0.1 * _cx(3, 10, g=g)
    e0 = relative_error(x, z)
    for phi in (0.3, 2.0, -1.0):
        torch.testing.assert_close(relative_error(x, z * np.exp(1j * phi)), e0)
    assert float(relative_error(x, x * np.exp(0.7j)).max()) < 1e-14
    xr = torch.randn(2, 10, generator=g, dtype=torch.float64)
    assert float(relative_error(xr, -xr).max()) == 0.0
    torch.testing.assert_close(relative_error(xr, -2 * xr), torch.ones(2, dtype=torch.float64))
    # reference first: the error is relative to the reference's norm
    torch.testing.assert_close(relative_error(2 * xr, xr), 0.5 * torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(align_phase(xr, -3 * xr), 3 * xr)


@pytest.mark.parametrize("init", [k for k in INITIALIZERS if k != "random"])
def test_initializers_correlate_with_truth(init: str) -> None:
    g = _gen(10)
    n, B = 32, 4
    op = make_measurement("complex-gaussian", n, 10.0, batch=B, seed=g)
    x = _cx(B, n, g=g) / math.sqrt(2)
    y = measure(op, x)
    z = initialize(init, op, y, seed=g)
    corr = (x.conj() * z).sum(-1).abs() / (x.norm(dim=-1) * z.norm(dim=-1))
    assert float(corr.min()) > 0.6, corr
    # the norm is estimated from the data
    ratio = z.norm(dim=-1) / x.norm(dim=-1)
    assert float((ratio - 1).abs().max()) < 0.5


def test_power_method_matches_eigh_for_cdp() -> None:
    from engine.gpr.initializers import leading_eigenvector

    op = CodedDiffraction.random(10, 4, seed=_gen(11))
    w = torch.rand(1, op.m, generator=_gen(12), dtype=torch.float64) - 0.3  # some negative weights
    v = leading_eigenvector(op, w, power_iters=2000, seed=13)
    A = op.dense()
    M = (A.mH * w[0].to(A.dtype)) @ A / op.m
    ref = torch.linalg.eigh(M)[1][:, -1]
    assert abs(float((ref.conj() * v[0]).sum().abs())) > 1 - 1e-6


@pytest.mark.parametrize("alg", list(ALGORITHMS))
def test_each_algorithm_converges_at_8n(alg: str) -> None:
    g = _gen(14)
    n, B = 16, 3
    op = make_measurement("complex-gaussian", n, 8.0, batch=B, seed=g)
    x = _cx(B, n, g=g) / math.sqrt(2)
    y = measure(op, x)
    st = recover(op, y, alg, x_true=x, iters=3000, stop_tol=1e-13)
    assert float(st.error.max()) < 1e-6, (alg, st.error)
    assert float(st.loss.max()) < 1e-6


@pytest.mark.parametrize("model,alg", [("real-gaussian", "taf"), ("real-gaussian", "gs"), ("cdp", "taf"),
                                       ("cdp", "gs"), ("cdp", "wf")])
def test_other_models_converge(model: str, alg: str) -> None:
    g = _gen(15)
    n, B = 24, 2
    op = make_measurement(model, n, 8.0, batch=B, seed=g)
    x = torch.randn(B, n, generator=g, dtype=torch.float64) if model == "real-gaussian" else _cx(B, n, g=g)
    y = measure(op, x)
    st = recover(op, y, alg, x_true=x, iters=3000, stop_tol=1e-13)
    assert float(st.error.max()) < 1e-6, (model, alg, st.error)
    if model == "real-gaussian":
        assert not st.z.is_complex()


def test_run_observes_states_and_stops_early() -> None:
    g = _gen(16)
    op = make_measurement("complex-gaussian", 8, 8.0, seed=g)
    x = _cx(8, g=g)
    y = measure(op, x)
    states = []
    last = GPRSolver(op, y, algorithm="gs", iters=500, x_true=x, stop_tol=1e-12).run(states.append, every=5)
    assert states[0].iteration == 0 and states[-1].done and states[-1] is last
    assert all(s.z.shape == (1, 8) for s in states)
    assert [s.iteration for s in states[1:-1]] == list(range(5, 5 * len(states[1:-1]) + 1, 5))
    assert states[-1].iteration < 500  # converged and stopped
    with pytest.raises(InputError):
        GPRSolver(op, y, algorithm="nope")


def test_noise_changes_measurements_by_the_requested_amount() -> None:
    g = _gen(17)
    op = make_measurement("complex-gaussian", 16, 4.0, seed=g)
    x = _cx(1, 16, g=g)
    clean = measure(op, x)
    noisy = measure(op, x, 0.1, seed=g)
    assert abs(float((noisy - clean).norm() / clean.norm()) - 0.1) < 1e-9


def test_sweep_structure_and_success() -> None:
    report = phase_transition(8, [1.0, 8.0], trials=3, algorithms=["gs", "taf:optimal"], iters=400, seed=1)
    assert report["algorithms"] == ["gs", "taf:optimal"]
    assert set(report["success"]) == {"gs", "taf:optimal"}
    assert set(report["success"]["gs"]) == {"1", "8"}
    assert len(report["cells"]) == 4 and len(report["cells"][0]["errors"]) == 3
    assert report["success"]["gs"]["8"] == 1.0 and report["success"]["gs"]["1"] < 1.0
    json.dumps(report)
    # same seed, same numbers
    again = phase_transition(8, [8.0], trials=3, algorithms=["gs"], iters=400, seed=1)
    assert again["cells"][0]["errors"] == report["cells"][2]["errors"]  # ratios outermost
    every = parse_algorithms("all")
    # each algorithm with its paper's start, and with the optimal spectral start (the best one)
    assert every[:len(ALGORITHMS)] == list(ALGORITHMS)
    assert "rwf:optimal" in every and "gs:optimal" in every
    assert len(set(every)) == len(every) == 2 * len(ALGORITHMS)
    with pytest.raises(InputError):
        parse_algorithms("wf,bogus")


def test_cli_writes_json(tmp_path, capsys) -> None:
    out = tmp_path / "sweep.json"
    rc = cli_main(["gpr-sweep", "--n", "8", "--ratios", "2,8", "--trials", "2", "--model", "complex-gaussian",
                         "--algorithms", "gs,taf", "--iters", "300", "--seed", "3", "--out", str(out),
                         "--quiet"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert set(data["success"]) == {"gs", "taf"} and set(data["success"]["gs"]) == {"2", "8"}
    assert data["tol"] == 1e-5 and "machine" in data and "wall_seconds" in data


@pytest.mark.parametrize("args", [
    ["--n", "8", "--ratios", "2", "--model", "bogus"],
    ["--n", "8", "--ratios", "two"],
    ["--n", "1", "--ratios", "2"],
    ["--n", "8", "--ratios", "2", "--algorithms", "wf,nope"],
    ["--n", "8", "--ratios", "2.5", "--model", "cdp"],
    ["--n", "8", "--ratios", "-1"],
    ["--n", "8", "--ratios", "2", "--tol", "0"],
    ["--n", "8", "--ratios", "2", "--trials", "0"],
    ["--ratios", "2"],
])
def test_cli_rejects_bad_args(tmp_path, capsys, args) -> None:
    out = tmp_path / "x.json"
    full = args + ["--out", str(out)]
    rc = cli_main(["gpr-sweep", *full])
    err = capsys.readouterr().err.strip()
    assert rc != 0
    assert len(err.splitlines()) == 1 and err.startswith("inverse-studio gpr-sweep: error:"), err
    assert not out.exists()


def _run_workflow(tmp_path, kind: str, params: dict):
    from engine.jobs.manager import run_inline
    from engine.runs.store import RunStore

    run = RunStore(tmp_path).create({"kind": kind, "params": params})
    rows: list[dict] = []
    state, summary = run_inline(run, "cpu", on_publish=lambda it, row, extra: rows.append({**row, **extra}))
    err = run.path / "error.txt"
    assert state == "done", (run.status(), err.read_text() if err.exists() else "")
    return run, rows, summary


def test_gpr_workflow_image(tmp_path) -> None:
    run, rows, summary = _run_workflow(tmp_path, "gpr", {
        "signal": "camera", "size": 8, "model": "complex-gaussian", "ratio": 6, "algorithm": "gs",
        "iters": 300, "every": 10})
    assert summary["success"] and summary["error"] < 1e-5
    assert rows[0]["iteration"] == 0 and {"error", "loss"} <= set(rows[0])
    assert run.load_array("estimate").shape == (8, 8)
    assert (run.path / "estimate.png").exists()


def test_gpr_workflow_random_cdp(tmp_path) -> None:
    _, rows, summary = _run_workflow(tmp_path, "gpr", {
        "signal": "random", "n": 16, "model": "cdp", "L": 6, "algorithm": "taf", "iters": 400})
    assert summary["m"] == 6 * 16 and summary["error"] < 1e-5
    assert rows[-1]["error"] == pytest.approx(summary["error"])


def test_gpr_workflow_rejects_bad_params(tmp_path) -> None:
    from engine.jobs.manager import run_inline
    from engine.runs.store import RunStore

    run = RunStore(tmp_path).create({"kind": "gpr", "params": {"signal": "nope"}})
    state, _ = run_inline(run, "cpu")
    assert state == "failed" and "unknown signal" in run.status()["message"]


def test_gpr_sweep_workflow(tmp_path) -> None:
    _, rows, summary = _run_workflow(tmp_path, "gpr_sweep", {
        "n": 8, "ratios": "2,8", "trials": 2, "algorithms": ["gs", "wf"], "iters": 300})
    assert len(rows) == 4 and rows[-1]["cells_done"] == 4 and rows[-1]["cells_total"] == 4
    assert "gs_success" in rows[0] and rows[0]["ratio"] == 2.0
    assert summary["success"] == rows[-1]["table"]


def test_gpr_workflow_cancel_keeps_what_it_reached(tmp_path) -> None:
    import threading

    from engine.jobs.manager import run_inline
    from engine.runs.store import RunStore

    run = RunStore(tmp_path).create({"kind": "gpr", "params": {
        "signal": "random", "n": 16, "model": "complex-gaussian", "ratio": 4, "algorithm": "taf",
        "iters": 500, "every": 10}})
    stop = threading.Event()
    rows: list[int] = []

    def on_publish(it, row, extra) -> None:
        rows.append(it)
        if it >= 20:
            stop.set()

    state, summary = run_inline(run, "cpu", on_publish=on_publish, cancel_event=stop)
    assert state == "cancelled" and summary["state"] == "cancelled"
    assert rows == [0, 10, 20] and summary["iterations"] == 20
    assert run.load_array("estimate").shape == (16,)
