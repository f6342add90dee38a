"""RAW-PSNR-γ of the approximate decode from Pillow's 8-bit pixels against the biased-dequantisation float decode
(``containers.dequant``), on real RAW files, through ``invisp encode`` (front end, default model) as a user runs it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dequant.py [--quality 70,90,95] [--look camera,libraw]
        [--oracle] [--variants] [--model ID] [--subsampling 4:4:4|4:2:2|4:2:0] [FILES…]

Columns per file, look and quality: bits per pixel of the JPEG, then RAW-PSNR-γ (dB) from Pillow (today's
decode), float (bin centres, float IDCT and colour: the 8-bit rounding alone), centroids (``dequant.decode(…,
from_luma=False)``: Laplacian centroids + float), centroids + rule 3 (255 where Pillow decodes 255: the decode
before chroma from luma), shipped (``dequant.recovery_pixels``: centroids, chroma from luma on 4:4:4 files,
rule 3), "Δ from luma" = shipped − (centroids + rule 3),
and with ``--oracle`` the bound of per-frequency side information: the one offset per component and frequency
that the encoder, knowing the true coefficients (the DCT of its own YCbCr input), would store. ``--variants`` adds
what was tried and not shipped (each on the centroids, without chroma from luma): the Laplacian fit per activity
class of the block, a local rate per bin, decoded values within half a level of 0 / 255 set to them (on the
shipped decode), one smoothing step kept inside the bins (``_smoothed``, with rule 3 on top: compare with
"centroids + rule 3"). Decode seconds of ``dequant.decode`` vs Pillow's.
The estimator has no constants fitted to data; the one choice made on these files (with ``--variants`` and the
255 rule as a fourth variant) is that rule."""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from invisp_cli import codec, metrics, pipeline, rawio
from invisp_cli.containers import dequant, integrity, jpeg
from invisp_cli.zoo import find_model, load_stage

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
#: JFIF RGB → YCbCr (the encoder's input, in float)
_RGB_TO_YCC = np.linalg.inv(dequant._YCC_TO_RGB)


