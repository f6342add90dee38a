"""The analytic front end with no learned stage: a parameter-free identity "flow".

A model of this architecture renders with the metadata-driven chain alone (levels → exposure → white balance →
highlight roll-off → demosaic → colour matrix → gamma) and recovers with its exact inverse. ``pipeline``
leaves it out entirely (``identity``), so it costs nothing at run time, and encode and decode
do not even load torch for it (``zoo.load_stage``); its checkpoint is an empty safetensors file with a SHA-256
like any other, verified by the same loader."""

from __future__ import annotations

import torch

from ..settings import ANALYTIC_ARCH
from .base import InvertibleFlow
from .registry import register


@register(ANALYTIC_ARCH)
class FrontEndOnly(InvertibleFlow):
    """Identity map, no parameters: the analytic ISP is the whole model."""

    identity = True
    align = 1
    receptive_field = 0

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return x

    def inverse(self, y: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return y
