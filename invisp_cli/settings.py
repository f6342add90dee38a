"""Every user-facing setting's default and allowed values, defined once; the typed render settings a file
carries; the registry of containers.

Torch-free and import-light: the command line, the metadata schema (``params``) and the steps all read them
from here, so a default shown by ``--help`` is the default the code uses.

A file's render record (``params.render``, one JSON object) is its container's settings plus the front end's:

    JPEG      {"codec": "jpeg", "quality": 1…100, "subsampling": "4:4:4"|"4:2:2"|"4:2:0", "layer": N (optional:
               written with a residual layer guaranteeing ±N)}
    Video     {"codec": "h264"|"h265", "crf": 0…51, "pix_fmt": "yuv420p"|…}
    FrontEnd  {"exposure_gain": g ∈ [10⁻³, 64], "demosaic": "mhc"|"bilinear", "highlight_knee": k ∈ (0, 1) (optional)}

Each is a frozen dataclass that validates itself on construction (ValueError naming the field), read with
``from_json`` and written back with the same keys by ``to_json``. ``CONTAINERS`` registers each container (the
modules that read and write them are ``containers/`` and ``video/container.py``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

#: the 2×2 Bayer layouts, row-major from the visible area's top-left site
CFA_LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")
#: the colour index of each CFA letter (0 R, 1 G, 2 B), as LibRaw, DNG's CFAPattern and the steps number them
COLOUR_INDEX = {"R": 0, "G": 1, "B": 2}

#: JPEG output (the file endings of each container: ``CONTAINERS``)
DEFAULT_QUALITY = 90
SUBSAMPLINGS = ("4:4:4", "4:2:2", "4:2:0")
DEFAULT_SUBSAMPLING = "4:4:4"

#: video output (MP4): codec → encoder, pixel format → (bits per sample, chroma subsampling factor)
CODECS = {"h264": "libx264", "h265": "libx265"}
PIX_FMTS = {"yuv420p": (8, 2), "yuv444p": (8, 1), "yuv420p10le": (10, 2), "yuv444p10le": (10, 1)}

#: tiles (pixels per side) that bound memory at any resolution
DEFAULT_TILE = 1024
TILE_RANGE = (64, 8192)

#: the analytic front end; the architecture name of the parameter-free model that is the front end alone (it runs
#: on numpy, without loading torch)
ANALYTIC_ARCH = "frontend"
DEMOSAIC_NAMES = ("mhc", "bilinear")
DEFAULT_DEMOSAIC = "mhc"
DEFAULT_KNEE = 0.8  # highlight roll-off knee of new models (measured trade-off: README, "Highlights")


def _int(value, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _real(value, lo: float, hi: float) -> bool:
    """``value`` is a finite real number in [lo, hi]."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and lo <= value <= hi)


@dataclass(frozen=True)
class FrontEnd:
    """The analytic front end of one image or frame (``steps.front_end``): x ↦ gain·x before white balance, the
    demosaic, and the highlight roll-off's knee (None: no roll-off, as in files of models trained without one)."""

    exposure_gain: float = 1.0
    demosaic: str = DEFAULT_DEMOSAIC
    highlight_knee: float | None = None

    def __post_init__(self) -> None:
        if not _real(self.exposure_gain, 1e-3, 64):
            raise ValueError("exposure_gain")
        if self.demosaic not in DEMOSAIC_NAMES:
            raise ValueError("demosaic")
        if self.highlight_knee is not None and not _real(self.highlight_knee, 1e-3, 1 - 1e-3):
            raise ValueError("highlight_knee")

    @classmethod
    def of(cls, isp: Mapping | None, gain: float) -> FrontEnd:
        """The front end a model was trained behind (``ModelEntry.isp``: demosaic, highlight knee) at ``gain``."""
        isp = isp or {}
        knee = isp.get("highlight_knee")
        return cls(float(gain), isp.get("demosaic", DEFAULT_DEMOSAIC), None if knee is None else float(knee))

    @classmethod
    def from_json(cls, record: Mapping) -> FrontEnd:
        return cls(record["exposure_gain"], record.get("demosaic", DEFAULT_DEMOSAIC), record.get("highlight_knee"))

    def to_json(self) -> dict:
        knee = {} if self.highlight_knee is None else {"highlight_knee": self.highlight_knee}
        return {"demosaic": self.demosaic, "exposure_gain": self.exposure_gain, **knee}


