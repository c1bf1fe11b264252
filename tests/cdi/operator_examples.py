"""Small complex examples of every operator of ``engine.cdi``, for the central adjointness test.

``EXAMPLES`` maps a name to a factory returning ``(operator, x, y)``: ``x`` has the operator's input
shape and ``y`` its output shape.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.cdi.fourier import FourierTransform
from engine.core.operator import Operator


def _complex(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=g), torch.randn(shape, generator=g))


def _fourier_2d() -> tuple[Operator, torch.Tensor, torch.Tensor]:
    # a batch of 3 starts of an 8 x 6 object (odd and even sizes alike)
    return FourierTransform(2), _complex((3, 8, 6), 0), _complex((3, 8, 6), 1)


def _fourier_3d() -> tuple[Operator, torch.Tensor, torch.Tensor]:
    return FourierTransform(3), _complex((2, 4, 5, 6), 2), _complex((2, 4, 5, 6), 3)


EXAMPLES: dict[str, Callable[[], tuple[Operator, torch.Tensor, torch.Tensor]]] = {
    "cdi.FourierTransform-2d": _fourier_2d,
    "cdi.FourierTransform-3d": _fourier_3d,
}
