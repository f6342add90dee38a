"""``RawImage``: a RAW frame (Bayer, any periodic CFA, or 3-sample linear) with everything needed to render and
re-write it, and its orientation (LibRaw/dcraw
``flip`` codes ⇄ EXIF orientation; ``apply_flip`` turns sensor orientation into LibRaw's upright output)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..settings import CFA_LAYOUTS, LINEAR_CFA, cfa_rows


@dataclass
class RawImage:
    """A RAW frame in sensor orientation, with everything needed to render and re-write it.

    mosaic:     uint16 (H, W), the visible area, sensor orientation; (H, W, 3) for a linear (demosaiced) image.
    cfa:        the colour layout of the visible area's top-left, row-major: a 2×2 Bayer "RGGB", "BGGR", "GRBG",
                "GBRG"; any other periodic CFA as rows joined by "/" (X-Trans "GGRGGB/GGBGGR/…",
                ``settings.cfa_rows``); "linear" (``LINEAR_CFA``) for 3 samples per pixel.
    black:      float64, black level at each position of the CFA tile: (2, 2) Bayer, (p, q) for a period-(p, q)
                CFA, (3,) per channel for a linear image.
    white:      white (saturation) level in raw units.
    wb:         float64 (3,), R, G, B white-balance multipliers, normalised so that G = 1.
    wb_source:  "camera" (as shot), "daylight" (LibRaw's pre_mul, when the file has no camera WB) or "unity".
                Also "auto": the file has no camera WB and LibRaw's postprocess(use_camera_wb=True) then
                uses its grey-world auto WB (LibRaw >= 0.21), which ``read_raw`` reproduces.
    rgb_cam:    float64 (3, 3), white-balanced camera RGB → linear sRGB (LibRaw's rgb_cam; rows sum to 1).
    xyz_to_cam: float64 (3, 3), XYZ → camera RGB (DNG ColorMatrix1; LibRaw's rgb_xyz_matrix[:3]).
    flip:       LibRaw/dcraw orientation code (``sizes.flip``): bit 4 transpose, bit 2 flip rows, bit 1 flip cols.
    bits:       bit depth of the data, ceil(log2(white + 1)).
    raw_size:   (raw_height, raw_width) of the full sensor readout.
    margins:    (top, left) of the visible area inside the raw readout.
    exif:       camera EXIF basics present in the file: make, model, datetime, exposure_time, f_number, iso,
                focal_length, lens (keys only where present; str/int/float values); for TIFF-based files also
                the packed "exif" tree, "xmp" packet and "dng" tags (``carried_metadata``) that the JPEG and
                the DNG written from it carry on.
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

    def crop(self, y0: int, x0: int, h: int, w: int) -> RawImage:
        """The same frame cropped to rows y0:y0+h, columns x0:x0+w of the mosaic (sensor orientation, flip 0);
        offsets must be multiples of the CFA's period (2 for Bayer) so the CFA layout is unchanged."""
        rows = cfa_rows(self.cfa) or ("",)
        p, q = len(rows), max(1, len(rows[0]))
        if y0 % p or x0 % q:
            raise ValueError(f"crop offsets must be multiples of the CFA period {p}×{q}, got ({y0}, {x0})")
        return RawImage(**{**self.__dict__, "mosaic": self.mosaic[y0 : y0 + h, x0 : x0 + w], "flip": 0})

    @property
    def linear(self) -> bool:
        """True for a 3-sample (demosaiced) image, False for a mosaic."""
        return self.cfa == LINEAR_CFA


def sample_planes(mosaic: np.ndarray) -> np.ndarray:
    """A RawImage's samples as planes (C, H, W): (1, H, W) for a mosaic, (3, H, W) (a view) for a linear image."""
    return mosaic[None] if mosaic.ndim == 2 else mosaic.transpose(2, 0, 1)


BAYER_LAYOUTS = CFA_LAYOUTS

# dcraw: flip = "50132467"[orientation & 7]; the table below is its inverse.
_EXIF_TO_FLIP = {1: 0, 2: 1, 3: 3, 4: 2, 5: 4, 6: 6, 7: 7, 8: 5}
_FLIP_TO_EXIF = {v: k for k, v in _EXIF_TO_FLIP.items()}




def apply_flip(img: np.ndarray, flip: int) -> np.ndarray:
    """Sensor-oriented (H, W[, C]) → upright, exactly as LibRaw's postprocess orients its output.

    dcraw/LibRaw output pixel (r, c) reads source (r', c'): swap(r, c) if flip & 4, then r' = H-1-r if
    flip & 2, c' = W-1-c if flip & 1."""
    flip = _check_flip(flip)
    out = img
    if flip & 2:
        out = out[::-1]
    if flip & 1:
        out = out[:, ::-1]
    if flip & 4:
        out = out.swapaxes(0, 1)
    return np.ascontiguousarray(out)


def undo_flip_view(img: np.ndarray, flip: int) -> np.ndarray:
    """``undo_flip`` as a view of ``img`` (no copy; its memory layout, e.g. planar, kept)."""
    flip = _check_flip(flip)
    out = img
    if flip & 4:
        out = out.swapaxes(0, 1)
    if flip & 1:
        out = out[:, ::-1]
    if flip & 2:
        out = out[::-1]
    return out


def undo_flip(img: np.ndarray, flip: int) -> np.ndarray:
    """Inverse of ``apply_flip``: upright (as LibRaw outputs it) → sensor orientation (C-contiguous)."""
    return np.ascontiguousarray(undo_flip_view(img, flip))


def flip_to_exif(flip: int) -> int:
    """LibRaw ``sizes.flip`` (0..7) → EXIF/TIFF Orientation (1..8)."""
    return _FLIP_TO_EXIF[_check_flip(flip)]


def exif_to_flip(orientation: int) -> int:
    """EXIF/TIFF Orientation (1..8) → LibRaw flip code (dcraw: ``"50132467"[o & 7]``)."""
    if int(orientation) not in _EXIF_TO_FLIP:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation!r}")
    return _EXIF_TO_FLIP[int(orientation)]


def _check_flip(flip: int) -> int:
    f = int(flip)
    if not 0 <= f <= 7:
        raise ValueError(f"flip must be 0..7, got {flip!r}")
    return f
