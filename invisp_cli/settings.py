"""Every user-facing setting's default and allowed values, defined once.

Torch-free and import-light: the command line, the metadata schema (``params``) and the steps all read them
from here, so a default shown by ``--help`` is the default the code uses."""

from __future__ import annotations

#: the 2×2 Bayer layouts, row-major from the visible area's top-left site
CFA_LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")
#: the colour index of each CFA letter (0 R, 1 G, 2 B), as LibRaw, DNG's CFAPattern and the steps number them
COLOUR_INDEX = {"R": 0, "G": 1, "B": 2}

#: JPEG output
DEFAULT_QUALITY = 90
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
DEFAULT_SUBSAMPLING = "4:4:4"
JPEG_SUFFIXES = (".jpg", ".jpeg")

#: video output (MP4): codec → encoder, pixel format → (bits per sample, chroma subsampling factor), file endings
CODECS = {"h264": "libx264", "h265": "libx265"}
PIX_FMTS = {"yuv420p": (8, 2), "yuv444p": (8, 1), "yuv420p10le": (10, 2), "yuv444p10le": (10, 1)}
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")

#: tiles (pixels per side) that bound memory at any resolution
DEFAULT_TILE = 1024
TILE_RANGE = (64, 8192)

#: the analytic front end; the architecture name of the parameter-free model that is the front end alone (it runs
#: on numpy, without loading torch)
ANALYTIC_ARCH = "frontend"
DEMOSAIC_NAMES = ("mhc", "bilinear")
DEFAULT_DEMOSAIC = "mhc"
DEFAULT_KNEE = 0.8  # highlight roll-off knee of new models (measured trade-off: README, "Highlights")
