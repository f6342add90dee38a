"""Encode (RAW → JPEG) and decode (JPEG → DNG): the invertible chain run forwards or backwards by tiles.

    encode:  mosaic ─Levels─Exposure─WhiteBalance─HighlightRolloff─Demosaic─ColorMatrix─Gamma─Flow─▶ [0,1] → 8-bit
             → orient → JPEG
    decode:  JPEG → un-orient → /255 ─Flow⁻¹─Gamma⁻¹─ColorMatrix⁻¹─re-mosaic─HighlightRolloff⁻¹─WhiteBalance⁻¹
             ─Exposure⁻¹─Levels⁻¹─▶ round → DNG

With no learned stage (the default model, the analytic front end) the chain runs on numpy arrays and torch is
never imported; a learned flow makes it run on torch tensors.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from . import rawio, residual
from .containers import jpeg
from .errors import InputError, MetadataError
from .fileio import atomic_output, check_output
from .params import ReconstructionParams
from .rawio import RawImage
from .settings import DEFAULT_QUALITY, DEFAULT_SUBSAMPLING, DEFAULT_TILE, JPEG_SUFFIXES
from .steps import DEFAULT_DEMOSAIC, Chain, Flow, front_end, libraw_maximum_gain, libraw_wb_gain
from .tiling import run_tiled
from .zoo import ModelEntry, find_model, load_stage, select_model

if TYPE_CHECKING:
    from .flows import InvertibleFlow


def isp_chain(raw: RawImage, model: InvertibleFlow | None, settings: Mapping) -> Chain:
    """The full invertible ISP for one frame: the analytic, metadata-driven front end under the file's render
    settings (``steps.front_end``) followed by the flow; no model (``zoo.load_stage`` of the front end) or a
    parameter-free ``identity`` one adds no step at all, so the front end alone costs nothing more."""
    learned = [] if model is None or model.identity else [Flow(model)]
    return Chain([*front_end(raw, settings), *learned])


def front_end_settings(raw: RawImage, isp: Mapping | None = None) -> dict:
    """The front-end part of ``params.render`` for one image or frame: the analytic front end the model was trained
    behind (``ModelEntry.isp``: demosaic, highlight knee, if any) and the exposure gain that makes it as bright as
    LibRaw's render: ``steps.libraw_maximum_gain`` × ``steps.libraw_wb_gain`` (LibRaw scales its white-balance
    multipliers so the smallest is 1, where ours keep G = 1: an auto or camera WB with R or B below G brightens
    LibRaw's render by 1 / min)."""
    isp = dict(isp or {})
    settings = {"demosaic": isp.get("demosaic", DEFAULT_DEMOSAIC),
                "exposure_gain": libraw_maximum_gain(raw.mosaic, raw.black, raw.white) * libraw_wb_gain(raw.wb)}
    if isp.get("highlight_knee") is not None:
        settings["highlight_knee"] = float(isp["highlight_knee"])
    return settings


def render_settings(raw: RawImage, quality: int = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING,
                    isp: Mapping | None = None) -> dict:
    """The per-file rendering parameters stored in ``params.render``: JPEG settings + ``front_end_settings``."""
    return {"codec": "jpeg", "quality": int(quality), "subsampling": subsampling, **front_end_settings(raw, isp)}


def _backend(chain: Chain) -> contextlib.AbstractContextManager:
    """Where ``chain`` runs: torch's inference mode for a learned stage; nothing to set up for numpy."""
    if not chain.needs_torch:
        return contextlib.nullcontext()
    import torch

    return torch.inference_mode()


