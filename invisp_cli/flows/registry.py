"""Architecture registry: name → ``InvertibleFlow`` class whose constructor takes the hyper-parameters."""

from __future__ import annotations

from .base import InvertibleFlow, check_contract

ARCHITECTURES: dict[str, type[InvertibleFlow]] = {}


def register(name: str):
    """Class decorator adding an ``InvertibleFlow`` architecture under ``name``."""

    def deco(cls: type[InvertibleFlow]) -> type[InvertibleFlow]:
        if not issubclass(cls, InvertibleFlow):
            raise TypeError(f"{cls.__name__} must subclass InvertibleFlow to be registered")
        ARCHITECTURES[name] = cls
        cls.arch_name = name
        return cls

    return deco


def build(arch: str, **hparams) -> InvertibleFlow:
    """Instantiate a registered architecture with its hyper-parameters; its contract is checked."""
    if arch not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    return check_contract(ARCHITECTURES[arch](**hparams))


def is_video(arch: str) -> bool:
    """Whether architecture ``arch`` takes a window of frames (``window`` > 1); False for unknown names."""
    return arch in ARCHITECTURES and ARCHITECTURES[arch].window > 1
