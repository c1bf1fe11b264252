"""``inverse-studio gpr-sweep``: the phase-transition sweep, headless, written to a JSON file."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from engine.cli.common import add_device_argument, add_subparser, resolve_device
from engine.core.errors import InputError
from engine.core.machine import machine_info
from engine.gpr.measurements import MODELS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_subparser(subparsers, "gpr-sweep", help="phase-transition sweep of generalized phase retrieval",
                      description="Success rate of generalized phase retrieval against m/n "
                "(success: relative error modulo global phase < tol).")
    p.add_argument("--n", type=int, required=True, help="signal length")
    p.add_argument("--ratios", required=True, help="comma-separated m/n values, e.g. 2,2.5,3 "
                   "(numbers of masks for cdp)")
    p.add_argument("--trials", type=int, default=20, help="trials per ratio (default 20)")
    p.add_argument("--model", choices=MODELS, default="complex-gaussian")
    p.add_argument("--algorithms", default="all", help="'all' or a comma list of wf,twf,rwf,af,taf,gs; "
                   "alg:init picks the initializer, e.g. gs:optimal")
    p.add_argument("--tol", type=float, default=1e-5, help="success threshold (default 1e-5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iters", type=int, default=None, help="iteration budget (default: per algorithm)")
    p.add_argument("--noise", type=float, default=0.0, help="relative noise on the intensities")
    add_device_argument(p)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the sweep and write the report; bad input raises :class:`InputError`."""
    import torch

    from engine.gpr.sweep import check_sweep, parse_algorithms, parse_ratios, phase_transition

    algorithms = parse_algorithms(args.algorithms)
    ratios = parse_ratios(args.ratios)
    check_sweep(args.n, ratios, args.trials, args.model)
    if not args.tol > 0:
        raise InputError(f"--tol must be positive; got {args.tol}")
    if args.iters is not None and args.iters < 1:
        raise InputError(f"--iters must be at least 1; got {args.iters}")
    if args.noise < 0:
        raise InputError(f"--noise must be >= 0; got {args.noise}")
    out = Path(args.out)
    if out.is_dir() or not out.parent.exists():
        raise InputError(f"--out must be a file in an existing folder; got {args.out}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args)

    def progress(cell, cells) -> None:
        if not args.quiet:
            print(f"{cell.algorithm:>16} m/n={cell.ratio:g}: success {cell.success:.2f} "
                  f"({cell.iterations} it, {cell.seconds:.1f} s)", file=sys.stderr)

    load_before = machine_info()
    t0 = time.time()
    report = phase_transition(args.n, ratios, args.trials, args.model, algorithms, tol=args.tol,
                              seed=args.seed, iters=args.iters, noise=args.noise, device=device,
                              on_cell=progress)
    report.update(noise=args.noise, device=str(device), started=round(t0, 3),
                  machine=load_before, loadavg_after=machine_info().get("loadavg_1_5_15"))
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1), encoding="utf-8")
    os.replace(tmp, out)
    return 0
