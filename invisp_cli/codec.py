"""Encode (RAW → JPEG) and decode (JPEG → DNG) of one file: ``pipeline.render`` / ``pipeline.recover`` of a
one-frame window (W = 1), the JPEG container, the residual layer and atomic output.

    encode:  RAW ─read─▶ pipeline.render (front end, flow, orient, 8-bit) ─▶ JPEG + params (+ residual layer)
    decode:  JPEG ─▶ params + the exact model ─▶ pipeline.recover (un-orient, flow⁻¹, front end⁻¹, round) ─▶ DNG
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from . import look as looks
from . import pipeline, rawio, residual
from .containers import dequant, integrity, jpeg
from .containers.layer import LayerError
from .errors import InputError, MetadataError
from .fileio import atomic_output, check_output
from .params import ReconstructionParams
from .rawio import RawImage
from .settings import (
    CONTAINERS,
    DEFAULT_QUALITY,
    DEFAULT_SUBSAMPLING,
    DEFAULT_TILE,
    JPEG,
    Look,
    output_container,
    render_record,
)
from .zoo import ModelEntry, find_model, load_stage, select_model

if TYPE_CHECKING:
    from .flows import InvertibleFlow


def render_settings(raw: RawImage, quality: int = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING,
                    isp: Mapping | None = None, layer: residual.Tolerance | None = None,
                    look: Look | None = None) -> dict:
    """The per-file rendering parameters stored in ``params.render``: JPEG settings (with the residual layer's
    bound: N or Sigma(K)) + the front end's (``pipeline.front_end_settings``, with ``look`` after its gamma; None:
    LibRaw's look); ValueError naming an invalid one."""
    sigma = layer.k if isinstance(layer, residual.Sigma) else None
    jpeg_settings = JPEG(int(quality), subsampling, None if layer is None or sigma else int(layer), sigma)
    return render_record(jpeg_settings, dataclasses.replace(pipeline.front_end_settings(raw, isp), look=look))


@dataclass
class Result:
    output: Path
    model_id: str
    seconds: float
    bytes: int
    layer: str = ""  # residual layer: what it added on encode / guaranteed on decode, "" if none
    warning: str = ""  # something the user should know although the command succeeded
    note: str = ""  # what decode did that the user should hear of (a lossless turn of the pixels undone)


def resolve_model(model_id: str | None, make: str) -> ModelEntry:
    return find_model(model_id) if model_id else select_model(make)


def encode_bytes(raw: RawImage, model: InvertibleFlow | None, params: ReconstructionParams,
                 tile: int = DEFAULT_TILE) -> bytes:
    """RAW → the bytes of its invisp JPEG: rendered under ``params.render``, carrying ``params``."""
    return jpeg.encode_jpeg(pipeline.render([raw], model, [params.render], tile, CONTAINERS["jpeg"].pixels), params)


def decode_bytes(data: bytes, model: InvertibleFlow | None, tile: int = DEFAULT_TILE,
                 name: str = "JPEG") -> tuple[np.ndarray, ReconstructionParams, RawImage]:
    """The bytes of an invisp JPEG → (its decoded upright pixels, its validated parameters, the RAW ``model``
    recovers from them, as ``recover_file`` without a layer: from ``dequant.recovery_pixels``): the in-memory round
    trip that training validation and the benchmark measure."""
    with Image.open(io.BytesIO(data)) as img:
        params = jpeg.read_params(img, name)
        rgb = np.asarray(img.convert("RGB"))
    pixels = dequant.recovery_pixels(data, integrity.Check("intact", rgb))
    return rgb, params, pipeline.recover([pixels], params, model, tile)


def stored_params(raw: RawImage, entry: ModelEntry, settings: Mapping, name: str) -> ReconstructionParams:
    """The parameters an encode stores, checked with exactly the rules decode applies (serialise, parse,
    validate), so that encode never writes a file decode would refuse."""
    params = ReconstructionParams.from_raw(raw, entry.id, entry.sha256, dict(settings))
    try:
        return ReconstructionParams.from_json(params.to_json())
    except (MetadataError, ValueError) as e:
        raise InputError(f"{name}: cannot be encoded: its parameters would not decode ({e})") from None