def render(raw: RawImage, model: InvertibleFlow | None, settings: Mapping, tile: int = DEFAULT_TILE) -> np.ndarray:
    """RAW → upright sRGB uint8 (H', W', 3), as stored in the JPEG (``settings`` from ``render_settings``).

    Tiles are converted from the uint16 mosaic as they are read and written straight into an (H, W, 3) array.
    The front end alone (the chain ends with the gamma) runs on numpy, and the gamma, the clip to [0, 1] and the
    rounding to 8 bits are one table look-up (``Gamma.forward_u8``: the same levels); a learned stage runs on
    torch tensors."""
    chain = isp_chain(raw, model, settings)
    h, w = raw.mosaic.shape
    mosaic = raw.mosaic if raw.mosaic.dtype in (np.uint16, np.float32) else raw.mosaic.astype(np.float32)
    x = np.ascontiguousarray(mosaic).reshape(1, 1, h, w)
    out = np.empty((1, h, w, 3), np.uint8)
    with _backend(chain):
        if chain.needs_torch:
            import torch

            def fn(t: torch.Tensor) -> torch.Tensor:
                return chain.forward(t.float())

            def to_u8(t: torch.Tensor) -> np.ndarray:  # (1, 3, h, w) → a (1, 3, h, w) view of (1, h, w, 3) uint8
                return (t.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).contiguous().numpy().transpose(0, 3, 1, 2)

            x = torch.from_numpy(x)
        else:
            body, to_u8 = Chain(chain.steps[:-1]).forward, chain.steps[-1].forward_u8

            def fn(t: np.ndarray) -> np.ndarray:
                return body(t.astype(np.float32))

        run_tiled(fn, x, out.transpose(0, 3, 1, 2), tile=tile, halo=chain.receptive_field, align=chain.align,
                  post=to_u8, description="rendering")
    return rawio.apply_flip(out[0], raw.flip)


def recover(rgb: np.ndarray, params: ReconstructionParams, model: InvertibleFlow | None,
            tile: int = DEFAULT_TILE) -> RawImage:
    """Upright sRGB uint8 + stored parameters → RAW (mosaic in the original bit depth and orientation).

    The front end alone runs on numpy, and its gamma's inverse is looked up for the 256 levels
    (``Gamma.inverse_lut``: the same values) instead of evaluated per pixel; a learned stage runs on torch."""
    raw = params.raw_template()
    chain = isp_chain(raw, model, params.render)
    sensor = rawio.undo_flip(rgb, raw.flip)  # (h, w, 3), read tile by tile through a (1, 3, h, w) view
    h, w = sensor.shape[:2]
    out = np.empty((1, 1, h, w), np.uint16)
    with _backend(chain):
        if chain.needs_torch:
            import torch

            def fn(t: np.ndarray) -> torch.Tensor:
                return chain.inverse(torch.from_numpy(np.ascontiguousarray(t)).float() / 255.0)

            def to_raw_units(t: torch.Tensor) -> np.ndarray:
                return t.round().clamp(0, raw.white).to(torch.uint16).numpy()
        else:
            lut, body = chain.steps[-1].inverse_lut(), Chain(chain.steps[:-1]).inverse

            def fn(t: np.ndarray) -> np.ndarray:
                return body(lut[t])

            def to_raw_units(t: np.ndarray) -> np.ndarray:
                return np.rint(t).clip(0, raw.white).astype(np.uint16)

        run_tiled(fn, sensor[None].transpose(0, 3, 1, 2), out, tile=tile, halo=chain.receptive_field,
                  align=chain.align, post=to_raw_units, description="recovering RAW")
    raw.mosaic = out[0, 0]
    return raw


@dataclass
class Result:
    output: Path
    model_id: str
    seconds: float
    bytes: int
    layer: str = ""  # residual layer: what it added on encode / guaranteed on decode, "" if none
    warning: str = ""  # something the user should know although the command succeeded


def resolve_model(model_id: str | None, make: str) -> ModelEntry:
    return find_model(model_id) if model_id else select_model(make)


def encode_bytes(raw: RawImage, model: InvertibleFlow | None, params: ReconstructionParams,
                 tile: int = DEFAULT_TILE) -> bytes:
    """RAW → the bytes of its invisp JPEG: rendered under ``params.render``, carrying ``params``."""
    return jpeg.encode_jpeg(render(raw, model, params.render, tile), params)


