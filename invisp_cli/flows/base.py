"""The one contract of a learned invertible stage, image or video.

    y = f(x ; c),   x = f⁻¹(y ; c)      exact for every fixed conditioning c

x, y: (N, 3, H, W) display-referred RGB of one frame; c: the W − 1 neighbour frames of a video window
(N, 3·(W − 1), H, W), in time order without the centre, or None (an image, or no neighbour information).

Every architecture states, and ``registry.build`` checks on each instance:

* ``align``: H and W must be multiples of it (``padded`` pads by edge replication and crops back);
* ``receptive_field``: pixels of context per output pixel — the halo exact tiling needs;
* ``window``: frames seen (1 for an image flow; odd ≥ 3 for a video flow, which transforms the centre frame);
* ``identity``: True only for a parameter-free stage that is the identity (the chain then leaves it out).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class InvertibleFlow(nn.Module):
    """Base class of every registered architecture (see the module docstring for the contract)."""

    align: int
    receptive_field: int
    window: int = 1
    identity: bool = False

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def padded(self, x: torch.Tensor, c: torch.Tensor | None = None, inverse: bool = False) -> torch.Tensor:
        """f (or f⁻¹) on H, W padded by edge replication to multiples of ``align``, cropped back.

        Padding is the one place the chain is not exactly invertible: within ``align − 1`` pixels of the
        bottom/right border of an image whose size is not a multiple of ``align``, the inverse sees the
        replicated border of the *output* instead of the forward pass's padded output, an error of the order of
        the network's deviation from identity there."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.align, (-w) % self.align
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
            c = None if c is None else F.pad(c, (0, pw, 0, ph), mode="replicate")
        return (self.inverse if inverse else self.forward)(x, c)[..., :h, :w]


def check_contract(model: InvertibleFlow) -> InvertibleFlow:
    """Raise TypeError unless ``model`` states ``align`` ≥ 1, ``receptive_field`` ≥ 0 and an odd ``window`` ≥ 1."""
    for name, lo in (("align", 1), ("receptive_field", 0), ("window", 1)):
        value = getattr(model, name, None)
        if not isinstance(value, int) or isinstance(value, bool) or value < lo:
            raise TypeError(f"{type(model).__name__}.{name} must be an int ≥ {lo}, got {value!r}")
    if model.window % 2 == 0:
        raise TypeError(f"{type(model).__name__}.window must be odd, got {model.window}")
    return model
