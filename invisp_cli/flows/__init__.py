"""Invertible network architectures behind one registry (``build(arch, **hparams)``)."""

from ..video import flow as _video_flow  # noqa: F401  (registers the video architecture "video-squeeze")
from . import paper, squeeze  # noqa: F401  (register the architectures)
from .registry import ARCHITECTURES, build, register

__all__ = ["ARCHITECTURES", "build", "register"]
