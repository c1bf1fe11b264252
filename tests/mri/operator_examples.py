"""Small instances of the k-space operators, for the adjointness test of the engine."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from engine.core.operator import Operator
from engine.mri.kspace import KSpace, KSpaceStacked, make_mask

Example = Callable[[], tuple[Operator, torch.Tensor, torch.Tensor]]


def _kspace(shape: tuple[int, int], phase: bool) -> tuple[Operator, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    m = make_mask(shape, kind="random", acceleration=4, seed=1)
    ph = np.random.default_rng(2).uniform(-np.pi, np.pi, shape) if phase else None
    op = KSpace(m, phase=ph).double()
    x = torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                      torch.randn(shape, generator=g, dtype=torch.float64))
    y = torch.complex(torch.randn(shape, generator=g, dtype=torch.float64),
                      torch.randn(shape, generator=g, dtype=torch.float64))
    return op, x, y


def _stacked(shape: tuple[int, int]) -> tuple[Operator, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(4)
    m = make_mask(shape, kind="equispaced", acceleration=2, seed=0)
    op = KSpaceStacked(m, phase=np.random.default_rng(5).uniform(-1, 1, shape)).double()
    x = torch.randn((1, 1, *shape), generator=g, dtype=torch.float64)
    y = torch.randn((1, 1, 2 * shape[0], shape[1]), generator=g, dtype=torch.float64)
    return op, x, y


EXAMPLES: dict[str, Example] = {
    "kspace_even": lambda: _kspace((16, 12), False),
    "kspace_odd_with_phase": lambda: _kspace((11, 13), True),
    "kspace_stacked": lambda: _stacked((10, 16)),
}
