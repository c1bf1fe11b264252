"""The deep decoder of Heckel and Hand (ICLR 2019): an under-parameterised image generator.

Each layer is a 1x1 convolution, bilinear upsampling by 2, ReLU and a channel normalisation
(BatchNorm); a last 1x1 convolution and a sigmoid give the image. The input is a fixed
random code at ``1 / 2**levels`` of the image size; it has no spatial convolutions, so it
cannot fit noise as quickly as a skip net.
"""

from __future__ import annotations

import torch
from torch import nn


class DeepDecoder(nn.Module):
    """Deep decoder with ``levels`` upsampling layers of ``channels`` channels.

    Parameters
    ----------
    in_channels : int
        Channels of the code ``z`` (the same as ``channels`` in the paper).
    out_channels : int
    channels : int
        Width ``k`` of every layer (64 to 128 in the paper).
    levels : int
        Number of upsampling layers; the code has ``H / 2**levels`` rows.
    """

    def __init__(self, in_channels: int = 64, out_channels: int = 3, *, channels: int = 64,
                 levels: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        for _ in range(levels):
            layers += [nn.Conv2d(c, channels, 1, bias=False),
                       nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.ReLU(inplace=True), nn.BatchNorm2d(channels)]
            c = channels
        layers += [nn.Conv2d(c, channels, 1, bias=False), nn.ReLU(inplace=True), nn.BatchNorm2d(channels),
                   nn.Conv2d(channels, out_channels, 1, bias=False)]
        self.body = nn.Sequential(*layers)
        self.levels = levels

    @property
    def multiple(self) -> int:
        return 2 ** self.levels

    @property
    def code_scale(self) -> int:
        """The code ``z`` is ``code_scale`` times smaller than the image on each side."""
        return 2 ** self.levels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.body(z))
