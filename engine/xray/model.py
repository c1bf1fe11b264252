"""Compact residual CNN for frontal chest X-rays (grey input, two classes).

Shape of the default model for a 160^2 input: 5x5 stem with stride 4 (40^2), then three residual
stages with strides 2, 2, 1 (20^2, 10^2, 10^2), global average pooling and a linear layer. The last
stage's 10x10 feature map is the Grad-CAM grid. No ReLU is in-place, so hooks on any block see clean tensors.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn


class ConvBN(nn.Sequential):
    """Convolution (no bias), BatchNorm, optional ReLU."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True) -> None:
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU())
        super().__init__(*layers)


class ResBlock(nn.Module):
    """Basic residual block: two 3x3 convs; a strided 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBN(cin, cout, 3, stride), ConvBN(cout, cout, 3, 1, act=False))
        self.skip = (
            nn.Identity() if (cin == cout and stride == 1) else ConvBN(cin, cout, 1, stride, act=False)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class CXRNet(nn.Module):
    """Small ResNet-style classifier.

    Parameters
    ----------
    in_channels : int
        1 for grey radiographs.
    num_classes : int
        Output logits (2: NORMAL, PNEUMONIA).
    widths : tuple of int
        Stem width, then one width per residual stage (each stage halves the grid).
    blocks : tuple of int
        Residual blocks per stage.
    dropout : float
        Dropout before the linear layer.
    stem_stride : int
        Stride of the 5x5 stem (2, or 4 to make training cheaper at a given input size).
    strides : tuple of int, optional
        Stride of each stage's first block (default 2 for all).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        widths: tuple[int, ...] = (24, 48, 96, 192),
        blocks: tuple[int, ...] = (1, 1, 1),
        dropout: float = 0.2,
        stem_stride: int = 2,
        strides: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        strides = tuple(strides) if strides is not None else (2,) * len(blocks)
        if not (len(blocks) == len(strides) == len(widths) - 1):
            raise ValueError("need one entry of blocks and strides per stage (len(widths) - 1)")
        stages: list[nn.Module] = [ConvBN(in_channels, widths[0], 5, stem_stride)]
        for cin, cout, n, st in zip(widths[:-1], widths[1:], blocks, strides):
            stage = [ResBlock(cin, cout, st)] + [ResBlock(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*stage))
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(widths[-1], num_classes)

    @property
    def cam_layer(self) -> nn.Module:
        """The module whose output is the Grad-CAM feature map (last residual stage)."""
        return self.features[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(torch.flatten(self.pool(self.features(x)), 1)))


def build_model(config: dict) -> CXRNet:
    """Build the network described by a model config's ``"arch"`` entry (see ``train.py``)."""
    a = config.get("arch", {})
    return CXRNet(
        in_channels=int(a.get("in_channels", 1)),
        num_classes=len(config.get("labels", ("NORMAL", "PNEUMONIA"))),
        widths=tuple(int(w) for w in a.get("widths", (24, 48, 96, 192))),
        blocks=tuple(int(b) for b in a.get("blocks", (1, 1, 1))),
        dropout=float(a.get("dropout", 0.2)),
        stem_stride=int(a.get("stem_stride", 2)),
        strides=tuple(int(s) for s in a["strides"]) if "strides" in a else None,
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file (the model card records it for the weights)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class EnsembleNet(nn.Module):
    """Mean of the logits of several networks (the fold models of a cross-validated training).

    ``cam_layer`` is the first member's: Grad-CAM is invariant to the 1/K scale of the mean, so it shows
    that member's evidence.
    """

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    @property
    def cam_layer(self) -> nn.Module:
        """The first member's Grad-CAM layer."""
        return self.members[0].cam_layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members]).mean(0)
