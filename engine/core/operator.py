"""The base of every forward model: ``A`` and its adjoint ``A_adjoint``.

Restoration operators (mask, blur, down-sampling, k-space sampling), the Fourier magnitude model of CDI
and the generalized-PR measurements all derive from :class:`Operator`, so a solver, a test or a
teaching panel can treat them alike (deepinv's ``Physics`` has the same two methods).
"""

from __future__ import annotations

import torch
from torch import nn


class Operator(nn.Module):
    """A linear forward operator ``y = A x`` with its adjoint.

    Subclasses implement :meth:`A` and :meth:`A_adjoint`; ``forward`` is ``A`` so an operator can be
    called like any module. Buffers (masks, kernels, matrices) move with ``.to(device)``.
    """

    def A(self, x: torch.Tensor) -> torch.Tensor:  # noqa: N802 - the field's name for it
        """Apply the forward model."""
        raise NotImplementedError

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:  # noqa: N802
        """Apply the adjoint: ``<A x, y> = <x, A_adjoint y>`` for every ``x``, ``y``."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A(x)


def adjointness_gap(op: Operator, x: torch.Tensor, y: torch.Tensor) -> float:
    """``|<A x, y> - <x, A^* y>| / (|A x| |y|)``: ~1e-7 in float32 for a correct adjoint.

    ``x`` must have the operator's input shape and ``y`` its output shape; complex tensors are fine.
    """
    ax = op.A(x)
    aty = op.A_adjoint(y)
    lhs = torch.vdot(ax.reshape(-1).to(torch.complex128), y.reshape(-1).to(torch.complex128))
    rhs = torch.vdot(x.reshape(-1).to(torch.complex128), aty.reshape(-1).to(torch.complex128))
    scale = float(ax.abs().norm() * y.abs().norm()) or 1.0
    return float(abs(lhs - rhs)) / scale
