"""How much RAW an 8-bit file can give back at all: the analytic inverse of LibRaw's own render, from the
lossless 8-bit render (PNG) and from its JPEG at several qualities, and what that JPEG scores on SSIM.

    .venv/bin/python benchmarks/ceiling.py [FILES…] [--quality 90,95,100]

For each RAW file (default: ../shared/data/raw without the 12 MP GoPro files, plus --gopro for them): LibRaw's
render ``postprocess(use_camera_wb=True, no_auto_bright=True)`` is inverted with the metadata-aided analytic
inverse (``bench.baselines.analytic_recover``: the exact inverse of the ISP that made it, up to LibRaw's demosaic
and clipping) — once from the 8-bit pixels themselves and once from a Pillow JPEG (4:4:4) of them at each
quality. It is the best any inverse can do from that file without side information, and the rows show where
the 8-bit quantisation and the JPEG put the bound. Also RAW-PSNR-paper (``metrics.raw_psnr_paper``) and
SSIM / RGB-PSNR of LibRaw's JPEG against LibRaw's render itself (the ceiling of SSIM for any q-JPEG).
Prints a markdown table."""

from __future__ import annotations

import argparse
from pathlib import Path

from invisp_cli import metrics, rawio
from invisp_cli.bench import baselines
from invisp_cli.steps import libraw_gain

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"


def rows(path: Path, qualities: list[int]) -> list[str]:
    raw = rawio.read_raw(path)
    ref = rawio.render_reference(path)
    if rawio.undo_flip(ref, raw.flip).shape[:2] != raw.mosaic.shape:
        return [f"| {path.name} | LibRaw renders another size (non-square pixels): skipped | | | | |"]
    gain = libraw_gain(raw)
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    out = []
    sources = [("8-bit render (PNG)", ref, None)]
    for q in qualities:
        data = baselines.encode_plain_jpeg(ref, q, "4:4:4")
        sources.append((f"JPEG q{q} 4:4:4 ({8 * len(data) / n.size:.2f} bpp)", baselines.decode_jpeg(data), q))
    for label, pixels, q in sources:
        nh = metrics.normalise_mosaic(baselines.analytic_recover(pixels, raw, gain), raw.black, raw.white)
        rgb = "–" if q is None else f"{metrics.rgb_psnr(pixels, ref):.2f} / {metrics.ssim(pixels, ref):.3f}"
        out.append(f"| {path.name} | {label} | {metrics.raw_psnr_gamma(nh, n):.2f} | {metrics.raw_psnr_lin(nh, n):.2f}"
                   f" | {metrics.raw_psnr_paper(nh, n, raw.cfa, raw.wb):.2f} | {rgb} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--quality", default="90,95,100")
    ap.add_argument("--gopro", action="store_true", help="include the two 12 MP GoPro files")
    a = ap.parse_args()
    files = a.files or sorted(p for p in DATA.iterdir() if p.suffix != ".md" and (a.gopro or "gopro" not in p.name))
    print("| file | analytic inverse from | RAW-PSNR-γ | RAW-PSNR-lin | RAW-PSNR-paper | that JPEG vs the render: "
          "RGB-PSNR / SSIM |")
    print("|---|---|---|---|---|---|")
    for f in files:
        for line in rows(f, [int(q) for q in a.quality.split(",")]):
            print(line, flush=True)


if __name__ == "__main__":
    main()
