"""The noise-bounded tier (``--max-error Ks``) against lossless and lossy RAW storage: sizes, errors, speed.

    .venv/bin/python benchmarks/noise_tier.py [FILES…] [--quality 90] [--sigma-quality auto] [--sweep 20,…,90]
                                              [--mp 24]
                                              [--json out.json] [--plot docs/noise_bpp.png]
    .venv/bin/python benchmarks/noise_tier.py --coders [FILES…]   # layer bpp of each coder at 0.5σ
    .venv/bin/python benchmarks/noise_tier.py --noise [FILES…] [--json out.json]   # noise model honesty only

For each RAW file (default: every file in ../shared/data/raw), ``invisp_cli.bench.tiers.measure`` (what
``invisp bench --tiers`` runs; this script adds the quality sweep, the markdown tables and the timing), in process,
exactly as ``invisp encode`` builds them: the plain invisp JPEG (4:4:4, the camera-matched model, ``--quality``),
the JPEG + layer at 0.25σ / 0.5σ / 1σ (JPEG quality ``--sigma-quality``; "auto": ``residual.choose_quality``, as
``invisp encode --max-error Ks`` without -q) and exact (``--quality``), the 0.5σ total over ``--sweep`` JPEG
qualities, JPEG XL lossless of the mosaic (best of mosaic / CFA planes, effort 7), JPEG XL lossy of the four CFA
planes (tiled 2×2, distance 0.2, effort 7: the recipe of Adobe's lossy DNG) and the lossless-JPEG DNG
``rawio.write_dng`` writes (as ``invisp decode``). For each: bpp (``metrics.bpp``: bytes·8 / visible sites), max
error in σ (max over sites of |m̂ − m| / σ(n(m)), σ of the file's noise model) and RAW-PSNR-lin
(``metrics.raw_psnr_lin``). The layer's decode is checked against the bound at every site.

Noise model honesty (``--noise``; ``measure`` records the same at 18 % grey): σ of the model the layer uses
(``noise.noise_model``) against independent estimates from the same file (``invisp_cli.bench.tiers``): the
plane-fit variance of flat 8×8 patches of each CFA plane (``patch_sigma``: honest for noise correlated over a
few sites, biased up by texture only) at n = 0.045 … 0.36 (octaves), Immerkær's Laplacian at 18 %
grey (``laplacian_sigma``: white noise only), and the DNG NoiseProfile's σ at mid-grey where the file has one;
with the σ at mid-grey of the estimator's fit at each block spacing 1…4 (``noise.sigma_by_spacing``), the
numbers its choice of spacings rests on.

Timing (``--mp``): a synthetic DNG (canon-eos-550d_colorchart.dng's mosaic tiled), ``codec.encode_file`` and
``decode_file`` (what ``invisp encode`` / ``decode`` run: read, render or recover, write) of the plain JPEG
(``--quality``) and of ``--max-error 0.5s`` (quality chosen), alternating, three times: the fastest of each."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from invisp_cli import codec, metrics, noise, rawio, residual
from invisp_cli.bench.tiers import jpeg_bytes, laplacian_sigma, measure, patch_sigma, plot, render
from invisp_cli.settings import DEFAULT_LOOK

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
TIERS = [residual.Sigma(0.25), residual.Sigma(0.5), residual.Sigma(1.0), 0]  # 0: exact
LOOK = {"name": DEFAULT_LOOK}  # --look: the look every JPEG here is rendered with (resolved per file)


def timing(mp: float, quality: int, sigma_quality: int | None, repeats: int = 3) -> dict:
    """Seconds of ``codec.encode_file`` / ``decode_file`` (the whole commands: read, render or recover, write) of
    the plain JPEG path and of the 0.5σ tier on a synthetic DNG (a real mosaic tiled to ``mp`` megapixels)."""
    raw = rawio.read_raw(DATA / "canon-eos-550d_colorchart.dng")
    h = int(round(np.sqrt(mp * 1e6 * 2 / 3) / 2)) * 2
    w = int(round(h * 1.5 / 2)) * 2
    reps = (-(-h // raw.mosaic.shape[0]), -(-w // raw.mosaic.shape[1]))
    raw.mosaic = np.ascontiguousarray(np.tile(raw.mosaic, reps)[:h, :w])
    raw.raw_size, raw.margins = (h, w), (0, 0)
    out = {"mp": h * w / 1e6}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.dng"
        rawio.write_dng(src, raw)
        for _ in range(repeats):  # alternating, the fastest of each kept: the machine is shared
            for name, kw in (("plain", {"quality": quality, "look": LOOK["name"]}),
                             ("sigma", {"quality": sigma_quality, "max_error": "0.5s", "look": LOOK["name"]})):
                t0 = time.perf_counter()
                r = codec.encode_file(src, Path(tmp) / f"{name}.jpg", force=True, **kw)
                enc = time.perf_counter() - t0
                t0 = time.perf_counter()
                codec.decode_file(Path(tmp) / f"{name}.jpg", Path(tmp) / f"{name}.dng", force=True)
                dec = time.perf_counter() - t0
                out[f"{name}_bytes"] = r.bytes
                out[f"encode_{name}_s"] = min(enc, out.get(f"encode_{name}_s", enc))
                out[f"decode_{name}_s"] = min(dec, out.get(f"decode_{name}_s", dec))
    return out


def coder_sizes(path: Path, k: float = 0.5) -> dict:
    """Layer payload bytes of each coder on one file's residual at k·σ (analytic predictor, the chosen quality),
    and the empirical conditional entropy H(d | context) that a static per-context model cannot beat."""
    raw = rawio.read_raw(path)
    rgb, entry, gain, look = render(raw, path, LOOK["name"])
    tol = residual.Sigma(k)
    bins = residual.sigma_bins(raw, tol)
    q = residual.choose_quality(raw, rgb, gain, bins, "4:4:4", look=look)
    pred = residual.Predictor.analytic(raw, gain, bins.hi, look)
    pm = pred(jpeg_bytes(raw, rgb, entry, q, tol, look)[1])
    d, _ = bins.quantise(raw.mosaic, pm)
    ctx = residual.contexts(pm, pred.base)
    flat = d.ravel()
    entropy = 0.0
    for c in np.unique(ctx):
        _, n = np.unique(flat[ctx == c], return_counts=True)
        entropy -= float(np.sum(n * np.log2(n / n.sum())))
    vals, offset = residual._offset(d.copy())
    out = {"file": path.name, "quality": q, "H(d|ctx) bpp": entropy / d.size}
    for coder, lay in residual._candidates(d.shape, vals.dtype):
        if coder != "lzma":
            out[f"{coder} {lay}"] = metrics.bpp(len(residual._encode(vals, coder, lay, 3, offset, ctx)), d.size)
    return out


#: the levels (normalised) of the patch estimate in ``--noise``: octaves around 18 % grey (not above: the octave of
#: 0.72 takes in GoPro hero6's clipped plateau at 0.95 of white, which the 98 % clip test lets through)
NOISE_LEVELS = (0.045, 0.09, 0.18, 0.36)
#: the block spacings whose fits ``--noise`` reports (``noise.estimate`` reads 3 and 4 where 2 / 1 > CORRELATED)
SPACINGS = (1, 2, 3, 4)


def noise_row(path: Path) -> dict:
    """One file's noise model against the independent estimates (module docstring, "Noise model honesty")."""
    raw = rawio.read_raw(path)
    model = noise.noise_model(raw)
    lap, lap_model, _, sites = laplacian_sigma(raw, model)
    prof = noise.from_noise_profile(raw)
    patches = {}
    for level in NOISE_LEVELS:
        est, at, n = patch_sigma(raw, model, level)
        patches[level] = {"sigma": est, "model_sigma": at, "patches": n, "ratio": at / est if est == est else None}
    return {"file": path.name, "source": model.source, "sigma_mid": noise.mid_grey_sigma(model), "patch": patches,
            "laplacian": {"sigma": lap, "model_sigma": lap_model, "sites": sites, "ratio": lap_model / lap},
            "profile_sigma_mid": noise.mid_grey_sigma(prof) if prof else None,
            "spacing_sigma": noise.sigma_by_spacing(raw, SPACINGS)}


