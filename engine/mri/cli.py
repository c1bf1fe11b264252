"""Command-line glue of ``inverse-studio restore INPUT --task mri``.

``add_arguments(parser)`` adds the MRI flags to the restore parser (``--factor``, ``--mask`` and
``--simulate`` only when that parser lacks them: restore already has them for its other tasks);
``run_from_args(args)`` does the run and returns the exit status. Without ``--simulate`` INPUT is
measured k-space (``.npy``/``.npz``/``.h5``); with it, INPUT is a grey image (DICOM, PNG, JPEG, TIFF,
NPY, NPZ) or a built-in name (``phantom``, ``MR_small``, a bundled sample), and ``summary.json`` has
``input_psnr`` (the zero-filled image's PSNR), ``tv_psnr``, ``es_psnr`` and ``peak_psnr``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.core.errors import InputError


def _has(parser: argparse.ArgumentParser, flag: str) -> bool:
    return flag in parser._option_string_actions  # noqa: SLF001 - argparse keeps no public lookup


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The MRI flags, on the ``restore`` parser (or any parser, e.g. in a test)."""
    from engine.cli.common import nonnegative_float, nonnegative_int, positive_int

    if not _has(parser, "--factor"):
        parser.add_argument("--factor", type=int, default=4, choices=[2, 4, 8],
                            help="MRI: acceleration of the generated mask")
    if not _has(parser, "--mask"):
        parser.add_argument("--mask", help="MRI: k-space mask file (NPY/NPZ/PNG; nonzero = measured)")
    if not _has(parser, "--simulate"):
        parser.add_argument("--simulate", action="store_true",
                            help="MRI: INPUT is a grey image; simulate its undersampled k-space")
    g = parser.add_argument_group("MRI (--task mri)")
    g.add_argument("--mask-kind", default="random", choices=["random", "equispaced"],
                   help="MRI: columns outside the fully sampled centre (default random)")
    g.add_argument("--noise-sigma", type=nonnegative_float, default=0.0,
                   help="MRI --simulate: complex Gaussian noise per k-space sample (default 0)")
    g.add_argument("--size", type=int, default=None,
                   help="MRI --simulate: resize the image to SIZE x SIZE (default: phantom 128, files as they are)")
    g.add_argument("--slice", type=nonnegative_int, default=None, dest="kspace_slice",
                   help="MRI: slice of a k-space volume (default the middle one)")
    g.add_argument("--tv-weight", type=nonnegative_float, default=None,
                   help="MRI: λ of the TV baseline (default 0.001)")
    g.add_argument("--tv-iters", type=positive_int, default=None, help="MRI: FISTA iterations of the TV baseline")


def load_inputs(args: argparse.Namespace) -> tuple[dict, dict]:
    """Read INPUT (and --mask) and build the run's arrays and params; every check before anything is written."""
    import numpy as np

    from engine.mri.inputs import builtin_image, image_names, read_grey, read_kspace, read_mask
    from engine.mri.workflow import prepare_inputs

    params = {"mask_kind": getattr(args, "mask_kind", "random"), "acceleration": int(getattr(args, "factor", 4)),
              "noise_sigma": float(getattr(args, "noise_sigma", 0.0) or 0.0),
              "preset": getattr(args, "preset", None), "stopping": getattr(args, "stopping", "wmv"),
              "max_iters": getattr(args, "max_iters", None), "seed": int(getattr(args, "seed", 0) or 0),
              "tv_weight": getattr(args, "tv_weight", None), "tv_iters": getattr(args, "tv_iters", None)}
    if params["noise_sigma"] < 0:
        raise InputError(f"--noise-sigma {params['noise_sigma']}; expected >= 0")
    # the restore parser checks these already; a parser of another caller may not
    for flag, key, low in (("--max-iters", "max_iters", 1), ("--tv-iters", "tv_iters", 1), ("--seed", "seed", 0)):
        if params[key] is not None and params[key] < low:
            raise InputError(f"{flag} {params[key]}; expected a whole number of at least {low}")
    if params["tv_weight"] is not None and not params["tv_weight"] >= 0:
        raise InputError(f"--tv-weight {params['tv_weight']}; expected a number of at least 0")
    src = str(args.input)
    size = getattr(args, "size", None)
    if size is not None and not 8 <= size <= 1024:
        raise InputError(f"--size {size}; expected 8 to 1024")
    if getattr(args, "simulate", False):
        if not Path(src).exists() and src in image_names():
            image = builtin_image(src, size)
        else:
            image = read_grey(src, size=size)
        mask = read_mask(args.mask, image.shape) if getattr(args, "mask", None) else None
        arrays, params = prepare_inputs(params, image=image, mask=mask)
    else:
        if size is not None:
            raise InputError("--size only applies with --simulate (measured k-space keeps its size)")
        k, m = read_kspace(src, mask=getattr(args, "mask", None), slice_index=getattr(args, "kspace_slice", None))
        arrays, params = prepare_inputs(params, kspace=k, mask=m)
    params["input"] = Path(src).name
    return {k: np.asarray(v) for k, v in arrays.items()}, params


def run_from_args(args: argparse.Namespace) -> int:
    """Run ``restore --task mri``: a run folder at ``--out`` with the images, metrics.csv and summary.json."""
    from engine.cli.common import check_out_folder, resolve_device, run_headless, start_run

    out = check_out_folder(args.out)  # before anything is read or written
    device = resolve_device(args)
    arrays, params = load_inputs(args)
    params["device"] = device
    run = start_run(out, {"kind": "mri", "params": params, "input": params["input"]}, arrays)
    run_headless(run, device=device, what="MRI reconstruction", quiet=getattr(args, "quiet", False), total=None,
                 report=("input_psnr", "tv_psnr", "es_psnr", "peak_psnr", "es_iteration", "stopped_iteration",
                         "wall_seconds"))
    return 0
