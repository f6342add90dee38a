"""Invertible changes to the analytic front end, measured against it as it ships (none is shipped: docs/experiments.md, "Where
it stands"). q90 4:4:4 in-memory round trips (Pillow JPEG) on every file of ../shared/data/raw:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/front_end_variants.py gamut [--threshold 0.8]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/front_end_variants.py rgb-shoulder [--knee 0.8]
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/front_end_variants.py snap

* ``gamut``: ACES-style reference gamut compression (ACES 1.3) on linear sRGB between the colour matrix and the
  gamma: per channel the distance from the achromatic d = (max − c)/|max| is compressed beyond a threshold t by
  t + s·u/(1 + u^p)^(1/p), u = (d − t)/s, p = 1.2, s chosen so that each file's 99.9th-percentile distance (at
  least 1.05) lands on the gamut boundary (d = 1); exactly inverted on decode. Carries colours outside sRGB.
* ``rgb-shoulder``: the rational shoulder of ``steps.HighlightRolloff`` per channel on linear sRGB, knee k,
  ceiling the largest value the colour matrix can make from camera values in [0, 1] (the sum of a row's positive
  entries); carries what the matrix pushes above 1.
* ``snap``: no change to the encode; recovered values ≥ T·white (T = 0.90, 0.95, 0.98) set to white.

Prints RAW-PSNR-γ / lin and RGB-PSNR (against LibRaw's render, ``rawio.render_reference``) per file, plain and
changed, and the mean differences."""

from __future__ import annotations

import argparse
import io
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from invisp_cli import metrics, pipeline, rawio
from invisp_cli.steps import Chain, front_end

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
POWER = 1.2


def _gamut_scale(limit: float, t: float) -> float:
    return (limit - t) / ((((1 - t) / (limit - t)) ** -POWER) - 1) ** (1 / POWER)


