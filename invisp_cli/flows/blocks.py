"""Invertible building blocks: LU-parametrised 1×1 convolution, the InvISP affine coupling (eq. 5–7) and a
monotone per-channel curve."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

SubnetFactory = Callable[[int, int], nn.Module]


class InvConv1x1(nn.Module):
    """Invertible 1×1 convolution (Glow), W = P · L · (U + diag(sign · exp(log|s|))).

    ``identity_init`` starts from W = I (the flow is then the identity at initialisation when every
    coupling's last layer is zero); otherwise from a random rotation, as in Glow and InvISP.
    ``repeat`` = r applies the same C×C mix to each of r sub-channels of a pixel-unshuffled tensor whose
    channel c·r + k holds colour c (weight kron(W, I_r)), so a per-pixel colour mix can run on the squeezed
    tensor, where it is far cheaper than a 3-channel conv at full resolution."""

    def __init__(self, channels: int, identity_init: bool = False, seed: int | None = None, repeat: int = 1):
        super().__init__()
        self.repeat = repeat
        if identity_init:
            w = torch.eye(channels)
        else:
            g = torch.Generator().manual_seed(seed if seed is not None else 0)
            w = torch.linalg.qr(torch.randn(channels, channels, generator=g))[0]
        p, lower, upper = torch.linalg.lu(w)
        s = torch.diagonal(upper)
        self.register_buffer("p", p)
        self.register_buffer("sign_s", torch.sign(s))
        self.register_buffer("l_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(torch.abs(s)))

    def weight(self) -> torch.Tensor:
        c = self.p.shape[0]
        eye = torch.eye(c, device=self.p.device, dtype=self.p.dtype)
        lower = self.lower * self.l_mask + eye
        upper = self.upper * self.l_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def _conv(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.repeat > 1:
            eye = torch.eye(self.repeat, device=w.device, dtype=w.dtype)
            w = (w[:, None, :, None] * eye[None, :, None, :]).reshape(w.shape[0] * self.repeat, -1)  # kron(W, I)
        return F.conv2d(x, w.reshape(*w.shape, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self.weight())

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._conv(y, torch.linalg.inv(self.weight().double()).to(y.dtype))


class AffineCoupling(nn.Module):
    """InvISP's enhanced affine coupling (paper eq. 5–7) on channels split as (m₁, m₂) = (x[:d], x[d:]):

        n₁ = m₁ + r(m₂)                       m₂ = (n₂ − t(n₁)) ⊙ exp(−s(n₁))
        n₂ = m₂ ⊙ exp(s(n₁)) + t(n₁)          m₁ = n₁ − r(m₂)

    with s soft-clamped to (−clamp, clamp) by clamp·tanh(·/clamp) for stability. ``s`` and ``t`` come from
    one subnet with 2·(D−d) outputs. Subnets' last layers start at zero, so the block starts as identity.
    With ``cond_channels`` K > 0 every subnet also reads a conditioning tensor e (K channels) — r([m₂, e]),
    s, t([n₁, e]) — and the block is a bijection of x for every fixed e (the video flow's neighbours)."""

    def __init__(self, channels: int, split: int, subnet: SubnetFactory, clamp: float = 1.0, cond_channels: int = 0):
        super().__init__()
        self.d = split
        self.clamp = clamp
        self.r = subnet(channels - split + cond_channels, split)
        self.st = subnet(split + cond_channels, 2 * (channels - split))

    @staticmethod
    def _with(a: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        return a if e is None else torch.cat([a, e], dim=1)

    def _s_t(self, n1: torch.Tensor, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.st(self._with(n1, e)).chunk(2, dim=1)
        return self.clamp * torch.tanh(s / self.clamp), t

    def forward(self, x: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        m1, m2 = x[:, : self.d], x[:, self.d :]
        n1 = m1 + self.r(self._with(m2, e))
        s, t = self._s_t(n1, e)
        return torch.cat([n1, m2 * torch.exp(s) + t], dim=1)

    def inverse(self, y: torch.Tensor, e: torch.Tensor | None = None) -> torch.Tensor:
        n1, n2 = y[:, : self.d], y[:, self.d :]
        s, t = self._s_t(n1, e)
        m2 = (n2 - t) * torch.exp(-s)
        return torch.cat([n1 - self.r(self._with(m2, e)), m2], dim=1)


def zero_last(module: nn.Module) -> nn.Module:
    """Zero the last Conv2d's weight and bias so the subnet starts by outputting 0."""
    last = [m for m in module.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.zeros_(last.weight)
    if last.bias is not None:
        nn.init.zeros_(last.bias)
    return module


class MonotoneCurve(nn.Module):
    """Per-channel strictly increasing piecewise-linear curve on [lo, hi] with K equal segments, extended
    linearly outside: a learnable global tone/highlight stage that costs O(1) per pixel.

    Segment slopes are softplus(θ) + ε > 0, so the curve is a bijection of ℝ; it starts as the identity.
    Forward: y = y_k + slope_k · (x − x_k) on the segment k holding x; inverse: the same on the segment of
    y among the knot outputs y_k. ``repeat`` = r: the input has C·r channels, channel c·r + k following
    curve c (as after a pixel-unshuffle)."""

    def __init__(self, channels: int = 3, knots: int = 16, lo: float = -0.25, hi: float = 1.5, repeat: int = 1):
        super().__init__()
        self.lo, self.hi, self.k, self.repeat = lo, hi, knots, repeat
        self.eps = 1e-3
        init = torch.log(torch.expm1(torch.full((channels, knots), 1.0 - self.eps)))  # slope 1
        self.theta = nn.Parameter(init)

    def _knots(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        slope = F.softplus(self.theta) + self.eps
        dx = (self.hi - self.lo) / self.k
        y0 = torch.full_like(slope[:, :1], self.lo)
        ys = torch.cat([y0, self.lo + torch.cumsum(slope * dx, dim=1)], dim=1)  # (C, K+1)
        xs = torch.linspace(self.lo, self.hi, self.k + 1, device=slope.device, dtype=slope.dtype).expand_as(ys)
        r = self.repeat
        return xs.repeat_interleave(r, 0), ys.repeat_interleave(r, 0), slope.repeat_interleave(r, 0)

    @staticmethod
    def _channels_first(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1).reshape(x.shape[1], -1)

    @staticmethod
    def _eval(flat: torch.Tensor, seg: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor,
              slope: torch.Tensor) -> torch.Tensor:
        """y = y0[seg] + slope[seg]·(x − x0[seg]) per channel row."""
        return torch.gather(y0, 1, seg) + torch.gather(slope, 1, seg) * (flat - torch.gather(x0, 1, seg))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xs, ys, slope = self._knots()
        flat = self._channels_first(x)
        # equal segments in x: the segment index is arithmetic, no search needed
        seg = ((flat - self.lo) * (self.k / (self.hi - self.lo))).floor_().clamp_(0, self.k - 1).long()
        out = self._eval(flat, seg, xs, ys, slope)
        return out.view(x.shape[1], x.shape[0], *x.shape[2:]).transpose(0, 1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        xs, ys, slope = self._knots()
        flat = self._channels_first(y)
        seg = torch.searchsorted(ys[:, 1:-1].contiguous(), flat.contiguous())
        out = self._eval(flat, seg, ys, xs, 1.0 / slope)
        return out.view(y.shape[1], y.shape[0], *y.shape[2:]).transpose(0, 1)
