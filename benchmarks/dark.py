"""Dark scenes: the front end's recovered RAW against the analytic inverse of LibRaw's own JPEG (the floor).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/dark.py [--scales 8,32,128] [--crop 768] [--quality 90]
                                                          [--model invisp-frontend-v1]

Each real file of ../shared/data/raw named below is darkened (v' = b + (v − b)/s, rounded: the same scene
exposed s× shorter, read noise aside) and written as a DNG, once with its as-shot white balance and once with
a white balance whose blue multiplier is below green's (the case where LibRaw's render is brighter than a front
end that keeps G = 1, ``steps.libraw_wb_gain``); then ``invisp bench`` runs the front end (``invisp-frontend-v1``)
and the ``analytic`` baseline on a centre crop. A front end below the floor on a dark scene would show here as a
negative Δ."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from invisp_cli import rawio
from invisp_cli.bench.run import BenchConfig, run_bench

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "raw"
FILES = ("canon-eos-550d_colorchart.dng", "gopro-hero7_mural_GOPR9231.dng", "nikon-d750_rose_768x512.dng")


def darken(src: Path, dst: Path, scale: float, wb: np.ndarray | None = None) -> None:
    r = rawio.read_raw(src)
    h, w = r.mosaic.shape
    b = np.tile(r.black, (h // 2 + 1, w // 2 + 1))[:h, :w]
    r.mosaic = np.round(b + (r.mosaic - b) / scale).clip(0, r.white).astype(np.uint16)
    r.raw_size, r.flip = (h, w), 0
    if wb is not None:
        r.wb = np.asarray(wb, dtype=np.float64)
    rawio.write_dng(dst, r)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="8,32,128")
    ap.add_argument("--crop", type=int, default=768)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--model", default="invisp-frontend-v1")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as t:
        paths = []
        for name in FILES:
            if not (DATA / name).is_file():
                continue
            for s in (float(x) for x in a.scales.split(",")):
                p = Path(t) / f"{Path(name).stem}_dark{s:g}.dng"
                darken(DATA / name, p, s)
                paths.append(p)
                p = Path(t) / f"{Path(name).stem}_dark{s:g}_lowB.dng"
                darken(DATA / name, p, s, wb=[1.3, 1.0, 0.8])
                paths.append(p)
        res = run_bench(BenchConfig(inputs=paths, models=[a.model], qualities=[a.quality],
                                    baselines=["analytic"], crop=a.crop, plots=False))
    by = {(r.file, r.method): r for r in res.records}
    print(f"| file (crop {a.crop}, q{a.quality}) | {a.model} γ | analytic γ | Δ γ | {a.model} lin | analytic lin |")
    print("|---|---|---|---|---|---|")
    deltas = []
    for f in dict.fromkeys(r.file for r in res.records):
        fe, an = by.get((f, a.model)), by.get((f, "analytic"))
        if fe is None or an is None:
            continue
        deltas.append(fe.raw_psnr_gamma - an.raw_psnr_gamma)
        print(f"| {f} | {fe.raw_psnr_gamma:.2f} | {an.raw_psnr_gamma:.2f} | {deltas[-1]:+.2f} | "
              f"{fe.raw_psnr_lin:.2f} | {an.raw_psnr_lin:.2f} |")
    print(f"\nworst Δ γ {min(deltas):+.2f} dB, mean {np.mean(deltas):+.2f} dB over {len(deltas)} files")


if __name__ == "__main__":
    main()
