"""What decode and verify do with an invisp JPEG after the programs a photo passes through: lossless turns
(jpegtran), re-coding, re-saves, edits, damage, greyscale, spliced and duplicated records. For each case: the
exit code of ``invisp decode`` and ``invisp verify``, the one line they print, the pixel check's distance and
the RAW-PSNR-γ of the decoded RAW against the original (METRICS.md).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/integrity.py FILES… [--quality 90] [--markdown]

Needs ``jpegtran`` (Debian libjpeg-turbo-progs) for the lossless cases; ImageMagick ``convert`` is used where
present. Each file is encoded once with the default settings; the cases are made from that JPEG."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rawpy
from PIL import Image, ImageFilter

from invisp_cli import errors, metrics
from invisp_cli.containers import integrity, jpeg

INVISP = [sys.executable, "-m", "invisp_cli"]


def _resave(src: Path, dst: Path, quality: int, op=None) -> None:
    """Pillow re-save of ``src`` keeping its EXIF, XMP and ICC (what an editor that keeps metadata does)."""
    with Image.open(src) as img:
        info = dict(img.info)
        out = img.convert("RGB")
        if op is not None:
            out = op(out)
        out.save(dst, "JPEG", quality=quality, exif=info.get("exif", b""), xmp=info.get("xmp", b""),
                 icc_profile=info.get("icc_profile"))


def _scan_start(data: bytes) -> int:
    at = data.index(b"\xff\xda")
    return at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")


def _dqt_doubled(data: bytes) -> bytes:
    at = data.index(b"\xff\xdb") + 5 + 10  # the 11th entry of the first table (8-bit precision)
    out = bytearray(data)
    out[at] = min(255, 2 * out[at])
    return bytes(out)


def _zeroed(data: bytes) -> bytes:
    at = _scan_start(data) + (len(data) - _scan_start(data)) // 2
    return data[:at] + bytes(64) + data[at + 64 :]


def _xmp_segment(data: bytes) -> bytes:
    at = data.index(b"\xff\xe1" + b"\x00\x00"[:0], 2)
    while data[at + 4 : at + 4 + len(integrity.XMP_HEADER)] != integrity.XMP_HEADER:
        at = data.index(b"\xff\xe1", at + 2)
    return data[at : at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")]


def _after_app(data: bytes) -> int:
    at = 2
    while data[at] == 0xFF and 0xE0 <= data[at + 1] <= 0xEF:
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return at


def _splice(meta: bytes, image: bytes) -> bytes:
    """``meta``'s APPn segments with ``image``'s image data (tables, frame, scan)."""
    return meta[: _after_app(meta)] + image[_after_app(image) :]


def cases(jpg: Path, other: Path | None, work: Path) -> dict[str, Path]:
    """The altered copies of ``jpg`` (``other``: a second invisp JPEG, for foreign records)."""
    data = jpg.read_bytes()
    out: dict[str, Path] = {"untouched": jpg}

    def put(name: str, content: bytes) -> None:
        (work / f"{name}.jpg").write_bytes(content)
        out[name] = work / f"{name}.jpg"

    jt = shutil.which("jpegtran")
    if jt:
        for args in (["-rotate", "90"], ["-rotate", "180"], ["-rotate", "270"], ["-flip", "horizontal"],
                     ["-flip", "vertical"], ["-transpose"], ["-transverse"], ["-progressive"], ["-grayscale"]):
            put(" ".join(["jpegtran", *args]),
                subprocess.run([jt, "-copy", "all", *args, str(jpg)], capture_output=True, check=True).stdout)
    if shutil.which("convert"):
        dst = work / "magick-rotate-180.jpg"
        if subprocess.run(["convert", str(jpg), "-rotate", "180", str(dst)], capture_output=True).returncode == 0:
            out["ImageMagick -rotate 180"] = dst
    for name, q, op in [("Pillow rotate(180), q95", 95, lambda im: im.rotate(180)),
                        ("Pillow auto-rotate 90, q95", 95, lambda im: im.transpose(Image.Transpose.ROTATE_270)),
                        ("re-save q100", 100, None), ("re-save q95", 95, None), ("re-save q50", 50, None),
                        ("sharpened, q95", 95, lambda im: im.filter(ImageFilter.UnsharpMask(2, 80, 2)))]:
        dst = work / f"{name.replace(' ', '_').replace(',', '')}.jpg"
        _resave(jpg, dst, q, op)
        out[name] = dst
    put("64 zeroed bytes of scan", _zeroed(data))
    put("doubled quantisation entry", _dqt_doubled(data))
    if other is not None:
        odata = other.read_bytes()
        at = _after_app(data)
        put("second record (another file's) after its own", data[:at] + _xmp_segment(odata) + data[at:])
        put("its metadata, another file's image data", _splice(data, odata))
    return out


def _run(args: list[str]) -> tuple[int, str]:
    p = subprocess.run(INVISP + args, capture_output=True, text=True)
    lines = [x for x in (p.stderr + p.stdout).splitlines() if x.strip()]
    return p.returncode, (lines[0] if lines else "")


def raw_psnr(original: Path, dng: Path) -> float:
    with rawpy.imread(str(original)) as a, rawpy.imread(str(dng)) as b:
        black = np.asarray(a.black_level_per_channel, float)[a.raw_colors_visible]
        n = metrics.normalise_mosaic(a.raw_image_visible.astype(float), black, a.white_level)
        nh = metrics.normalise_mosaic(b.raw_image_visible.astype(float), black, a.white_level)
        return metrics.raw_psnr_gamma(nh, n)


def _check(path: Path) -> str:
    """The pixel check's state and distances (three columns)."""
    try:
        c = jpeg.read_bound(path).check
    except errors.InvispError as e:
        return f"refused ({type(e).__name__}) | | "
    d = c.distance
    if d is None:
        return f"{c.state} | | "
    return f"{c.state} | {d.mean_max:.2f} | {100 * d.exact:.1f} %, {d.step}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        jpgs = []
        for i, f in enumerate(a.files):
            jpg = work / f"{i}.jpg"
            subprocess.run(INVISP + ["encode", str(f), "-o", str(jpg), "--quality", str(a.quality)], check=True,
                           capture_output=True)
            jpgs.append(jpg)
        print("| file | case | pixel check | worst cell Δ | sampled exact, max Δ | decode exit | RAW-PSNR-γ | "
              "verify exit | verify says |")
        print("|---|---|---|---|---|---|---|---|---|")
        for i, (f, jpg) in enumerate(zip(a.files, jpgs, strict=True)):
            other = jpgs[(i + 1) % len(jpgs)] if len(jpgs) > 1 else None
            sub = work / f"c{i}"
            sub.mkdir()
            for name, path in cases(jpg, other, sub).items():
                dng = sub / "out.dng"
                dng.unlink(missing_ok=True)
                rc, _ = _run(["decode", str(path), "-o", str(dng), "--force"])
                psnr = f"{raw_psnr(f, dng):.2f}" if rc == 0 and dng.exists() else "—"
                vrc, vline = _run(["verify", str(path)])
                vline = vline.replace(str(path), "…").replace("|", "/").split(": ", 1)[-1]
                print(f"| {f.name} | {name} | {_check(path)} | {rc} | {psnr} | {vrc} | {vline[:110]} |", flush=True)


if __name__ == "__main__":
    io.DEFAULT_BUFFER_SIZE = 1 << 16
    main()
