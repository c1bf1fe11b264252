"""``inverse-studio pr``: headless Fourier phase retrieval of one diffraction pattern.

Writes ``DIR/object.npz`` (``object``: the best start, or the average of the best starts, cropped to
the support's bounding box plus a margin; ``support``; ``objects``: the registered starts that were
averaged), ``DIR/summary.json``, ``DIR/object.png`` (amplitude), ``DIR/object_phase.png``,
``DIR/object.cxi`` and ``DIR/prtf.json``. The summary holds the mask counts (``mask``), the support size
after each update (``support_history``), the final log-likelihood per pixel (``llk_per_pixel``) and
plain ``warnings``, each also printed on stderr as ``warning: ...``. Files are written to a temporary
folder first and moved in at the end, so a failure leaves no partial output.

``--solver dip`` fits a Deep Image Prior network instead (:mod:`engine.cdi.dip_prior`, options
``--dip-*``): the same files, one object (the one at the ES-WMV point t*), and a summary with
``"solver": "dip"``, ``es_iteration``, ``stop`` ("early-stop", "budget" or "cancelled") and ``iterations``.
A first Ctrl-C stops it after the step, writes the object at t* and exits 130.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from engine.cli.common import (
    DISK_FULL,
    DiskFull,
    Interrupted,
    add_device_argument,
    add_subparser,
    check_out_folder,
    make_out_folder,
    nonnegative_int,
    refuse_existing_run,
    resolve_device,
)
from engine.core.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    from engine.cdi.solver import DEFAULT_RECIPE

    ap = add_subparser(subparsers, "pr", help="Fourier phase retrieval (CDI) of a diffraction pattern")
    ap.add_argument("input", metavar="INPUT",
                    help="pattern: .npy .npz .tif .edf .cxi .h5 (2D or 3D, centred)")
    ap.add_argument("--out", required=True, metavar="DIR", help="output folder, new or empty")
    ap.add_argument("--mask", metavar="FILE", help="mask file, nonzero = not measured")
    ap.add_argument("--mask-zeros", choices=("auto", "all", "none"), default="auto",
                    help="zeros not measured: auto = groups of zeros bordered by exposed pixels (beamstop, "
                         "gaps, dead border), all = every zero, none = no zero (default auto)")
    ap.add_argument("--saturation", type=float, default=None, metavar="LEVEL",
                    help="counts at or above LEVEL are not measured (default: none)")
    ap.add_argument("--support", metavar="FILE",
                    help="initial support (centred, nonzero = inside); default: from the autocorrelation")
    ap.add_argument("--recipe", default=None,
                    help=f"operator chain, applied right to left (default: {DEFAULT_RECIPE})")
    ap.add_argument("--starts", type=int, default=4, help="random starts run as one batch (default 4)")
    ap.add_argument("--seed", type=nonnegative_int, default=0)
    add_device_argument(ap)
    ap.add_argument("--average", type=nonnegative_int, default=0, help="best starts to average (0: half of them)")
    ap.add_argument("--threads", type=nonnegative_int, default=0,
                    help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    ap.add_argument("--positivity", action="store_true", help="real, non-negative object")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    from engine.cdi.dip_prior import add_cli_arguments

    add_cli_arguments(ap)
    ap.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``inverse-studio pr``; bad input raises :class:`InputError` (exit 2 in :mod:`engine.cli.main`)."""
    tmp = None
    try:
        import torch

        from engine.cdi.dip_prior import params_from_args, reconstruct_cdi
        from engine.cdi.readers import load_diffraction
        from engine.cdi.recipe import parse_recipe
        from engine.cdi.workflow import reconstruct, write_outputs

        out = check_out_folder(args.out)  # before a large file is read or anything is computed
        solver = params_from_args(args)  # bad DIP options fail before the file is read
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        args.device = resolve_device(args)
        if not 1 <= args.starts <= 4096:
            raise InputError(f"--starts must be between 1 and 4096, got {args.starts}")
        if args.recipe is not None:
            parse_recipe(args.recipe)  # fail before reading a large file
        data = load_diffraction(args.input, mask=args.mask, mask_zeros=args.mask_zeros,
                                saturation=args.saturation)
        support = None
        if args.support is not None:
            from engine.cdi.readers import read_array

            support, _ = read_array(args.support)
        options = {"positivity": True} if args.positivity else None
        if solver["solver"] == "dip":
            if data.intensity.ndim != 2:
                raise InputError(f"--solver dip takes 2-D patterns; {os.path.basename(args.input)} is "
                                 f"{data.intensity.ndim}-D")
            dip = dict(solver["dip"])
            if args.positivity:
                dip["obj"] = "real"

            def dip_progress(s, st: dict) -> None:  # noqa: ANN001
                if not args.quiet and st["iteration"] % 100 == 0:
                    var = "" if st["es_variance"] is None else f" ES variance {st['es_variance']:.3g}"
                    print(f"iteration {st['iteration']}/{s.max_iters}: loss {st['loss']:.4g}{var}",
                          file=sys.stderr)

            res = _run_dip(reconstruct_cdi, data, support, args, dip, dip_progress)
        else:
            res = None

        def progress(solver, st) -> None:
            if not args.quiet and st.llk is not None and st.cycle % 100 == 0:
                b = int(st.llk.argmin())
                free = "" if st.llk_free is None else f" free {float(st.llk_free.min()):.4g}"
                print(f"cycle {st.cycle}/{st.cycles} {st.op}: llk {float(st.llk[b]):.4g}{free}",
                      file=sys.stderr)

        if res is None:
            res = reconstruct(data.intensity, data.mask, recipe=args.recipe, starts=args.starts,
                              seed=args.seed, options=options, device=args.device, average=args.average,
                              on_state=progress, support=support, mask_stats=data.mask_stats)
        summary = res.summary
        summary["input"] = os.path.basename(args.input)
        summary["input_stats"] = data.stats()
        # reconstruct has recorded the mask stats, support history, LLK per pixel and its warnings
        for w in summary["warnings"]:
            print(f"warning: {w}", file=sys.stderr)
        try:
            parent = out.resolve().parent
            make_out_folder(parent)
            tmp = Path(tempfile.mkdtemp(prefix=".pr-", dir=parent))
            names = write_outputs(tmp, res)
            with open(tmp / "summary.json", "w", encoding="utf-8") as f:
                json.dump(res.summary, f, indent=1)
            make_out_folder(out)
            refuse_existing_run(out)  # another command may have written there while this one computed
            for name in names + ["summary.json"]:
                os.replace(tmp / name, out / name)
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            raise DiskFull(f"the disk is full: the reconstruction could not be written to {out}; "
                           "free some space and run it again") from None
        if summary.get("stopped") and summary.get("solver") == "dip":
            raise Interrupted(f"stopped by Ctrl-C at iteration {summary['iterations']}: the object at "
                              f"t* = {summary['es_iteration']} was written to {out}")
        if not args.quiet:
            what = (f"DIP prior, t* = {summary['es_iteration']}, {summary['stop']}"
                    if summary.get("solver") == "dip" else f"chosen start {summary['chosen_start']}")
            print(f"wrote {out} ({what}, {summary['wall_seconds']:.1f} s on {summary['device']})",
                  file=sys.stderr)
        return 0
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)



def _run_dip(reconstruct_cdi, data, support, args: argparse.Namespace, dip: dict, progress):  # noqa: ANN001
    """The DIP prior on the loaded pattern; a first Ctrl-C stops it after the step (the object at t* is kept
    and written, then the command exits 130), a second one quits at once."""
    import threading

    from engine.cli.common import _ctrl_c_stops, say

    stop = threading.Event()
    with _ctrl_c_stops(stop, note=say):
        return reconstruct_cdi(data.intensity, data.mask, support=support, seed=args.seed, options=dip,
                               device=str(args.device), on_state=progress, cancelled=stop.is_set,
                               mask_stats=data.mask_stats)
