"""Phase-transition workflow: success rate against m/n for several algorithms, published cell by cell.

Params
------
n : signal length (default 64)
ratios : list of m/n values or a comma string (default 1.5,2,2.5,3,3.5,4,4.5,5,6)
trials : trials per ratio (default 20)
model : complex-gaussian | real-gaussian | cdp (default complex-gaussian)
algorithms : list or comma string, ``all`` or names with optional ``:init`` (default wf,taf,gs:optimal)
tol : success threshold (default 1e-5)
seed : int (default 0)
iters : iteration budget for all algorithms (default: each algorithm's)
noise : relative noise on the intensities (default 0)

Published after each (ratio, algorithm) cell, with ``iteration`` = cells done: metrics
``{"ratio": r, "<alg>_success": rate}``; extras ``table`` ({alg: {ratio: rate}}), ``ratios``,
``algorithms``, ``cells_done``, ``cells_total``. The summary is the full report of
:func:`engine.solvers.gpr_sweep.phase_transition`.
"""

from __future__ import annotations

from typing import Any

from engine.solvers.gpr_sweep import (
    SweepCell,
    parse_algorithms,
    parse_ratios,
    phase_transition,
    success_table,
)

DEFAULT_RATIOS = (1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6)


def run(ctx: Any) -> dict:
    """Run the sweep, publishing the table after every cell."""
    p = dict(ctx.run.spec.get("params", {}))
    algorithms = parse_algorithms(p.get("algorithms") or "wf,taf,gs:optimal")
    ratios = parse_ratios(p.get("ratios") or list(DEFAULT_RATIOS))
    total = len(algorithms) * len(ratios)

    def on_cell(cell: SweepCell, cells: list[SweepCell]) -> None:
        ctx.publish(len(cells), {"ratio": cell.ratio, f"{cell.algorithm}_success": cell.success},
                    table=success_table(cells), ratios=ratios, algorithms=algorithms,
                    cells_done=len(cells), cells_total=total,
                    last_cell={"algorithm": cell.algorithm, "ratio": cell.ratio, "success": cell.success,
                               "iterations": cell.iterations, "seconds": cell.seconds})

    iters = p.get("iters")
    report = phase_transition(int(p.get("n", 64)), ratios, int(p.get("trials", 20)),
                              p.get("model", "complex-gaussian"), algorithms,
                              tol=float(p.get("tol", 1e-5) or 1e-5), seed=int(p.get("seed", 0) or 0),
                              iters=int(iters) if iters else None, noise=float(p.get("noise", 0.0) or 0.0),
                              device=ctx.device, cancelled=ctx.cancelled, on_cell=on_cell)
    report["state"] = "cancelled" if ctx.cancelled() else "done"
    report["device"] = str(ctx.device)
    return report