def decode_bytes(data: bytes, model: InvertibleFlow | None, tile: int = DEFAULT_TILE,
                 name: str = "JPEG") -> tuple[np.ndarray, ReconstructionParams, RawImage]:
    """The bytes of an invisp JPEG → (its decoded upright pixels, its validated parameters, the RAW ``model``
    recovers from them): the in-memory round trip that training validation and the benchmark measure."""
    with Image.open(io.BytesIO(data)) as img:
        params = jpeg.read_params(img, name)
        rgb = np.asarray(img.convert("RGB"))
    return rgb, params, recover(rgb, params, model, tile)


def stored_params(raw: RawImage, entry: ModelEntry, settings: Mapping, name: str) -> ReconstructionParams:
    """The parameters an encode stores, checked with exactly the rules decode applies (serialise, parse,
    validate), so that encode never writes a file decode would refuse."""
    params = ReconstructionParams.from_raw(raw, entry.id, entry.sha256, dict(settings))
    try:
        return ReconstructionParams.from_json(params.to_json())
    except (MetadataError, ValueError) as e:
        raise InputError(f"{name}: cannot be encoded: its parameters would not decode ({e})") from None


def encode_file(src: str | os.PathLike, dst: str | os.PathLike, *, model_id: str | None = None,
                quality: int = DEFAULT_QUALITY, subsampling: str = DEFAULT_SUBSAMPLING, force: bool = False,
                tile: int = DEFAULT_TILE, max_error: int | None = None) -> Result:
    """Read a RAW file, render it with the chosen (or camera-matched) model, write the JPEG atomically.

    ``max_error`` N (0 = bit-exact) adds the residual layer recovering every raw value within ±N."""
    t0 = time.perf_counter()
    check_output(dst, force, inputs=[src])
    suffix = Path(dst).suffix.lower()
    if suffix not in JPEG_SUFFIXES:
        raise InputError(f"{dst}: unsupported output type {suffix or '(none)'!r} (use .jpg)")
    raw = rawio.read_raw(src)
    entry = resolve_model(model_id, raw.exif.get("make", ""))
    model = load_stage(entry)
    settings = render_settings(raw, quality, subsampling, entry.isp)
    if max_error is not None:
        settings["layer"] = int(max_error)  # decode can then tell when a re-saved file lost its layer
    params = stored_params(raw, entry, settings, Path(src).name)
    data = encode_bytes(raw, model, params, tile)
    note = ""
    if max_error is not None:
        data, layer_bytes = residual.attach(data, raw, settings["exposure_gain"], max_error)
        note = f"{residual.guarantee_text(max_error)} layer {layer_bytes / 1e6:.2f} MB"
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


def recover_file(src: str | os.PathLike, tile: int = DEFAULT_TILE) -> Recovered:
    """Read an invisp JPEG and recover its RAW in memory: from the residual layer when present (SHA-256
    verified), else with exactly the model the file names (SHA-256 verified against the stored hash)."""
    rgb, params = jpeg.read_jpeg(src)
    layered = residual.recover_from_layer(src, rgb, params)  # None if the file has no layer
    if layered is not None:
        note = f"{residual.guarantee_text(layered[1])} from the layer, SHA-256 verified"
        return Recovered(layered[0], params, note, "")
    model = load_stage(find_model(params.model_id), expected_sha256=params.model_sha256)
    warning = ""
    if params.render.get("layer") is not None:
        warning = (f"{Path(src).name} was encoded with a residual layer "
                   f"({residual.guarantee_text(int(params.render['layer']))}) that is no longer in the file "
                   "(re-saved or stripped); decoding the approximate RAW")
    return Recovered(recover(rgb, params, model, tile), params, "", warning)


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
    return Result(Path(dst), rec.params.model_id, time.perf_counter() - t0, Path(dst).stat().st_size, rec.layer,
                  rec.warning)

