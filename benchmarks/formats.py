"""The support matrix: each CFA / raw type, measured on real Bayer files and on X-Trans and linear DNGs made from them.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/formats.py [FILES…] [--quality 90] [--look libraw] [--converters]
        [--demosaic-study] [--speed] [--json OUT]
    .venv/bin/python benchmarks/formats.py --table OUT.json     (the JSON's rows as Markdown tables)

For each real Bayer file (default: the DNGs in ../shared/data/raw), ``rawio.synthetic`` makes from LibRaw's linear
camera-RGB demosaic of it: the same scene as a Bayer mosaic of the file's own 2×2 layout ("Bayer, synthetic": the
fair comparison for the others, made the same way), as Fujifilm's 6×6 X-Trans mosaic, and as a 3-sample LinearRaw
DNG. Each (and the real file itself) goes through ``invisp encode`` (front end, the given quality, 4:4:4) and
``invisp decode``, in process (``codec.encode_file`` / ``decode_file``, what the command line calls), with
``--look`` (default libraw: the front end's own render, as files before looks):

    RAW-PSNR-γ, RAW-PSNR-lin   METRICS.md, over every sample: the CFA sites, or all three channels of a linear image
                               (each channel normalised by its own black level and the white level)
    bpp                        JPEG bytes × 8 / visible pixels (H·W, also for a linear image)
    encode s                   wall time of the encode, the least of REPEAT runs (this machine, OMP_NUM_THREADS as set)
    exact                      ``--exact`` encode + decode: the DNG's samples equal the original's (rawpy), layer MB
    LibRaw type                raw type and CFA period LibRaw reads from the decoded DNG (must be the original's)
    rawpy / dcraw / darktable  ``--converters [LIST]``: PSNR (8-bit, dB) of each converter's render of the decoded
                               DNG against its render of the original (benchmarks/converters.py's renders)

The X-Trans demosaic study (``--demosaic-study``): the normalised mosaic demosaiced by plain normalised convolution
(every colour interpolated on its own), by colour differences to a first green (one pass) and by the shipped
``PatternDemosaic`` (colour differences, green refined once),
PSNR-γ (γ = 2.2, 8-pixel border left out) against the linear RGB the mosaic was sampled from, and the RAW-PSNR-γ
at the quality of the round trip with each.

The speed check (``--speed``): the file's linear demosaic tiled 2 × 1 (a 12 MP file gives 24 MP) as a Bayer mosaic
of its own layout, as X-Trans and as a linear DNG; ``codec.encode_file`` of each (least of REPEAT wall times) and
the ratio to the Bayer time."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from invisp_cli import codec, metrics, rawio, steps
from invisp_cli.rawio.synthetic import XTRANS, as_cfa, as_linear, linear_source

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
REPEAT = 3


def _samples_psnr(orig: Path, rec: Path) -> tuple[float, float]:
    a, b = rawio.read_raw(orig), rawio.read_raw(rec)
    n, n_hat = (metrics.normalise_mosaic(r.mosaic, a.black, a.white) for r in (a, b))
    return metrics.raw_psnr_gamma(n_hat, n), metrics.raw_psnr_lin(n_hat, n)


def _libraw_type(path: Path) -> str:
    import rawpy

    with rawpy.imread(str(path)) as r:
        pattern = r.raw_pattern
        return f"{r.raw_type.name} {'×'.join(map(str, pattern.shape)) if pattern is not None else '3-sample'}"


def _same_samples(a: Path, b: Path) -> bool:
    import rawpy

    with rawpy.imread(str(a)) as x, rawpy.imread(str(b)) as y:
        return bool(np.array_equal(x.raw_image_visible, y.raw_image_visible))


CONVERTERS = ("rawpy", "dcraw", "rawtherapee", "darktable")


def _converters(orig: Path, dng: Path, work: Path, names: list[str]) -> dict[str, float | str]:
    sys.path.insert(0, str(Path(__file__).parent))
    import converters

    out: dict[str, float | str] = {}
    for name in names:
        render = getattr(converters, f"{name}_render")
        try:
            a, b = converters._to_u8(render(orig, work)), converters._to_u8(render(dng, work))
        except Exception as e:  # noqa: BLE001 - a converter that cannot open a file: say so in the table
            out[name] = f"fails ({type(e).__name__})"
            continue
        h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        out[name] = round(metrics.psnr(a[:h, :w], b[:h, :w], 255.0), 2) if (h, w) else "empty"
    return out


def measure(src: Path, quality: int, look: str, work: Path, with_converters: list[str]) -> list[dict]:
    """One row per variant of ``src``: real Bayer, synthetic Bayer, synthetic X-Trans, synthetic linear."""
    raw, rgb = linear_source(src)
    variants = {"Bayer (real)": src}
    for name, made in (("Bayer (synthetic)", as_cfa(raw, rgb, raw.cfa)), ("X-Trans (synthetic)", as_cfa(raw, rgb)),
                       ("linear (synthetic)", as_linear(raw, rgb))):
        variants[name] = work / f"{src.stem}.{name.split()[0].lower()}.dng"
        rawio.write_dng(variants[name], made)
    rows = []
    for name, path in variants.items():
        jpg, dng, xjpg, xdng = (work / f"{path.stem}.{k}" for k in ("jpg", "dng.dng", "x.jpg", "x.dng"))
        seconds = np.inf
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            codec.encode_file(path, jpg, quality=quality, force=True, look=look)
            seconds = min(seconds, time.perf_counter() - t0)
        codec.decode_file(jpg, dng, force=True)
        gamma, lin = _samples_psnr(path, dng)
        layer = codec.encode_file(path, xjpg, quality=quality, force=True, max_error=0, look=look)
        codec.decode_file(xjpg, xdng, force=True)
        row = {"file": src.name, "variant": name, "size": f"{raw.mosaic.shape[1]}×{raw.mosaic.shape[0]}",
               "RAW-PSNR-γ": round(gamma, 2), "RAW-PSNR-lin": round(lin, 2),
               "bpp": round(jpg.stat().st_size * 8 / raw.mosaic.size, 3), "encode s": round(seconds, 2),
               "exact": _same_samples(path, xdng), "layer MB": round((layer.bytes - jpg.stat().st_size) / 1e6, 2),
               "LibRaw type": _libraw_type(dng), "original type": _libraw_type(path)}
        if with_converters:
            row.update(_converters(path, dng, work, with_converters))
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


class PlainNC(steps.PatternDemosaic):
    """Normalised convolution of each colour on its own (no colour differences): the study's baseline."""

    def forward(self, x):
        v = x[..., 0, :, :]
        masks, inv = steps._pattern_weights(self.cfa, *v.shape[-2:])
        planes = [np.where(m > 0, v, steps._tent(v * m, self.r[c]) * inv[c]) for c, m in enumerate(masks)]
        return np.stack(planes, -3)


