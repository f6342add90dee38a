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
(``speed``).

Prints one row per file and look (ΔE at q90, RAW-PSNR-γ and bpp at q90, BD-PSNR and BD-rate against libraw) and
the mean and worst ΔE and the mean BD-PSNR of each look."""

from __future__ import annotations

import argparse
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


def round_trip(raw: rawio.RawImage, look: Look | None, quality: int) -> tuple[np.ndarray, float, float]:
    """(decoded upright pixels, bpp, RAW-PSNR-γ) of one in-memory encode/decode with the front end."""
    entry = find_model("invisp-frontend-v1")
    front = dataclasses.replace(pipeline.front_end_settings(raw, entry.isp), look=look)
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
            out[name] = looks.camera_look(path, raw, pipeline.front_end_settings(raw))
        else:
            others = [f for f in files if f != path and (name == "generic-loo"
                                                         or looks.camera_name(rawio.read_raw(f)) == camera)]
            if others:  # trained without the file, then adapted to it as encode --look camera does
                trained = looks.train_look(others, name, neutral=name == "generic-loo")[0]
                out[name] = looks.adapt(trained, raw, pipeline.front_end_settings(raw))
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--looks", default="libraw,camera,loo,generic-loo")
    ap.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                    help="override the fit's constants of invisp_cli/look.py (tuning), e.g. RAW_WEIGHT=6 SLOPE_MIN=0.5")
    ap.add_argument("--speed", type=float, default=None, metavar="MP",
                    help="instead: time encode/decode of an MP-megapixel frame against LibRaw (``speed``)")
    a = ap.parse_args()
    for setting in a.set:
        name, value = setting.split("=")
        setattr(looks, name, type(getattr(looks, name))(value))
    if a.speed:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            speed(a.speed, Path(tmp))
        return
    files = a.files or sorted(p for p in DATA.iterdir() if looks.read_preview(p) is not None)
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
