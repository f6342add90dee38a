"""Light constants shared by the command line and the container (importing them loads neither PyAV nor torch)."""

CODECS = {"h264": "libx264", "h265": "libx265"}
#: pixel format → (bits per sample, chroma subsampling factor in both directions)
PIX_FMTS = {"yuv420p": (8, 2), "yuv444p": (8, 1), "yuv420p10le": (10, 2), "yuv444p10le": (10, 1)}
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov"}


def require_av() -> None:
    """PyAV is the ``[video]`` extra: say so in one line instead of failing on the import."""
    try:
        import av  # noqa: F401
    except ImportError:
        from ..errors import InvispError

        raise InvispError("video needs PyAV: pip install 'invisp[video]'") from None
