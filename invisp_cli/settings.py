"""Every user-facing setting's default and allowed values, defined once; the typed render settings a file
carries; the registry of containers.

Torch-free and import-light: the command line, the metadata schema (``params``) and the steps all read them
from here, so a default shown by ``--help`` is the default the code uses.

A file's render record (``params.render``, one JSON object) is its container's settings plus the front end's:

    JPEG      {"codec": "jpeg", "quality": 1…100, "subsampling": "4:4:4"|"4:2:2"|"4:2:0", "layer": N (optional:
               written with a residual layer guaranteeing ±N), "layer_sigma": K (optional: … within K·σ)}
    Video     {"codec": "h264"|"h265", "crf": 0…51, "pix_fmt": "yuv420p"|…}
    FrontEnd  {"exposure_gain": g ∈ [10⁻³, 64], "demosaic": "mhc"|"bilinear" (Bayer)|"pattern" (other CFAs)|"none"
               (linear), "highlight_knee": k ∈ (0, 1) (optional)}
              + "look": ``Look`` (optional: absent = LibRaw's look)

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
#: any other periodic one-colour-per-site CFA is its rows of letters joined by "/" (X-Trans:
#: "GGRGGB/GGBGGR/BRGRBG/GGBGGR/GGRGGB/RBGBRG"), period up to MAX_CFA_PERIOD; a 2×2 Bayer layout keeps its four
#: letters. LINEAR_CFA: an already demosaiced image, 3 samples per pixel (DNG LinearRaw), no mosaic at all.
LINEAR_CFA = "linear"
MAX_CFA_PERIOD = 16
#: the demosaic such a CFA gets (``steps.PatternDemosaic``; none for linear), whatever a model was trained with
CFA_DEMOSAICS = ("pattern", "none")


def cfa_rows(cfa: str) -> tuple[str, ...]:
    """The rows of colour letters of a periodic CFA ("RGGB" → ("RG", "GB")); () for ``LINEAR_CFA``; ValueError
    naming ``cfa`` unless it is a Bayer layout, linear, or rows of equal length ≤ MAX_CFA_PERIOD of R, G, B
    holding all three."""
    if cfa == LINEAR_CFA:
        return ()
    if cfa in CFA_LAYOUTS:
        return cfa[:2], cfa[2:]
    rows = tuple(cfa.split("/")) if isinstance(cfa, str) and "/" in cfa else ()
    if not (1 < len(rows) <= MAX_CFA_PERIOD and 0 < len(rows[0]) <= MAX_CFA_PERIOD
            and all(len(r) == len(rows[0]) for r in rows) and set("".join(rows)) == set("RGB")):
        raise ValueError(f"unsupported CFA layout {cfa!r}")
    return rows


def dng_cfa_problem(cfa: str) -> str:
    """Why a DNG of layout ``cfa`` would not read back as the same pattern ("" if it would): LibRaw's DNG reader
    takes a 6×6 CFAPattern as X-Trans and any other as dcraw's ``filters``, a pattern of 2 columns by 1, 2, 4 or 8
    rows (a 3×3 or 2×4 pattern comes back scrambled)."""
    rows = cfa_rows(cfa)
    p, q = (len(rows), len(rows[0])) if rows else (0, 0)
    if not rows or (p, q) == (6, 6) or (q in (1, 2) and p in (1, 2, 4, 8)):
        return ""
    return f"a {p}×{q} colour filter array (a DNG holds 6×6, or 2 columns by 1, 2, 4 or 8 rows, for LibRaw)"


def cfa_demosaic(cfa: str, requested: str) -> str:
    """The demosaic a file of layout ``cfa`` renders with: ``requested`` for a Bayer layout (the default for
    "none"), "none" for linear, "pattern" for any other CFA."""
    if cfa in CFA_LAYOUTS:
        return DEFAULT_DEMOSAIC if requested == "none" else requested
    return "none" if cfa == LINEAR_CFA else "pattern"

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
DEFAULT_KNEE = 0.8  # highlight roll-off knee of new models (measured trade-off: docs/results.md, "Highlights")

#: encode's looks: "camera" (fitted to the RAW's own preview, else the camera's trained look, else the generic
#: one) or "libraw" (no look: LibRaw's render, the seed papers' protocol); any other value names a trained look
LOOKS = ("camera", "libraw")
DEFAULT_LOOK = "camera"
LOOK_KNOT_COUNTS = (2, 3, 5, 9, 17, 33)  # knots per tone curve: K − 1 divides the curve table's 4096 intervals


def _int(value, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _real(value, lo: float, hi: float) -> bool:
    """``value`` is a finite real number in [lo, hi]."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and lo <= value <= hi)


