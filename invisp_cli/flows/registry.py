"""Architecture registry: name → nn.Module class whose constructor takes the hyper-parameters."""

from __future__ import annotations

import torch.nn as nn

ARCHITECTURES: dict[str, type[nn.Module]] = {}


def register(name: str):
    """Class decorator adding an architecture under ``name``."""

    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        ARCHITECTURES[name] = cls
        cls.arch_name = name
        return cls

    return deco


def build(arch: str, **hparams) -> nn.Module:
    """Instantiate a registered architecture with its hyper-parameters."""
    if arch not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    return ARCHITECTURES[arch](**hparams)
