"""The ``[video]`` extra: PyAV is optional; say so in one line instead of failing on the import."""

from ..errors import InvispError


def require_av() -> None:
    """Raise a one-line InvispError naming the extra if PyAV is not installed."""
    try:
        import av  # noqa: F401
    except ImportError:
        raise InvispError("video needs PyAV: pip install 'invisp[video]'") from None