class OnePass(steps.PatternDemosaic):
    """Colour differences to the first green (G₁, C₁ of ``PatternDemosaic``), without the green refinement."""

    def forward(self, x):
        v = x[..., 0, :, :]
        m, inv = steps._pattern_weights(self.cfa, *v.shape[-2:])
        g = np.where(m[1] > 0, v, steps._tent(v * m[1], self.r[1]) * inv[1])
        rb = [np.where(m[c] > 0, v, g + steps._tent((v - g) * m[c], self.r[c]) * inv[c]) for c in (0, 2)]
        return np.stack([rb[0], g, rb[1]], -3)


def demosaic_study(src: Path, quality: int, look: str, work: Path) -> list[dict]:
    """Plain normalised convolution vs the shipped PatternDemosaic on the X-Trans mosaic of ``src``."""
    raw, rgb = linear_source(src)
    xt = as_cfa(raw, rgb)
    path = work / f"{src.stem}.study.dng"
    rawio.write_dng(path, xt)
    black = rawio.synthetic.colour_black(raw)
    truth = np.clip((rgb - black) / (raw.white - black), 0, 1)[8:-8, 8:-8] ** (1 / 2.2)
    n = steps.Levels(xt.black, xt.white).forward(xt.mosaic[None, None].astype(np.float32))
    rows = []
    shipped = steps.DEMOSAICS["pattern"]
    for name, cls in (("plain normalised convolution", PlainNC), ("colour differences, one pass", OnePass),
                      ("colour differences + green refinement (shipped)", shipped)):
        est = np.clip(cls(XTRANS).forward(n)[0].transpose(1, 2, 0), 0, 1)[8:-8, 8:-8] ** (1 / 2.2)
        steps.DEMOSAICS["pattern"] = cls
        try:
            codec.encode_file(path, work / "s.jpg", quality=quality, force=True, look=look)
            codec.decode_file(work / "s.jpg", work / "s.dng", force=True)
        finally:
            steps.DEMOSAICS["pattern"] = shipped
        row = {"file": src.name, "demosaic": name, "PSNR-γ vs source RGB": round(metrics.psnr(est, truth), 2),
               "RAW-PSNR-γ": round(_samples_psnr(path, work / "s.dng")[0], 2)}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


