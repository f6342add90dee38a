"""RAW-PSNR-γ of the approximate decode from Pillow's 8-bit pixels against the biased-dequantisation float decode
(``containers.dequant``), on real RAW files, through ``invisp encode`` (front end, default model) as a user runs it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dequant.py [--quality 70,90,95] [--look camera,libraw]
        [--oracle] [FILES…]

Columns per file, look and quality: Pillow (today's decode), float (bin centres, float IDCT and colour: the
8-bit rounding alone), dequant (the shipped decode: Laplacian centroids + float), and with ``--oracle`` the bound
of per-frequency side information: the one offset per component and frequency that the encoder, knowing the true
coefficients (the DCT of its own YCbCr input), would store. Decode seconds of ``dequant.decode`` vs Pillow's.
Nothing is tuned on these files: the estimator has no constants fitted to data."""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from invisp_cli import codec, metrics, pipeline, rawio
from invisp_cli.containers import dequant, jpeg
from invisp_cli.zoo import find_model, load_stage

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
#: JFIF RGB → YCbCr (the encoder's input, in float)
_RGB_TO_YCC = np.linalg.inv(dequant._YCC_TO_RGB)


def _float_rgb(data: bytes, offsets: list[np.ndarray] | None) -> np.ndarray:
    """Float RGB with given per-frequency offsets (None: bin centres) instead of the Laplacian fit."""
    planes, tables, size = dequant.read_coefficients(data)
    chans = []
    for i, (p, q) in enumerate(zip(planes, tables, strict=True)):
        kf = p.astype(np.float64)
        off = np.zeros((8, 8)) if offsets is None else offsets[i]
        chans.append(dequant.idct_plane((kf - np.sign(kf) * off) * q, size))
    ycc = np.stack(chans, -1)
    ycc[..., 1:] -= 128.0
    return (ycc @ dequant._YCC_TO_RGB.T).clip(0, 255).astype(np.float32)


def _oracle_offsets(data: bytes, rgb_true: np.ndarray) -> list[np.ndarray]:
    """Per component and frequency, the mean of sign(k)·(k − x/Q) over nonzero AC indices k, x the DCT of the
    encoder's float YCbCr input: the best single offset towards zero (least squares)."""
    planes, tables, size = dequant.read_coefficients(data)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*")
    ap.add_argument("--quality", default="90")
    ap.add_argument("--look", default="camera,libraw")
    ap.add_argument("--oracle", action="store_true")
    a = ap.parse_args()
    files = a.files or sorted(str(p) for p in DATA.iterdir())
    cols = ["Pillow", "float", "dequant"] + (["oracle"] if a.oracle else [])
    print(f"| file | look | q | {' | '.join(cols)} | Δ dequant | decode s Pillow / dequant |")
    print("|---|---|---|" + "---|" * (len(cols) + 2))
    gains: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            raw = rawio.read_raw(f)
            n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
            for look in a.look.split(","):
                for q in map(int, a.quality.split(",")):
                    out = Path(tmp) / "x.jpg"
                    codec.encode_file(f, out, quality=q, look=look, force=True)
                    bound = jpeg.read_bound(out)
                    model = load_stage(find_model(bound.params.model_id))

                    def score(rgb: np.ndarray, bound=bound, model=model, n=n, raw=raw) -> float:
                        rec = pipeline.recover([rgb], bound.params, model)
                        return metrics.raw_psnr_gamma(metrics.normalise_mosaic(rec.mosaic, raw.black, raw.white), n)

                    t0 = time.perf_counter()
                    with Image.open(io.BytesIO(bound.data)) as img:
                        pil = np.asarray(img.convert("RGB"))
                    t_pil = time.perf_counter() - t0
                    t0 = time.perf_counter()
                    deq = dequant.decode(bound.data)
                    t_deq = time.perf_counter() - t0
                    row = [score(pil), score(_float_rgb(bound.data, None) / 255), score(deq / 255)]
                    if a.oracle:
                        truth = pipeline.render([raw], model, [bound.params.render])
                        row.append(score(_float_rgb(bound.data, _oracle_offsets(bound.data, truth)) / 255))
                    gains.setdefault((look, q), []).append(row[2] - row[0])
                    cells = " | ".join(f"{v:.2f}" for v in row)
                    print(f"| {Path(f).name} | {look} | {q} | {cells} | {row[2] - row[0]:+.2f} | "
                          f"{t_pil:.2f} / {t_deq:.2f} |", flush=True)
    for (look, q), g in gains.items():
        print(f"{look} q{q}: mean Δ dequant {np.mean(g):+.2f} dB, worst {min(g):+.2f} dB, best {max(g):+.2f} dB "
              f"({len(g)} files)")


if __name__ == "__main__":
    main()
