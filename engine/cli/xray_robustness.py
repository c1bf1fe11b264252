"""``inverse-studio xray robustness DIR --out OUT``: the classifier under ImageNet-C corruptions, with DIP.

::

    inverse-studio xray robustness DIR --out OUT [--films 200] [--dip-films 24] [--split val|all]
        [--corruptions NAME,...] [--severities 1,2,3,4,5] [--dip-corruptions NAME,...]
        [--dip-severities 1,3,5] [--dip-max-iters N] [--no-dip-clean] [--model PATH|default] [--seed 0]
        [--threads 1] [--device cpu] [--json]

DIR holds ``NORMAL/`` and ``PNEUMONIA/`` films. By default the films are a balanced seeded subset of the
model's own validation split (patients it never trained on); ``--split all`` takes every film of DIR (a
held-out folder); the default model is the one whose validation list ships beside it. Each film is
resized to the model's input, corrupted, then classified; for the noise corruptions a smaller subset is
also restored with the Deep Image Prior (preset cpu, ES-WMV) first.

Writes ``OUT/robustness.json`` (per corruption and severity: AUC, accuracy at the model's threshold,
sensitivity, specificity and n; the clean baseline; the DIP rows with and without the front end; the films
used; wall time; machine and load) and ``OUT/robustness.csv``; prints the table (the JSON with ``--json``).
A DIR that is not such a folder, or an OUT that holds a result already, exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import time

from engine.cli.common import (
    add_device_argument,
    add_subparser,
    check_out_folder,
    make_out_folder,
    nonnegative_int,
    positive_int,
    resolve_device,
    say,
)
from engine.core.errors import InputError


def _names(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated corruption names, got {text!r}")
    return names


def _severities(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated severities from 1 to 5, got {text!r}") from None
    if not values or any(not 1 <= v <= 5 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated severities from 1 to 5, got {text!r}")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``robustness`` to the ``xray`` subcommands."""
    from engine.xray.robustness import DIP_DEFAULT, HELD_OUT_MODEL, IMAGENET_C_15

    rp = add_subparser(sub, "robustness", help="score the classifier under ImageNet-C corruptions, with DIP",
                       description="Score the chest X-ray classifier on films under the ImageNet-C corruptions "
                                   "(grey, severities 1-5), and with DIP denoising in front for the noise ones.")
    rp.add_argument("data", metavar="DIR", help="folder with NORMAL/ and PNEUMONIA/ films")
    rp.add_argument("--out", required=True, help="folder for robustness.json and robustness.csv")
    rp.add_argument("--films", type=nonnegative_int, default=200,
                    help="balanced seeded subset of the films (0: every film of the split; default 200)")
    rp.add_argument("--dip-films", type=nonnegative_int, default=24,
                    help="films restored with DIP, a balanced part of --films (0: no DIP; default 24)")
    rp.add_argument("--split", choices=("val", "all"), default="val",
                    help="val: the model's validation split (default); all: every film of DIR")
    rp.add_argument("--corruptions", type=_names, default=list(IMAGENET_C_15), metavar="NAME,...",
                    help="ImageNet-C corruptions (default: the 15 of the paper)")
    rp.add_argument("--severities", type=_severities, default=[1, 2, 3, 4, 5], metavar="S,...")
    rp.add_argument("--dip-corruptions", type=_names, default=list(DIP_DEFAULT), metavar="NAME,...",
                    help="noise corruptions given the DIP front end (default: gaussian, shot and impulse noise)")
    rp.add_argument("--dip-severities", type=_severities, default=[1, 3, 5], metavar="S,...")
    rp.add_argument("--dip-max-iters", type=positive_int, default=None,
                    help="cap on DIP iterations (default: the cpu preset's budget; ES-WMV stops earlier)")
    rp.add_argument("--no-dip-clean", action="store_true",
                    help="do not restore the clean DIP films (their row says what the front end costs)")
    rp.add_argument("--model", default=str(HELD_OUT_MODEL),
                    help=f"a model .json, default (the app's model), a TorchScript file or xrv:NAME (default: "
                         f"{HELD_OUT_MODEL.stem}, whose validation split ships beside it)")
    rp.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the film draw and the corruptions")
    rp.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    add_device_argument(rp, default="cpu")
    rp.add_argument("--json", action="store_true", help="print the result as JSON instead of the table")
    rp.set_defaults(func=run_robustness)


def run_robustness(args: argparse.Namespace) -> int:
    """``inverse-studio xray robustness``: 0 when the result is written."""
    from pathlib import Path

    from engine.xray.data import list_dataset
    from engine.xray.robustness import RESULT_FILE, evaluate, markdown_table, write_outputs

    root = Path(args.data).expanduser()
    if not root.is_dir():
        raise InputError(f"{args.data!r} is not a folder; expected a folder with NORMAL/ and PNEUMONIA/ films")
    list_dataset(root)  # both class folders with images, before any work
    out = check_out_folder(args.out)
    if (out / RESULT_FILE).exists():
        raise InputError(f"--out {args.out!r} already holds {RESULT_FILE}; pass a new folder, or delete it first")
    if args.dip_films > (args.films or args.dip_films):
        raise InputError(f"--dip-films {args.dip_films} is more than --films {args.films}; "
                         "the DIP films are a part of the main films")
    device = resolve_device(args)
    t0 = time.monotonic()
    last = [-1e9]

    def progress(done: int, total: int, text: str) -> None:
        now = time.monotonic() - t0
        if now - last[0] >= 10 or done == total:  # a line every 10 s keeps a long run readable
            last[0] = now
            say(f"[{now:6.0f} s] {done}/{total} {text}")

    result = evaluate(root, films=args.films, dip_films=args.dip_films, split=args.split,
                      corruptions=args.corruptions, severities=args.severities,
                      dip_corruptions=args.dip_corruptions, dip_severities=args.dip_severities,
                      dip_max_iters=args.dip_max_iters, dip_clean=not args.no_dip_clean, model=args.model,
                      seed=args.seed, threads=args.threads, device=device, progress=progress)
    make_out_folder(out)
    jpath, cpath = write_outputs(result, out)
    if args.json:
        print(json.dumps(result))
    else:
        f = result["films"]
        print(f"{f['n']} films ({f['normal']} normal, {f['pneumonia']} pneumonia) from {f['source']}; "
              f"{result['model']['name']}, threshold {result['model']['threshold']:g}")
        print(markdown_table(result))
    say(f"wrote {jpath} and {cpath} in {result['wall_seconds']['total_s']:.0f} s")
    return 0
