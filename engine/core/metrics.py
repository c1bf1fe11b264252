"""Image quality against a reference: PSNR and SSIM, for arrays or tensors in [0, 1].

Every metric takes the reference first, then the estimate (scikit-image's order); options are
keyword-only.
"""

from __future__ import annotations

import numpy as np
import torch


def psnr(reference: np.ndarray | torch.Tensor, image: np.ndarray | torch.Tensor, *,
         data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``image`` against ``reference`` in dB.

    ``image`` is clipped to ``[0, data_range]`` first (what a user would save). Tensors stay on
    their device (one host sync), so it is cheap to call every step.
    """
    x, ref = image, reference
    if isinstance(x, torch.Tensor) or isinstance(ref, torch.Tensor):
        xt = torch.as_tensor(x).float()
        rt = torch.as_tensor(ref, device=xt.device).float()
        mse = float(torch.mean((xt.clamp(0, data_range) - rt) ** 2))
    else:
        xa = np.clip(np.asarray(x, np.float64), 0, data_range)
        mse = float(np.mean((xa - np.asarray(ref, np.float64)) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range ** 2 / mse))


def ssim(reference: np.ndarray | torch.Tensor, image: np.ndarray | torch.Tensor, *,
         data_range: float = 1.0) -> float:
    """Structural similarity of ``image`` against ``reference`` (scikit-image, 7x7 uniform window).

    Grey ``(H, W)`` or ``(H, W, C)``; tensors ``(1, C, H, W)`` are converted. It costs tens of ms
    at 256^2: call it every few steps.
    """
    x, ref = image, reference
    from skimage.metrics import structural_similarity

    a, b = _hwc(x), _hwc(ref)
    a = np.clip(a, 0, data_range)
    if a.ndim == 3 and a.shape[2] == 1:
        a, b = a[:, :, 0], b[:, :, 0]
    win = min(7, *[s if s % 2 else s - 1 for s in a.shape[:2]])
    if win < 3:
        return float("nan")
    return float(structural_similarity(a, b, data_range=data_range, win_size=win,
                                       channel_axis=2 if a.ndim == 3 else None))


def _hwc(x: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        t = x.detach().float().cpu()
        if t.ndim == 4:
            t = t[0]
        return t.numpy().transpose(1, 2, 0).astype(np.float64)
    return np.asarray(x, np.float64)
