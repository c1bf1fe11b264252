"""``inverse-studio pr``: headless Fourier phase retrieval of one diffraction pattern.

Writes ``DIR/object.npz`` (``object``: the best start, or the average of the best starts, cropped to
the support's bounding box plus a margin; ``support``; ``objects``: the registered starts that were
averaged), ``DIR/summary.json``, ``DIR/object.png`` (amplitude), ``DIR/object_phase.png``,
``DIR/object.cxi`` and ``DIR/prtf.json``. Files are written to a temporary folder first and moved in
at the end, so a failure leaves no partial output. Exit status 0 on success, 2 on bad input, 1 on an
unexpected error (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

PROG = "inverse-studio pr"


def build_parser() -> argparse.ArgumentParser:
    from engine.cdi.solver import DEFAULT_RECIPE

    ap = argparse.ArgumentParser(prog=PROG,
                                 description="Fourier phase retrieval (CDI) of a diffraction pattern.")
    ap.add_argument("input", metavar="INPUT",
                    help="pattern: .npy .npz .tif .edf .cxi .h5 (2D or 3D, centred)")
    ap.add_argument("--out", required=True, metavar="DIR", help="output folder")
    ap.add_argument("--mask", metavar="FILE", help="mask file, nonzero = not measured")
    ap.add_argument("--support", metavar="FILE",
                    help="initial support (centred, nonzero = inside); default: from the autocorrelation")
    ap.add_argument("--recipe", default=None,
                    help=f"operator chain, applied right to left (default: {DEFAULT_RECIPE})")
    ap.add_argument("--starts", type=int, default=4, help="random starts run as one batch (default 4)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--average", type=int, default=0, help="best starts to average (0: half of them)")
    ap.add_argument("--threads", type=int, default=0,
                    help="CPU threads for torch (default: torch's choice; 1 is faster on a busy machine)")
    ap.add_argument("--positivity", action="store_true", help="real, non-negative object")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    return ap


def main(argv: list[str]) -> int:
    """Run ``inverse-studio pr`` with ``argv`` (without the program and subcommand names)."""
    ap = build_parser()
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:  # argparse already printed its message
        return int(e.code or 0)
    from engine.core.errors import InputError

    tmp = None
    try:
        import torch

        from engine.cdi.readers import load_diffraction
        from engine.cdi.recipe import parse_recipe
        from engine.cdi.workflow import reconstruct, write_outputs

        if args.threads > 0:
            torch.set_num_threads(args.threads)
        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise InputError("--device cuda was asked for, but no CUDA device is available; use --device cpu")
        if args.device != "cpu" and not args.device.startswith("cuda"):
            raise InputError(f"unknown device {args.device!r}; expected cpu or cuda")
        if not 1 <= args.starts <= 4096:
            raise InputError(f"--starts must be between 1 and 4096, got {args.starts}")
        if args.recipe is not None:
            parse_recipe(args.recipe)  # fail before reading a large file
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise InputError(f"--out {str(out)!r} exists and is not a folder")
        data = load_diffraction(args.input, mask=args.mask)
        support = None
        if args.support is not None:
            from engine.cdi.readers import read_array

            support, _ = read_array(args.support)
        options = {"positivity": True} if args.positivity else None

        def progress(solver, st) -> None:
            if not args.quiet and st.llk is not None and st.cycle % 100 == 0:
                b = int(st.llk.argmin())
                free = "" if st.llk_free is None else f" free {float(st.llk_free.min()):.4g}"
                print(f"cycle {st.cycle}/{st.cycles} {st.op}: llk {float(st.llk[b]):.4g}{free}",
                      file=sys.stderr)

        res = reconstruct(data.intensity, data.mask, recipe=args.recipe, starts=args.starts, seed=args.seed,
                          options=options, device=args.device, average=args.average, on_state=progress,
                          support=support)
        res.summary["input"] = os.path.basename(args.input)
        res.summary["input_stats"] = data.stats()
        parent = out.resolve().parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".pr-", dir=parent))
        names = write_outputs(tmp, res)
        with open(tmp / "summary.json", "w", encoding="utf-8") as f:
            json.dump(res.summary, f, indent=1)
        out.mkdir(exist_ok=True)
        for name in names + ["summary.json"]:
            os.replace(tmp / name, out / name)
        if not args.quiet:
            print(f"wrote {out} (chosen start {res.summary['chosen_start']}, "
                  f"{res.summary['wall_seconds']:.1f} s on {res.summary['device']})", file=sys.stderr)
        return 0
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{PROG}: error: out of memory; use fewer --starts or a smaller pattern", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - one clear line, never a traceback, for a CLI user
        print(f"{PROG}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
