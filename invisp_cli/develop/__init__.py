"""``invisp develop``: edit a photo on its recovered RAW (or on any RAW file) and write a JPEG or 16-bit TIFF.

The input is an invisp JPEG, whose RAW is recovered in memory exactly as ``invisp decode`` does
(``codec.recover_file``: the residual layer when present, else the file's model), or any Bayer RAW file
(``rawio.read_raw``). Either starts from the file's render: an invisp JPEG's front end and look as its record
holds them, a RAW's as ``invisp encode`` would choose them (``look.resolve``), so a develop with no edits
reproduces the invisp JPEG; one of the analytic front end without an exact layer develops from its full-colour
camera image (``pipeline.camera_image``: the three channels the JPEG holds at every pixel, not the recovered
mosaic's one). The pipeline and each option's math: ``pipeline``; colour: ``colour``; files: ``output``."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, UnsupportedSensorError
from ..fileio import atomic_output, check_input, check_output
from ..rawio import RawImage
from ..settings import (
    CFA_LAYOUTS,
    CONTAINERS,
    DEFAULT_QUALITY,
    DEFAULT_SUBSAMPLING,
    DEFAULT_TILE,
    FrontEnd,
)
from . import colour, output
from .pipeline import WB_RATIO, Edit, camera_image, develop

__all__ = ["Edit", "Source", "develop", "develop_file", "load_source", "parse_wb"]

JPEG_SUFFIXES = CONTAINERS["jpeg"].outputs  # a developed photo is a plain JPEG (no invisp record)
TIFF_SUFFIXES = (".tif", ".tiff")
_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass
class Source:
    """A develop input: the RAW, the front end of its invisp render (base exposure g₀, demosaic, highlight knee,
    look), and where it came from."""

    raw: RawImage
    front: FrontEnd
    origin: str
    pixels: np.ndarray | None = None  # the render's camera image (pipeline.camera_image), else develop the mosaic


def load_source(path: str | os.PathLike, tile: int = DEFAULT_TILE, look: str | None = None) -> Source:
    """An invisp JPEG (recovered as ``invisp decode`` does; its front end as stored in it) or a RAW file (its front
    end as ``invisp encode`` chooses it: the default model's, g₀ of ``pipeline.front_end_settings``), so both inputs
    of one photo develop alike. ``look`` as ``encode --look`` (``look.resolve``); None: the JPEG's own, or for a RAW
    encode's default (the camera look for the analytic front end, LibRaw's in front of a learned stage)."""
    from .. import codec, pipeline, rawio, zoo
    from .. import look as looks

    p = check_input(path)
    with open(p, "rb") as fh:
        is_jpeg = fh.read(3) == _JPEG_MAGIC
    if is_jpeg:
        rec = codec.recover_file(p, tile)
        how = rec.layer or "approximate RAW"
        if rec.pixels is not None and rec.pixels.state in ("transformed", "recoded", "changed"):
            how += f"; {rec.pixels.summary}"
        source = Source(rec.raw, rec.params.front_end, f"{rec.params.model_id}, {how}")
    else:
        raw = rawio.read_raw(p)
        entry = codec.resolve_model(None, raw.exif.get("make", ""))
        source = Source(raw, pipeline.front_end_settings(raw, entry.isp), "RAW file")
        look = look or entry.default_look
    if source.raw.cfa not in CFA_LAYOUTS:  # its pipeline (MHC demosaic, clip flags) is Bayer's
        what = "a linear image" if source.raw.linear else f"a {source.raw.cfa} colour filter array"
        raise UnsupportedSensorError(f"{p}: develop edits Bayer mosaics only, not {what} (invisp decode gives its "
                                     "DNG for another converter)")
    if is_jpeg and not rec.layer and rec.pixels is not None and (
            zoo.find_model(rec.params.model_id).arch == zoo.ANALYTIC_ARCH):  # its pixels are all the render had
        source.pixels = camera_image(rec.pixels.rgb, source.raw, source.front)
        source.origin += ", from its pixels"
    if look is not None:
        chosen = looks.resolve(look, p, source.raw, dataclasses.replace(source.front, look=None))
        source = dataclasses.replace(source, front=dataclasses.replace(source.front, look=chosen))
    return source


def parse_wb(text: str) -> tuple[float | None, tuple[float, float, float] | None]:
    """``--wb``: "as-shot", a temperature "5200K" (2000–50000 K), or multipliers "R,G,B" →
    (temperature or None, multipliers or None). ValueError with a message otherwise."""
    t = text.strip().lower()
    if t in ("as-shot", "asshot", "camera"):
        return None, None
    if m := re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)\s*k", t):
        kelvin = float(m.group(1))
        if not 2000.0 <= kelvin <= 50000.0:
            raise ValueError(f"{text!r}: temperature must lie in 2000K..50000K")
        return kelvin, None
    try:
        values = tuple(float(v) for v in t.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{text!r}: expected as-shot, a temperature like 5200K, or three positive finite "
                         "multipliers R,G,B")
    if not all(1 / WB_RATIO <= v / values[1] <= WB_RATIO for v in values):
        raise ValueError(f"{text!r}: each multiplier must lie within 1/{WB_RATIO:g}..{WB_RATIO:g} of G's")
    return None, (values[0], values[1], values[2])


@dataclass
class DevelopResult:
    output: Path
    origin: str
    seconds: float
    compare: Path | None


def _check_paths(src: Path, dst: Path, linear: bool, primaries: str, compare: Path | None, force: bool) -> None:
    suffix = dst.suffix.lower()
    if suffix not in JPEG_SUFFIXES + TIFF_SUFFIXES:
        raise InputError(f"{dst}: unsupported output type {suffix or '(none)'!r} (use .jpg or .tif)")
    if (linear or primaries != "rec709") and suffix not in TIFF_SUFFIXES:
        raise InputError(f"{dst}: linear (--linear, --primaries) output is a 16-bit TIFF: use .tif")
    if primaries != "rec709" and not linear:
        raise InputError("--primaries prophoto is for --linear output (sRGB output has sRGB primaries)")
    check_output(dst, force, inputs=[src])
    if compare is not None:
        if compare.suffix.lower() != ".png":
            raise InputError(f"{compare}: the comparison is a PNG: use .png")
        check_output(compare, force, inputs=[src, dst])


def develop_file(src: str | os.PathLike, dst: str | os.PathLike, edit: Edit, *, quality: int = DEFAULT_QUALITY,
                 subsampling: str = DEFAULT_SUBSAMPLING, linear: bool = False, primaries: str = "rec709",
                 compare: str | os.PathLike | None = None, force: bool = False,
                 tile: int = DEFAULT_TILE, look: str | None = None) -> DevelopResult:
    """Develop ``src`` (invisp JPEG or RAW) with ``edit`` into ``dst`` (.jpg: 8-bit sRGB; .tif: 16-bit sRGB, or
    with ``linear`` float16 linear light in Rec.709/ProPhoto primaries), atomically; ``compare``: a before/after
    PNG (before = the same input developed with no edit); ``look``: as ``load_source``."""
    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    compare = Path(compare) if compare is not None else None
    _check_paths(src, dst, linear, primaries, compare, force)
    source = load_source(src, tile, look)
    raw, front = source.raw, source.front
    camera = dict(raw.exif)
    is_jpeg = dst.suffix.lower() in JPEG_SUFFIXES
    mode = "srgb8" if is_jpeg else "linear" if linear else "srgb16"
    image = develop(raw, front, edit, mode, primaries, tile, pixels=source.pixels)
    note = f"invisp develop from {src.name}: {edit}"
    with atomic_output(dst, force, inputs=[src]) as tmp:
        if is_jpeg:
            output.write_jpeg(tmp, image, camera, colour.srgb_profile(), quality, subsampling)
        else:
            icc = colour.linear_profile(primaries) if linear else colour.srgb_profile()
            output.write_tiff(tmp, image, camera, icc, note)
    if compare is not None:
        after = image if mode == "srgb8" else develop(raw, front, edit, "srgb8", tile=tile, description="after",
                                                               pixels=source.pixels)
        del image
        before = develop(raw, front, Edit(), "srgb8", tile=tile, description="before", pixels=source.pixels)
        with atomic_output(compare, force, inputs=[src, dst]) as tmp:
            output.write_compare(tmp, before, after)
    return DevelopResult(dst, source.origin, time.perf_counter() - t0, compare)
