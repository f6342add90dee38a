"""Invertible network architectures behind one registry (``build(arch, **hparams)``)."""

from . import paper, squeeze  # noqa: F401  (register the architectures)
from .registry import ARCHITECTURES, build, register

__all__ = ["ARCHITECTURES", "build", "register"]
