"""RAW input/output: read any LibRaw file of one colour per site (Bayer, X-Trans, any periodic CFA) or 3 samples
per pixel (linear DNG) into a ``RawImage``; write DNG.

    image.py   RawImage and orientation      colour.py  LibRaw's colour and auto white balance
    read.py    read_raw, render_reference    exif.py    camera metadata, carried tags
    libraw.py  LibRaw's C API, stderr         dng.py     write_dng, is_invisp_dng

Reading goes through rawpy (LibRaw). Everything a later render needs is taken the way LibRaw's own
``postprocess(use_camera_wb=True)`` takes it, so that a render of a ``RawImage`` can match LibRaw's:

* white balance: the camera's as-shot multipliers when the file has them; otherwise LibRaw (0.21+)
  falls back to its grey-world *auto* white balance, which ``libraw_auto_wb`` reproduces exactly
  (``wb_source="auto"``); LibRaw's daylight multipliers and unity are last resorts;
* ``rgb_cam`` is LibRaw's own ``color.rgb_cam`` (read through LibRaw's C API, which rawpy bundles);
* black levels are per position of the CFA tile (2×2 Bayer, 6×6 X-Trans; rawpy gives them per colour index),
  per channel for a linear image.

Orientation follows LibRaw/dcraw: ``flip`` is ``sizes.flip``; ``apply_flip`` turns a sensor-oriented array
into the upright orientation LibRaw's ``postprocess`` outputs. Verified against rawpy on DNGs with every
EXIF orientation 1..8 (see tests/test_rawio.py).
"""

from .colour import XYZ_RGB, cam_xyz_coeff, cfa_indices, libraw_auto_wb, xyz_to_cam_from_rgb_cam
from .dng import is_invisp_dng, write_dng
from .image import (
           BAYER_LAYOUTS,
           RawImage,
           apply_flip,
           exif_to_flip,
           flip_to_exif,
           sample_planes,
           undo_flip,
           undo_flip_view,
)
from .read import MIN_SIDE, read_raw, render_reference

__all__ = ["BAYER_LAYOUTS", "MIN_SIDE", "XYZ_RGB", "RawImage", "apply_flip", "cam_xyz_coeff", "cfa_indices",
           "exif_to_flip", "flip_to_exif", "is_invisp_dng", "libraw_auto_wb", "read_raw", "render_reference",
           "sample_planes", "undo_flip", "undo_flip_view", "write_dng", "xyz_to_cam_from_rgb_cam"]
