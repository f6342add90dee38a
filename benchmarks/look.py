"""The camera look measured (docs/look.md): ΔE2000 vs the camera's preview (METRICS.md "Look") at q90 and the RAW
cost against ``--look libraw`` (BD-PSNR / BD-rate of RAW-PSNR-γ vs bpp over q70/80/90/95), in-memory round trips
(4:4:4, Pillow JPEG, the front end: encode_bytes / decode_bytes), on every file of ../shared/data/raw with a
JPEG preview:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/look.py [--looks libraw,camera,loo,generic-loo] [FILES…]

* ``libraw``: no look (today's render); ``camera``: fitted to the file's own preview (the default);
* ``loo``: the per-camera trained look, leave-one-out — trained on the other files of the same camera model
  (``look.train_look``), the preview of the file under test withheld, then adapted to the file (``look.adapt``)
  as encode does for a file without a preview; only for cameras with ≥ 2 files;
* ``generic-loo``: the generic (neutral: ``look.fit``) look trained on every other file with a preview (any
  camera), as ``invisp train-look --camera "*"`` trains it.

``--set NAME=VALUE …`` overrides the fit's constants (how they were tuned: docs/look.md). ``--speed 24``:
encode/decode time of a 24 MP frame with the camera look and with libraw against LibRaw's own render + JPEG
(``speed``). ``--qtables Y,CB,CR``: the looks other than libraw written with IJG's tables of each quality scaled
by these factors (a JPEG-aware realisation, ``scaled_tables``). ``--oracle``: what a look could reach beyond the
global one, fitted on the same image (``oracle``). ``--gain``: how much the camera look's inverse amplifies the
JPEG's error at the file's own pixels (``inverse_gain``).

Prints one row per file and look (ΔE at q90, RAW-PSNR-γ and bpp at q90, BD-PSNR and BD-rate against libraw) and
the mean and worst ΔE and the mean BD-PSNR of each look."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from pathlib import Path

import numpy as np

from invisp_cli import codec, metrics, pipeline, rawio
from invisp_cli import look as looks
from invisp_cli.params import ReconstructionParams
from invisp_cli.settings import Look
from invisp_cli.zoo import find_model

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
QUALITIES = (70, 80, 90, 95)


def front_end(raw: rawio.RawImage):
    """The front end encode renders ``raw`` with (and fits or adapts its look on): the default model's."""
    return pipeline.front_end_settings(raw, find_model("invisp-frontend-v1").isp)


def round_trip(raw: rawio.RawImage, look: Look | None, quality: int) -> tuple[np.ndarray, float, float]:
    """(decoded upright pixels, bpp, RAW-PSNR-γ) of one in-memory encode/decode with the front end."""
    entry = find_model("invisp-frontend-v1")
    front = dataclasses.replace(front_end(raw), look=look)
    settings = {**codec.render_settings(raw, quality, "4:4:4", entry.isp), **front.to_json()}
    params = ReconstructionParams.from_raw(raw, entry.id, entry.sha256, settings)
    data = codec.encode_bytes(raw, None, params)
    rgb, _, rec = codec.decode_bytes(data, None)
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    n_hat = metrics.normalise_mosaic(rec.mosaic, raw.black, raw.white)
    return rgb, metrics.bpp(len(data), raw.mosaic.size), metrics.raw_psnr_gamma(n_hat, n)


def looks_for(path: Path, raw: rawio.RawImage, names: list[str], files: list[Path]) -> dict[str, Look | None]:
    """The looks to measure on ``path`` (training the leave-one-out ones from the other ``files``)."""
    out: dict[str, Look | None] = {}
    camera = looks.camera_name(raw)
    for name in names:
        if name == "libraw":
            out[name] = None
        elif name == "camera":
            out[name] = looks.camera_look(path, raw, front_end(raw))
        else:
            others = [f for f in files if f != path and (name == "generic-loo"
                                                         or looks.camera_name(rawio.read_raw(f)) == camera)]
            if others:  # trained without the file, then adapted to it as encode --look camera does
                trained = looks.train_look(others, name, neutral=name == "generic-loo")[0]
                out[name] = looks.adapt(trained, raw, front_end(raw))
    return out


