"""Optional parts (``pyproject.toml`` extras): a missing package is one line naming the extra to install, never a
traceback. The analytic front end (the default model) needs none of them; torch comes with ``[learned]``."""

from __future__ import annotations

import importlib

from .errors import InvispError


def require(module: str, extra: str, what: str, error: type[InvispError] = InvispError) -> None:
    """Raise ``error`` ("WHAT needs MODULE: pip install 'invisp[EXTRA]'") if ``module`` cannot be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise error(f"{what} needs {module}: pip install 'invisp[{extra}]'") from None