def _float_rgb(data: bytes, coefficients: Callable[[int, np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Float RGB in [0, 255] with ``coefficients(component, k, Q)`` in place of ``dequant.dequantise`` (subsampled
    chroma upsampled as ``dequant.decode`` does)."""
    planes, tables, size, (v, h) = dequant.read_coefficients(data)
    chroma = (-(-size[0] // v), -(-size[1] // h))
    chans = [dequant.idct_plane(coefficients(0, planes[0], tables[0]), size)]
    chans += [dequant.upsample(dequant.idct_plane(coefficients(i, planes[i], tables[i]), chroma), v, h)[: size[0],
                                                                                                       : size[1]]
              for i in (1, 2)]
    ycc = np.stack(chans, -1)
    ycc[..., 1:] -= 128.0
    return (ycc @ dequant._YCC_TO_RGB.T).clip(0, 255).astype(np.float32)


def _offsets(k: np.ndarray, q: np.ndarray, off: np.ndarray) -> np.ndarray:
    """(k − sign(k)·off)·Q for offsets ``off`` in steps, broadcast against k (…, 8, 8)."""
    return (k - np.sign(k) * off) * q


def _by_activity(k: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The Laplacian fit per activity class of the block (Σ|k| of its AC indices: < 1, 2, 4, …, 128, more)."""
    act = np.abs(k.reshape(*k.shape[:2], 64)[..., 1:]).sum(-1, dtype=np.int64)
    cls = np.digitize(act, [1, 2, 4, 8, 16, 32, 64, 128])
    out = np.empty(k.shape, np.float32)
    for c in np.unique(cls):
        out[cls == c] = dequant.dequantise(k[cls == c], q)
    return out


def _local_rate(k: np.ndarray, q: np.ndarray, nmin: int = 50, top: int = 256) -> np.ndarray:
    """Each bin |k| = m at the centroid of a local rate θ_m = ln(c_m / c_(m+1)) from its own and the next bin's
    counts (both ≥ ``nmin``; else the global fit)."""
    a = np.abs(k.reshape(-1, 64)).astype(np.int64).clip(0, top - 1)
    counts = np.bincount((np.arange(64) * top + a).ravel(), minlength=64 * top).reshape(64, top).astype(float)
    nxt = np.roll(counts, -1, 1)
    ok = (counts >= nmin) & (nxt >= nmin) & (np.arange(top) >= 1)
    theta = np.log(np.maximum(counts, 1) / np.maximum(nxt, 1)).clip(1e-3, 30)
    fit = dequant.centroid_offset(dequant.laplace_theta(k)).reshape(64, 1)
    shift = np.where(ok, dequant.centroid_offset(theta), fit)
    shift[0] = 0
    off = shift[np.arange(64)[None], a].reshape(k.shape)
    return _offsets(k, q, off)


def _oracle_offsets(data: bytes, rgb_true: np.ndarray) -> list[np.ndarray]:
    """Per component and frequency, the mean of sign(k)·(k − x/Q) over nonzero AC indices k, x the DCT of the
    encoder's float YCbCr input: the best single offset towards zero (least squares)."""
    planes, tables, size, _ = dequant.read_coefficients(data)
    ycc = rgb_true.astype(np.float64) @ _RGB_TO_YCC.T
    ycc[..., 1:] += 128.0
    c = dequant._dct_matrix()
    by, bx = planes[0].shape[:2]
    out = []
    for i, (p, q) in enumerate(zip(planes, tables, strict=True)):
        plane = np.pad(ycc[..., i] - 128.0, ((0, by * 8 - size[0]), (0, bx * 8 - size[1])), mode="edge")
        x = np.einsum("ux,axby,vy->abuv", c, plane.reshape(by, 8, bx, 8), c, optimize=True) / q
        s = np.sign(p)
        num, den = (s * (p - x)).reshape(-1, 64).sum(0), np.abs(s).reshape(-1, 64).sum(0)
        off = np.where(den > 0, num / np.maximum(den, 1), 0.0).reshape(8, 8)
        off[0, 0] = 0.0
        out.append(off)
    return out


def _smoothed(data: bytes, sigma: float = 0.5) -> np.ndarray:
    """One projection step from the centroids (POCS, the idea of knusperli / jpeg2png): each YCbCr plane blurred
    (Gaussian, ``sigma`` px), its DCT coefficients clipped into their quantisation bins [(k − ½)Q, (k + ½)Q]."""
    from scipy.ndimage import gaussian_filter

    planes, tables, (h, w), _ = dequant.read_coefficients(data)
    by, bx = planes[0].shape[:2]
    kron = np.kron(dequant._dct_matrix(), dequant._dct_matrix()).astype(np.float32)
    chans = []
    for k, q in zip(planes, tables, strict=True):
        x = gaussian_filter(dequant.idct_plane(dequant.dequantise(k, q), (by * 8, bx * 8)), sigma, mode="nearest")
        c = ((x - 128).reshape(by, 8, bx, 8).transpose(0, 2, 1, 3).reshape(-1, 64) @ kron.T).reshape(k.shape)
        chans.append(dequant.idct_plane(np.clip(c, (k - 0.5) * q, (k + 0.5) * q).astype(np.float32), (h, w)))
    ycc = np.stack(chans, -1)
    ycc[..., 1:] -= 128.0
    return (ycc @ dequant._YCC_TO_RGB.T).clip(0, 255).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--quality", default="90")
    ap.add_argument("--look", default="camera,libraw")
    ap.add_argument("--oracle", action="store_true")
    ap.add_argument("--variants", action="store_true", help="also the variants that were not shipped")
    ap.add_argument("--subsampling", default="4:4:4", choices=["4:4:4", "4:2:2", "4:2:0"],
                    help="the JPEGs' chroma subsampling (--oracle and --variants: 4:4:4 only)")
    ap.add_argument("--model", help="encode with this model instead of the default (a learned flow: --look libraw)")
    a = ap.parse_args()
    if a.subsampling != "4:4:4" and (a.oracle or a.variants):
        ap.error("--oracle and --variants are 4:4:4 only")
    files = a.files or sorted(str(p) for p in DATA.iterdir())
    cols = ["Pillow", "float", "centroids", "centroids + rule 3", "shipped"] + (["oracle"] if a.oracle else [])
    cols += ["by activity", "local rate", "snap 0.5", "smoothed + rule 3"] if a.variants else []
    print(f"| file | look | q | bpp | {' | '.join(cols)} | Δ shipped | Δ from luma | decode s Pillow / dequant |")
    print("|---|---|---|---|" + "---|" * (len(cols) + 3))
    gains: dict[tuple[str, int], list[float]] = {}
    luma_gains: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            raw = rawio.read_raw(f)
            n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
            for look in a.look.split(","):
                for q in map(int, a.quality.split(",")):
                    out = Path(tmp) / "x.jpg"
                    codec.encode_file(f, out, model_id=a.model, quality=q, look=look, force=True,
                                      subsampling=a.subsampling)
                    bound = jpeg.read_bound(out)
                    model = load_stage(find_model(bound.params.model_id))

                    def score(rgb: np.ndarray, bound=bound, model=model, n=n, raw=raw) -> float:
                        rec = pipeline.recover([rgb / 255], bound.params, model)
                        return metrics.raw_psnr_gamma(metrics.normalise_mosaic(rec.mosaic, raw.black, raw.white), n)

                    t0 = time.perf_counter()
                    with Image.open(io.BytesIO(bound.data)) as img:
                        pil = np.asarray(img.convert("RGB"))
                    t_pil = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    deq = np.ascontiguousarray(dequant.decode(bound.data))
                    t_deq = time.perf_counter() - t0
                    shipped = dequant.recovery_pixels(bound.data, integrity.Check("intact", pil)) * 255
                    centroids = dequant.decode(bound.data, from_luma=False)
                    rgbs = [pil.astype(np.float32), _float_rgb(bound.data, lambda i, k, q: k * q), centroids,
                            dequant.keep_white(centroids.copy(), pil), shipped]
                    if a.oracle:
                        truth = pipeline.render([raw], model, [bound.params.render])
                        offs = _oracle_offsets(bound.data, truth)
                        rgbs.append(_float_rgb(bound.data, lambda i, k, q, offs=offs: _offsets(k, q, offs[i])))
                    if a.variants:
                        rgbs += [_float_rgb(bound.data, lambda i, k, q: _by_activity(k, q)),
                                 _float_rgb(bound.data, lambda i, k, q: _local_rate(k, q)),
                                 np.where(deq > 254.5, 255, np.where(deq < 0.5, 0, deq)),
                                 dequant.keep_white(_smoothed(bound.data), pil)]
                    row = [score(x) for x in rgbs]
                    gains.setdefault((look, q), []).append(row[4] - row[0])
                    luma_gains.setdefault((look, q), []).append(row[4] - row[3])
                    cells = " | ".join(f"{v:.2f}" for v in row)
                    print(f"| {Path(f).name} | {look} | {q} | {8 * len(bound.data) / n.size:.2f} | {cells} | "
                          f"{row[4] - row[0]:+.2f} | {row[4] - row[3]:+.2f} | {t_pil:.2f} / {t_deq:.2f} |",
                          flush=True)
    for (look, q), g in gains.items():
        lg = luma_gains[(look, q)]
        print(f"{look} q{q}: mean Δ shipped {np.mean(g):+.2f} dB, worst {min(g):+.2f} dB, best {max(g):+.2f} dB; "
              f"chroma from luma {np.mean(lg):+.2f} dB [{min(lg):+.2f}, {max(lg):+.2f}] ({len(g)} files)")


if __name__ == "__main__":
    main()
