"""``inverse-studio batch restore|pr|xray INPUTS... --out DIR``: every input as a Ray task.

Each input gets a run folder in DIR (the run store's format); ``DIR/batch.json`` holds the settings
and one item per input (``done``/``failed``, message, key numbers). Exit 0 when all are done, 1 when
any failed, 2 for bad usage or when Ray is not installed. Rerunning the same command skips done items.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli.common import Parser, add_subparser
from engine.core.errors import InputError


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="input files, one run each")
    ap.add_argument("--out", required=True, metavar="DIR", help="batch folder (run folders and batch.json)")
    ap.add_argument("--address", default=None,
                    help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray started here)")
    ap.add_argument("--cpus-per-task", type=float, default=1.0, metavar="C", help="CPUs per task (default 1)")
    ap.add_argument("--gpus-per-task", type=float, default=0.0, metavar="G",
                    help="GPUs per task (default 0; > 0 runs the jobs on CUDA)")
    ap.add_argument("--num-cpus", type=int, default=None,
                    help="CPUs of the local Ray (default: all); ignored with a cluster")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--seed", type=int, default=0)


def _window(text: str) -> list[float]:
    try:
        c, w = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CENTER,WIDTH, got {text!r}") from None
    if w <= 0:
        raise argparse.ArgumentTypeError(f"the window width must be > 0, got {w:g}")
    return [c, w]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_subparser(subparsers, "batch", help="many inputs as Ray tasks (restore, pr, xray)")
    sub = p.add_subparsers(dest="batch_kind", metavar="KIND", parser_class=Parser)

    r = add_subparser(sub, "restore", help="Deep Image Prior restoration of each image")
    _common(r)
    r.add_argument("--task", default="denoise", choices=["denoise", "inpaint", "sr", "deblur", "jpeg"])
    r.add_argument("--simulate", action="store_true",
                   help="treat each input as clean: apply the task's degradation, use it as the reference")
    r.add_argument("--corrupt", default=None, help="corrupt each input first with this corruption")
    r.add_argument("--severity", type=int, default=3)
    r.add_argument("--factor", type=int, default=4, choices=[2, 4, 8])
    r.add_argument("--preset", default=None)
    r.add_argument("--loss", default="mse", choices=["mse", "l1", "huber"])
    r.add_argument("--stopping", default="wmv", choices=["wmv", "emv", "none"])
    r.add_argument("--max-iters", type=int, default=None)
    r.set_defaults(func=run)

    q = add_subparser(sub, "pr", help="Fourier phase retrieval of each diffraction pattern")
    _common(q)
    q.add_argument("--recipe", default=None, help="operator chain (default: the pr command's)")
    q.add_argument("--starts", type=int, default=4)
    q.add_argument("--average", type=int, default=0)
    q.add_argument("--mask-zeros", choices=("auto", "all", "none"), default="auto")
    q.add_argument("--saturation", type=float, default=None)
    q.add_argument("--positivity", action="store_true")
    q.set_defaults(func=run)

    x = add_subparser(sub, "xray", help="chest X-ray prediction of each film")
    _common(x)
    x.add_argument("--model", default="default", help="default (the only model a batch runs)")
    x.add_argument("--window", type=_window, default=None, metavar="CENTER,WIDTH",
                   help="display window in modality units (default: the file's)")
    x.set_defaults(func=run)


OPTIONS = {"restore": ("task", "simulate", "corrupt", "severity", "factor", "preset", "loss", "stopping",
                       "max_iters", "seed"),
           "pr": ("recipe", "starts", "average", "mask_zeros", "saturation", "positivity", "seed"),
           "xray": ("model", "window", "seed")}


def run(args: argparse.Namespace) -> int:
    from engine.batch.runner import run_batch

    kind = args.batch_kind
    if kind == "pr" and not 1 <= args.starts <= 4096:
        raise InputError(f"--starts must be between 1 and 4096, got {args.starts}")
    if kind == "pr" and args.recipe:
        from engine.cdi.recipe import parse_recipe

        parse_recipe(args.recipe)  # a typo is a usage error, not one failed item per input
    if kind == "xray" and args.model != "default":
        raise InputError("a batch runs the default X-ray model only (--model default)")
    if kind == "restore" and args.max_iters is not None and args.max_iters < 1:
        raise InputError(f"--max-iters must be >= 1, got {args.max_iters}")
    options = {k: getattr(args, k) for k in OPTIONS[kind]}
    doc = run_batch(kind, args.inputs, args.out, options=options, address=args.address,
                    cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task,
                    num_cpus=args.num_cpus, progress=not args.quiet)
    for it in doc["items"]:
        if it["state"] != "done":
            print(f"item {it['index']} ({it['input']}): {it['message']}", file=sys.stderr)
    print(json.dumps({"done": doc["done"], "failed": doc["failed"], "wall_seconds": doc["wall_seconds"]}),
          file=sys.stderr)
    return 1 if doc["failed"] else 0
