"""The encoder-decoder "skip" network of the Deep Image Prior.

The classic configuration (5 levels x 128 channels, 4-channel skips, stride-2 down,
bilinear up, reflection padding, BatchNorm, LeakyReLU(0.2), sigmoid out) is the one
Ulyanov, Vedaldi and Lempitsky used for denoising; it has about 2.2 M parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: str = "reflection") -> nn.Module:
    p = (k - 1) // 2
    if pad == "reflection" and p > 0:
        return nn.Sequential(nn.ReflectionPad2d(p), nn.Conv2d(cin, cout, k, stride=stride))
    return nn.Conv2d(cin, cout, k, stride=stride, padding=p)


def _bn_act(c: int, norm: bool = True) -> list[nn.Module]:
    mods: list[nn.Module] = [nn.BatchNorm2d(c)] if norm else []
    return mods + [nn.LeakyReLU(0.2, inplace=True)]


class _Level(nn.Module):
    """One scale: a skip branch and a deeper branch (down, inner levels, up), concatenated."""

    def __init__(self, cin: int, down: int, up: int, skip: int, inner: nn.Module | None,
                 inner_out: int, k_down: int, k_up: int, upsample: str, pad: str, norm: bool) -> None:
        super().__init__()
        self.skip = (nn.Sequential(_conv(cin, skip, 1, pad=pad), *_bn_act(skip, norm))
                     if skip > 0 else None)
        deeper: list[nn.Module] = [
            _conv(cin, down, k_down, stride=2, pad=pad), *_bn_act(down, norm),
            _conv(down, down, k_down, pad=pad), *_bn_act(down, norm),
        ]
        if inner is not None:
            deeper.append(inner)
        self.deeper = nn.Sequential(*deeper)
        self.upsample = upsample
        cat = skip + (inner_out if inner is not None else down)
        self.merge = nn.Sequential(
            *( [nn.BatchNorm2d(cat)] if norm else [] ),
            _conv(cat, up, k_up, pad=pad), *_bn_act(up, norm),
            _conv(up, up, 1, pad=pad), *_bn_act(up, norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.deeper(x)
        mode = self.upsample
        d = nn.functional.interpolate(d, scale_factor=2, mode=mode,
                                      align_corners=False if mode == "bilinear" else None)
        if self.skip is None:
            return self.merge(d)
        s = self.skip(x)
        # odd sizes: crop both branches to the common size (centre crop)
        h, w = min(s.shape[2], d.shape[2]), min(s.shape[3], d.shape[3])
        s = _center_crop(s, h, w)
        d = _center_crop(d, h, w)
        return self.merge(torch.cat([s, d], dim=1))


def _center_crop(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    dh, dw = (t.shape[2] - h) // 2, (t.shape[3] - w) // 2
    return t[:, :, dh:dh + h, dw:dw + w]


class SkipNet(nn.Module):
    """DIP encoder-decoder with skip connections.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of the code ``z`` and of the image.
    down, up, skip : sequence of int
        Channels per level, from the finest level to the coarsest.
    k_down, k_up : int
        Kernel sizes of the down and up convolutions.
    upsample : {"bilinear", "nearest"}
    pad : {"reflection", "zero"}
    norm : bool
        BatchNorm after every convolution.
    sigmoid : bool
        Squash the output to [0, 1].
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3, *,
                 down: Sequence[int] = (128,) * 5, up: Sequence[int] = (128,) * 5,
                 skip: Sequence[int] = (4,) * 5, k_down: int = 3, k_up: int = 3,
                 upsample: str = "bilinear", pad: str = "reflection", norm: bool = True,
                 sigmoid: bool = True) -> None:
        super().__init__()
        if not (len(down) == len(up) == len(skip)):
            raise ValueError("down, up and skip must have one entry per level")
        inner: nn.Module | None = None
        inner_out = 0
        for i in reversed(range(len(down))):
            cin = in_channels if i == 0 else down[i - 1]
            inner = _Level(cin, down[i], up[i], skip[i], inner, inner_out, k_down, k_up,
                           upsample, pad, norm)
            inner_out = up[i]
        self.body = inner
        self.head = nn.Conv2d(up[0], out_channels, 1)
        self.sigmoid = sigmoid
        self.levels = len(down)

    @property
    def multiple(self) -> int:
        """Input sizes divisible by this need no padding."""
        return 2 ** self.levels

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.head(self.body(z))
        return torch.sigmoid(out) if self.sigmoid else out


def classic_skip_net(out_channels: int = 3, *, in_channels: int = 32) -> SkipNet:
    """The original DIP denoising network (about 2.2 M parameters)."""
    return SkipNet(in_channels, out_channels)


def light_skip_net(out_channels: int = 3, *, in_channels: int = 32, channels: Sequence[int] = (16,) * 5,
                   skip: int = 4, upsample: str = "bilinear", pad: str = "reflection",
                   up_channels: Sequence[int] | None = None) -> SkipNet:
    """A light skip net for CPUs: the classic layout with few channels at the fine levels.

    Most of the cost of the classic net is at the finest levels (256^2 and 128^2 for a
    256^2 image), so the light net keeps the channel counts there small and spends its
    width at the coarse levels, which cost little. ``up_channels`` (default ``channels``)
    sets the decoder widths separately.
    """
    ch = tuple(int(c) for c in channels)
    up = ch if up_channels is None else tuple(int(c) for c in up_channels)
    return SkipNet(in_channels, out_channels, down=ch, up=up, skip=(int(skip),) * len(ch),
                   upsample=upsample, pad=pad)


class ShuffledSkipNet(nn.Module):
    """A skip net run at ``1/r`` of the image size, with a pixel shuffle to full size.

    The skip net makes ``out_channels * r**2`` channels at low resolution and
    ``PixelShuffle(r)`` rearranges them into the full-size image, so no convolution runs at
    full resolution: about ``r**2`` times cheaper than the same skip net at full size. The
    code ``z`` is ``r`` times smaller on each side (``code_scale``).
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 3, *, channels: Sequence[int] = (16,) * 4,
                 skip: int = 4, r: int = 2, upsample: str = "bilinear", pad: str = "reflection") -> None:
        super().__init__()
        ch = tuple(int(c) for c in channels)
        self.net = SkipNet(in_channels, out_channels * r * r, down=ch, up=ch, skip=(int(skip),) * len(ch),
                           upsample=upsample, pad=pad, sigmoid=False)
        self.shuffle = nn.PixelShuffle(r)
        self.r = r

    @property
    def multiple(self) -> int:
        return self.r * self.net.multiple

    @property
    def code_scale(self) -> int:
        return self.r

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.shuffle(self.net(z)))
