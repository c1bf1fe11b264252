"""``inverse-studio gpr-sweep``: the phase-transition sweep, headless, written to a JSON file."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from engine.cli.common import (
    DISK_FULL,
    DiskFull,
    add_device_argument,
    add_subparser,
    check_out_file,
    nonnegative_int,
    resolve_device,
)
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
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--iters", type=int, default=None, help="iteration budget (default: per algorithm)")
    p.add_argument("--noise", type=float, default=0.0, help="relative noise on the intensities")
    add_device_argument(p)
    p.add_argument("--threads", type=nonnegative_int, default=None, help="torch CPU threads (0: torch's choice)")
    p.add_argument("--out", required=True, metavar="FILE.json",
                   help="output JSON file, in an existing folder (an earlier sweep report there is replaced)")
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
    out = check_out_file(args.out)
    if out.exists() and not _is_report(out):
        raise InputError(f"--out {args.out!r} is an existing file that is not a sweep report; "
                         "pass a new file name (an earlier sweep's JSON is replaced)")
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
    write_report(out, report)
    return 0


def _is_report(path: Path) -> bool:
    # only an earlier sweep's JSON may be replaced, never an unrelated file given by mistake
    try:
        if path.stat().st_size > 64 * 2**20:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and "success" in data and "ratios" in data


def write_report(out: Path, report: dict) -> None:
    """Write ``report`` to ``out`` through a fresh temporary file (readers see the old file or the new one)."""
    text = json.dumps(report, indent=1)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".gpr-sweep-", suffix=".json", dir=out.absolute().parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, out)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if isinstance(e, OSError) and e.errno in DISK_FULL:
            raise DiskFull(f"the disk is full: the sweep could not be written to {out}; "
                           "free some space and run it again") from None
        raise