def noise_table(rows: list[dict]) -> None:
    """Markdown: model σ against the patch estimate (per level) and the Laplacian at 18 % grey, ratio model/estimate."""
    f = lambda v, d=5: "n/a" if v is None or v != v else f"{v:.{d}f}"  # noqa: E731
    print("\n| file | noise source | model σ(0.18) | " + " | ".join(
        f"n = {lv:g}: model / patch (×ratio, patches)" for lv in NOISE_LEVELS)
        + " | Laplacian at 0.18: model / Immerkær (×ratio) | NoiseProfile σ(0.18) | fit σ(0.18) at block spacing "
        + " / ".join(map(str, SPACINGS)) + " (spacing 2 / 1) |")
    print("|" + "---|" * (len(NOISE_LEVELS) + 6))
    for r in rows:
        cells = [f"{f(p['model_sigma'])} / {f(p['sigma'])} (×{f(p['ratio'], 2)}, {p['patches']})"
                 for p in (r["patch"][lv] for lv in NOISE_LEVELS)]
        lap = r["laplacian"]
        print(f"| {r['file']} | {r['source']} | {f(r['sigma_mid'])} | " + " | ".join(cells)
              + f" | {f(lap['model_sigma'])} / {f(lap['sigma'])} (×{f(lap['ratio'], 2)}) | "
              + f"{f(r['profile_sigma_mid'])} | "
              + " / ".join(f(v) for v in r["spacing_sigma"])
              + f" (×{f(r['spacing_sigma'][1] / r['spacing_sigma'][0], 2)}) |")


