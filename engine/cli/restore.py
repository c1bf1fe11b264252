"""``inverse-studio restore``: Deep Image Prior restoration of one image, as a run folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import (
    add_device_argument,
    add_subparser,
    check_out_folder,
    nonnegative_int,
    positive_int,
    resolve_device,
    run_headless,
    start_run,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    ap = add_subparser(subparsers, "restore", help="restore one image with the Deep Image Prior",
                       description="Restore one image with the Deep Image Prior and early stopping.")
    ap.add_argument("input", help="PNG/JPEG/TIFF/NPY/NPZ image (uint8, or float in [0, 1])")
    ap.add_argument("--out", required=True,
                    help="output folder, new or empty (result.png, metrics.csv, summary.json)")
    ap.add_argument("--task", default="denoise", choices=["denoise", "inpaint", "sr", "deblur", "jpeg", "mri"],
                    help="what to undo (mri: undersampled single-coil k-space, see the MRI flags)")
    ap.add_argument("--reference", help="clean image of the same size, for PSNR/SSIM")
    ap.add_argument("--corrupt", help="corrupt INPUT first with this corruption (see --list-corruptions)")
    ap.add_argument("--severity", type=nonnegative_int, default=3,
                    help="corruption severity: 1-5 for ImageNet-C corruptions, the parameter for the others "
                         "(default 3)")
    ap.add_argument("--simulate", action="store_true",
                    help="treat INPUT as clean: apply the task's degradation, use INPUT as the reference")
    ap.add_argument("--mask", help="inpainting mask image (nonzero = known pixel)")
    ap.add_argument("--factor", type=int, default=4, choices=[2, 4, 8], help="super-resolution factor")
    ap.add_argument("--kernel", default="gaussian", choices=["gaussian", "motion"], help="deblur kernel")
    ap.add_argument("--preset", default=None, help="cpu, classic, ... (default: classic on CUDA, else cpu)")
    ap.add_argument("--loss", default="mse", choices=["mse", "l1", "huber"])
    ap.add_argument("--stopping", default="wmv", choices=["wmv", "emv", "none"])
    ap.add_argument("--run-to-budget", action="store_true", help="keep going after early stopping fires")
    ap.add_argument("--max-iters", type=positive_int, default=None,
                    help="iteration budget, at least 1 (default: the preset's)")
    ap.add_argument("--seed", type=nonnegative_int, default=0)
    add_device_argument(ap)
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    from engine.mri.cli import add_arguments as add_mri_arguments

    add_mri_arguments(ap)
    ap.set_defaults(func=run)


def run(a: argparse.Namespace) -> int:
    if a.task == "mri":
        from engine.mri.cli import run_from_args

        return run_from_args(a)
    from engine.core.imageio import read_image
    from engine.dip.inputs import prepare_inputs

    # every check before anything is written
    out = check_out_folder(a.out)
    device = resolve_device(a)
    image = read_image(a.input)
    reference = read_image(a.reference) if a.reference else None
    mask = read_image(a.mask) if a.mask else None
    params = {"task": a.task, "preset": a.preset, "loss": a.loss, "stopping": a.stopping,
              "run_to_budget": a.run_to_budget, "max_iters": a.max_iters, "seed": a.seed,
              "factor": a.factor, "kernel": a.kernel, "device": device,
              "corrupt": a.corrupt, "severity": a.severity, "simulate": a.simulate}
    # validates shapes and names, corrupts/simulates: all before anything is written
    arrays, params = prepare_inputs(image, params, reference=reference, mask=mask)
    run = start_run(out, {"kind": "restore", "params": params, "input": Path(a.input).name}, arrays)
    run_headless(run, device=device, what="restoration", quiet=a.quiet, total=params.get("max_iters"),
                 report=("es_iteration", "stopped_iteration", "es_psnr", "peak_psnr", "wall_seconds"))
    return 0
