"""The efficient invertible ISP: global per-pixel stages at full resolution, spatial couplings on a
pixel-unshuffled tensor.

    x ─▶ unshuffle(f) ─▶ mix_in ─▶ [1×1(3f²) ─▶ coupling]×B ─▶ mix_out ─▶ curve ─▶ shuffle(f)

Squeezing by f turns 3 channels into 3f² at 1/f² of the positions, so subnets run as wide, dense convs
(which use the CPU 2–3× better per MAC than thin full-resolution layers, as measured on 2-core CPUs) while the
3×3 colour mixes and the per-colour monotone output curve do the global colour/tone/highlight work at O(1) cost
per pixel (the curve is what lets highlights that LibRaw clips survive the 8-bit JPEG, compressed). Those
per-pixel stages treat every colour sample alike whatever its position in the f×f cell, so they run on the
squeezed tensor directly (3× cheaper than 3-channel full-resolution ops here).
Every part is the identity at initialisation, so training starts from the analytic ISP of the metadata."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import InvertibleFlow
from .blocks import AffineCoupling, InvConv1x1, MonotoneCurve, zero_last
from .registry import register


class ConvSubnet(nn.Sequential):
    """3×3 conv → LeakyReLU → 1×1 conv → LeakyReLU → 3×3 conv (last layer zero-initialised)."""

    def __init__(self, cin: int, cout: int, width: int):
        super().__init__(
            nn.Conv2d(cin, width, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, width, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, cout, 3, padding=1),
        )
        zero_last(self)


@register("squeeze")
class SqueezeFlow(InvertibleFlow):
    """Pixel-unshuffle coupling flow with monotone tone curves (see module docstring).

    As a video flow (``window`` W ≥ 3, the ``video-squeeze`` subclass) its coupling subnets also read
    e = E(unshuffle(c)), one 3×3 conv + LeakyReLU of the W − 1 neighbour frames c (zeros when c is None)."""

    def __init__(self, blocks: int = 2, width: int = 48, factor: int = 4, knots: int = 32, clamp: float = 1.0,
                 lo: float = -0.5, hi: float = 2.5, window: int | None = None, cond_width: int = 16):
        super().__init__()
        window = type(self).window if window is None else window
        if (window > 1) != (type(self).window > 1) or window % 2 == 0:
            raise ValueError(f"window {window} does not fit architecture {self.arch_name}")
        c, r = 3 * factor * factor, factor * factor
        self.factor = self.align = factor
        self.window = window
        self.mix_in = InvConv1x1(3, identity_init=True, repeat=r)
        cond = 0
        if window > 1:
            self.cond_in = 3 * (window - 1)
            self.encoder = nn.Sequential(nn.Conv2d(self.cond_in * r, cond_width, 3, padding=1), nn.LeakyReLU(0.2))
            cond = cond_width
        self.layers = nn.ModuleList()
        for _ in range(blocks):
            self.layers.append(InvConv1x1(c, identity_init=True))
            self.layers.append(AffineCoupling(c, c // 2, lambda a, b: ConvSubnet(a, b, width), clamp, cond))
        self.mix_out = InvConv1x1(3, identity_init=True, repeat=r)
        self.curve = MonotoneCurve(3, knots, lo, hi, repeat=r)
        # per coupling: two subnets in sequence, each two 3×3 convs deep, at stride `factor`; + `factor` for the
        # squeeze grid; a video flow's conditioning encoder adds one 3×3 conv at stride `factor`
        self.receptive_field = blocks * 2 * 2 * factor + factor + (factor if window > 1 else 0)

    def _condition(self, c: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
        if self.window == 1:
            return None
        if c is None:
            c = like.new_zeros(like.shape[0], self.cond_in, *like.shape[-2:])
        return self.encoder(F.pixel_unshuffle(c, self.factor))

    def _couplings(self, x: torch.Tensor, e: torch.Tensor | None, inverse: bool) -> torch.Tensor:
        for layer in (reversed(self.layers) if inverse else self.layers):
            if isinstance(layer, AffineCoupling):
                x = layer.inverse(x, e) if inverse else layer(x, e)
            else:
                x = layer.inverse(x) if inverse else layer(x)
        return x

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        e = self._condition(c, x)
        x = self._couplings(self.mix_in(F.pixel_unshuffle(x, self.factor)), e, inverse=False)
        return F.pixel_shuffle(self.curve(self.mix_out(x)), self.factor)

    def inverse(self, y: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        e = self._condition(c, y)
        y = self._couplings(self.mix_out.inverse(self.curve.inverse(F.pixel_unshuffle(y, self.factor))), e,
                            inverse=True)
        return F.pixel_shuffle(self.mix_in.inverse(y), self.factor)
