"""Where a file's RAW-PSNR-γ is lost, by site class, and a decode-side re-estimate of the sites whose own channel
decodes clipped at 0 (docs/decode.md, "The rose's floor").

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/rose_floor.py [FILE] [--quality 90]

Decodes: the analytic inverse of LibRaw's render (``bench.baselines.analytic_recover``) from its 8-bit PNG and from
its q JPEG (Pillow and ``dequant``), and the front end (``invisp encode``, LibRaw's and the camera look) from its
own 8-bit render, from the JPEG by Pillow and by ``dequant``. Classes: the site's own channel is 0 / 255 in the
JPEG's 8-bit render (the encoder's input; LibRaw's render for the analytic inverse), other sites of pixels with a
clipped channel, the roll-off zone n ≥ 0.8. Each: % of sites, % of the γ squared error. Then the re-estimate:
Gauss–Newton through the front end's steps after the demosaic on the pixel's unclipped channels, the neighbours
held, the clipped channel kept at or below half a level, for 1 and 3 passes."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from invisp_cli import codec, metrics, pipeline, rawio
from invisp_cli.bench import baselines
from invisp_cli.containers import dequant, jpeg
from invisp_cli.params import ReconstructionParams
from invisp_cli.steps import BilinearDemosaic, Chain, front_end, libraw_gain
from invisp_cli.zoo import find_model, load_stage

ROSE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw" / "nikon-d750_rose_768x512.dng"


def own_channel(cfa: str, shape: tuple[int, int]) -> np.ndarray:
    """Index (0 R, 1 G, 2 B) of each site's own colour in a Bayer mosaic of ``shape``."""
    tile = np.array([["RGB".index(cfa[2 * y + x]) for x in range(2)] for y in range(2)])
    return np.tile(tile, (shape[0] // 2 + 1, shape[1] // 2 + 1))[: shape[0], : shape[1]]


def classes(render: np.ndarray, own: np.ndarray, n: np.ndarray) -> dict[str, np.ndarray]:
    """Site classes of a sensor-oriented 8-bit render."""
    v = np.take_along_axis(render, own[..., None], -1)[..., 0]
    zero, top = v == 0, v == 255
    return {"own channel 0": zero, "own channel 255": top,
            "other sites of clipped pixels": ((render == 0) | (render == 255)).any(-1) & ~zero & ~top,
            "roll-off zone n ≥ 0.8": n >= 0.8}


def reestimate(x: np.ndarray, params: ReconstructionParams, passes: int) -> np.ndarray:
    """The mosaic from float pixels ``x`` (H, W, 3) in [0, 1], sensor orientation, with the sites whose own channel
    decodes at 0 re-fitted to the pixel's unclipped channels (see the module docstring)."""
    raw = params.raw_template()
    steps = front_end(raw, params.front_end)
    k = next(i for i, s in enumerate(steps) if isinstance(s, BilinearDemosaic))
    pre, demosaic, post = Chain(steps[:k]), steps[k], Chain(steps[k + 1 :])
    y = x.transpose(2, 0, 1)[None].astype(np.float32)
    u = demosaic.inverse(post.inverse(y))
    h, w = u.shape[-2:]
    diag = np.zeros((2, 2, 3), np.float32)  # the demosaic's weight of a site on its own pixel's three colours
    for i in range(2):
        for j in range(2):
            imp = np.zeros((1, 1, 16, 16), np.float32)
            imp[0, 0, 8 + i, 8 + j] = 1
            diag[i, j] = demosaic.forward(imp)[0, :, 8 + i, 8 + j]
    a = np.tile(diag, (h // 2 + 1, w // 2 + 1, 1))[:h, :w].transpose(2, 0, 1)[None]
    own = a[0].argmax(0)[None]
    seen = (y * 255 > 0.5) & (y * 255 < 254.5)
    fit = (np.take_along_axis(y[0], own, 0)[0] * 255 < 0.5) & seen[0].any(0)
    for _ in range(passes):
        c = demosaic.forward(u)
        y0 = post.forward(c)
        d = (post.forward(c + 1e-4 * a) - y0) / 1e-4
        du = (seen * d * (y - y0)).sum(1)[0] / ((seen * d * d).sum(1)[0] + 1e-12)
        d_own, y0_own = np.take_along_axis(d[0], own, 0)[0], np.take_along_axis(y0[0], own, 0)[0]
        du = np.minimum(du, np.where(d_own > 0, (0.5 / 255 - y0_own) / np.maximum(d_own, 1e-12), np.inf))
        u = np.maximum(u[0, 0] + np.where(fit, du, 0), 0)[None, None].astype(np.float32)
    return np.rint(pre.inverse(u)[0, 0]).clip(0, raw.white).astype(np.uint16)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?", default=str(ROSE))
    ap.add_argument("--quality", type=int, default=90)
    a = ap.parse_args()
    raw = rawio.read_raw(a.file)
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    own = own_channel(raw.cfa, n.shape)
    gamma = np.clip(n, 0, None) ** (1 / 2.2)
    ref = rawio.render_reference(a.file)
    libraw_classes = classes(rawio.undo_flip(ref, raw.flip), own, n)
    decodes: list[tuple[str, np.ndarray, dict]] = []
    data = baselines.encode_plain_jpeg(ref, a.quality, "4:4:4")
    gain = libraw_gain(raw)
    decodes.append(("analytic, LibRaw's PNG", baselines.analytic_recover(ref, raw, gain), libraw_classes))
    for label, rgb in (("Pillow", baselines.decode_jpeg(data)), ("dequant", dequant.decode(data))):  # 0..255
        decodes.append((f"analytic, LibRaw's JPEG q{a.quality} ({8 * len(data) / n.size:.2f} bpp), {label}",
                        baselines.analytic_recover(rgb, raw, gain), libraw_classes))
    refits = []
    with tempfile.TemporaryDirectory() as tmp:
        for look in ("libraw", "camera"):
            out = Path(tmp) / "x.jpg"
            codec.encode_file(a.file, out, quality=a.quality, look=look, force=True)
            bound = jpeg.read_bound(out)
            model = load_stage(find_model(bound.params.model_id))
            truth = pipeline.render([raw], model, [bound.params.render])
            cls = classes(rawio.undo_flip(truth, raw.flip), own, n)
            bpp = 8 * len(bound.data) / n.size
            decodes.append((f"front end, {look} look, its 8-bit render",
                            pipeline.recover([truth], bound.params, model).mosaic, cls))
            decodes.append((f"front end, {look} look, q{a.quality} ({bpp:.2f} bpp), Pillow",
                            pipeline.recover([bound.rgb], bound.params, model).mosaic, cls))
            decodes.append((f"front end, {look} look, q{a.quality}, dequant", codec.recover_file(out).raw.mosaic, cls))
            x = rawio.undo_flip(dequant.decode(bound.data) / 255, raw.flip)
            refits.append((look, [reestimate(x, bound.params, p) for p in (1, 3)]))
    print(f"{Path(a.file).name}: % of sites, % of the γ squared error per class\n")
    print("| decode | RAW-PSNR-γ | " + " | ".join(libraw_classes) + " |")
    print("|---|---|" + "---|" * len(libraw_classes))
    for label, mosaic, cls in decodes:
        nh = metrics.normalise_mosaic(mosaic, raw.black, raw.white)
        err = (np.clip(nh, 0, None) ** (1 / 2.2) - gamma) ** 2
        cells = " | ".join(f"{100 * m.mean():.1f} %, {100 * err[m].sum() / err.sum():.0f} %" for m in cls.values())
        print(f"| {label} | {metrics.raw_psnr_gamma(nh, n):.2f} | {cells} |")
    print()
    for look, mosaics in refits:
        scores = [metrics.raw_psnr_gamma(metrics.normalise_mosaic(m, raw.black, raw.white), n) for m in mosaics]
        print(f"re-estimate of the sites clipped at 0, {look} look: 1 pass {scores[0]:.2f} dB, 3 passes "
              f"{scores[1]:.2f} dB")


if __name__ == "__main__":
    main()
