"""Colour as LibRaw computes it: XYZ→camera matrices ⇄ ``rgb_cam`` (``cam_xyz_coeff``), the CFA colour indices, and
LibRaw's grey-world auto white balance (``libraw_auto_wb``), reproduced exactly."""

from __future__ import annotations

import numpy as np

from ..settings import CFA_LAYOUTS, COLOUR_INDEX

# LibRaw_constants::xyz_rgb: linear sRGB (D65) → XYZ, as dcraw/LibRaw use it in cam_xyz_coeff.
XYZ_RGB = np.array([[0.4124564, 0.3575761, 0.1804375],
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]])
_AUTO_WB_ADJUST_MAXIMUM_THR = 0.75  # LibRaw's default adjust_maximum_thr (rawpy's default too)



def cam_xyz_coeff(xyz_to_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LibRaw's ``cam_xyz_coeff``: XYZ→camera matrix → (rgb_cam (3, 3), daylight pre_mul (3,)).

    cam_rgb = xyz_to_cam · xyz_rgb, rows normalised to sum 1 (the row sums' inverses are the daylight
    multipliers), rgb_cam = inverse(cam_rgb)."""
    cam_rgb = np.asarray(xyz_to_cam, dtype=np.float64)[:3, :3] @ XYZ_RGB
    num = cam_rgb.sum(axis=1)
    ok = num > 1e-5
    cam_rgb = np.where(ok[:, None], cam_rgb / np.where(ok, num, 1.0)[:, None], 0.0)
    pre_mul = np.where(ok, 1.0 / np.where(ok, num, 1.0), 1.0)
    return np.linalg.pinv(cam_rgb), pre_mul


def xyz_to_cam_from_rgb_cam(rgb_cam: np.ndarray, pre_mul: np.ndarray | None = None) -> np.ndarray:
    """Inverse of ``cam_xyz_coeff``: an XYZ→camera matrix whose ``cam_xyz_coeff`` is ``rgb_cam``.

    ``pre_mul`` (daylight multipliers) sets the per-channel scale that rgb_cam does not carry (default 1)."""
    cam_rgb = np.linalg.inv(np.asarray(rgb_cam, dtype=np.float64))
    cam_rgb = cam_rgb / cam_rgb.sum(axis=1, keepdims=True)
    if pre_mul is not None:
        cam_rgb = cam_rgb / np.asarray(pre_mul, dtype=np.float64)[:3, None]
    return cam_rgb @ np.linalg.inv(XYZ_RGB)


def cfa_indices(cfa: str) -> np.ndarray:
    """LibRaw colour indices (0 R, 1 G, 2 B, 3 second G) of a 2×2 layout, as rawpy's ``raw_pattern``.

    Which green becomes 3 follows LibRaw's ``filters`` relabelling (RGGB → [[0, 1], [3, 2]] but
    BGGR → [[2, 3], [1, 0]])."""
    if cfa not in CFA_LAYOUTS:
        raise ValueError(f"not a Bayer layout: {cfa!r}")
    col = [[COLOUR_INDEX[cfa[2 * (r % 2) + c]] for c in range(2)] for r in range(8)]
    filters = sum(col[r][c] << (2 * (2 * r + c)) for r in range(8) for c in range(2))
    filters |= ((filters >> 2 & 0x22222222) | (filters << 2 & 0x88888888)) & (filters << 1) & 0xFFFFFFFF
    return np.array([[filters >> (2 * ((r << 1 & 14) | c)) & 3 for c in range(2)] for r in range(2)],
                    dtype=np.int64)


def libraw_auto_wb(mosaic: np.ndarray, cfa: str, black: np.ndarray, white: float) -> np.ndarray | None:
    """LibRaw's grey-world auto white balance (``scale_colors`` with ``use_auto_wb``), reproduced exactly.

    Black-subtract (clip at 0), take LibRaw's adjusted maximum, skip every 8×8 block holding a value above
    maximum − 25, and average each colour over the rest: multiplier = 1 / mean. Returns (R, G, B) normalised
    to G = 1 (G = LibRaw's colour 1, see ``cfa_indices``; its separate 2nd-green multiplier is dropped),
    or None if no block was usable."""
    black = np.asarray(black, dtype=np.float64).reshape(2, 2)
    blk = np.floor(black).astype(np.int32)
    h, w = mosaic.shape
    tile = np.tile(blk, ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    val = np.maximum(mosaic.astype(np.int32) - tile, 0)
    black_common = int(blk.min())
    maximum = int(white) - black_common
    dmax = int(val.max()) if val.size else 0
    if 0 < dmax < maximum and dmax > maximum * np.float32(_AUTO_WB_ADJUST_MAXIMUM_THR):
        maximum = dmax
    hb, wb_ = -(-h // 8), -(-w // 8)
    pad = np.zeros((hb * 8, wb_ * 8), dtype=np.int32)
    pad[:h, :w] = val
    cnt = np.zeros((hb * 8, wb_ * 8), dtype=np.uint8)
    cnt[:h, :w] = 1
    blocks_ok = pad.reshape(hb, 8, wb_, 8).max(axis=(1, 3)) <= maximum - 25
    sums = pad.reshape(hb, 4, 2, wb_, 4, 2).sum(axis=(1, 4), dtype=np.int64)  # (hb, 2, wb, 2)
    cnts = cnt.reshape(hb, 4, 2, wb_, 4, 2).sum(axis=(1, 4), dtype=np.int64)
    m = blocks_ok[:, None, :, None]
    s = (sums * m).sum(axis=(0, 2)).astype(np.float64)  # per 2×2 position
    n = (cnts * m).sum(axis=(0, 2)).astype(np.float64)
    idx = cfa_indices(cfa)
    pre = {}
    for c in (0, 1, 2):
        pos = idx == c
        if s[pos].sum() <= 0:
            return None
        pre[c] = float(np.float32(n[pos].sum() / s[pos].sum()))
    return np.array([pre[0] / pre[1], 1.0, pre[2] / pre[1]])