def encode_file(src: str | os.PathLike, dst: str | os.PathLike, *, model_id: str | None = None,
                quality: int | None = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING, force: bool = False,
                tile: int = DEFAULT_TILE, max_error: int | str | None = None, look: str | None = None) -> Result:
    """Read a RAW file, render it with the chosen (or camera-matched) model and ``look`` (``look.resolve``:
    "camera", "libraw" or a trained look's ID; None: "camera" for the front end alone, "libraw" in front of a
    learned stage, which was trained behind LibRaw's look), write the JPEG atomically.

    ``max_error`` N (0 = bit-exact) adds the residual layer recovering every raw value within ±N; "Ks" (e.g.
    "0.5s") within K·σ(n) of the sensor's noise (``residual.parse_max_error``), and then ``quality`` None picks
    the JPEG quality that minimises JPEG + layer (``residual.choose_quality``; otherwise None is the default)."""
    t0 = time.perf_counter()
    if max_error is not None:
        try:
            max_error = residual.parse_max_error(max_error)
        except ValueError as e:
            raise InputError(f"--max-error {e}") from None
    check_output(dst, force, inputs=[src])
    output_container(dst, "jpeg")
    raw = rawio.read_raw(src)
    entry = resolve_model(model_id, raw.exif.get("make", ""))
    model = load_stage(entry)
    if look is None:
        look = entry.default_look
    chosen = looks.resolve(look, src, raw, pipeline.front_end_settings(raw, entry.isp))
    try:  # the layer's bound is stored too: decode can then tell when a re-saved file lost its layer
        settings = render_settings(raw, DEFAULT_QUALITY if quality is None else quality, subsampling, entry.isp,
                                   max_error, chosen)
    except ValueError as e:
        raise InputError(f"{Path(src).name}: cannot be encoded: invalid render settings ({e})") from None
    params = stored_params(raw, entry, settings, Path(src).name)
    bins = residual.sigma_bins(raw, max_error) if isinstance(max_error, residual.Sigma) else None
    note = ""
    if max_error is None:
        data = encode_bytes(raw, model, params, tile)
    else:  # the layer is built on the JPEG's pixels as its encode decoded them (one decode, not two)
        rgb = pipeline.render([raw], model, [params.render], tile, CONTAINERS["jpeg"].pixels)
        if quality is None and bins is not None:  # the quality minimising JPEG + layer
            quality = residual.choose_quality(raw, rgb, params.front_end.exposure_gain, bins, subsampling,
                                              look=params.front_end.look)
            settings = render_settings(raw, quality, subsampling, entry.isp, max_error, chosen)
            params = stored_params(raw, entry, settings, Path(src).name)
        data, pixels = jpeg.encode_jpeg_pixels(rgb, params)
        data, layer_bytes = residual.attach(data, raw, params.front_end.exposure_gain, max_error, bins,
                                            params.front_end.look, pixels)
        note = (f"{residual.guarantee_text(max_error)} layer {layer_bytes / 1e6:.2f} MB"
                + (f", JPEG q{params.output.quality}" if isinstance(max_error, residual.Sigma) else ""))
    with atomic_output(dst, force, inputs=[src]) as tmp:
        tmp.write_bytes(data)
    return Result(Path(dst), entry.id, time.perf_counter() - t0, len(data), note)


@dataclass
class Recovered:
    """What an invisp JPEG gives back: the RAW, its model, and how (layer guarantee or a warning)."""

    raw: RawImage
    params: ReconstructionParams
    layer: str
    warning: str
    pixels: integrity.Check | None = None  # what the JPEG's pixels are relative to its record


def recover_file(src: str | os.PathLike, tile: int = DEFAULT_TILE) -> Recovered:
    """Read an invisp JPEG and recover its RAW in memory: from the residual layer when present (SHA-256
    verified), else with exactly the model the file names (SHA-256 verified against the stored hash), from the
    float pixels of ``dequant.recovery_pixels`` (Pillow's 8-bit ones where it cannot read the file)."""
    bound = jpeg.read_bound(src)
    rgb, params, check, data = bound.rgb, bound.params, bound.check, bound.data
    try:
        layered = residual.recover_from_layer(src, rgb, params, data)  # None if the file has no layer
    except LayerError as e:
        if not check.flip:  # a turn, whether or not the turned blocks left the pixels "intact"
            raise
        raise LayerError(f"{e}: the image was {integrity.TRANSFORMS[check.flip]} after encode and its turned blocks "
                         "decode a few values differently, which the exact layer cannot absorb; turning it back "
                         "with the same lossless tool restores it") from None
    if layered is not None:
        note = f"{residual.guarantee_text(layered[1])} from the layer, SHA-256 verified"
        if check.state == "changed":
            note += " (the JPEG's pixels changed after encode; the layer still gives it)"
        return Recovered(layered[0], params, note, "", check)
    model = load_stage(find_model(params.model_id), expected_sha256=params.model_sha256)
    warnings = [f"{Path(src).name}: {check.summary}"] if check.state == "changed" else []
    output = params.output
    if isinstance(output, JPEG) and (output.layer is not None or output.layer_sigma is not None):
        bound = output.layer if output.layer is not None else residual.Sigma(output.layer_sigma)
        warnings.append(f"{Path(src).name} was encoded with a residual layer "
                        f"({residual.guarantee_text(bound)}) that is no longer in the file (re-saved or "
                        "stripped); decoding the approximate RAW")
    pixels = dequant.recovery_pixels(data, check)  # float, biased dequantisation; Pillow's if it cannot
    return Recovered(pipeline.recover([pixels], params, model, tile), params, "", "; ".join(warnings), check)


def decode_file(src: str | os.PathLike, dst: str | os.PathLike, *, force: bool = False,
                tile: int = DEFAULT_TILE) -> Result:
    """Read an invisp JPEG, recover the RAW (``recover_file``) and write it as a DNG atomically."""
    t0 = time.perf_counter()
    check_output(dst, force, inputs=[src])
    suffix = Path(dst).suffix.lower()
    if suffix != ".dng":
        raise InputError(f"{dst}: unsupported output type {suffix or '(none)'!r} (use .dng)")
    rec = recover_file(src, tile)
    with atomic_output(dst, force, inputs=[src]) as tmp:
        rawio.write_dng(tmp, rec.raw)
    note = rec.pixels.summary if rec.pixels is not None and rec.pixels.state in ("transformed", "recoded") else ""
    return Result(Path(dst), rec.params.model_id, time.perf_counter() - t0, Path(dst).stat().st_size, rec.layer,
                  rec.warning, note)