@dataclass(frozen=True)
class Look:
    """A camera look after the gamma (``steps.Look``): per-channel tone curves (K log-slopes θ_c,j each and the
    minimum slope s₀, ``steps.ToneCurves``) and the colour rendering (2×2 matrix M on (R − Y, B − Y), shoulder
    knee k and reach R, ``steps.ChromaCompress``). ``name``: "camera" (fitted to the file's own preview) or the
    ID of the trained look it came from. JSON: {"name", "curves": [[θ…] ×3], "slope_min", "chroma": [m00, m01,
    m10, m11], "knee", "reach"}."""

    name: str
    curves: tuple[tuple[float, ...], ...]
    slope_min: float
    chroma: tuple[float, float, float, float]
    knee: float
    reach: float

    def __post_init__(self) -> None:
        if not (isinstance(self.name, str) and 0 < len(self.name) <= 100):
            raise ValueError("look name")
        rows = self.curves
        if not (isinstance(rows, tuple) and len(rows) == 3 and all(isinstance(r, tuple) for r in rows)
                and len({len(r) for r in rows}) == 1 and len(rows[0]) in LOOK_KNOT_COUNTS
                and all(_real(v, -20, 20) for r in rows for v in r)):
            raise ValueError("look curves")
        if not _real(self.slope_min, 0.05, 1.0):
            raise ValueError("look slope_min")
        m = self.chroma
        if not (isinstance(m, tuple) and len(m) == 4 and all(_real(v, -8, 8) for v in m)
                and abs(m[0] * m[3] - m[1] * m[2]) >= 0.05):
            raise ValueError("look chroma")
        if not (_real(self.knee, 0.05, 0.95) and _real(self.reach, 1.0, 64.0)):
            raise ValueError("look knee/reach")

    @classmethod
    def from_json(cls, record: Mapping) -> Look:
        """ValueError for anything malformed (missing keys, wrong types or ranges)."""
        try:
            return cls(record["name"], tuple(tuple(float(v) for v in r) for r in record["curves"]),
                       float(record["slope_min"]), tuple(float(v) for v in record["chroma"]),  # type: ignore[arg-type]
                       float(record["knee"]), float(record["reach"]))
        except (KeyError, TypeError, AttributeError, OverflowError) as e:
            raise ValueError(f"look ({type(e).__name__})") from None

    def to_json(self) -> dict:
        return {"name": self.name, "curves": [list(r) for r in self.curves], "slope_min": self.slope_min,
                "chroma": list(self.chroma), "knee": self.knee, "reach": self.reach}


@dataclass(frozen=True)
class FrontEnd:
    """The analytic front end of one image or frame (``steps.front_end``): x ↦ gain·x before white balance, the
    demosaic, the highlight roll-off's knee (None: no roll-off, as in files of models trained without one) and the
    look after the gamma (None: LibRaw's look, as in every file written before looks existed)."""

    exposure_gain: float = 1.0
    demosaic: str = DEFAULT_DEMOSAIC
    highlight_knee: float | None = None
    look: Look | None = None

    def __post_init__(self) -> None:
        if not _real(self.exposure_gain, 1e-3, 64):
            raise ValueError("exposure_gain")
        if self.demosaic not in DEMOSAIC_NAMES + CFA_DEMOSAICS:
            raise ValueError("demosaic")
        if self.highlight_knee is not None and not _real(self.highlight_knee, 1e-3, 1 - 1e-3):
            raise ValueError("highlight_knee")
        if self.look is not None and not isinstance(self.look, Look):
            raise ValueError("look")

    @classmethod
    def of(cls, isp: Mapping | None, gain: float) -> FrontEnd:
        """The front end a model was trained behind (``ModelEntry.isp``: demosaic, highlight knee) at ``gain``."""
        isp = isp or {}
        knee = isp.get("highlight_knee")
        return cls(float(gain), isp.get("demosaic", DEFAULT_DEMOSAIC), None if knee is None else float(knee))

    @classmethod
    def from_json(cls, record: Mapping) -> FrontEnd:
        look = record.get("look")
        if look is not None and not isinstance(look, Mapping):
            raise ValueError("look")
        return cls(record["exposure_gain"], record.get("demosaic", DEFAULT_DEMOSAIC), record.get("highlight_knee"),
                   None if look is None else Look.from_json(look))

    def to_json(self) -> dict:
        knee = {} if self.highlight_knee is None else {"highlight_knee": self.highlight_knee}
        look = {} if self.look is None else {"look": self.look.to_json()}
        return {"demosaic": self.demosaic, "exposure_gain": self.exposure_gain, **knee, **look}


@dataclass(frozen=True)
class JPEG:
    """Baseline JPEG: quality, chroma subsampling, and the residual layer's bound, if any: N raw units
    (``layer``) or K·σ of the sensor noise (``layer_sigma``, ``--max-error Ks``)."""

    quality: int = DEFAULT_QUALITY
    subsampling: str = DEFAULT_SUBSAMPLING
    layer: int | None = None
    layer_sigma: float | None = None

    def __post_init__(self) -> None:
        if not (_int(self.quality, 1, 100) and self.subsampling in SUBSAMPLINGS):
            raise ValueError("JPEG quality/subsampling")
        if self.layer is not None and not _int(self.layer, 0, 65535):
            raise ValueError("layer")
        if self.layer_sigma is not None and not (
                isinstance(self.layer_sigma, float) and 0.0 < self.layer_sigma <= 64.0 and self.layer is None):
            raise ValueError("layer_sigma")

    @classmethod
    def from_json(cls, record: Mapping) -> JPEG:
        sigma = record.get("layer_sigma")
        return cls(record["quality"], record["subsampling"], record.get("layer"),
                   float(sigma) if isinstance(sigma, int | float) and not isinstance(sigma, bool) else sigma)

    def to_json(self) -> dict:
        layer = {} if self.layer is None else {"layer": self.layer}
        if self.layer_sigma is not None:
            layer["layer_sigma"] = self.layer_sigma
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
