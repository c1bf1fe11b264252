"""Small instances of every generalized-PR measurement operator, for the adjointness test of the engine.

``EXAMPLES``: name -> factory returning ``(operator, x, y)`` with ``x`` of the operator's input shape
``(..., n)`` and ``y`` of its output shape ``(..., m)``. Complex operators get complex x and y; the real
Gaussian model gets real ones (its real matrix acts on real signals).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.core.operator import Operator
from engine.gpr.measurements import CodedDiffraction, GaussianMeasurement, Measurement

Example = Callable[[], tuple[Operator, torch.Tensor, torch.Tensor]]


def _pair(op: Measurement, seed: int = 0) -> tuple[Operator, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lead = (op.batch,) if op.batch else ()
    real = torch.float64 if op.dtype in (torch.float64, torch.complex128) else torch.float32

    def draw(k: int) -> torch.Tensor:
        if op.is_complex:
            return torch.complex(torch.randn(*lead, k, generator=g, dtype=real),
                                 torch.randn(*lead, k, generator=g, dtype=real))
        return torch.randn(*lead, k, generator=g, dtype=real)

    return op, draw(op.n), draw(op.m)


EXAMPLES: dict[str, Example] = {
    "gaussian_complex": lambda: _pair(GaussianMeasurement.random(7, 20, seed=1)),
    "gaussian_complex64": lambda: _pair(GaussianMeasurement.random(6, 15, seed=2, dtype=torch.float32)),
    "gaussian_real": lambda: _pair(GaussianMeasurement.random(7, 20, complex=False, seed=3)),
    "gaussian_batched": lambda: _pair(GaussianMeasurement.random(5, 12, batch=3, seed=4)),
    "cdp_1d": lambda: _pair(CodedDiffraction.random(9, 3, seed=5)),
    "cdp_2d": lambda: _pair(CodedDiffraction.random((4, 5), 2, seed=6)),
    "cdp_2d_batched": lambda: _pair(CodedDiffraction.random((3, 4), 3, batch=2, seed=7)),
}
