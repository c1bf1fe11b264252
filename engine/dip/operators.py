"""Forward operators of image restoration, and generators of degraded observations.

Images are float arrays in [0, 1]: numpy ``(H, W)`` or ``(H, W, C)`` outside the solvers,
torch ``(1, C, H, W)`` inside them. An operator ``A`` maps the restored image ``x`` to what
the camera saw, ``y = A(x)``; the Deep Image Prior fits ``A(net(z))`` to ``y``. Every
operator is an :class:`engine.core.operator.Operator`: ``A`` (also ``op(x)``) and its exact
adjoint ``A_adjoint``, for the same padding and resampling.

==========  =============================  =================================================
task        operator ``A``                 observation made by :func:`degrade`
==========  =============================  =================================================
denoise     identity                       ``clip(x + N(0, sigma))``
inpaint     ``x * mask`` (1 = known)       ``x * mask``; mask from :func:`make_mask`
sr          anti-aliased bicubic ``/f``    ``A(x)`` for f in 2, 4, 8
deblur      convolution with a known PSF   ``A(x) + N(0, sigma)``; Gaussian or motion PSF
jpeg        identity                       JPEG encode/decode at a quality
==========  =============================  =================================================
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F

from engine.core.errors import InputError
from engine.core.operator import Operator
from engine.core.seeds import Seed, numpy_rng

TASKS = ("denoise", "inpaint", "sr", "deblur", "jpeg")
SR_FACTORS = (2, 4, 8)


# ----------------------------------------------------------------------------- conversions

def to_tensor(img: np.ndarray, *, device: torch.device | str | None = None) -> torch.Tensor:
    """``(H, W)`` or ``(H, W, C)`` array -> float32 tensor ``(1, C, H, W)``."""
    a = np.asarray(img, dtype=np.float32)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise InputError(f"image has shape {a.shape}; expected (H, W) or (H, W, C)")
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None].to(device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """Tensor ``(1, C, H, W)`` -> array ``(H, W)`` for one channel, else ``(H, W, C)``."""
    a = t.detach().float().cpu().numpy()[0].transpose(1, 2, 0)
    return a[:, :, 0] if a.shape[2] == 1 else a


# ----------------------------------------------------------------------------- operators

class Identity(Operator):
    """Denoising and JPEG artefact removal: the observation is the image itself."""

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return x

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return y

    def out_shape(self, h: int, w: int) -> tuple[int, int]:
        return h, w


class Mask(Operator):
    """Inpainting: keep the pixels where ``mask`` is 1 (a diagonal operator, so its own adjoint).

    Parameters
    ----------
    mask : tensor ``(1, 1 or C, H, W)``
    """

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.float())

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return x * self.mask

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return y * self.mask

    def out_shape(self, h: int, w: int) -> tuple[int, int]:
        return h, w


class Downsample(Operator):
    """Super-resolution: anti-aliased bicubic downsampling by an integer ``factor``.

    Parameters
    ----------
    factor : int
    in_shape : (H, W) or None
        The size of the high-resolution image, which the adjoint returns. ``A`` keeps
        ``(H // factor, W // factor)`` of any input, so an output alone does not tell ``H``
        and ``W`` apart from ``factor`` times its size, the default.
    """

    def __init__(self, factor: int, *, in_shape: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.factor = int(factor)
        self.in_shape = None if in_shape is None else (int(in_shape[0]), int(in_shape[1]))

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        h, w = self.out_shape(x.shape[2], x.shape[3])
        return F.interpolate(x, size=(h, w), mode="bicubic", antialias=True, align_corners=False)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        h, w = self.in_shape or (y.shape[2] * self.factor, y.shape[3] * self.factor)
        if self.out_shape(h, w) != tuple(y.shape[2:]):
            raise ValueError(f"y is {tuple(y.shape[2:])}; the operator maps {(h, w)} to {self.out_shape(h, w)}")
        # A is linear, so its vector-Jacobian product at any point is A^T y, with the very
        # weights (antialiased bicubic support, edge handling) of the forward pass
        with torch.enable_grad():
            x = torch.zeros((*y.shape[:2], h, w), dtype=y.dtype, device=y.device, requires_grad=True)
            (g,) = torch.autograd.grad(self.A(x), x, grad_outputs=y, create_graph=y.requires_grad)
        return g

    def out_shape(self, h: int, w: int) -> tuple[int, int]:
        return h // self.factor, w // self.factor


class Blur(Operator):
    """Deblurring: convolution with a known PSF, reflect-padded so the size is kept.

    Images with a side no longer than half the kernel are padded by replication instead
    (reflection needs the pad to be shorter than the side).

    Parameters
    ----------
    kernel : 2-D array or tensor, odd sides, normalised to sum 1 here.
    """

    def __init__(self, kernel: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        k = torch.as_tensor(np.asarray(kernel, dtype=np.float32))
        if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
            raise InputError(f"blur kernel has shape {tuple(k.shape)}; expected a 2-D kernel with odd sides")
        if float(k.sum()) <= 0:
            raise InputError("blur kernel sums to zero or less; expected a non-negative PSF")
        self.register_buffer("kernel", (k / k.sum())[None, None])

    def _pad_mode(self, h: int, w: int) -> str:
        kh, kw = self.kernel.shape[2:]
        return "reflect" if h > kh // 2 and w > kw // 2 else "replicate"

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802
        kh, kw = self.kernel.shape[2:]
        c = x.shape[1]
        mode = self._pad_mode(x.shape[2], x.shape[3])
        xp = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode=mode)
        return F.conv2d(xp, self.kernel.expand(c, 1, kh, kw), groups=c)

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        kh, kw = self.kernel.shape[2:]
        c, h, w = y.shape[1:]
        mode = self._pad_mode(h, w)
        # the adjoint of a valid correlation is the full transposed convolution, back on the padded grid
        yp = F.conv_transpose2d(y, self.kernel.to(y.dtype).expand(c, 1, kh, kw), groups=c)
        # the adjoint of the padding adds every padded pixel back onto the pixel it copies
        for dim, n, p in ((2, h, kh // 2), (3, w, kw // 2)):
            src = _pad_source(n, p, mode, y.device)
            out = torch.zeros((*yp.shape[:dim], n, *yp.shape[dim + 1:]), dtype=yp.dtype, device=yp.device)
            yp = out.index_add(dim, src, yp)
        return yp

    def out_shape(self, h: int, w: int) -> tuple[int, int]:
        return h, w


def _pad_source(n: int, p: int, mode: str, device: torch.device) -> torch.Tensor:
    """For each of the ``n + 2p`` positions of a padded axis, the index of the pixel it copies."""
    i = torch.arange(-p, n + p, device=device)
    if mode == "reflect":  # mirror without repeating the edge pixel, as F.pad's reflect
        i = i.abs()
        return torch.where(i > n - 1, 2 * (n - 1) - i, i)
    return i.clamp(0, n - 1)


def make_operator(task: str, *, mask: np.ndarray | torch.Tensor | None = None, factor: int = 4,
                  kernel: np.ndarray | None = None, channels: int = 3,
                  device: torch.device | str | None = None) -> Operator:
    """The forward operator of ``task``.

    Parameters
    ----------
    task : {"denoise", "inpaint", "sr", "deblur", "jpeg"}
    mask : array ``(H, W)`` or ``(H, W, C)``, 1 = known pixel; required for inpaint.
    factor : int
        Super-resolution factor (2, 4 or 8).
    kernel : 2-D array
        The PSF for deblur.
    """
    if task in ("denoise", "jpeg"):
        op: Operator = Identity()
    elif task == "inpaint":
        if mask is None:
            raise InputError("inpainting needs a mask; give a mask image (1 = known pixel) or generate one")
        m = mask if isinstance(mask, torch.Tensor) else to_tensor(np.asarray(mask, dtype=np.float32))
        op = Mask((m > 0.5).float())
    elif task == "sr":
        if int(factor) not in SR_FACTORS:
            raise InputError(f"super-resolution factor {factor}; expected one of {SR_FACTORS}")
        op = Downsample(int(factor))
    elif task == "deblur":
        if kernel is None:
            raise InputError("deblurring needs a known blur kernel (Gaussian or motion)")
        op = Blur(kernel)
    else:
        raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return op.to(device)


# ----------------------------------------------------------------------------- kernels and masks

def gaussian_kernel(sigma: float, *, size: int | None = None) -> np.ndarray:
    """Isotropic Gaussian PSF (odd side ``size``, default ``2*ceil(3 sigma)+1``), sum 1."""
    if sigma <= 0:
        raise InputError(f"Gaussian blur sigma {sigma}; expected > 0")
    size = size or 2 * math.ceil(3 * sigma) + 1
    r = np.arange(size) - size // 2
    g = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).astype(np.float32)


def motion_kernel(length: int = 9, *, angle: float = 0.0) -> np.ndarray:
    """Linear motion PSF: a line of ``length`` pixels at ``angle`` degrees, sum 1."""
    if length < 1:
        raise InputError(f"motion length {length}; expected >= 1")
    size = length + 1 - length % 2
    k = np.zeros((size, size), np.float32)
    c = size // 2
    t = np.deg2rad(angle)
    # sample the segment densely and splat bilinearly so any angle gives a connected line
    for s in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        x, y = c + s * np.cos(t), c - s * np.sin(t)
        x0, y0 = int(np.floor(x)), int(np.floor(y))
        fx, fy = x - x0, y - y0
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                    k[y0 + dy, x0 + dx] += wy * wx
    return k / k.sum()


def make_mask(shape: tuple[int, int], *, kind: str = "random", fraction: float = 0.5, seed: Seed = 0,
              text: str = "Inverse Studio", block: int = 16) -> np.ndarray:
    """A float mask ``(H, W)``, 1 = known pixel.

    Parameters
    ----------
    kind : {"random", "text", "blocks"}
        ``random``: each pixel missing with probability ``fraction``; ``text``: the pixels under
        a repeated line of ``text``; ``blocks``: square holes of side ``block`` covering about
        ``fraction`` of the image.
    seed : int or numpy Generator
        Draws the random and block masks (:func:`engine.core.seeds.numpy_rng`).
    """
    h, w = int(shape[0]), int(shape[1])
    rng = numpy_rng(seed)
    if kind == "random":
        return (rng.random((h, w)) >= fraction).astype(np.float32)
    if kind == "blocks":
        m = np.ones((h, w), np.float32)
        n = max(1, int(round(fraction * h * w / block ** 2)))
        for _ in range(n):
            y, x = rng.integers(0, max(1, h - block + 1)), rng.integers(0, max(1, w - block + 1))
            m[y:y + block, x:x + block] = 0
        return m
    if kind == "text":
        from PIL import Image, ImageDraw, ImageFont

        img = Image.new("L", (w, h), 255)
        draw = ImageDraw.Draw(img)
        size = max(8, h // 12)
        try:
            font = ImageFont.load_default(size=size)
        except TypeError:  # old Pillow: fixed-size bitmap font
            font = ImageFont.load_default()
        for i, y in enumerate(range(size // 2, h, 2 * size)):
            line = (text + "  ") * (w // max(1, size) + 1)
            draw.text((-(i * size) % (2 * size), y), line, fill=0, font=font)
        return (np.asarray(img) > 127).astype(np.float32)
    raise InputError(f"unknown mask kind {kind!r}; expected random, text or blocks")


# ----------------------------------------------------------------------------- observations

def add_noise(img: np.ndarray, sigma: float, *, seed: Seed = 0) -> np.ndarray:
    """``clip(img + N(0, sigma))`` (sigma on [0, 1]), noise drawn from ``numpy_rng(seed)``."""
    rng = numpy_rng(seed)
    return np.clip(img + rng.normal(0.0, sigma, img.shape), 0, 1).astype(np.float32)


def jpeg(img: np.ndarray, *, quality: int = 10) -> np.ndarray:
    """Encode to JPEG at ``quality`` (1-95) and decode back."""
    from PIL import Image

    if not 1 <= int(quality) <= 95:
        raise InputError(f"JPEG quality {quality}; expected 1-95")
    u8 = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=int(quality))
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue()))).astype(np.float32) / 255.0
    return out.reshape(img.shape)


def degrade(clean: np.ndarray, task: str, *, sigma: float = 25 / 255, seed: Seed = 0,
            mask: np.ndarray | None = None, mask_kind: str = "random", fraction: float = 0.5,
            factor: int = 4, kernel: np.ndarray | None = None, blur: str = "gaussian",
            blur_sigma: float = 2.0, motion_length: int = 9, motion_angle: float = 30.0,
            quality: int = 10) -> dict:
    """Make a demo observation of ``clean`` for ``task``.

    ``seed`` (an int, or a numpy Generator passed through) draws the noise and the mask.

    Returns
    -------
    dict
        ``observed`` (array), ``mask`` (inpaint), ``kernel`` (deblur), and ``info``: the
        JSON-able parameters of the corruption.
    """
    clean = np.asarray(clean, dtype=np.float32)
    info: dict = {"task": task}
    seed_info = int(seed) if isinstance(seed, (int, np.integer)) else None
    out: dict = {}
    if task == "denoise":
        out["observed"] = add_noise(clean, sigma, seed=seed)
        info.update(sigma=float(sigma), seed=seed_info)
    elif task == "inpaint":
        m = make_mask(clean.shape[:2], kind=mask_kind, fraction=fraction, seed=seed) if mask is None else mask
        m = np.asarray(m, np.float32)
        mb = m[:, :, None] if (clean.ndim == 3 and m.ndim == 2) else m
        out.update(observed=(clean * mb).astype(np.float32), mask=m)
        info.update(mask_kind=mask_kind if mask is None else "given", fraction=float(fraction),
                    seed=seed_info)
    elif task == "sr":
        op = make_operator("sr", factor=factor)
        with torch.no_grad():
            out["observed"] = np.clip(to_numpy(op(to_tensor(clean))), 0, 1).astype(np.float32)
        info.update(factor=int(factor))
    elif task == "deblur":
        if kernel is None:
            kernel = (gaussian_kernel(blur_sigma) if blur == "gaussian"
                      else motion_kernel(motion_length, angle=motion_angle))
        op = make_operator("deblur", kernel=kernel)
        with torch.no_grad():
            b = to_numpy(op(to_tensor(clean)))
        out.update(observed=add_noise(b, sigma, seed=seed) if sigma > 0 else np.clip(b, 0, 1), kernel=kernel)
        info.update(blur=blur, blur_sigma=float(blur_sigma), motion_length=int(motion_length),
                    motion_angle=float(motion_angle), sigma=float(sigma), seed=seed_info)
    elif task == "jpeg":
        out["observed"] = jpeg(clean, quality=quality)
        info.update(quality=int(quality))
    else:
        raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    out["info"] = info
    return out
