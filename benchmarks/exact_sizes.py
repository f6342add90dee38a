"""What exact and ±N RAW cost on top of the JPEG (the residual layer), in bytes and seconds.

    .venv/bin/python benchmarks/exact_sizes.py [FILES…] [--gopro] [--mp 24] [--quality 90]

For each RAW file (default: ../shared/data/raw, without the two 12 MP GoPro files unless --gopro): the plain
invisp JPEG (4:4:4), the JPEG plus the bit-exact layer, that total's ratio to JPEG XL lossless of the mosaic and
to a lossless-JPEG DNG (both ``invisp_cli.bench.sizes``: JXL effort 7, best of mosaic / CFA planes; DNG as
Adobe's converter tiles it), the total against ``--max-error`` N, and the seconds the layer adds: encode =
``residual.attach`` (decoding the JPEG, predicting, choosing and running the coder, SHA-256), decode = reading,
decoding and verifying the layer (the pixels are decoded by every decode anyway; a decode with a layer also
skips the flow). Then the same two timings on a synthetic 24 MP frame: a real mosaic and its render tiled.

Model: the installed camera-matched or generic model ($INVISP_WEIGHTS, weights/); if none is installed, a
temporary registry holding an identity-initialised squeeze flow (blocks 1, width 8), i.e. the JPEG is exactly
the analytic ISP. The table says which model rendered each file."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from invisp_cli import codec, pipeline, rawio, residual, zoo
from invisp_cli.bench.sizes import measure_sizes
from invisp_cli.containers import jpeg, layer
from invisp_cli.errors import ModelError
from invisp_cli.flows import build
from invisp_cli.params import ReconstructionParams

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
CURVE = (0, 1, 2, 4, 8, 16)
TILE_SOURCE = "canon-eos-550d_colorchart.dng"


def identity_registry(folder: Path) -> None:
    """A registry with one identity squeeze flow for any camera, put first on $INVISP_WEIGHTS."""
    hp = {"blocks": 1, "width": 8}
    file, sha = zoo.save_checkpoint(build("squeeze", **hp), folder, "identity-squeeze")
    entry = zoo.ModelEntry(id="identity-squeeze", file=file, sha256=sha, arch="squeeze", hparams=hp,
                           cameras=["*"], folder=folder, description="identity (benchmark only)")
    zoo.write_registry(folder, [entry])
    os.environ["INVISP_WEIGHTS"] = os.pathsep.join([str(folder), os.environ.get("INVISP_WEIGHTS", "")])


def render_jpeg(raw: rawio.RawImage, quality: int) -> tuple[bytes, float, str]:
    """(plain invisp JPEG bytes, exposure gain, model ID) as ``invisp encode`` makes them."""
    entry = zoo.select_model(raw.exif.get("make", ""))
    settings = codec.render_settings(raw, quality, isp=entry.isp)
    rgb = pipeline.render([raw], zoo.load_model(entry), [settings])
    params = ReconstructionParams.from_raw(raw, entry.id, entry.sha256, settings)
    return jpeg.encode_jpeg(rgb, params), settings["exposure_gain"], entry.id


def layer_round_trip(data: bytes, raw: rawio.RawImage, gain: float, n: int) -> tuple[int, float, float, dict]:
    """(layer bytes, encode s, decode s, header) of a ±n layer; checks the bound on the way."""
    t0 = time.perf_counter()
    out, layer_bytes = residual.attach(data, raw, gain, n)
    enc = time.perf_counter() - t0
    rgb = residual.decode_pixels(out)
    t0 = time.perf_counter()
    header, pred, payload = residual.parse_layer(layer.read_layer(out), "bench")
    rec = residual.reconstruct(header, pred, payload, rgb, "bench")
    dec = time.perf_counter() - t0
    assert np.abs(rec.astype(np.int64) - raw.mosaic).max() <= n
    return layer_bytes, enc, dec, {**header, "predictor": pred.kind}


def kb(v: float) -> str:
    return f"{v / 1e3:,.0f}"


def sizes_table(files: list[Path], quality: int) -> None:
    rows, curve = [], []
    tot = {"jpeg": 0, "exact": 0, "jxl": 0, "dng": 0}
    for path in files:
        raw = rawio.read_raw(path)
        data, gain, model_id = render_jpeg(raw, quality)
        s = measure_sizes(raw, path.stat().st_size)
        trips = {n: layer_round_trip(data, raw, gain, n) for n in CURVE}
        lb, enc, dec, h = trips[0]
        exact = len(data) + lb
        for k, v in (("jpeg", len(data)), ("exact", exact), ("jxl", s.jxl), ("dng", s.dng_lossless)):
            tot[k] += v
        mp = raw.mosaic.size / 1e6
        rows.append(f"| {path.name} | {mp:.1f} | {raw.bits} | {model_id} | {kb(len(data))} | {kb(exact)} | "
                    f"{exact / s.jxl:.2f} | {exact / s.dng_lossless:.2f} | {kb(s.jxl)} ({s.jxl_layout}) | "
                    f"{kb(s.dng_lossless)} | {h['codec']} {h['layout']}, {h['predictor']} | "
                    f"{enc:.2f} | {dec:.2f} | {enc / mp:.3f} / {dec / mp:.3f} |")
        curve.append(f"| {path.name} | " + " | ".join(kb(len(data) + trips[n][0]) for n in CURVE) + " |")
        print(f"done {path.name}", file=sys.stderr)
    print(f"\n### JPEG (q{quality}, 4:4:4) + bit-exact layer vs lossless RAW storage (kB = 1000 bytes)\n")
    print("| file | MP | bits | model | JPEG kB | JPEG+exact kB | ×JXL | ×DNG-LJ92 | JXL lossless kB | "
          "DNG-LJ92 kB | layer coder, predictor | enc +s | dec +s | s/MP enc / dec |")
    print("|" + "---|" * 14)
    print("\n".join(rows))
    print(f"| **all** | | | | {kb(tot['jpeg'])} | {kb(tot['exact'])} | {tot['exact'] / tot['jxl']:.2f} | "
          f"{tot['exact'] / tot['dng']:.2f} | {kb(tot['jxl'])} | {kb(tot['dng'])} | | | | |")
    print("\n### JPEG + layer (kB) against the guarantee --max-error N\n")
    print("| file | " + " | ".join(f"N={n}" for n in CURVE) + " |")
    print("|" + "---|" * (len(CURVE) + 1))
    print("\n".join(curve))


def timing_24mp(mp: float, quality: int) -> None:
    """Layer encode/decode seconds on a synthetic frame: a real mosaic and its render tiled to ``mp``."""
    raw = rawio.read_raw(DATA / TILE_SOURCE)
    data, gain, model_id = render_jpeg(raw, quality)
    rgb = residual.decode_pixels(data)
    h = int(round(np.sqrt(mp * 1e6 * 2 / 3) / 2)) * 2
    w = int(round(h * 1.5 / 2)) * 2
    reps = (-(-h // raw.mosaic.shape[0]), -(-w // raw.mosaic.shape[1]))
    raw.mosaic = np.ascontiguousarray(np.tile(raw.mosaic, reps)[:h, :w])
    big = np.ascontiguousarray(np.tile(rgb, (*reps, 1))[:h, :w])
    params = ReconstructionParams.from_raw(raw, model_id, "0" * 64, codec.render_settings(raw, quality))
    data = jpeg.encode_jpeg(big, params)
    print(f"\n### Layer time on a synthetic {w}×{h} ({h * w / 1e6:.1f} MP) frame ({TILE_SOURCE} tiled), "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start\n")
    print("| N | JPEG MB | layer MB | coder | encode +s | decode +s |")
    print("|---|---|---|---|---|---|")
    for n in (0, 4):
        lb, enc, dec, hd = layer_round_trip(data, raw, gain, n)
        print(f"| {n} | {len(data) / 1e6:.2f} | {lb / 1e6:.2f} | {hd['codec']} {hd['layout']}, {hd['predictor']} | "
              f"{enc:.2f} | {dec:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="RAW files (default: ../shared/data/raw)")
    ap.add_argument("--gopro", action="store_true", help="include the two 12 MP GoPro files")
    ap.add_argument("--mp", type=float, default=24, help="synthetic frame size for the timing (0: skip)")
    ap.add_argument("--quality", type=int, default=90)
    a = ap.parse_args()
    files = a.files or sorted(p for p in DATA.iterdir() if a.gopro or not p.name.startswith("gopro"))
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            zoo.select_model("")
        except ModelError:
            identity_registry(Path(tmp))
        sizes_table(files, a.quality)
        if a.mp > 0:
            timing_24mp(a.mp, a.quality)


if __name__ == "__main__":
    main()
