"""RAW input/output: read any LibRaw Bayer file into a ``RawImage``; write DNG.

(Functions below are being filled in; the dataclass is the contract other modules rely on.)"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RawImage:
    """A Bayer RAW frame in sensor orientation, with everything needed to render and re-write it.

    mosaic:     uint16 (H, W), the visible area, sensor orientation.
    cfa:        the 2×2 colour layout of the visible area's top-left, row-major: "RGGB", "BGGR", "GRBG", "GBRG".
    black:      float64 (2, 2), black level at each position of the 2×2 CFA tile.
    white:      white (saturation) level in raw units.
    wb:         float64 (3,), R, G, B white-balance multipliers, normalised so that G = 1.
    wb_source:  "camera" (as shot), "daylight" (LibRaw's pre_mul, when the file has no camera WB) or "unity".
    rgb_cam:    float64 (3, 3), white-balanced camera RGB → linear sRGB (LibRaw's rgb_cam; rows sum to 1).
    xyz_to_cam: float64 (3, 3), XYZ → camera RGB (DNG ColorMatrix1; LibRaw's rgb_xyz_matrix[:3]).
    flip:       LibRaw/dcraw orientation code (``sizes.flip``): bit 4 transpose, bit 2 flip rows, bit 1 flip cols.
    bits:       bit depth of the data, ceil(log2(white + 1)).
    raw_size:   (raw_height, raw_width) of the full sensor readout.
    margins:    (top, left) of the visible area inside the raw readout.
    exif:       camera EXIF basics present in the file: make, model, datetime, exposure_time, f_number, iso,
                focal_length, lens (keys only where present; str/int/float values).
    """

    mosaic: np.ndarray
    cfa: str
    black: np.ndarray
    white: int
    wb: np.ndarray
    wb_source: str
    rgb_cam: np.ndarray
    xyz_to_cam: np.ndarray
    flip: int = 0
    bits: int = 16
    raw_size: tuple[int, int] = (0, 0)
    margins: tuple[int, int] = (0, 0)
    exif: dict = field(default_factory=dict)
