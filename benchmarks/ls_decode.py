"""Prototype of a decode-side idea (not shipped): least-squares decode through the front end.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ls_decode.py [--crop 512] [--iters 10] [FILES…]

The standard decode reads each site's own colour of the linearised JPEG (re-mosaic), i.e. one of the three
8-bit observations at every pixel; the other two are MHC interpolations of the neighbouring sites, observed
through the same JPEG noise. This decode instead fits the (rolled-off, white-balanced) mosaic u to all three:
    min_u  Σ_pixels,channels  w · (M·MHC(u) − g⁻¹(J/255))²,   w = g'(M·MHC(û))²  (errors weighed as in gamma space)
with unclipped JPEG values only (0 and 255 carry no equality), by conjugate gradients from the standard decode
(the quadratic's Hessian-vector products by autograd through the chain's own steps). Then the exact inverse of
the remaining steps (roll-off, WB, exposure, levels) and rounding, as decode does. Front end alone
(``invisp-frontend-v1``), Pillow JPEG q90 4:4:4, centre crops of files no shipped model trained on."""

from __future__ import annotations

import argparse
import io
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from invisp_cli import codec, metrics, pipeline, rawio
from invisp_cli.bench.run import crop_window
from invisp_cli.flows import build
from invisp_cli.settings import FrontEnd
from invisp_cli.steps import ColorMatrix, Gamma, MHCDemosaic, front_end

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
HELD_OUT = ("canon-eos-550d_colorchart.dng", "nikon-d750_rose_768x512.dng", "gopro-hero7_mural_GOPR9231.dng",
            "canon-powershot-s40_boxart_CRW_0117.CRW")


def ls_decode(rgb: np.ndarray, raw, settings: dict, iters: int) -> np.ndarray:
    steps = front_end(raw, FrontEnd.from_json(settings))
    k = next(i for i, s in enumerate(steps) if isinstance(s, MHCDemosaic))
    pre, demosaic, cm, gamma = steps[:k], steps[k], steps[k + 1], steps[k + 2]
    assert isinstance(cm, ColorMatrix) and isinstance(gamma, Gamma)
    y8 = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float()
    y = gamma.inverse(y8 / 255.0)  # linear sRGB observations
    valid = ((y8 > 0) & (y8 < 255)).float()

    def A(u: torch.Tensor) -> torch.Tensor:
        return cm.forward(demosaic.forward(u))

    u = demosaic.inverse(cm.inverse(y))  # the standard decode
    with torch.no_grad():
        x = A(u)
        t = torch.where(x.abs() < gamma.t, torch.full_like(x, gamma.s),
                        gamma.a * gamma.p * x.abs().clamp_min(gamma.t) ** (gamma.p - 1))
        w = valid * t**2

    def grad(v: torch.Tensor, rhs: bool) -> torch.Tensor:  # Aᵀ W (A v − y) or Aᵀ W A v
        v = v.detach().requires_grad_(True)
        r = A(v) - (y if rhs else 0)
        (g,) = torch.autograd.grad(0.5 * (w * r * r).sum(), v)
        return g

    r = -grad(u, True)
    p = r.clone()
    rr = (r * r).sum()
    for _ in range(iters):
        ap = grad(p, False)
        alpha = rr / (p * ap).sum()
        u = u + alpha * p
        r = r - alpha * ap
        rr_new = (r * r).sum()
        p = r + (rr_new / rr) * p
        rr = rr_new
    with torch.no_grad():
        for s in reversed(pre):
            u = s.inverse(u)
    return u[0, 0].round().clamp(0, raw.white).numpy().astype(np.uint16)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--iters", default="5,10,20")
    ap.add_argument("--quality", type=int, default=90)
    a = ap.parse_args()
    model = build("frontend")
    print(f"| file (crop {a.crop}, q{a.quality}) | standard decode γ / lin | " +
          " | ".join(f"LS {i} it. γ / lin (s)" for i in a.iters.split(",")) + " |")
    print("|---|---|" + "---|" * len(a.iters.split(",")))
    gains = {}
    for f in a.files or [str(DATA / n) for n in HELD_OUT if (DATA / n).is_file()]:
        raw = rawio.read_raw(f)
        y0, x0, h, w = crop_window(*raw.mosaic.shape, a.crop)
        settings = codec.render_settings(raw, a.quality, "4:4:4", {"demosaic": "mhc", "highlight_knee": 0.8})
        raw = raw.crop(y0, x0, h, w)
        raw.flip = 0
        buf = io.BytesIO()
        Image.fromarray(pipeline.render([raw], model, [settings])).save(buf, "JPEG", quality=a.quality, subsampling=0)
        rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)

        def score(m: np.ndarray, raw=raw, n=n) -> tuple[float, float]:
            nh = metrics.normalise_mosaic(m, raw.black, raw.white)
            return metrics.raw_psnr_gamma(nh, n), metrics.raw_psnr_lin(nh, n)

        t0 = time.perf_counter()
        std = score(_standard(rgb, raw, settings, model))
        t_std = time.perf_counter() - t0
        cells = [f"{std[0]:.2f} / {std[1]:.2f} ({t_std:.2f})"]
        for it in (int(i) for i in a.iters.split(",")):
            t0 = time.perf_counter()
            m = ls_decode(rgb, raw, settings, it)
            dt = time.perf_counter() - t0
            s = score(m)
            gains.setdefault(it, []).append(s[0] - std[0])
            cells.append(f"{s[0]:.2f} / {s[1]:.2f} ({dt:.2f})")
        print(f"| {Path(f).name} | " + " | ".join(cells) + " |", flush=True)
    for it, g in gains.items():
        print(f"{it} iterations: mean Δγ {np.mean(g):+.2f} dB (worst {min(g):+.2f})")


def _standard(rgb: np.ndarray, raw, settings: dict, model) -> np.ndarray:
    from invisp_cli.params import ReconstructionParams

    params = ReconstructionParams.from_raw(raw, "t", "0" * 64, settings)
    return pipeline.recover([rgb], params, model).mosaic


if __name__ == "__main__":
    main()
