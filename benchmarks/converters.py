"""Does the decoded DNG render like the original in other RAW converters?

    .venv/bin/python benchmarks/converters.py [FILES…] [--quality 90] [--json out.json]

For each RAW file (default: every file in ../shared/data/raw): ``invisp encode`` (quality 90, 4:4:4, the
installed camera-matched or generic model) and ``invisp decode`` to a DNG; then each converter renders the
original and the decoded DNG with its defaults and camera white balance, and the table gives the PSNR (8-bit,
peak 255) of the DNG's render against the original's render, and the DNG's size against the original file's.

Converters (each skipped where it is not installed):
    rawpy          ``postprocess(use_camera_wb=True)`` (LibRaw)
    dcraw          ``dcraw -c -w FILE`` (PPM)
    rawtherapee    ``rawtherapee-cli -o OUT.tif -t -Y -c FILE`` (its default processing profile)
    darktable      ``darktable-cli FILE OUT.tif --core --configdir TMP --library :memory:``

Renders of different sizes (a converter that crops the two files differently) are compared on their common
top-left area, and the table says so. Where a converter cannot open the original (darktable has no decoder for
the Kodak DC120), the DNG's render is compared with its render of a DNG written from the original's own mosaic
(``rawio.write_dng(rawio.read_raw(x))``, no codec in between), marked †."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from invisp_cli import codec, metrics, rawio
from invisp_cli.rawfiles import is_raw_name

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"


def _to_u8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == np.uint16:
        img = (img.astype(np.float64) / 257.0 + 0.5).astype(np.uint8)
    return img[..., :3] if img.ndim == 3 else np.repeat(img[..., None], 3, axis=2)


def rawpy_render(src: Path, work: Path) -> np.ndarray:
    import rawpy

    with rawpy.imread(str(src)) as r:
        return r.postprocess(use_camera_wb=True, output_bps=8)


def dcraw_render(src: Path, work: Path) -> np.ndarray:
    out = subprocess.run(["dcraw", "-c", "-w", str(src)], capture_output=True, check=True, timeout=600).stdout
    ppm = work / "dcraw.ppm"
    ppm.write_bytes(out)
    with Image.open(ppm) as im:
        return _to_u8(np.asarray(im.convert("RGB")))


def rawtherapee_render(src: Path, work: Path) -> np.ndarray:
    out = work / "rt.tif"
    subprocess.run(["rawtherapee-cli", "-o", str(out), "-t", "-Y", "-c", str(src)], capture_output=True,
                   check=True, timeout=900)
    return _to_u8(tifffile.imread(out))


def darktable_render(src: Path, work: Path) -> np.ndarray:
    out = work / "dt.tif"
    out.unlink(missing_ok=True)
    subprocess.run(["darktable-cli", str(src), str(out), "--core", "--configdir", str(work / "dtconf"),
                    "--library", ":memory:"], capture_output=True, check=True, timeout=900)
    return _to_u8(tifffile.imread(out))


CONVERTERS: dict[str, tuple[str | None, Callable[[Path, Path], np.ndarray]]] = {
    "rawpy": (None, rawpy_render),
    "dcraw": ("dcraw", dcraw_render),
    "rawtherapee": ("rawtherapee-cli", rawtherapee_render),
    "darktable": ("darktable-cli", darktable_render),
}


def available() -> list[str]:
    return [name for name, (exe, _) in CONVERTERS.items() if exe is None or shutil.which(exe)]


def compare(a: np.ndarray, b: np.ndarray) -> tuple[float, bool]:
    """(PSNR of b against a on their common area, whether the sizes differed)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    return metrics.rgb_psnr(b[:h, :w], a[:h, :w]), a.shape != b.shape


def run_file(src: Path, quality: int, converters: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jpg, dng = work / "x.jpg", work / "x.dng"
        codec.encode_file(src, jpg, quality=quality)
        codec.decode_file(jpg, dng)
        row: dict = {"file": src.name, "raw_mb": src.stat().st_size / 1e6, "dng_mb": dng.stat().st_size / 1e6}
        for name in converters:
            fn = CONVERTERS[name][1]
            try:
                ref = fn(src, work)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError):
                ref = None  # the converter cannot open the original: compare with a DNG of its own mosaic
            try:
                if ref is None:
                    rawio.write_dng(work / "orig.dng", rawio.read_raw(src))
                    ref = fn(work / "orig.dng", work)
                    row[f"{name}_ref"] = "dng of the original mosaic"
                got = fn(dng, work)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError, ValueError) as e:
                row[name] = f"failed ({type(e).__name__})"
                continue
            psnr, resized = compare(ref, got)
            row[name] = round(psnr, 1)
            if resized:
                row[f"{name}_sizes"] = [list(ref.shape[:2]), list(got.shape[:2])]
        return row


def table(rows: list[dict], converters: list[str]) -> str:
    head = "| file | DNG / RAW size | " + " | ".join(f"{c} dB" for c in converters) + " |"
    lines = [head, "|" + "---|" * (2 + len(converters))]
    for r in rows:
        cells = [f"{r[c]}" + ("*" if f"{c}_sizes" in r else "") + ("†" if f"{c}_ref" in r else "")
                 for c in converters]
        lines.append(f"| {r['file']} | {r['dng_mb']:.2f} / {r['raw_mb']:.2f} MB ({r['dng_mb'] / r['raw_mb']:.2f}×) | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    files = args.files or sorted(p for p in DATA.glob("*") if is_raw_name(p))
    converters = available()
    print(f"converters: {', '.join(converters)}", file=sys.stderr)
    rows = []
    for f in files:
        rows.append(run_file(f, args.quality, converters))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(table(rows, converters))
    if any(f"{c}_sizes" in r for r in rows for c in converters):
        print("\n\\* renders of different sizes, compared on their common area")
    if any(f"{c}_ref" in r for r in rows for c in converters):
        print("\n† the converter cannot open the original: against its render of a DNG of the original's mosaic")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
