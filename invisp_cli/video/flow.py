"""The video flow (TPAMI sec. 4.2) as a conditional invertible network on the centre frame of a window.

The paper feeds W consecutive frames to the forward pass (RAW side) and W to the inverse (RGB side), keeps the
centre output, and in training replaces the non-centre inverse inputs by ground-truth RGB (decoded frames at
inference). Its neighbour slots hold different things in the two directions, so even without compression the centre
is never exactly inverted. Here the neighbours enter only as the *conditioning* c_t of a bijection of the centre:

    y_t = f(x_t ; c_t),      x_t = f⁻¹(y_t ; c_t)      exact for any fixed c_t

c_t is the W − 1 neighbour frames in the display (sRGB) domain: at encode, the analytic ISP of the neighbours' RAW
clipped to [0, 1] (what they look like before the flow); at decode, the decoded neighbour frames; in training the
forward conditions as at encode and the inverse on simulator-compressed ground-truth RGB neighbours (the paper's
"ground-truth frames"). Both are sRGB pictures of the same frames, so the mismatch between the two directions is
the flow's deviation from identity plus compression noise, and training with exactly that mismatch teaches the
inverse to lean on the neighbours only where this is robust (e.g. the independent compression noise of the three
frames). Nothing depends on another frame's *output*, so encode and decode stream with W frames in memory.

Architecture: the squeeze flow (``flows/squeeze.py``: pixel-unshuffle ×f, 1×1 mixes, B couplings, tone curve)
whose coupling subnets also read e = E(unshuffle(c)), one 3×3 conv + LeakyReLU computed once per frame:

    n₁ = m₁ + r([m₂, e]),    n₂ = m₂ ⊙ exp(s([n₁, e])) + t([n₁, e])

≈ 30 % more MAC than the image flow (10.3 vs 7.7 kMAC/px at the defaults). Parameter names match
``SqueezeFlow``, so an image checkpoint initialises it (``load_image_state``) with zero weights on e: the video
flow then starts as exactly that image flow.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..flows.blocks import AffineCoupling, InvConv1x1, MonotoneCurve, SubnetFactory
from ..flows.registry import ARCHITECTURES, register
from ..flows.squeeze import ConvSubnet


def is_video_arch(arch: str) -> bool:
    """Whether a registered architecture takes a window of frames (has ``window`` > 1)."""
    return getattr(ARCHITECTURES.get(arch), "window", 1) > 1


class ConditionalCoupling(AffineCoupling):
    """``AffineCoupling`` whose subnets r, s, t also see a conditioning tensor e (K channels):
    a bijection of x for every fixed e."""

    def __init__(self, channels: int, split: int, cond_channels: int, subnet: SubnetFactory, clamp: float = 1.0):
        super().__init__(channels, split, lambda a, b: subnet(a + cond_channels, b), clamp)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        m1, m2 = x[:, : self.d], x[:, self.d :]
        n1 = m1 + self.r(torch.cat([m2, e], 1))
        s, t = self._s_t(torch.cat([n1, e], 1))
        return torch.cat([n1, m2 * torch.exp(s) + t], 1)

    def inverse(self, y: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        n1, n2 = y[:, : self.d], y[:, self.d :]
        s, t = self._s_t(torch.cat([n1, e], 1))
        m2 = (n2 - t) * torch.exp(-s)
        return torch.cat([n1 - self.r(torch.cat([m2, e], 1)), m2], 1)


@register("video-squeeze")
class VideoSqueezeFlow(nn.Module):
    """Squeeze flow on the centre frame, conditioned on the W − 1 neighbour frames (see module docstring).

    forward(x, cond) / inverse(y, cond): x, y (N, 3, H, W); cond (N, 3·(W − 1), H, W), neighbours in time order
    without the centre; None means zeros (no neighbour information)."""

    window: int = 3  # class default, so the registry can tell video architectures from image ones

    def __init__(self, blocks: int = 2, width: int = 48, factor: int = 4, knots: int = 32, clamp: float = 1.0,
                 lo: float = -0.5, hi: float = 2.5, window: int = 3, cond_width: int = 16):
        super().__init__()
        if window < 3 or window % 2 == 0:
            raise ValueError("window must be odd and at least 3")
        c, r = 3 * factor * factor, factor * factor
        self.factor = self.align = factor
        self.window = window
        self.cond_in = 3 * (window - 1)
        self.mix_in = InvConv1x1(3, identity_init=True, repeat=r)
        self.encoder = nn.Sequential(nn.Conv2d(self.cond_in * r, cond_width, 3, padding=1), nn.LeakyReLU(0.2))
        self.layers = nn.ModuleList()
        for _ in range(blocks):
            self.layers.append(InvConv1x1(c, identity_init=True))
            self.layers.append(ConditionalCoupling(c, c // 2, cond_width, lambda a, b: ConvSubnet(a, b, width), clamp))
        self.mix_out = InvConv1x1(3, identity_init=True, repeat=r)
        self.curve = MonotoneCurve(3, knots, lo, hi, repeat=r)
        # the image flow's field (4 px per coupling subnet pair at stride f, + f for the grid) + the encoder's 3×3
        self.receptive_field = blocks * 2 * 2 * factor + 2 * factor

    def _encode(self, cond: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        if cond is None:
            cond = like.new_zeros(like.shape[0], self.cond_in, *like.shape[-2:])
        return self.encoder(F.pixel_unshuffle(cond, self.factor))

    def _couplings(self, x: torch.Tensor, e: torch.Tensor, inverse: bool) -> torch.Tensor:
        for layer in (reversed(self.layers) if inverse else self.layers):
            if isinstance(layer, ConditionalCoupling):
                x = layer.inverse(x, e) if inverse else layer(x, e)
            else:
                x = layer.inverse(x) if inverse else layer(x)
        return x

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        e = self._encode(cond, x)
        x = self.mix_in(F.pixel_unshuffle(x, self.factor))
        x = self._couplings(x, e, inverse=False)
        return F.pixel_shuffle(self.curve(self.mix_out(x)), self.factor)

    def inverse(self, y: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        e = self._encode(cond, y)
        y = self.mix_out.inverse(self.curve.inverse(F.pixel_unshuffle(y, self.factor)))
        y = self._couplings(y, e, inverse=True)
        return F.pixel_shuffle(self.mix_in.inverse(y), self.factor)

    @torch.no_grad()
    def load_image_state(self, state: dict[str, torch.Tensor]) -> None:
        """Initialise from a ``squeeze`` checkpoint of the same blocks/width/factor/knots: shared tensors are
        copied; the subnets' first convs get the image weights on their first input channels and zeros on the
        conditioning channels, so the result computes exactly the image flow whatever the neighbours."""
        own = self.state_dict()
        unknown = set(state) - set(own)
        if unknown:
            raise ValueError(f"not a matching squeeze checkpoint (unexpected {sorted(unknown)[:3]})")
        for k, v in state.items():
            t = own[k]
            if t.shape == v.shape:
                t.copy_(v)
            elif t.ndim == 4 and t.shape[0] == v.shape[0] and t.shape[2:] == v.shape[2:] and t.shape[1] > v.shape[1]:
                t.zero_()
                t[:, : v.shape[1]] = v
            else:
                raise ValueError(f"not a matching squeeze checkpoint ({k}: {tuple(v.shape)} vs {tuple(t.shape)})")


def run_aligned(fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], x: torch.Tensor,
                cond: torch.Tensor | None, align: int) -> torch.Tensor:
    """``fn(x, cond)`` on H, W padded by edge replication to multiples of ``align`` and cropped back (as
    ``steps.Flow`` does for image flows)."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % align, (-w) % align
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        cond = None if cond is None else F.pad(cond, (0, pw, 0, ph), mode="replicate")
    return fn(x, cond)[..., :h, :w]
