"""Highlight roll-off through the real encode path: what LibRaw's hard clip throws away, the shoulder keeps."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from synthraw import make_raw

from invisp_cli import codec, metrics, pipeline
from invisp_cli.containers import jpeg
from invisp_cli.flows import build
from invisp_cli.params import ReconstructionParams


def _round_trip(raw, isp: dict) -> tuple[np.ndarray, dict]:
    model = build("squeeze", blocks=1, width=8)  # identity at initialisation: the analytic front end alone
    settings = codec.render_settings(raw, 90, "4:4:4", isp)
    params = ReconstructionParams.from_raw(raw, "t", "0" * 64, settings)
    data = jpeg.encode_jpeg(pipeline.render([raw], model, [settings]), params)
    with Image.open(io.BytesIO(data)) as img:
        params, rgb = jpeg.read_params(img, "x"), np.asarray(img.convert("RGB"))
    return pipeline.recover([rgb], params, model).mosaic, params.render


def test_rolloff_recovers_bright_areas_that_clip():
    raw = make_raw(96, 128, bits=14, seed=4)
    # an over-exposed patch: the (unbalanced) signal rises towards white in every channel, G saturates
    span = raw.white - raw.black.max()
    ramp = np.linspace(0.55, 1.1, 64)[None, :] * span + raw.black.max()
    raw.mosaic[16:80, 32:96] = np.clip(ramp, 0, raw.white).astype(np.uint16)
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    bright = np.zeros_like(n, dtype=bool)
    bright[16:80, 32:96] = True

    plain, plain_render = _round_trip(raw, {})
    rolled, rolled_render = _round_trip(raw, {"highlight_knee": 0.8})
    assert "highlight_knee" not in plain_render and rolled_render["highlight_knee"] == 0.8  # stored in the file
    psnr = [metrics.raw_psnr_lin(metrics.normalise_mosaic(m, raw.black, raw.white), n, bright)
            for m in (plain, rolled)]
    assert psnr[1] > psnr[0] + 6, psnr  # R and B above the clip point come back
    far = np.zeros_like(bright)
    far[:8], far[88:] = True, True  # ≥ 8 px from the patch: out of reach of the demosaic and JPEG blocks
    same = [metrics.raw_psnr_lin(metrics.normalise_mosaic(m, raw.black, raw.white), n, far & (n < 0.7))
            for m in (plain, rolled)]
    assert abs(same[1] - same[0]) < 0.2, same  # below the knee nothing changes


def test_jpeg_stays_in_range_and_white_stays_white():
    raw = make_raw(64, 64, bits=12, seed=5)
    raw.mosaic[:] = raw.white  # everything saturated
    model = build("squeeze", blocks=1, width=8)
    rgb = pipeline.render([raw], model, [codec.render_settings(raw, isp={"highlight_knee": 0.8})])
    assert rgb.min() >= 254  # white, not the magenta cast of unclipped white-balanced channels
    rgb_plain = pipeline.render([raw], model, [codec.render_settings(raw)])
    assert np.ptp(rgb_plain.reshape(-1, 3).mean(0)) > 10  # without the shoulder: a colour cast
    Image.fromarray(rgb)  # a valid 8-bit image
