"""Turn what a user gave (an image, maybe a reference and a mask) into a restoration run's inputs.

Everything is validated here, before a run folder exists, so a bad input never leaves a
half-written run behind.
"""

from __future__ import annotations

import numpy as np

from engine.core.errors import InputError

TASKS: dict[str, str] = {
    "denoise": "Denoise",
    "inpaint": "Inpaint",
    "sr": "Super-resolution",
    "deblur": "Deblur (known kernel)",
    "jpeg": "JPEG artifact removal",
}


def _same_channels(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    """Bring ``b`` to ``a``'s channel layout when one is grey and the other RGB."""
    if a.ndim == b.ndim:
        return b
    if a.ndim == 2:
        return b.mean(axis=2).astype(np.float32)
    raise InputError(f"{what} is grey but the image is RGB; give an RGB {what}")


def prepare_inputs(image: np.ndarray, params: dict, *, reference: np.ndarray | None = None,
                   mask: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Build the arrays and parameters of a restoration run.

    Parameters
    ----------
    image : float32 (H, W) or (H, W, 3) in [0, 1]
        With ``params["simulate"]`` (or a corruption) it is the clean image, which becomes
        the reference; otherwise it is the observation itself.
    params : dict
        ``task``; ``simulate``; ``corrupt``/``severity`` (any corruption of
        ``engine.dip.corruptions``); ``seed``; task options ``mask_kind``/``mask_fraction``
        (inpaint), ``factor`` (sr), ``kernel`` ("gaussian"/"motion") with ``blur_sigma`` or
        ``motion_length``/``motion_angle`` (deblur), ``quality`` (jpeg), ``sigma`` (noise
        added to simulated blur and to ``--simulate`` denoising, in [0, 1]).
    reference, mask : optional arrays
        A clean reference of the output's size; an inpainting mask (nonzero = known pixel).

    Returns
    -------
    arrays : dict
        ``observed`` and, where they apply, ``reference``, ``mask``, ``kernel``.
    params : dict
        ``params`` with the corruption's description added under ``corruption``.
    """
    from engine.dip import operators as dg
    from engine.dip.corruptions import corrupt, describe

    params = dict(params)
    task = params.get("task", "denoise")
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    seed = int(params.get("seed") or 0)
    simulate = bool(params.get("simulate"))
    corruption = params.get("corrupt")
    sigma = float(params.get("sigma", 25 / 255) or 0.0)
    image = np.asarray(image, np.float32)
    arrays: dict[str, np.ndarray] = {}
    clean = image if (simulate or corruption) else None
    if mask is not None:
        mask = np.asarray(mask, np.float32)
        if mask.ndim == 3:
            mask = mask.max(axis=2)
        if mask.shape != image.shape[:2]:
            raise InputError(f"mask is {mask.shape[1]}x{mask.shape[0]} but the image is "
                             f"{image.shape[1]}x{image.shape[0]}; they must match")
        mask = (mask > 0.5).astype(np.float32)
        if mask.sum() == 0:
            raise InputError("the mask marks no pixel as known; white (nonzero) = known pixel")
    info = ""
    if task == "denoise":
        if corruption:
            observed = corrupt(image, corruption, severity=params.get("severity", 3), seed=seed)
            info = describe(corruption, params.get("severity", 3))
        elif simulate:
            observed = dg.add_noise(image, sigma, seed=seed)
            info = f"Gaussian noise, std {sigma:.4f}"
        else:
            observed = image
    elif task == "inpaint":
        if simulate:
            out = dg.degrade(image, "inpaint", mask=mask, mask_kind=params.get("mask_kind", "random"),
                             fraction=float(params.get("mask_fraction", 0.5)), seed=seed)
            observed, mask = out["observed"], out["mask"]
            info = f"mask: {out['info'].get('mask_kind')}"
        else:
            if mask is None:
                raise InputError("inpainting an observed image needs its mask (white = known pixel)")
            observed = image * (mask[..., None] if image.ndim == 3 else mask)
        arrays["mask"] = mask
    elif task == "sr":
        f = int(params.get("factor", 4))
        if f not in (2, 4, 8):
            raise InputError(f"super-resolution factor {f}; expected 2, 4 or 8")
        if simulate:
            h, w = (image.shape[0] // f) * f, (image.shape[1] // f) * f
            if min(h, w) // f < 8:
                raise InputError(f"image too small for x{f}: the low-resolution side would be under 8 px")
            clean = image[:h, :w]
            observed = dg.degrade(clean, "sr", factor=f)["observed"]
            info = f"downsampled x{f}"
        else:
            observed = image
    elif task == "deblur":
        kind = params.get("kernel", "gaussian")
        if kind == "gaussian":
            kernel = dg.gaussian_kernel(float(params.get("blur_sigma", 2.0)))
        elif kind == "motion":
            kernel = dg.motion_kernel(int(params.get("motion_length", 9)),
                                      angle=float(params.get("motion_angle", 30)))
        else:
            raise InputError(f"unknown blur kernel {kind!r}; expected gaussian or motion")
        arrays["kernel"] = kernel
        if simulate:
            observed = dg.degrade(image, "deblur", kernel=kernel, sigma=sigma, seed=seed)["observed"]
            info = f"{kind} blur + noise std {sigma:.3f}"
        else:
            observed = image
    else:  # jpeg
        q = int(params.get("quality", 10))
        if simulate:
            observed = dg.jpeg(image, quality=q)
            info = f"JPEG quality {q}"
        else:
            observed = image
    if corruption and task != "denoise":
        observed = corrupt(observed, corruption, severity=params.get("severity", 3), seed=seed)
        info = (info + "; " if info else "") + describe(corruption, params.get("severity", 3))
    if reference is None and clean is not None:
        reference = clean
    if reference is not None:
        reference = _same_channels(observed, np.asarray(reference, np.float32), "reference")
        want = observed.shape[:2]
        if task == "sr":
            f = int(params.get("factor", 4))
            want = (observed.shape[0] * f, observed.shape[1] * f)
        if reference.shape[:2] != want:
            raise InputError(f"reference is {reference.shape[1]}x{reference.shape[0]} but the restored image "
                             f"will be {want[1]}x{want[0]}; give a reference of that size")
        arrays["reference"] = reference.astype(np.float32)
    arrays["observed"] = np.asarray(observed, np.float32)
    params["corruption"] = info
    return arrays, params
