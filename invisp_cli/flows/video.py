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
with ``window`` W ≥ 3, whose coupling subnets also read e = E(unshuffle(c)), one 3×3 conv + LeakyReLU computed
once per frame:

    n₁ = m₁ + r([m₂, e]),    n₂ = m₂ ⊙ exp(s([n₁, e])) + t([n₁, e])

≈ 30 % more MAC than the image flow (10.3 vs 7.7 kMAC/px at the defaults). Parameter names match
``SqueezeFlow``, so an image checkpoint initialises it (``load_image_state``) with zero weights on e: the video
flow then starts as exactly that image flow.
"""

from __future__ import annotations

import torch

from .registry import register
from .squeeze import SqueezeFlow


@register("video-squeeze")
class VideoSqueezeFlow(SqueezeFlow):
    """Squeeze flow on the centre frame, conditioned on the W − 1 neighbour frames (see module docstring).

    forward(x, c) / inverse(y, c): x, y (N, 3, H, W); c (N, 3·(W − 1), H, W), neighbours in time order without
    the centre; None means zeros (no neighbour information)."""

    window: int = 3

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
