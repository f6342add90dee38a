"""X-Trans and linear RAW frames made from a real Bayer file, for tests and the support matrix (docs/formats.md).

LibRaw's linear camera-RGB demosaic of the Bayer file,

    rgb = postprocess(output_color=raw, gamma=(1, 1), no_auto_bright=True, user_wb=[1, 1, 1, 1], output_bps=16,
                      user_flip=0)            (sensor orientation, 0…65535 over LibRaw's black…maximum),

is mapped back to raw units with per-colour black b_c (the mean of the Bayer file's black at its c sites) and the
file's white w:  v_c = round(b_c + rgb_c / 65535 · (w − b_c)). A CFA frame keeps, at each site, the value of the
site's colour (``as_cfa``: Fujifilm's X-Trans pattern by default); a linear frame keeps all three (``as_linear``).
Everything else (white balance, colour matrices, EXIF, the DNG tags carried, orientation) is the Bayer file's."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from ..settings import COLOUR_INDEX, LINEAR_CFA, cfa_rows
from .image import RawImage
from .libraw import quiet_libraw
from .read import read_raw

#: Fujifilm's X-Trans layout as LibRaw reports it for an X-Trans DNG (rows of the 6×6 tile)
XTRANS = "GGRGGB/GGBGGR/BRGRBG/GGBGGR/GGRGGB/RBGBRG"


def linear_source(path: str | os.PathLike) -> tuple[RawImage, np.ndarray]:
    """(the Bayer file's RawImage, its LibRaw linear camera-RGB demosaic in raw units (H, W, 3) uint16, with the
    per-colour black of ``colour_black``)."""
    import rawpy

    raw = read_raw(path)
    with rawpy.imread(os.fspath(path)) as r, quiet_libraw():
        rgb = r.postprocess(output_color=rawpy.ColorSpace.raw, gamma=(1, 1), no_auto_bright=True,
                            user_wb=[1.0, 1.0, 1.0, 1.0], output_bps=16, user_flip=0)
    if rgb.shape[:2] != raw.mosaic.shape:
        raise ValueError(f"{path}: LibRaw's render is {rgb.shape[:2]}, the mosaic {raw.mosaic.shape} (non-square "
                         "pixels?)")
    b = colour_black(raw)
    v = np.rint(b + rgb.astype(np.float64) / 65535.0 * (raw.white - b))
    return raw, np.clip(v, 0, raw.white).astype(np.uint16)


def colour_black(raw: RawImage) -> np.ndarray:
    """(3,) black level per colour: the mean of a Bayer frame's 2×2 black over the positions of each colour."""
    idx = np.array([[COLOUR_INDEX[c] for c in row] for row in cfa_rows(raw.cfa)])
    black = np.asarray(raw.black, dtype=np.float64).reshape(idx.shape)
    return np.array([black[idx == c].mean() for c in range(3)])


def as_cfa(raw: RawImage, rgb: np.ndarray, cfa: str = XTRANS) -> RawImage:
    """The frame ``raw`` as if shot through the periodic ``cfa``: each site keeps its colour's value of ``rgb``."""
    idx = np.array([[COLOUR_INDEX[c] for c in row] for row in cfa_rows(cfa)])
    h, w = rgb.shape[:2]
    sites = np.tile(idx, (-(-h // idx.shape[0]), -(-w // idx.shape[1])))[:h, :w]
    mosaic = np.take_along_axis(rgb, sites[..., None], axis=2)[..., 0]
    return dataclasses.replace(raw, mosaic=np.ascontiguousarray(mosaic), cfa=cfa, black=colour_black(raw)[idx],
                               wb_source="camera" if raw.wb_source == "auto" else raw.wb_source)


def as_linear(raw: RawImage, rgb: np.ndarray) -> RawImage:
    """The frame ``raw`` as a linear (demosaiced, 3 samples per pixel) image of the samples ``rgb``."""
    return dataclasses.replace(raw, mosaic=np.ascontiguousarray(rgb), cfa=LINEAR_CFA, black=colour_black(raw),
                               wb_source="camera" if raw.wb_source == "auto" else raw.wb_source)