def _distances(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ach = x.max(axis=1, keepdims=True)
    a = np.abs(ach)
    return ach, a, np.where(a > 0, (ach - x) / np.where(a > 0, a, 1), 0)


def gamut(x: np.ndarray, limits: list[float], t: float, inverse: bool = False) -> np.ndarray:
    ach, a, d = _distances(x)
    out = []
    for c, limit in enumerate(limits):
        s, dc = _gamut_scale(limit, t), d[:, c]
        if not inverse:
            u = np.maximum(dc - t, 0) / s
            out.append(np.where(dc < t, dc, t + s * u / (1 + u**POWER) ** (1 / POWER)))
        else:
            p = np.clip((dc - t) / s, 0, 1 - 1e-6) ** POWER
            out.append(np.where(dc < t, dc, t + s * (p / (1 - p)) ** (1 / POWER)))
    return (ach - np.stack(out, 1) * a).astype(np.float32)


def shoulder(x: np.ndarray, ceiling: np.ndarray, k: float, inverse: bool = False) -> np.ndarray:
    out = x.copy()
    for c in range(3):
        m = max(float(ceiling[c]), 1.0)
        if m <= 1.0:
            continue
        a, v = 1 / (1 - k) - 1 / (m - k), x[:, c]
        if not inverse:
            d = np.clip(v - k, 0, m - k)
            out[:, c] = np.where(v > k, k + d / (1 + a * d), v)
        else:
            f = np.clip(v - k, 0, 1 - k)
            out[:, c] = np.where(v > k, k + f / (1 - a * f), v)
    return out.astype(np.float32)


def round_trip(raw: rawio.RawImage, change=None, undo=None) -> tuple[np.ndarray, np.ndarray, int]:
    """(decoded upright JPEG pixels, recovered mosaic in raw units, JPEG bytes) of the front end with ``change``
    applied to linear sRGB before the gamma and ``undo`` after the inverse gamma."""
    steps = front_end(raw, pipeline.front_end_settings(raw, {"demosaic": "mhc", "highlight_knee": 0.8}))
    body, gamma = Chain(steps[:-1]), steps[-1]
    lin = body.forward(raw.mosaic.astype(np.float32)[None, None])
    u8 = gamma.forward_u8(change(lin) if change else lin)[0].transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(rawio.apply_flip(u8, raw.flip)).save(buf, "JPEG", quality=90, subsampling=0)
    dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    y = gamma.inverse_lut()[rawio.undo_flip(dec, raw.flip).transpose(2, 0, 1)[None]]
    back = np.rint(body.inverse(undo(y) if undo else y)).clip(0, raw.white)[0, 0]
    return dec, back, len(buf.getvalue())


def scores(raw: rawio.RawImage, dec: np.ndarray, back: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    nh = metrics.normalise_mosaic(back, raw.black, raw.white)
    rgb = metrics.rgb_psnr(dec, ref) if dec.shape == ref.shape else float("nan")
    return metrics.raw_psnr_gamma(nh, n), metrics.raw_psnr_lin(nh, n), rgb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", choices=("gamut", "rgb-shoulder", "snap"))
    ap.add_argument("--threshold", type=float, default=0.8, help="gamut: distance beyond which it compresses")
    ap.add_argument("--knee", type=float, default=0.8, help="rgb-shoulder: knee on linear sRGB")
    a = ap.parse_args()
    diffs = []
    for f in sorted(DATA.iterdir()):
        raw, ref = rawio.read_raw(f), rawio.render_reference(f)
        dec, back, _ = round_trip(raw)
        base = scores(raw, dec, back, ref)
        share = ""
        if a.variant != "snap":  # where the plain round trip's RAW error is: sites out of sRGB (< 0) or above 1
            steps = front_end(raw, pipeline.front_end_settings(raw, {"highlight_knee": 0.8}))
            lin = Chain(steps[:-1]).forward(raw.mosaic.astype(np.float32)[None, None])[0]
            mask = (lin < 0).any(axis=0) if a.variant == "gamut" else (lin > 1).any(axis=0)
            g = [np.clip(metrics.normalise_mosaic(m, raw.black, raw.white), 0, None) ** (1 / 2.2)
                 for m in (back, raw.mosaic)]
            err = (g[0] - g[1]) ** 2
            share = f" [{'< 0' if a.variant == 'gamut' else '> 1'}: {100 * mask.mean():.1f} % of sites, " \
                    f"{100 * err[mask].sum() / err.sum():.0f} % of the γ error]"
        if a.variant == "snap":
            rows = [(f"T {t}", scores(raw, dec, np.where(back >= t * raw.white, raw.white, back), ref))
                    for t in (0.90, 0.95, 0.98)]
        elif a.variant == "gamut":
            steps = front_end(raw, pipeline.front_end_settings(raw, {"highlight_knee": 0.8}))
            _, _, d = _distances(Chain(steps[:-1]).forward(raw.mosaic.astype(np.float32)[None, None]))
            limits = [float(max(1.05, np.quantile(d[:, c], 0.999))) for c in range(3)]
            dec2, back2, _ = round_trip(raw, partial(gamut, limits=limits, t=a.threshold),
                                        partial(gamut, limits=limits, t=a.threshold, inverse=True))
            rows = [("gamut", scores(raw, dec2, back2, ref))]
        else:
            ceiling = np.clip(np.asarray(raw.rgb_cam, dtype=np.float64), 0, None).sum(axis=1)
            dec2, back2, _ = round_trip(raw, partial(shoulder, ceiling=ceiling, k=a.knee),
                                        partial(shoulder, ceiling=ceiling, k=a.knee, inverse=True))
            rows = [("shoulder", scores(raw, dec2, back2, ref))]
        line = f"{f.name[:34]:34s} plain γ {base[0]:.2f} lin {base[1]:.2f} RGB {base[2]:.2f}{share}"
        for label, (g, lin, rgb) in rows:
            line += f" | {label}: Δγ {g - base[0]:+.2f} Δlin {lin - base[1]:+.2f} ΔRGB {rgb - base[2]:+.2f}"
        print(line, flush=True)
        diffs.append([[g - base[0], lin - base[1], rgb - base[2]] for _, (g, lin, rgb) in rows])
    d = np.array(diffs)  # (files, rows, 3)
    for i, (label, _) in enumerate(rows):
        print(f"{label}: mean Δγ {d[:, i, 0].mean():+.2f} (worst {d[:, i, 0].min():+.2f}), mean Δlin "
              f"{d[:, i, 1].mean():+.2f}, mean ΔRGB {np.nanmean(d[:, i, 2]):+.2f} (worst {np.nanmin(d[:, i, 2]):+.2f})")


if __name__ == "__main__":
    main()
