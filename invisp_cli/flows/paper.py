"""The InvISP network of the papers: 8 blocks of (invertible 1×1 conv → affine coupling) on 3 channels at
full resolution, split d = 1, dense 5-conv subnets of growth 32 (≈1.4 M MAC per pixel)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .base import InvertibleFlow
from .blocks import AffineCoupling, InvConv1x1, zero_last
from .registry import register


class DenseSubnet(nn.Module):
    """Five 3×3 convs with dense connections (ESRGAN-style, as in the authors' code), LeakyReLU 0.2."""

    def __init__(self, cin: int, cout: int, growth: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(cin + i * growth, growth, 3, padding=1) for i in range(4))
        self.out = nn.Conv2d(cin + 4 * growth, cout, 3, padding=1)
        self.act = nn.LeakyReLU(0.2)
        zero_last(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs:
            feats.append(self.act(conv(torch.cat(feats, dim=1))))
        return self.out(torch.cat(feats, dim=1))


@register("paper")
class PaperFlow(InvertibleFlow):
    """InvISP (Xing et al., CVPR 2021): stack of InvConv1x1 + AffineCoupling blocks on RGB."""

    align = 1

    def __init__(self, blocks: int = 8, growth: int = 32, split: int = 1, clamp: float = 1.0,
                 identity_init: bool = False):
        super().__init__()
        self.layers = nn.ModuleList()
        for i in range(blocks):
            # the paper starts the 1×1 convs from random rotations; identity_init starts the whole network at
            # the identity (as the squeeze flow does), i.e. from the analytic ISP, for short CPU trainings
            self.layers.append(InvConv1x1(3, identity_init=identity_init, seed=i))
            self.layers.append(AffineCoupling(3, split, lambda a, b: DenseSubnet(a, b, growth), clamp))
        # each coupling runs two subnets in sequence, each five 3×3 convs deep
        self.receptive_field = blocks * 2 * 5

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def inverse(self, y: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y