@dataclass(frozen=True)
class JPEG:
    """Baseline JPEG: quality, chroma subsampling, and the residual layer's bound N, if any."""

    quality: int = DEFAULT_QUALITY
    subsampling: str = DEFAULT_SUBSAMPLING
    layer: int | None = None

    def __post_init__(self) -> None:
        if not (_int(self.quality, 1, 100) and self.subsampling in SUBSAMPLINGS):
            raise ValueError("JPEG quality/subsampling")
        if self.layer is not None and not _int(self.layer, 0, 65535):
            raise ValueError("layer")

    @classmethod
    def from_json(cls, record: Mapping) -> JPEG:
        return cls(record["quality"], record["subsampling"], record.get("layer"))

    def to_json(self) -> dict:
        layer = {} if self.layer is None else {"layer": self.layer}
        return {"codec": "jpeg", "quality": self.quality, "subsampling": self.subsampling, **layer}


@dataclass(frozen=True)
class Video:
    """An H.264/H.265 stream: codec, constant rate factor, pixel format (bit depth and chroma subsampling)."""

    codec: str = "h264"
    crf: int = 23
    pix_fmt: str = "yuv420p"

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r}")
        if not (_int(self.crf, 0, 51) and self.pix_fmt in PIX_FMTS):
            raise ValueError("video crf/pix_fmt")

    @classmethod
    def from_json(cls, record: Mapping) -> Video:
        return cls(record["codec"], record["crf"], record["pix_fmt"])

    def to_json(self) -> dict:
        return {"codec": self.codec, "crf": self.crf, "pix_fmt": self.pix_fmt}


@dataclass(frozen=True)
class Container:
    """A registered container: the files it reads and writes, the record's ``codec`` values that name it, its
    settings type, and the pixels ``pipeline.render`` makes for it (8-bit, or float in [0, 1] for an encoder)."""

    name: str
    suffixes: tuple[str, ...]  # recognised when reading
    outputs: tuple[str, ...]  # written
    codecs: tuple[str, ...]
    settings: type[JPEG] | type[Video]
    pixels: str  # the numpy dtype


CONTAINERS = {
    "jpeg": Container("JPEG", (".jpg", ".jpeg"), (".jpg", ".jpeg"), ("jpeg",), JPEG, "uint8"),
    "video": Container("MP4", (".mp4", ".m4v", ".mov"), (".mp4",), tuple(CODECS), Video, "float32"),
}


def kind_of(path: str | os.PathLike) -> str | None:
    """The registered container a file is by its ending ("jpeg", "video"), None for any other file."""
    suffix = Path(path).suffix.lower()
    return next((k for k, c in CONTAINERS.items() if suffix in c.suffixes), None)


def output_container(dst: str | os.PathLike, kind: str) -> Container:
    """The container ``kind`` writes to ``dst``; InputError unless ``dst`` has one of its output endings."""
    container, suffix = CONTAINERS[kind], Path(dst).suffix.lower()
    if suffix not in container.outputs:
        raise InputError(f"{dst}: unsupported output type {suffix or '(none)'!r} (use {container.outputs[0]})")
    return container


def output_settings(record: Mapping) -> JPEG | Video:
    """The container settings of a render record, by its ``codec`` (absent: JPEG, as in the first files)."""
    codec = record.get("codec", "jpeg")
    for container in CONTAINERS.values():
        if codec in container.codecs:
            return container.settings.from_json(record)
    raise ValueError(f"codec {codec!r}")


def render_record(output: JPEG | Video, front: FrontEnd) -> dict:
    """``params.render``: the container's settings and the front end's, in one JSON object."""
    return {**output.to_json(), **front.to_json()}
