"""MRI reconstruction: single-coil Cartesian k-space, zero-filled, total variation and the Deep Image Prior."""

from engine.mri.kspace import (
                               KSpace,
                               KSpaceStacked,
                               fft2c,
                               ifft2c,
                               make_mask,
                               simulate_kspace,
                               stack_complex,
                               zero_filled,
)
from engine.mri.tv import tv_reconstruct

__all__ = ["KSpace", "KSpaceStacked", "fft2c", "ifft2c", "make_mask", "simulate_kspace", "stack_complex",
           "tv_reconstruct", "zero_filled"]
