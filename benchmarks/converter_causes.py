"""Why a converter's render of the decoded DNG differs from its render of the original: each converter renders
DNGs of controlled mosaics, and the table gives the PSNR (8-bit) of each against its render of the original RAW
(for a converter that cannot open the original, against a DNG of the original's mosaic, marked †).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/converter_causes.py FILES… [--quality 90] [--seed 0]

Mosaics, all written with ``rawio.write_dng`` and the original's parameters:
    original        the original mosaic itself (are the DNG's tags faithful?)
    decoded         what ``invisp decode`` recovers from the q90 JPEG (``codec.encode_bytes``/``decode_bytes``)
    error out of sRGB  the decoded values only at sites whose pixel the front end puts outside sRGB (a linear
                    sRGB channel < 0 or > 1, ``steps.front_end`` before the gamma), the original elsewhere
    error in sRGB   the decoded values only at the other sites
    gamut-clipped   the original with its colours clipped to sRGB: front end to linear sRGB, clip to [0, 1], back
                    (what an sRGB JPEG can carry, without JPEG or 8-bit loss)
    level noise     the original plus Gaussian noise with the decoded error's RMS per original level (32 bins of
                    the normalised value): an error of the same size with no structure
    highlights back the decoded mosaic with the original's values put back where they are ≥ 90 % of white"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from converters import CONVERTERS, available, compare  # noqa: E402

from invisp_cli import codec, rawio, zoo  # noqa: E402
from invisp_cli.steps import Chain, front_end  # noqa: E402

VARIANTS = ("original", "decoded", "error out of sRGB", "error in sRGB", "gamut-clipped", "level noise",
            "highlights back")


def mosaics(raw: rawio.RawImage, quality: int, seed: int) -> tuple[dict[str, np.ndarray], float]:
    entry = zoo.select_model(raw.exif.get("make", ""))
    params = codec.stored_params(raw, entry, codec.render_settings(raw, quality, "4:4:4", entry.isp), "x")
    decoded = codec.decode_bytes(codec.encode_bytes(raw, zoo.load_stage(entry), params), zoo.load_stage(entry))[2]
    orig, dec = raw.mosaic, decoded.mosaic
    body = Chain(front_end(raw, params.front_end)[:-1])
    lin = body.forward(orig.astype(np.float32)[None, None])
    outside = ((lin < 0) | (lin > 1)).any(axis=1)[0]
    clipped = np.rint(body.inverse(lin.clip(0, 1))).clip(0, raw.white)[0, 0].astype(np.uint16)
    n = np.clip((orig.astype(np.float64) - raw.black.mean()) / (raw.white - raw.black.mean()), 0, 1)
    bins = np.minimum((n * 32).astype(int), 31)
    err = dec.astype(np.float64) - orig
    rms = np.sqrt(np.bincount(bins.ravel(), err.ravel() ** 2, 32) / np.maximum(np.bincount(bins.ravel(), None, 32), 1))
    noisy = orig + np.random.default_rng(seed).normal(0, 1, orig.shape) * rms[bins]
    return {"original": orig, "decoded": dec, "error out of sRGB": np.where(outside, dec, orig),
            "error in sRGB": np.where(outside, orig, dec), "gamut-clipped": clipped,
            "level noise": np.rint(noisy).clip(0, raw.white).astype(np.uint16),
            "highlights back": np.where(orig >= 0.9 * raw.white, orig, dec).astype(np.uint16)}, 100 * outside.mean()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    convs = available()
    print("| file | mosaic | " + " | ".join(f"{c} dB" for c in convs) + " |")
    print("|" + "---|" * (2 + len(convs)))
    for src in a.files:
        raw = rawio.read_raw(src)
        variants, share = mosaics(raw, a.quality, a.seed)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            refs = {}
            for c in convs:
                fn = CONVERTERS[c][1]
                try:
                    refs[c] = (fn(src, work), "")
                except Exception:  # noqa: BLE001 - the converter cannot open the original: its own mosaic's DNG
                    rawio.write_dng(work / "orig.dng", raw)
                    refs[c] = (fn(work / "orig.dng", work), "†")
            for name in VARIANTS:
                r = copy.copy(raw)
                r.mosaic = np.ascontiguousarray(variants[name])
                dng = work / "v.dng"
                rawio.write_dng(dng, r)
                cells = []
                for c in convs:
                    ref, mark = refs[c]
                    try:
                        cells.append(f"{compare(ref, CONVERTERS[c][1](dng, work))[0]:.1f}{mark}")
                    except Exception as e:  # noqa: BLE001 - one failed render is one cell, not the table
                        cells.append(f"failed ({type(e).__name__})")
                label = name + (f" ({share:.0f} % of the sites)" if name == "error out of sRGB" else "")
                print(f"| {src.name} | {label} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