def speed(megapixels: float, folder: Path, repeats: int = 3) -> None:
    """Encode and decode time of a ``megapixels`` Bayer frame (the S40 box mosaic tiled, written as a DNG) with the
    camera look (fitted to the S40 box's preview: ``look.read_preview`` of the DNG answers with it), with it as
    the DNG really is (no preview: the generic look, adapted) and with ``--look libraw``, against LibRaw's own
    render + a q90 4:4:4 Pillow JPEG of the same DNG, in this process."""
    import io
    from unittest import mock

    import rawpy
    from PIL import Image

    box = DATA / "canon-powershot-s40_box_CRW_0119.CRW"
    raw, preview = rawio.read_raw(box), looks.read_preview(box)
    w = int(round(np.sqrt(megapixels * 1e6 * 1.5) / 2)) * 2
    h = int(round(megapixels * 1e6 / w / 2)) * 2
    reps = (-(-h // raw.mosaic.shape[0]), -(-w // raw.mosaic.shape[1]))
    big = dataclasses.replace(raw, mosaic=np.ascontiguousarray(np.tile(raw.mosaic, reps)[:h, :w]), exif={}, flip=0)
    src = folder / "big.dng"
    rawio.write_dng(src, big)
    def best(fn) -> float:  # the least of ``repeats`` runs: the machine's load only ever adds time
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    def reference() -> None:
        with rawpy.imread(str(src)) as r:
            rgb = r.postprocess(use_camera_wb=True, no_auto_bright=True)
        Image.fromarray(rgb).save(io.BytesIO(), "JPEG", quality=90, subsampling=0)

    libraw = best(reference)
    print(f"{h}×{w} ({h * w / 1e6:.1f} MP), least of {repeats} runs: LibRaw render + JPEG {libraw:.2f} s")
    for name, label in (("libraw", "libraw"), ("camera", "camera"), ("camera", "camera, no preview")):
        found = (lambda *_a, **_k: preview) if label == "camera" else looks.read_preview
        jpg, dng = folder / f"{name}.jpg", folder / f"{name}.dng"
        with mock.patch.object(looks, "read_preview", found):
            enc = best(lambda: codec.encode_file(src, jpg, force=True, look=name))  # noqa: B023
        dec = best(lambda: codec.decode_file(jpg, dng, force=True))  # noqa: B023
        print(f"  --look {label}: encode {enc:.2f} s ({enc / libraw:.2f}×), decode {dec:.2f} s ({dec / libraw:.2f}×)")


def scaled_tables(factors: tuple[float, float, float]):
    """A context in which Pillow writes JPEGs with IJG's tables of the requested quality scaled by ``factors``
    (Y, Cb, Cr; three tables: libjpeg gives component i table i) instead of the quality's own two."""
    import io
    from unittest import mock

    from PIL import Image

    save = Image.Image.save

    def tables(quality: int) -> list[np.ndarray]:
        buf = io.BytesIO()
        save(Image.new("RGB", (16, 16)), buf, "JPEG", quality=quality, subsampling=0)
        with Image.open(buf) as img:
            q = img.quantization
        return [np.asarray(q[0]), np.asarray(q[1]), np.asarray(q[1])]

    def patched(img, fp, format=None, **kw):  # noqa: A002 - Pillow's own keyword
        if format == "JPEG" and "quality" in kw:
            kw["qtables"] = [np.clip(np.round(t * f), 1, 255).astype(int).tolist()
                             for t, f in zip(tables(kw.pop("quality")), factors, strict=True)]
        return save(img, fp, format, **kw)

    return mock.patch.object(Image.Image, "save", patched)


def oracle(path: Path) -> None:
    """How far the camera look is from the preview beyond what any global look can fix, on the q90 round trip with
    the camera look, aligned as ``metrics.delta_e_camera`` aligns it (J the JPEG, P the preview, both at the
    preview's size): ΔE2000 of J and P both Gaussian-blurred (σ in preview pixels: the share of texture —
    sharpening, noise reduction, resampling); of J times a smooth gain field fitted to P on the same image (in
    linear light, per channel or one for luma, the ratio of the n×m cells' means, bilinear: the oracle of a
    spatial look — vignetting, lens shading, local exposure); and with the framing refined by a local search
    (offsets ±3 px, widths ±12 px at full resolution, twice: what the metric's 9×9 × 7 grid leaves)."""
    from scipy.ndimage import gaussian_filter, zoom

    raw, preview = rawio.read_raw(path), looks.read_preview(path)
    rgb = round_trip(raw, looks.camera_look(path, raw, front_end(raw)), 90)[0]
    framing = metrics.align_framing(rgb, preview)
    dy, dx, ch, cw, k = framing
    p = np.rot90(preview, k) / 255.0
    j = np.clip(metrics.box_resize(rgb[dy:dy + ch, dx:dx + cw], (p.shape[1], p.shape[0])) / 255.0, 0.0, 1.0)
    h, w = p.shape[:2]
    row = [f"ΔE {metrics.mean_ciede2000(j, p):.2f}"]
    for s in (1, 2, 4):
        blur = [np.stack([gaussian_filter(v[..., c], s) for c in range(3)], -1) for v in (j, p)]
        row.append(f"blur σ{s} {metrics.mean_ciede2000(*blur):.2f}")
    lin = [np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4) for v in (j, p)]
    for gh, gw in ((2, 3), (4, 6), (8, 12)):
        g = np.log(np.clip(metrics.box_resize(lin[1], (gw, gh)), 1e-4, None)
                   / np.clip(metrics.box_resize(lin[0], (gw, gh)), 1e-4, None))
        for label, field in (("rgb", g), ("luma", g.mean(-1, keepdims=True))):
            gain = np.stack([zoom(field[..., c], (h / gh, w / gw), order=1, mode="nearest", grid_mode=True)[:h, :w]
                             for c in range(field.shape[-1])], -1)
            x = np.clip(lin[0] * np.exp(gain), 0.0, 1.0)
            x = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
            row.append(f"{gh}×{gw} {label} {metrics.mean_ciede2000(x, p):.2f}")
    best = (metrics.delta_e_camera(rgb, preview, framing), framing)
    for _ in range(2):
        y0, x0, h0, w0, _k = best[1]
        near = [(y0 + a, x0 + b, h0, w0, k) for a in range(-3, 4) for b in range(-3, 4)]
        near += [(y0, x0, round((w0 + d) * h0 / w0), w0 + d, k) for d in range(-12, 13, 3)]
        for f in near:
            if min(f[:2]) >= 0 and f[0] + f[2] <= rgb.shape[0] and f[1] + f[3] <= rgb.shape[1]:
                best = min(best, (metrics.delta_e_camera(rgb, preview, f), f))
    row.append(f"refined framing {best[0]:.2f} at {best[1][:4]} (metric's {framing[:4]})")
    print(f"{path.name}: " + ", ".join(row), flush=True)


def inverse_gain(path: Path) -> None:
    """The camera look's colour matrix, reach and largest gauge r at the working render's pixels, and the squared
    error gain of its inverse per channel (Σ_k (∂x_c/∂y_k)², the look's Jacobian by finite differences: an
    isotropic JPEG error's growth) — mean, median, 99.9th percentile — of the whole look and of its curves alone."""
    from invisp_cli import steps

    raw = rawio.read_raw(path)
    front = front_end(raw)
    look = looks.camera_look(path, raw, front)
    x = looks.working_image(raw, front, looks.WORK_SIDE).reshape(-1, 3).clip(3e-4, 1 - 3e-4).T[None, :, :, None]
    step = steps.Look(look)
    curves = step.curves.table
    tone = step.curves.forward(x)
    lum, dr, db = steps.ChromaCompress._luma_chroma(tone)
    m = step.chroma.m
    gauge = steps.ChromaCompress._gauge(lum, m[0, 0] * dr + m[0, 1] * db, m[1, 0] * dr + m[1, 1] * db)[1]
    y0, e = step.forward(x), 1e-4
    jac = np.stack([(step.forward(x + e * np.eye(3)[k][None, :, None, None]) - y0) / e for k in range(3)], -1)
    gain = (np.linalg.inv(jac[0, :, :, 0].transpose(1, 0, 2)) ** 2).sum(-1)
    slope = np.diff(curves, axis=1) * steps.CURVE_INTERVALS
    bins = np.minimum((x[0, :, :, 0] * steps.CURVE_INTERVALS).astype(int), steps.CURVE_INTERVALS - 1)
    tone_gain = 1.0 / np.take_along_axis(slope, bins, 1) ** 2
    print(f"{path.name}: M {np.round(look.chroma, 3).tolist()}, reach {look.reach:.2f}, gauge max {gauge.max():.2f}")
    for c, name in enumerate("RGB"):
        g = gain[:, c]
        print(f"  {name}: look {g.mean():.1f}× (median {np.median(g):.1f}×, 99.9 % {np.quantile(g, 0.999):.0f}×),"
              f" curves alone {tone_gain[c].mean():.2f}×", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--looks", default="libraw,camera,loo,generic-loo")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="override the fit's constants of invisp_cli/look.py (tuning), e.g. RAW_WEIGHT=6 SLOPE_MIN=0.5")
    ap.add_argument("--qtables", default=None, metavar="Y,CB,CR",
                    help="write the looks other than libraw with IJG's tables scaled by these factors")
    ap.add_argument("--oracle", action="store_true", help="instead: the oracle measurements (``oracle``)")
    ap.add_argument("--gain", action="store_true", help="instead: the look inverse's error gain (``inverse_gain``)")
    ap.add_argument("--speed", type=float, default=None, metavar="MP",
                    help="instead: time encode/decode of an MP-megapixel frame against LibRaw (``speed``)")
    a = ap.parse_args()
    for setting in a.set:
        name, value = setting.split("=")
        kind = type(getattr(looks, name))
        setattr(looks, name, value not in ("0", "False") if kind is bool else kind(value))
    if a.speed:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            speed(a.speed, Path(tmp))
        return
    files = a.files or sorted(p for p in DATA.iterdir() if looks.read_preview(p) is not None)
    if a.oracle or a.gain:
        for path in files:
            (oracle if a.oracle else inverse_gain)(path)
        return
    tables = contextlib.nullcontext() if a.qtables is None else scaled_tables(
        tuple(float(v) for v in a.qtables.split(",")))  # type: ignore[arg-type]
    names = a.looks.split(",")
    print(f"{'file':44s} {'look':12s} {'ΔE q90':>7s} {'γ dB q90':>8s} {'bpp q90':>7s} {'BD-PSNR':>8s} {'BD-rate':>8s}"
          )
    summary: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for path in files:
        raw = rawio.read_raw(path)
        preview = looks.read_preview(path)
        chosen = looks_for(path, raw, names, files)
        curves = {}
        for name, look in chosen.items():
            with tables if name != "libraw" else contextlib.nullcontext():
                curves[name] = [round_trip(raw, look, q) for q in QUALITIES]
        ref = curves.get("libraw")
        for name, pts in curves.items():
            rgb, bpp90, g90 = pts[QUALITIES.index(90)]
            de = metrics.delta_e_camera(rgb, preview)
            rates, psnrs = [p[1] for p in pts], [p[2] for p in pts]
            bd = bdr = float("nan")
            if ref is not None and name != "libraw":
                rr, pr = [p[1] for p in ref], [p[2] for p in ref]
                bd, bdr = metrics.bd_psnr(rr, pr, rates, psnrs), metrics.bd_rate(rr, pr, rates, psnrs)
            summary[name].append((de, bd))
            print(f"{path.name:44s} {name:12s} {de:7.2f} {g90:8.2f} {bpp90:7.2f} {bd:+8.2f} {bdr:+7.1f}%", flush=True)
    for name, rows in summary.items():
        if rows:
            de, bd = np.array(rows).T
            bd = bd[np.isfinite(bd)] if np.isfinite(bd).any() else np.array([np.nan])
            print(f"{name}: ΔE mean {de.mean():.2f}, worst {de.max():.2f}; BD-PSNR mean {bd.mean():+.2f} dB "
                  f"(worst {bd.min():+.2f}) over {len(rows)} files")


if __name__ == "__main__":
    main()