#: the IJG luminance quantisation table (ITU-T T.81 Annex K), natural order, at quality 50
_IJG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
             14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
             49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)


def _luma_table(quality: int) -> list[int]:
    """The IJG luminance table at ``quality`` (libjpeg's scaling)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(255, max(1, (v * scale + 50) // 100)) for v in _IJG_LUMA]


class SteeperToe(steps.Step):
    """The study's chain change: y = G⁻¹(G_s(x)) before the gamma G, so that the render's curve is G_s, the
    BT.709-type curve (power 0.45) with toe slope s instead of 4.5 (brighter deep shadows)."""

    def __init__(self, slope: float):
        self.g, self.h = steps.Gamma(), steps.Gamma(0.45, slope)

    def forward(self, x):
        return self.g.inverse(self.h.forward(x))

    def inverse(self, y):
        return self.h.inverse(self.g.forward(y))


#: the linear study's variants: (name, Pillow save arguments, toe slope of the chain or None)
LINEAR_VARIANTS = (
    ("YCbCr q90 (as shipped)", {"quality": 90}, None), ("YCbCr q92", {"quality": 92}, None),
    ("YCbCr q95", {"quality": 95}, None),
    ("YCbCr, luma table for chroma, q86", {"qtables": [_luma_table(86)] * 3}, None),
    ("YCbCr, luma table for chroma, q90", {"qtables": [_luma_table(90)] * 3}, None),
    ("RGB (no colour transform) q70", {"quality": 70, "keep_rgb": True}, None),
    ("RGB (no colour transform) q75", {"quality": 75, "keep_rgb": True}, None),
    ("RGB (no colour transform) q90", {"quality": 90, "keep_rgb": True}, None),
    ("toe slope 6 (render changed), q90", {"quality": 90}, 6.0),
    ("toe slope 9 (render changed), q90", {"quality": 90}, 9.0),
)


def _render_recover(path: Path, quality: int, look: str, save: dict, toe: float | None, work: Path):
    """(raw, its 8-bit render, JPEG bytes, recovered RawImage) of the RAW ``path``, encoded as ``invisp encode``
    does (the look fitted to the chain used) but written by Pillow with ``save`` (no metadata) and decoded as
    ``invisp decode`` does (``dequant``'s float pixels where it reads the file, Pillow's otherwise), the chain with
    ``SteeperToe(toe)`` before its gamma if ``toe``."""
    import io

    from PIL import Image

    from invisp_cli import pipeline
    from invisp_cli.containers import dequant, integrity, jpeg

    shipped = steps.analytic_steps

    def with_toe(*args, **kwargs):
        out = shipped(*args, **kwargs)
        return [*out[:-1], SteeperToe(toe), out[-1]]

    steps.analytic_steps = with_toe if toe else shipped
    try:
        codec.encode_file(path, work / "study.jpg", quality=quality, force=True, look=look)
        with Image.open(work / "study.jpg") as img:
            params = jpeg.read_params(img, path.name)
        raw = rawio.read_raw(path)
        u8 = pipeline.render([raw], None, [params.render])
        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, "JPEG", subsampling=0, optimize=True, **save)
        data = buf.getvalue()
        with Image.open(io.BytesIO(data)) as img:
            pixels = dequant.recovery_pixels(data, integrity.Check("intact", np.asarray(img.convert("RGB"))))
        return raw, u8, data, pipeline.recover([pixels], params, None)
    finally:
        steps.analytic_steps = shipped


def _per_colour(n_hat: np.ndarray, n: np.ndarray, cfa: str) -> list[float]:
    """RAW-PSNR-γ of each colour's samples: a linear image's channels, or the CFA sites of each colour."""
    if n.ndim == 3:
        return [metrics.raw_psnr_gamma(n_hat[..., c], n[..., c]) for c in range(3)]
    idx = steps.cfa_index(cfa)
    sites = np.tile(idx, (-(-n.shape[0] // idx.shape[0]), -(-n.shape[1] // idx.shape[1])))[: n.shape[0], : n.shape[1]]
    return [metrics.raw_psnr_gamma(n_hat[sites == c], n[sites == c]) for c in range(3)]


def linear_study(src: Path, quality: int, look: str, work: Path) -> list[dict]:
    """Why a linear image loses RAW-PSNR-γ: per colour, where its squared error lies (samples with n < 0.01, pixels
    whose render clips, samples with n ≥ 0.5, where the highlight roll-off acts), and the JPEG settings and chain
    changes tried, against the synthetic Bayer mosaic of the same scene (JPEGs without metadata)."""
    raw, rgb = linear_source(src)
    rows = []
    for layout, made in (("Bayer (synthetic)", as_cfa(raw, rgb, raw.cfa)), ("linear (synthetic)", as_linear(raw, rgb))):
        path = work / "study.dng"
        rawio.write_dng(path, made)
        for name, save, toe in LINEAR_VARIANTS if made.linear else LINEAR_VARIANTS[:1]:
            image, u8, data, rec = _render_recover(path, quality, look, save, toe, work)
            n = metrics.normalise_mosaic(image.mosaic, image.black, image.white)
            n_hat = metrics.normalise_mosaic(rec.mosaic, image.black, image.white)
            se = (n_hat ** (1 / 2.2) - n ** (1 / 2.2)) ** 2
            dark = n < 0.01
            clipped = rawio.undo_flip(((u8 == 0) | (u8 == 255)).any(-1), image.flip)
            colours = _per_colour(n_hat, n, image.cfa)
            row = {"file": src.name, "layout": layout, "variant": name,
                   "bpp": round(len(data) * 8 / n.shape[0] / n.shape[1], 3),
                   "RAW-PSNR-γ": round(metrics.raw_psnr_gamma(n_hat, n), 2),
                   **{f"{c} dB": round(v, 2) for c, v in zip("RGB", colours, strict=True)},
                   "samples n < 0.01": round(float(dark.mean()), 3),
                   "SE share n < 0.01": round(float(se[dark].sum() / se.sum()), 3),
                   "SE share clipped px": round(float(se[clipped].sum() / se.sum()), 3),
                   "SE share n ≥ 0.5": round(float(se[n >= 0.5].sum() / se.sum()), 3)}
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def decode_study(src: Path, quality: int, look: str, work: Path) -> list[dict]:
    """What a better decode could give a linear image (against the synthetic Bayer mosaic of the same scene):
    RAW-PSNR-γ (all samples, and per colour) of the JPEG at ``quality`` as encode writes it, decoded as shipped,
    without its chroma from luma (``dequant.decode(…, from_luma=False)``), with one smoothing step kept inside the
    bins instead (``benchmarks/dequant.py``'s ``_smoothed``, σ = 0.5 px), and two oracles that take the chroma (or
    the luma) planes from the quality-100 JPEG of the same render: how much of the loss each carries."""
    import io

    from dequant import _RGB_TO_YCC, _smoothed
    from PIL import Image

    from invisp_cli import pipeline
    from invisp_cli.containers import dequant, integrity, jpeg

    def swapped(luma: np.ndarray, chroma: np.ndarray) -> np.ndarray:
        """RGB (0–1) of the Y plane of ``luma`` and the Cb, Cr planes of ``chroma`` (both RGB, 0–1)."""
        ycc = np.concatenate([(luma @ _RGB_TO_YCC.T)[..., :1], (chroma @ _RGB_TO_YCC.T)[..., 1:]], -1)
        return np.clip(ycc @ dequant._YCC_TO_RGB.T, 0, 1).astype(np.float32)

    raw, rgb = linear_source(src)
    rows = []
    for layout, made in (("Bayer (synthetic)", as_cfa(raw, rgb, raw.cfa)), ("linear (synthetic)", as_linear(raw, rgb))):
        path = work / "study.dng"
        rawio.write_dng(path, made)
        image = rawio.read_raw(path)
        n = metrics.normalise_mosaic(image.mosaic, image.black, image.white)
        decoded = {}
        for q in (quality, 100):
            codec.encode_file(path, work / "study.jpg", quality=q, force=True, look=look)
            data = (work / "study.jpg").read_bytes()
            with Image.open(io.BytesIO(data)) as img:
                params, pil = jpeg.read_params(img, path.name), np.asarray(img.convert("RGB"))
            decoded[q] = (data, pil, dequant.recovery_pixels(data, integrity.Check("intact", pil)))
        data, pil, pixels = decoded[quality]
        best = decoded[100][2]
        variants = {
            "shipped": pixels,
            "smoothed in the bins (σ 0.5 px)": dequant.keep_white(_smoothed(data), pil) / np.float32(255),
            "without chroma from luma": dequant.keep_white(dequant.decode(data, from_luma=False), pil)
                                        / np.float32(255),
            "oracle: chroma of q100": swapped(pixels, best),
            "oracle: luma of q100": swapped(best, pixels),
        }
        for name, px in variants.items():
            rec = pipeline.recover([px], params, None)
            n_hat = metrics.normalise_mosaic(rec.mosaic, image.black, image.white)
            row = {"file": src.name, "layout": layout, "decode": name, "quality": quality,
                   "RAW-PSNR-γ": round(metrics.raw_psnr_gamma(n_hat, n), 2),
                   **{f"{c} dB": round(v, 2) for c, v in zip("RGB", _per_colour(n_hat, n, image.cfa), strict=True)}}
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def converter_levels(src: Path, work: Path, names: list[str]) -> list[dict]:
    """Each converter's render of the Bayer file, of its X-Trans and linear DNGs and of the linear DNG with the
    black subtracted beforehand (black 0): channel means of the 8-bit render and PSNR against the Bayer file's
    render (common area; a converter that cannot open the file: against its render of the synthetic Bayer DNG)."""
    sys.path.insert(0, str(Path(__file__).parent))
    import converters

    raw, rgb = linear_source(src)
    lin = as_linear(raw, rgb)
    black = np.asarray(lin.black, dtype=np.int64)
    zero = dataclasses.replace(lin, mosaic=np.clip(lin.mosaic.astype(np.int64) - black, 0, None).astype(np.uint16),
                               black=np.zeros(3), white=int(lin.white - black.max()))
    made = {"Bayer (synthetic)": as_cfa(raw, rgb, raw.cfa), "X-Trans (synthetic)": as_cfa(raw, rgb),
            "linear (synthetic)": lin, "linear, black subtracted (black 0)": zero}
    paths = {"Bayer (real)": src}
    for i, (name, image) in enumerate(made.items()):
        paths[name] = work / f"levels{i}.dng"
        rawio.write_dng(paths[name], image)
    rows = []
    for conv in names:
        render = getattr(converters, f"{conv}_render")
        renders = {}
        for name, path in paths.items():
            try:
                renders[name] = converters._to_u8(render(path, work))
            except Exception:  # noqa: BLE001 - a converter that cannot open the original
                continue
        ref = renders.get("Bayer (real)", renders["Bayer (synthetic)"])
        for name, img in renders.items():
            h, w = min(img.shape[0], ref.shape[0]), min(img.shape[1], ref.shape[1])
            means = img.reshape(-1, 3).mean(axis=0)
            row = {"file": src.name, "converter": conv, "file rendered": name,
                   "mean R / G / B": " / ".join(f"{v:.0f}" for v in means),
                   "PSNR vs the Bayer file's render": round(metrics.psnr(img[:h, :w], ref[:h, :w], 255.0), 2)}
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def speed(src: Path, quality: int, look: str, work: Path) -> list[dict]:
    """Encode wall times of the same (2 × 1 tiled) scene as Bayer, X-Trans and linear DNGs."""
    raw, rgb = linear_source(src)
    big = np.concatenate([rgb, rgb], axis=1)
    base = dataclasses.replace(raw, mosaic=np.zeros(big.shape[:2], np.uint16))
    rows, bayer = [], None
    for name, made in (("Bayer", as_cfa(base, big, raw.cfa)), ("X-Trans", as_cfa(base, big)),
                       ("linear", as_linear(base, big))):
        path = work / f"speed.{name}.dng"
        rawio.write_dng(path, made)
        seconds = np.inf
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            codec.encode_file(path, work / "speed.jpg", quality=quality, force=True, look=look)
            seconds = min(seconds, time.perf_counter() - t0)
        bayer = bayer or seconds
        row = {"file": src.name, "variant": name, "megapixels": round(big.shape[0] * big.shape[1] / 1e6, 1),
               "encode s": round(seconds, 2), "vs Bayer": round(seconds / bayer, 2)}
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)
    return rows


def markdown(data: dict[str, list]) -> str:
    """Each non-empty list of rows of a ``--json`` file as a Markdown table."""
    out = []
    for rows in data.values():
        if rows:
            keys = list(rows[0])
            out += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            out += ["| " + " | ".join("yes" if r[k] is True else "no" if r[k] is False else str(r[k]) for k in keys)
                    + " |" for r in rows]
            out.append("")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--look", default="libraw", help="encode --look (libraw, camera, a trained look's ID)")
    ap.add_argument("--converters", nargs="?", const=",".join(CONVERTERS), default="",
                    help=f"also render with these converters (default: {','.join(CONVERTERS)})")
    ap.add_argument("--demosaic-study", action="store_true", help="plain vs colour-difference X-Trans demosaic")
    ap.add_argument("--speed", action="store_true", help="encode times of a 2 × 1 tiled scene per layout")
    ap.add_argument("--linear-study", action="store_true", help="where a linear image's error lies, options tried")
    ap.add_argument("--decode-study", action="store_true", help="decode-side options for a linear image, oracles")
    ap.add_argument("--converter-levels", action="store_true",
                    help="each --converters' render of the Bayer file and its X-Trans and linear DNGs")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--table", type=Path, help="print a --json file's rows as Markdown tables, measure nothing")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return
    files = args.files or sorted(DATA.glob("*.dng"))
    out: dict[str, list] = {"matrix": [], "demosaic": [], "speed": [], "linear": [], "decode": [], "levels": []}
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            if args.speed:
                out["speed"] += speed(f, args.quality, args.look, Path(tmp))
            elif args.converter_levels:
                out["levels"] += converter_levels(f, Path(tmp), [c for c in args.converters.split(",") if c])
            elif args.linear_study:
                out["linear"] += linear_study(f, args.quality, args.look, Path(tmp))
            elif args.decode_study:
                out["decode"] += decode_study(f, args.quality, args.look, Path(tmp))
            elif args.demosaic_study:
                out["demosaic"] += demosaic_study(f, args.quality, args.look, Path(tmp))
            else:
                out["matrix"] += measure(f, args.quality, args.look, Path(tmp),
                                         [c for c in args.converters.split(",") if c])
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
