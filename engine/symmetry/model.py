"""A small U-Net from a Fourier magnitude to an image (a few tens of thousands of parameters)."""

from __future__ import annotations

import torch
from torch import nn

from engine.core.errors import InputError


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallUNet(nn.Module):
    """Three-level U-Net with a fully connected bottleneck.

    Phase retrieval is a global map (every pixel of ``x`` depends on every Fourier magnitude), which
    convolutions alone reach only slowly; the dense layer at the coarsest level mixes the whole field.

    Parameters
    ----------
    size : input and output side (a multiple of 8)
    width : channels of the first level (doubled at each level down)
    bottleneck : width of the dense layer at the coarsest level
    """

    def __init__(self, size: int = 32, width: int = 8, bottleneck: int = 64) -> None:
        super().__init__()
        if size % 8 or size < 8:
            raise InputError(f"size must be a positive multiple of 8, not {size}")
        self.size, self.width, self.bottleneck_width = size, width, bottleneck
        w1, w2, w3 = width, 2 * width, 4 * width
        self.enc1, self.enc2, self.enc3 = _block(1, w1), _block(w1, w2), _block(w2, w3)
        self.pool = nn.MaxPool2d(2)
        side = size // 8
        self.squeeze = nn.Conv2d(w3, 4, 1)
        self.dense = nn.Sequential(nn.Flatten(), nn.Linear(4 * side * side, bottleneck), nn.ReLU(inplace=True),
                                   nn.Linear(bottleneck, w3 * side * side), nn.ReLU(inplace=True))
        self.up3 = nn.ConvTranspose2d(w3, w3, 2, stride=2)
        self.dec3 = _block(2 * w3, w2)
        self.up2 = nn.ConvTranspose2d(w2, w2, 2, stride=2)
        self.dec2 = _block(2 * w2, w1)
        self.up1 = nn.ConvTranspose2d(w1, w1, 2, stride=2)
        self.dec1 = _block(2 * w1, w1)
        self.out = nn.Conv2d(w1, 1, 1)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """``(batch, 1, size, size)`` magnitudes -> ``(batch, 1, size, size)`` images."""
        e1 = self.enc1(y)
        e2 = self.enc2(self.pool(e1))
        e3 = self.enc3(self.pool(e2))
        side = self.size // 8
        b = self.dense(self.squeeze(self.pool(e3))).view(-1, 4 * self.width, side, side)
        d3 = self.dec3(torch.cat([self.up3(b), e3], 1))
        d2 = self.dec2(torch.cat([self.up2(d3), e2], 1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], 1))
        return self.out(d1)


def parameter_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
