"""``invisp compare``: measure a recovered RAW (and its JPEG) against the original RAW file.

Every number is one of ``invisp_cli.metrics`` (definitions: docs/metrics.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import metrics, rawio
from .errors import InputError
from .fileio import check_input
from .rawio import RawImage


def check_jpeg(jpeg: Path, original: Path, raw: RawImage) -> None:
    """Refuse a ``--jpeg`` that cannot be ``original``'s JPEG: not a JPEG (a PNG, …), or pixels of another size
    than the RAW's visible image (either way round: a lossless 90° turn keeps it), so that bpp and the
    compression ratio are never reported for an unrelated file."""
    check_input(jpeg)
    try:
        with Image.open(jpeg) as img:
            fmt, (w, h) = img.format, img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"{jpeg}: not a readable image ({e})") from None
    if fmt != "JPEG":
        raise InputError(f"{jpeg}: not a JPEG (found {fmt}); --jpeg names the invisp JPEG of {original.name}")
    rh, rw = raw.mosaic.shape[:2]
    if (h, w) not in ((rh, rw), (rw, rh)):
        raise InputError(f"{jpeg}: {w}×{h} pixels, but {original.name} is {rw}×{rh}: not its JPEG")


def compare_files(original: Path, recovered: Path, jpeg: Path | None = None) -> dict[str, float | bool]:
    """RAW-PSNR-lin/γ of ``recovered`` vs ``original`` (normalised visible mosaics, the original's levels);
    with ``jpeg``: bpp, RGB-PSNR and SSIM (mean over R, G, B) vs LibRaw's render of the original."""
    a = rawio.read_raw(original)
    if jpeg is not None:  # before the second read and the reference render: a wrong --jpeg fails at once
        check_jpeg(jpeg, original, a)
    b = rawio.read_raw(recovered)
    if a.mosaic.shape != b.mosaic.shape or a.cfa != b.cfa:
        raise InputError(f"{recovered}: geometry differs from {original} "
                         f"({b.mosaic.shape} {b.cfa} vs {a.mosaic.shape} {a.cfa})")
    n = metrics.normalise_mosaic(a.mosaic, a.black, a.white)
    n_hat = metrics.normalise_mosaic(b.mosaic, a.black, a.white)
    res: dict[str, float | bool] = {
        "RAW-PSNR-lin (dB)": metrics.raw_psnr_lin(n_hat, n),
        "RAW-PSNR-γ (dB)": metrics.raw_psnr_gamma(n_hat, n),
        "same levels": bool(np.allclose(a.black, b.black) and a.white == b.white),
    }
    if jpeg is not None:
        ref = rawio.render_reference(original)
        img = np.asarray(Image.open(jpeg).convert("RGB"))
        res["bpp"] = metrics.bpp(jpeg.stat().st_size, n.shape[0] * n.shape[1])  # pixels, also for a linear image
        res["compression ratio (RAW file / JPEG)"] = metrics.compression_ratio(original.stat().st_size,
                                                                               jpeg.stat().st_size)
        if img.shape == ref.shape:
            res["RGB-PSNR vs LibRaw (dB)"] = metrics.rgb_psnr(img, ref)
            res["SSIM vs LibRaw (RGB mean)"] = metrics.ssim(img, ref)
            hi = rawio.undo_flip(metrics.highlight_mask(ref), a.flip)
            if hi.any():
                res["RAW-PSNR-lin highlights (dB)"] = metrics.raw_psnr_lin(n_hat, n, mask=hi)
    return res