#: the files the tier was tuned on (docs/noise.md); the targets count the others
TUNED = ("canon-eos-550d_colorchart.dng", "nikon-d750_rose_768x512.dng", "gopro-hero6_walkway_GOPR0024.dng",
         "gopro-hero7_mural_GOPR9231.dng")


def summary(rows: list[dict]) -> None:
    """Mean bpp per tier, of the two-file baseline and of JXL lossless, and the largest 0.5σ error, by split."""
    print("\n| files (count) | 0.25s | 0.5s | 1s | JPEG q90 + JXL lossy d0.2 (two files) | JXL lossless | "
          "max error at 0.5s |\n|---|---|---|---|---|---|---|")
    for name, sel in (("not tuned on", [r for r in rows if r["file"] not in TUNED]),
                      ("tuned on", [r for r in rows if r["file"] in TUNED]), ("all", rows)):
        if not sel:
            continue
        m = lambda f: float(np.mean([f(r) for r in sel]))  # noqa: E731, B023
        worst = max(r["tiers"]["0.5s"]["max_sigma"] for r in sel)
        print(f"| {name} ({len(sel)}) | " + " | ".join(f"{m(lambda r, k=k: r['tiers'][k]['bpp']):.2f}"
                                                      for k in ("0.25s", "0.5s", "1s"))
              + f" | {m(lambda r: r['jpeg_bpp'] + r['jxl_lossy']['bpp']):.2f}"
              + f" | {m(lambda r: r['jxl_lossless_bpp']):.2f} | {worst:.5f}σ |")


