"""Small instances of every restoration operator, for the adjointness test of the engine.

``EXAMPLES``: name -> factory returning ``(operator, x, y)`` with ``x`` of the operator's input shape
and ``y`` of its output shape, in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from engine.core.operator import Operator
from engine.dip import operators as dg

Example = Callable[[], tuple[Operator, torch.Tensor, torch.Tensor]]


def _pair(op: Operator, shape: tuple[int, ...], seed: int = 0) -> tuple[Operator, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    op = op.double()
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    y = torch.randn(op.A(x).shape, generator=g, dtype=torch.float64)
    return op, x, y


def _mask() -> tuple[Operator, torch.Tensor, torch.Tensor]:
    m = dg.make_mask((9, 7), kind="random", fraction=0.4, seed=1)
    return _pair(dg.make_operator("inpaint", mask=m), (1, 3, 9, 7))


EXAMPLES: dict[str, Example] = {
    "identity": lambda: _pair(dg.make_operator("denoise"), (1, 3, 8, 6)),
    "mask": _mask,
    "downsample_x2": lambda: _pair(dg.make_operator("sr", factor=2), (1, 3, 16, 12)),
    # a size that is not a multiple of the factor: the adjoint is told the input size
    "downsample_x4_odd_size": lambda: _pair(dg.Downsample(4, in_shape=(19, 13)), (1, 1, 19, 13)),
    "blur_gaussian_reflect": lambda: _pair(dg.make_operator("deblur", kernel=dg.gaussian_kernel(1.0)),
                                           (1, 3, 11, 9)),
    "blur_motion": lambda: _pair(dg.Blur(dg.motion_kernel(5, angle=30)), (1, 2, 10, 13)),
    # sides no longer than half the kernel: replicate padding
    "blur_replicate": lambda: _pair(dg.Blur(dg.gaussian_kernel(1.5)), (1, 1, 4, 6)),
    "blur_rectangular_kernel": lambda: _pair(dg.Blur(np.random.default_rng(2).random((3, 7))), (1, 1, 5, 8)),
}
