"""How small can JPEG + exact layer get? Empirical entropy bounds for the residual against the JPEG's prediction.

    .venv/bin/python benchmarks/residual_entropy.py [FILES…] [--quality 90,50]

For each RAW file and JPEG quality: the invisp JPEG (camera-matched shipped model, 4:4:4) and its bit-exact
layer as ``invisp encode --exact`` makes it, against JPEG XL lossless of the mosaic (effort 7, best layout) and
the empirical entropy of the residual r = mosaic − prediction (``residual.Predictor.analytic``): H0(r), and
H(r | CFA position, octave of the prediction) — the contexts the layer's sorted coder uses — and
H(r | those, activity of the causal same-colour neighbours' residuals). Empirical conditional entropy ignores
the cost of learning the statistics, so it is an optimistic bound for a coder using those contexts. bpp = bits
per mosaic site. Prints a markdown table."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from invisp_cli import codec, pipeline, rawio, residual, zoo
from invisp_cli.bench import sizes
from invisp_cli.containers import jpeg
from invisp_cli.params import ReconstructionParams

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
FILES = ["canon-eos-550d_colorchart.dng", "nikon-d750_rose_768x512.dng",
         "canon-powershot-s40_colorchecker_CRW_0101.CRW", "canon-powershot-g2_colorchecker_CRW_0304.CRW"]


def entropy_bits(r: np.ndarray, ctx: np.ndarray | None = None) -> float:
    """Total empirical (conditional) entropy in bits: Σ over contexts of n_c·H(r | c)."""
    r = r.ravel()
    if ctx is None:
        groups = [r]
    else:
        c = ctx.ravel()
        order = np.argsort(c, kind="stable")
        groups = np.split(r[order], np.flatnonzero(np.diff(c[order])) + 1)
    total = 0.0
    for g in groups:
        _, counts = np.unique(g, return_counts=True)
        total -= float((counts * np.log2(counts / counts.sum())).sum())
    return total


def rows(path: Path, qualities: list[int]) -> list[str]:
    raw = rawio.read_raw(path)
    n = raw.mosaic.size
    jxl = sizes.jxl_lossless(raw.mosaic)[0]
    entry = zoo.select_model(raw.exif.get("make", ""))
    model = zoo.load_model(entry)
    m = raw.mosaic.astype(np.int64)
    out = []
    for q in qualities:
        st = codec.render_settings(raw, q, "4:4:4", entry.isp)
        data = jpeg.encode_jpeg(pipeline.render([raw], model, [st]), ReconstructionParams.from_raw(raw, entry.id,
                                                                                              entry.sha256, st))
        pred = residual.Predictor.analytic(raw, st["exposure_gain"], int(raw.white))
        pm = pred(residual.decode_pixels(data)).astype(np.int64)
        r = m - pm
        ctx = residual.contexts(pm, pred.base).astype(np.int64)
        act = np.zeros_like(r)
        act[:, 2:] += np.abs(r[:, :-2])
        act[2:, :] += np.abs(r[:-2, :])
        ctx_act = ctx * 12 + np.clip(np.frexp((act + 1).astype(np.float64))[1], 0, 11).ravel()
        layer = len(residual.attach(data, raw, st["exposure_gain"], 0)[0]) - len(data)
        h_ctx, h_act = entropy_bits(r, ctx), entropy_bits(r, ctx_act)
        bpp = 8 * len(data) / n
        bound = (8 * len(data) + h_act) / (8 * jxl)
        out.append(f"| {path.name} | q{q} | {bpp:.2f} | {8 * layer / n:.2f} | {entropy_bits(r) / n:.2f} | "
                   f"{h_ctx / n:.2f} | {h_act / n:.2f} | {8 * jxl / n:.2f} | {bound:.2f} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--quality", default="90,50")
    a = ap.parse_args()
    print("| file | JPEG | JPEG bpp | layer bpp | H0(r) | H(r \\| pos, octave) | H(r \\| pos, octave, activity) | "
          "JXL lossless bpp | bound: (JPEG + best H) / JXL |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in a.files or [DATA / name for name in FILES]:
        for line in rows(f, [int(q) for q in a.quality.split(",")]):
            print(line, flush=True)


if __name__ == "__main__":
    main()
