"""Render and recover the centre frame of a window of W ≥ 1 frames (an image is W = 1), tile by tile.

    render:   x_i = A_i(mosaic_i)  (the analytic front end of frame i under its settings, ``steps.front_end``)
              y = f(x_k ; clip(x_{i≠k}, 0, 1)),  k = ⌊W/2⌋  (c = None for W = 1)  → orient → 8-bit or float
    recover:  un-orient → x_k = f⁻¹(ŷ_k ; ŷ_{i≠k}) → A_k⁻¹ → round, clip to [0, white] → uint16 mosaic

With no learned stage f (no model, or the parameter-free ``identity`` one) only the centre frame matters and the
chain runs on numpy arrays without importing torch: the gamma with the rounding to 8 bits is one table look-up
(``Gamma.forward_u8``), and so is its inverse on 8-bit input (``Gamma.inverse_lut``), with the same levels and
values; a camera look after the gamma folds gamma and tone curves into one table per channel (``Look.render_u8``,
``Look.recover_linear``). A learned f runs on torch tensors in inference mode. Each tile is grown by the front
end's and f's receptive fields, its origin on a multiple of lcm(2, f.align), so the result equals the untiled one."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import DTypeLike

from . import rawio
from .params import ReconstructionParams
from .rawio import RawImage
from .settings import DEFAULT_TILE, FrontEnd, cfa_demosaic
from .steps import Chain, Look, front_end, libraw_gain
from .tiling import run_tiled

if TYPE_CHECKING:
    from .flows import InvertibleFlow


def front_end_settings(raw: RawImage, isp: Mapping | None = None) -> FrontEnd:
    """The front end of one image or frame: the one the model was trained behind (``ModelEntry.isp``: demosaic,
    highlight knee, if any) at the exposure gain that makes it as bright as LibRaw's render:
    ``steps.libraw_maximum_gain`` × ``steps.libraw_wb_gain`` (LibRaw scales its white-balance multipliers so the
    smallest is 1, where ours keep G = 1: an auto or camera WB with R or B below G brightens LibRaw's render by
    1 / min). A file that is not a Bayer mosaic gets the demosaic of its layout (``settings.cfa_demosaic``)."""
    front = FrontEnd.of(isp, libraw_gain(raw))
    demosaic = cfa_demosaic(raw.cfa, front.demosaic)
    return front if demosaic == front.demosaic else dataclasses.replace(front, demosaic=demosaic)


def learned(model: InvertibleFlow | None) -> InvertibleFlow | None:
    """The learned stage after the front end: None for no model or the ``identity`` one (the front end alone)."""
    return None if model is None or model.identity else model


def _run(fn: Callable, x, out: np.ndarray, post: Callable, front: Chain, model: InvertibleFlow | None, tile: int,
         description: str) -> None:
    """``run_tiled`` with the halo and alignment of ``front`` followed by ``model``, in torch's inference mode
    when ``model`` is a learned stage; a bar only for an image (a video's frames advance the caller's bar)."""
    halo, align = front.receptive_field, front.align
    backend: contextlib.AbstractContextManager = contextlib.nullcontext()
    if model is not None:
        import torch

        halo, align, backend = halo + model.receptive_field, int(np.lcm(align, model.align)), torch.inference_mode()
    with backend:
        run_tiled(fn, x, out, tile=tile, halo=halo, align=align, post=post, description=description)


def render(window: Sequence[RawImage], model: InvertibleFlow | None, settings: Sequence[Mapping],
           tile: int = DEFAULT_TILE, pixels: DTypeLike = np.uint8) -> np.ndarray:
    """The centre of a window of RAW frames (one size; ``settings``: each frame's front-end settings, as in
    ``params.render``) → upright sRGB (H', W', 3) of type ``pixels``: uint8 ⌊255·clip(y, 0, 1) + 0.5⌋ (JPEG) or
    float32 clip(y, 0, 1) (video)."""
    k, model = len(window) // 2, learned(model)
    chains = [Chain(front_end(r, FrontEnd.from_json(s))) for r, s in zip(window, settings, strict=True)]
    mosaics = [r.mosaic if r.mosaic.dtype in (np.uint16, np.float32) else r.mosaic.astype(np.float32)
               for r in (window if model else window[k : k + 1])]
    x = rawio.sample_planes(mosaics[0])[None] if len(mosaics) == 1 else np.stack(mosaics)[None]  # (1, W, h, w)
    h, w = x.shape[-2:]
    out = np.empty((1, h, w, 3), pixels)
    u8 = out.dtype == np.uint8
    if model is None:
        last = chains[k].steps[-1]
        looked = isinstance(last, Look)  # a look after the gamma: both in one pass (``Look.render_u8``)
        body = Chain(chains[k].steps[: -2 if looked else -1]).forward

        def fn(t: np.ndarray) -> np.ndarray:
            return body(t.astype(np.float32))

        if looked:
            post = last.render_u8 if u8 else last.render_unit
        else:
            post = last.forward_u8 if u8 else last.forward_unit
    else:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(x))

        def fn(t: torch.Tensor) -> torch.Tensor:
            xs = [c.forward(t[:, i : i + 1].float()) for i, c in enumerate(chains)]
            cond = torch.cat(xs[:k] + xs[k + 1 :], 1).clamp(0, 1) if k else None
            return model.padded(xs[k], cond)

        def post(t: torch.Tensor) -> np.ndarray:  # (1, 3, h, w) → a (1, 3, h, w) view of (1, h, w, 3)
            if not u8:
                return t.clamp(0, 1).numpy()
            return (t.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).contiguous().numpy().transpose(0, 3, 1, 2)

    _run(fn, x, out.transpose(0, 3, 1, 2), post, chains[k], model, tile, "rendering" if len(window) == 1 else "")
    return rawio.apply_flip(out[0], window[k].flip)


def recover(window: Sequence[np.ndarray], params: ReconstructionParams, model: InvertibleFlow | None,
            tile: int = DEFAULT_TILE) -> RawImage:
    """Decoded upright sRGB frames of a window (uint8, or float in [0, 1]) + the centre's stored parameters → the
    centre's RAW (mosaic in the original bit depth and orientation)."""
    raw = params.raw_template()
    k, model = len(window) // 2, learned(model)
    chain = Chain(front_end(raw, params.front_end))
    # views: the tiles read the frames where they are (the float decode's planar memory is not copied)
    frames = [rawio.undo_flip_view(f, raw.flip) for f in (window if model else window[k : k + 1])]
    sensor = frames[0] if len(frames) == 1 else np.concatenate(frames, axis=-1)  # (h, w, 3W)
    u8 = sensor.dtype == np.uint8
    h, w = sensor.shape[:2]
    x = sensor[None].transpose(0, 3, 1, 2)  # (1, 3W, h, w)
    out = np.empty((1, 3 if raw.linear else 1, h, w), np.uint16)
    if model is None:
        last = chain.steps[-1]
        if isinstance(last, Look):  # gamma and curves by one table, for 8-bit and float pixels alike
            body, scale = Chain(chain.steps[:-2]).inverse, np.float32(1 / 255 if u8 else 1)

            def fn(t: np.ndarray) -> np.ndarray:
                return body(last.recover_linear(t * scale))
        elif u8:
            lut, body = last.inverse_lut(), Chain(chain.steps[:-1]).inverse

            def fn(t: np.ndarray) -> np.ndarray:
                return body(lut[t])
        else:
            def fn(t: np.ndarray) -> np.ndarray:
                return chain.inverse(t.astype(np.float32))

        def post(t: np.ndarray) -> np.ndarray:
            return np.rint(t).clip(0, raw.white).astype(np.uint16)
    else:
        import torch

        x = torch.from_numpy(np.require(sensor, requirements="CW"))[None].permute(0, 3, 1, 2)

        def fn(t: torch.Tensor) -> torch.Tensor:
            t = t.contiguous().float()  # the view of (h, w, 3W) frames, in NCHW memory for the network
            t = t / 255.0 if u8 else t
            cond = torch.cat([t[:, : 3 * k], t[:, 3 * k + 3 :]], 1) if k else None
            return chain.inverse(model.padded(t[:, 3 * k : 3 * k + 3], cond, inverse=True))

        def post(t: torch.Tensor) -> np.ndarray:
            return t.round().clamp(0, raw.white).to(torch.uint16).numpy()

    _run(fn, x, out, post, chain, model, tile, "recovering RAW" if len(window) == 1 else "")
    raw.mosaic = np.ascontiguousarray(out[0].transpose(1, 2, 0)) if raw.linear else out[0, 0]
    return raw