def table(rows: list[dict], quality: int) -> None:
    f = lambda v, d=2: "n/a" if v is None or v != v else ("∞" if v == float("inf") else f"{v:.{d}f}")  # noqa: E731
    print(f"\n| file | MP | noise source | σ(0.18) model: at the sites, independent (ratio); NoiseProfile | "
          f"JPEG q{quality} bpp | "
          + " | ".join(f"{k} bpp (max σ, PSNR, q)" for k in ("0.25s", "0.5s", "1s", "exact"))
          + " | 0.5s best q: bpp | JXL lossless | JXL lossy d0.2 bpp (max σ, PSNR) | LJ92 DNG |")
    print("|" + "---|" * 13)
    for r in rows:
        best = min(r["sweep"].items(), key=lambda kv: kv[1]["bpp"]) if r["sweep"] else None
        ind = r["independent"]
        lossy = r.get("jxl_lossy")
        print(f"| {r['file']} | {r['mp']:.1f} | {r['noise']['source']} | "
              f"{f(r['noise']['sigma_mid'], 5)}: {f(ind['model_sigma'], 5)} / {f(ind['sigma'], 5)} "
              f"(×{f(ind['ratio'])}); profile {f(r['profile_sigma_mid'], 5)} | {f(r['jpeg_bpp'])} | "
              + " | ".join(f"{f(t['bpp'])} ({f(t['max_sigma'])}, {f(t['psnr'], 1)}, q{t['quality']})"
                           for t in r["tiers"].values())
              + f" | {f(best[1]['bpp']) + f' (q{best[0]})' if best else 'n/a'} | {f(r['jxl_lossless_bpp'])} | "
              + (f"{f(lossy['bpp'])} ({f(lossy['max_sigma'])}, {f(lossy['psnr'], 1)})" if lossy else "n/a")
              + f" | {f(r['lj92_dng_bpp'])} |")
    mean = lambda vals: float(np.mean(vals))  # noqa: E731
    print(f"| **mean** | | | | {f(mean([r['jpeg_bpp'] for r in rows]))} | "
          + " | ".join(f(mean([r["tiers"][k]["bpp"] for r in rows])) for k in ("0.25s", "0.5s", "1s", "exact"))
          + f" | {f(mean([min(v['bpp'] for v in r['sweep'].values()) for r in rows])) if rows[0]['sweep'] else ''}"
          + f" | {f(mean([r['jxl_lossless_bpp'] for r in rows]))} | "
          + f"{f(mean([r['jxl_lossy']['bpp'] for r in rows if 'jxl_lossy' in r]))} | "
          + f"{f(mean([r['lj92_dng_bpp'] for r in rows]))} |")
    if rows[0]["sweep"]:
        qs = list(rows[0]["sweep"])
        print("\n| file | " + " | ".join(f"0.5s at q{q}: total (JPEG)" for q in qs) + " |")
        print("|" + "---|" * (len(qs) + 1))
        for r in rows:
            print(f"| {r['file']} | " + " | ".join(f"{f(v['bpp'])} ({f(v['jpeg_bpp'])})"
                                                  for v in r["sweep"].values()) + " |")
        print("| **mean** | " + " | ".join(f(mean([r["sweep"][q]["bpp"] for r in rows])) for q in qs) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="RAW files (default: ../shared/data/raw)")
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the plain and the exact rows")
    ap.add_argument("--sigma-quality", default="auto", help="JPEG quality of the σ tiers (auto: chosen per file)")
    ap.add_argument("--sweep", default="40,50,60,70,80,90", help="JPEG qualities for the 0.5σ total ('' = none)")
    ap.add_argument("--mp", type=float, default=0, help="synthetic frame size for the timing (0: skip)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--coders", action="store_true", help="only: layer bpp of each coder at 0.5σ")
    ap.add_argument("--timing-only", action="store_true", help="only the --mp timing")
    ap.add_argument("--noise", action="store_true", help="only: the noise model against independent estimates")
    ap.add_argument("--from-json", type=Path, default=None, help="table and plot of an earlier --json")
    ap.add_argument("--look", default=DEFAULT_LOOK, help="the look of every JPEG (as invisp encode --look)")
    a = ap.parse_args()
    LOOK["name"] = a.look
    files = a.files or sorted(DATA.iterdir())
    if a.coders:
        rows = [coder_sizes(p) for p in files]
        keys = list(dict.fromkeys(k for r in rows for k in r if k != "file"))
        print("| file | " + " | ".join(keys) + " |\n|" + "---|" * (len(keys) + 1))
        for r in rows:
            print(f"| {r['file']} | " + " | ".join(f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, ""))
                                                for k in keys) + " |")
        return
    if a.noise:
        rows = [noise_row(p) for p in files]
        noise_table(rows)
        if a.json:
            a.json.write_text(json.dumps({"levels": NOISE_LEVELS, "rows": rows}, indent=1, default=str))
        return
    sweep = [int(q) for q in a.sweep.split(",") if q]
    sigma_q = None if a.sigma_quality == "auto" else int(a.sigma_quality)
    if a.from_json:
        rows = json.loads(a.from_json.read_text())["rows"]
        for r in rows:
            r["sweep"] = {int(q): v for q, v in r["sweep"].items()}
        table(rows, a.quality)
        summary(rows)
        if a.plot:
            plot(rows, a.plot)
        return
    rows = []
    for p in [] if a.timing_only else files:
        t0 = time.perf_counter()
        rows.append(measure(p, TIERS, a.quality, tuple(sweep), sigma_q, a.look))
        print(f"done {p.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if rows:
        table(rows, a.quality)
        summary(rows)
    out = {"rows": rows}
    if a.mp > 0:
        out["timing"] = t = timing(a.mp, a.quality, sigma_q)
        print(f"\n{t['mp']:.1f} MP ({t['plain_bytes'] / 1e6:.2f} / {t['sigma_bytes'] / 1e6:.2f} MB): encode plain "
              f"{t['encode_plain_s']:.2f} s, 0.5σ {t['encode_sigma_s']:.2f} s "
              f"(×{t['encode_sigma_s'] / t['encode_plain_s']:.2f}); decode plain {t['decode_plain_s']:.2f} s, "
              f"0.5σ {t['decode_sigma_s']:.2f} s (×{t['decode_sigma_s'] / t['decode_plain_s']:.2f})")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, default=str))
    if a.plot:
        plot(rows, a.plot)


if __name__ == "__main__":
    main()
