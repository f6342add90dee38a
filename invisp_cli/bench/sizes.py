"""Storage-size baselines for one Bayer mosaic: what the RAW costs when kept losslessly.

All sizes are in bytes of the (possibly cropped) visible mosaic; a JPEG's compression ratio against any of
them is ``size / JPEG bytes``.

* ``file``: the original RAW file on disk (meaningless for a crop: reported as n/a then).
* ``b_bmp``: the paper's uncompressed size, ``metrics.b_bmp(H, W, bits)`` = 54 + H·W·bits/8.
* ``dng``: ``rawio.write_dng`` (uncompressed 16-bit CFA DNG, all tags) written to a temporary file.
* ``dng_lossless``: a lossless-JPEG DNG, *estimated*: the DNG above minus its H·W·2 pixel bytes, plus the
  mosaic coded as 256×256 lossless-JPEG tiles the way Adobe DNG Converter writes them (ITU T.81 process 14,
  SOF3, predictor 1, each tile coded as (256, 128, 2): two interleaved components per row, so each sample is
  predicted from its same-colour left neighbour; libjpeg-turbo via ``imagecodecs.jpeg8_encode``), plus
  8 bytes of TileOffsets/TileByteCounts per tile. Every tile decodes back exactly (checked in the tests).
* ``jxl``: JPEG XL lossless (``imagecodecs.jpegxl_encode(lossless=True, effort=7)``) of the uint16 data in
  the smaller of two layouts: ``mosaic`` (the Bayer mosaic as one grey image) and ``cfa-planes`` (the four
  CFA planes tiled 2×2 into one grey image of the same size; only for even H, W).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import imagecodecs
import numpy as np

from .. import metrics, rawio
from ..rawio import RawImage

LJ92_TILE = 256
JXL_EFFORT = 7


@dataclass
class Sizes:
    """Byte counts of one mosaic's storage baselines (see the module docstring for each)."""

    pixels: int
    bits: int
    file: int | None
    b_bmp: float
    dng: int | None
    dng_lossless: int | None
    jxl: int | None
    jxl_layout: str | None

    def to_json(self) -> dict:
        return asdict(self)


def cfa_planes(mosaic: np.ndarray) -> np.ndarray:
    """The four CFA planes of an even-sized mosaic tiled 2×2 into one (H, W) image:
    [[m[0::2, 0::2], m[0::2, 1::2]], [m[1::2, 0::2], m[1::2, 1::2]]]."""
    m = np.asarray(mosaic)
    h, w = m.shape
    if h % 2 or w % 2:
        raise ValueError(f"cfa_planes needs an even-sized mosaic, got {h}×{w}")
    return np.block([[m[0::2, 0::2], m[0::2, 1::2]], [m[1::2, 0::2], m[1::2, 1::2]]])


def from_cfa_planes(planes: np.ndarray) -> np.ndarray:
    """Inverse of ``cfa_planes``."""
    p = np.asarray(planes)
    h, w = p.shape
    m = np.empty_like(p)
    hh, hw = h // 2, w // 2
    m[0::2, 0::2], m[0::2, 1::2] = p[:hh, :hw], p[:hh, hw:]
    m[1::2, 0::2], m[1::2, 1::2] = p[hh:, :hw], p[hh:, hw:]
    return m


def jxl_lossless(mosaic: np.ndarray, effort: int = JXL_EFFORT) -> tuple[int, str, bytes]:
    """(bytes, layout, codestream) of the smaller JPEG XL lossless coding of ``mosaic`` (see module doc)."""
    m = np.ascontiguousarray(mosaic, dtype=np.uint16)
    candidates = {"mosaic": m}
    if m.shape[0] % 2 == 0 and m.shape[1] % 2 == 0:
        candidates["cfa-planes"] = cfa_planes(m)
    best: tuple[int, str, bytes] | None = None
    for layout, img in candidates.items():
        data = bytes(imagecodecs.jpegxl_encode(img, lossless=True, effort=effort))
        if best is None or len(data) < best[0]:
            best = (len(data), layout, data)
    assert best is not None
    return best


def lj92_tiles(mosaic: np.ndarray, tile: int = LJ92_TILE) -> list[bytes]:
    """The mosaic as lossless-JPEG tiles of tile×tile pixels, each coded as (rows, cols/2, 2) components.

    An odd last column is padded by repeating it (DNG tiles are padded too)."""
    m = np.ascontiguousarray(mosaic, dtype=np.uint16)
    if m.shape[1] % 2:
        m = np.pad(m, ((0, 0), (0, 1)), mode="edge")
    h, w = m.shape
    out = []
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            t = np.ascontiguousarray(m[y : y + tile, x : x + tile])
            pairs = t.reshape(t.shape[0], t.shape[1] // 2, 2)
            out.append(bytes(imagecodecs.jpeg8_encode(pairs, lossless=True, predictor=1, bitspersample=16)))
    return out


def dng_bytes(raw: RawImage) -> int:
    """Size of ``rawio.write_dng(raw)`` (uncompressed 16-bit DNG), written to a temporary file."""
    fd, tmp = tempfile.mkstemp(suffix=".dng")
    os.close(fd)
    try:
        rawio.write_dng(tmp, raw)
        return Path(tmp).stat().st_size
    finally:
        Path(tmp).unlink(missing_ok=True)


def measure_sizes(raw: RawImage, file_bytes: int | None, *, dng: bool = True, jxl: bool = True) -> Sizes:
    """All storage baselines of ``raw.mosaic`` (``file_bytes`` None for a crop)."""
    h, w = raw.mosaic.shape
    dng_size = lossless = jxl_size = None
    layout = None
    if dng:
        dng_size = dng_bytes(raw)
        tiles = lj92_tiles(raw.mosaic)
        lossless = dng_size - h * w * 2 + sum(len(t) for t in tiles) + 8 * len(tiles)
    if jxl:
        jxl_size, layout, _ = jxl_lossless(raw.mosaic)
    return Sizes(pixels=h * w, bits=int(raw.bits), file=file_bytes, b_bmp=metrics.b_bmp(h, w, int(raw.bits)),
                 dng=dng_size, dng_lossless=lossless, jxl=jxl_size, jxl_layout=layout)
