"""``invisp verify``: check that invisp files still give back their RAW, writing nothing."""

from __future__ import annotations

import os
from pathlib import Path

from .codec import DEFAULT_TILE, recover_file
from .errors import InputError, PixelsChangedError
from .settings import kind_of
from .video.formats import require_av


def verify_file(src: str | os.PathLike, tile: int = DEFAULT_TILE) -> str:
    """Check an invisp JPEG or MP4: metadata checksum and validation, the pixels against the record's binding
    (``containers.integrity``: intact, losslessly transformed and undone, changed, not this record's image),
    model checkpoint SHA-256 against the hash stored in the file, the residual layer's SHA-256 when present,
    and a full decode in memory. Returns a one-line description; raises the InvispError of the first check that
    fails (``PixelsChangedError`` where the pixels changed after encode: the RAW decode gives is approximate)."""
    if Path(src).is_dir():
        raise InputError(f"{src}: is a folder; name a file")
    if kind_of(src) == "video":
        require_av()
        from .video.codec import verify_video

        return verify_video(src, tile)
    rec = recover_file(src, tile)
    if rec.pixels is not None and rec.pixels.state == "changed" and not rec.layer:  # a layer's RAW is verified
        raise PixelsChangedError(f"{Path(src).name}: {rec.pixels.summary}")
    how = rec.layer or "approximate RAW (no residual layer)"
    pixels = f"{rec.pixels.summary}; " if rec.pixels is not None else ""
    return f"{pixels}{rec.params.model_id}, {how}" + (f"; warning: {rec.warning}" if rec.warning else "")
