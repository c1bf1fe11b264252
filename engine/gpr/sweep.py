"""Phase transition of generalized phase retrieval: success rate against m/n, per algorithm.

Each (ratio, trial) problem is drawn once from a seed that depends only on ``seed`` and the
ratio, and every algorithm solves the same problems, so curves compare like with like. All
trials of a cell run as one batch. Success: relative error modulo global phase below ``tol``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass

import torch

from engine.core.errors import InputError
from engine.core.seeds import torch_generator
from engine.gpr.algorithms import ALGORITHMS, GPRSolver, GPRState
from engine.gpr.initializers import INITIALIZERS
from engine.gpr.measurements import MODELS, Measurement, make_measurement, measure

MAX_N = 4096
MAX_TRIALS = 1000
MAX_RATIO = 64.0
#: bound on trials * m * n for the Gaussian models (explicit matrices, ~48 bytes per entry in all)
MAX_MATRIX_ENTRIES = 20_000_000


class _Stop(Exception):
    """Raised by the poll of :func:`sweep` to leave a cancelled run."""


@dataclass
class SweepCell:
    """Result of one (algorithm, ratio) cell."""

    algorithm: str
    ratio: float
    success: float
    median_error: float
    iterations: int
    seconds: float
    errors: list[float]


def parse_algorithms(spec: str | Sequence[str]) -> list[str]:
    """``"all"`` or comma-separated names; each ``alg`` or ``alg:init`` (e.g. ``gs:optimal``).

    ``"all"`` is every algorithm with its paper's initializer and again with the optimal spectral
    initializer (Mondelli-Montanari), which is the best start for all of them in practice: without it a
    sweep would report the weaker variant of each algorithm as "all".
    """
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if str(s).strip()]
    if items == ["all"]:
        return [*ALGORITHMS, *(f"{a}:optimal" for a, info in ALGORITHMS.items() if info.default_init != "optimal")]
    if not items:
        raise InputError("no algorithm given; expected 'all' or a comma list such as wf,taf,gs:optimal")
    for item in items:
        alg, _, init = item.partition(":")
        if alg not in ALGORITHMS:
            raise InputError(f"unknown algorithm {alg!r}; expected 'all' or some of {', '.join(ALGORITHMS)}")
        if init and init not in INITIALIZERS:
            raise InputError(f"unknown initializer {init!r} in {item!r}; "
                             f"expected one of {', '.join(INITIALIZERS)}")
    if len(set(items)) != len(items):
        raise InputError(f"an algorithm is listed twice in {', '.join(items)}")
    return items


def parse_ratios(spec: str | Sequence[float]) -> list[float]:
    """Comma-separated positive m/n values (or a sequence), in the given order."""
    try:
        items = [float(s) for s in (spec.split(",") if isinstance(spec, str) else spec)
                 if str(s).strip()]
    except ValueError as e:
        raise InputError(f"ratios must be numbers separated by commas, e.g. 2,2.5,3; got {spec!r}") from e
    if not items:
        raise InputError("no m/n ratio given; expected e.g. 2,2.5,3")
    for r in items:
        if not (0 < r <= MAX_RATIO) or not math.isfinite(r):
            raise InputError(f"each m/n ratio must be in (0, {MAX_RATIO:g}]; got {r:g}")
    return items


def check_sweep(n: int, ratios: Sequence[float], trials: int, model: str) -> None:
    """Raise :class:`InputError` for sizes the sweep should not attempt."""
    if model not in MODELS:
        raise InputError(f"unknown measurement model {model!r}; expected one of {', '.join(MODELS)}")
    if not (2 <= n <= MAX_N):
        raise InputError(f"n must be between 2 and {MAX_N}; got {n}")
    if not (1 <= trials <= MAX_TRIALS):
        raise InputError(f"trials must be between 1 and {MAX_TRIALS}; got {trials}")
    if model == "cdp":
        bad = [r for r in ratios if abs(r - round(r)) > 1e-9]
        if bad:
            raise InputError(f"CDP ratios are numbers of masks (whole numbers); got {bad[0]:g}")
    elif trials * math.ceil(max(ratios) * n) * n > MAX_MATRIX_ENTRIES:
        raise InputError(f"trials x m x n = {trials * math.ceil(max(ratios) * n) * n:,} is too large for "
                         f"explicit Gaussian matrices; keep it under {MAX_MATRIX_ENTRIES:,}")


def problem_seed(seed: int, ratio: float) -> int:
    """Seed of the problems at one ratio: independent of which other ratios are swept."""
    return (int(seed) * 1_000_003 + int(round(ratio * 1000))) % (2 ** 63)


def draw_problem(model: str, n: int, ratio: float, trials: int, seed: int, *, noise: float = 0.0,
                 dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
                 ) -> tuple[Measurement, torch.Tensor, torch.Tensor]:
    """Operators (one per trial), truths x and intensities y for one ratio.

    x ~ CN(0, I) for the complex models, N(0, I) for the real one.
    """
    g = torch_generator(problem_seed(seed, ratio))  # one stream: operators, then truths, then noise
    op = make_measurement(model, n, ratio, batch=trials, seed=g, dtype=dtype, device=device)
    if model == "real-gaussian":
        x = torch.randn(trials, n, generator=g, dtype=dtype)
    else:
        x = torch.complex(torch.randn(trials, n, generator=g, dtype=dtype),
                          torch.randn(trials, n, generator=g, dtype=dtype)) / math.sqrt(2.0)
    x = x.to(device)
    return op, x, measure(op, x, noise, seed=g)


def sweep(n: int, ratios: Sequence[float], trials: int = 20, model: str = "complex-gaussian",
          algorithms: Sequence[str] = ("wf", "taf"), *, tol: float = 1e-5, seed: int = 0,
          iters: int | None = None, noise: float = 0.0, stop_tol: float = 1e-12,
          dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu",
          cancelled: Callable[[], bool] | None = None) -> Iterator[SweepCell]:
    """Yield one :class:`SweepCell` per (ratio, algorithm), ratios outermost.

    Parameters
    ----------
    algorithms : sequence of str
        Names as accepted by :func:`parse_algorithms` (``alg`` or ``alg:init``).
    iters : int, optional
        Iteration budget for every algorithm; each algorithm's default when None. Runs stop early
        once every trial's relative change is below ``stop_tol``.
    cancelled : callable, optional
        Polled every 50 iterations; the sweep returns as soon as it is True.
    """

    def poll(state: GPRState) -> None:
        if cancelled():
            raise _Stop

    if not tol > 0:
        raise InputError(f"tol must be positive; got {tol}")
    algorithms = parse_algorithms(list(algorithms))
    ratios = parse_ratios(list(ratios))
    check_sweep(n, ratios, trials, model)
    for ratio in ratios:
        op, x, y = draw_problem(model, n, ratio, trials, seed, noise=noise, dtype=dtype, device=device)
        for spec in algorithms:
            alg, _, init = spec.partition(":")
            t0 = time.perf_counter()
            solver = GPRSolver(op, y, algorithm=alg, init=init or None, iters=iters, x_true=x,
                               stop_tol=stop_tol, seed=problem_seed(seed, ratio) + 7)
            try:
                last = solver.run(None if cancelled is None else poll, every=50)
            except _Stop:
                return
            assert last.error is not None
            err = last.error.cpu()
            yield SweepCell(spec, float(ratio), float((err < tol).double().mean()), float(err.median()),
                            last.iteration, round(time.perf_counter() - t0, 3),
                            [float(e) for e in err])


def ratio_key(ratio: float) -> str:
    """How a ratio is written in tables and JSON keys (``3``, ``2.5``)."""
    return f"{ratio:g}"


def success_table(cells: Sequence[SweepCell]) -> dict[str, dict[str, float]]:
    """``{algorithm: {ratio_key: success_rate}}`` from cells."""
    table: dict[str, dict[str, float]] = {}
    for c in cells:
        table.setdefault(c.algorithm, {})[ratio_key(c.ratio)] = c.success
    return table


def phase_transition(n: int, ratios: Sequence[float], trials: int = 20, model: str = "complex-gaussian",
                     algorithms: Sequence[str] = ("wf", "taf"), *, tol: float = 1e-5, seed: int = 0,
                     on_cell: Callable[[SweepCell, list[SweepCell]], None] | None = None,
                     **kw) -> dict:
    """Run :func:`sweep` to the end and return a JSON-able report.

    Returns
    -------
    dict
        ``n, model, trials, tol, seed, ratios, algorithms``; ``success``: {algorithm: {ratio: rate}};
        ``cells``: one row per cell (success, median_error, iterations, seconds, errors);
        ``wall_seconds``.
    """
    algorithms = parse_algorithms(list(algorithms))
    ratios = parse_ratios(list(ratios))
    t0 = time.perf_counter()
    cells: list[SweepCell] = []
    for cell in sweep(n, ratios, trials, model, algorithms, tol=tol, seed=seed, **kw):
        cells.append(cell)
        if on_cell is not None:
            on_cell(cell, cells)
    return {"n": n, "model": model, "trials": trials, "tol": tol, "seed": seed, "ratios": ratios,
            "algorithms": algorithms, "success": success_table(cells),
            "cells": [asdict(c) for c in cells], "wall_seconds": round(time.perf_counter() - t0, 3)}
