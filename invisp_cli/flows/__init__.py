"""Invertible network architectures, image and video, behind one contract (``base.InvertibleFlow``) and one
registry (``build(arch, **hparams)``)."""

from . import frontend, paper, squeeze, video  # noqa: F401  (register the architectures)
from .base import InvertibleFlow
from .registry import ARCHITECTURES, build, is_video, register

__all__ = ["ARCHITECTURES", "InvertibleFlow", "build", "is_video", "register"]
