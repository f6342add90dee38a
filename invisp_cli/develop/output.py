"""Writing develop's outputs: JPEG (sRGB ICC, camera EXIF), 16-bit TIFF (ICC, camera EXIF tags in IFD0, as
TIFF/EP and DNG place them) and the before/after comparison PNG. Callers wrap each in ``fileio.atomic_output``."""

from __future__ import annotations

import io
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import piexif
from PIL import Image, ImageDraw

from .. import __version__
from ..containers.jpeg import SUBSAMPLING

SOFTWARE = f"invisp {__version__} develop"
COMPARE_WIDTH = 800  # px of each side of the before/after overview
CROP = 320  # px of each side of the 100 % crop


def _rational(v: float) -> tuple[int, int]:
    f = Fraction(float(v)).limit_denominator(100000)
    return f.numerator, f.denominator


def _ascii(v: object) -> str:
    return str(v).encode("ascii", "replace").decode("ascii").replace("\0", " ")


def _number(camera: dict, key: str) -> float | None:
    v = camera.get(key)
    return float(v) if isinstance(v, (int, float)) and v > 0 and math.isfinite(v) else None


def camera_exif(camera: dict) -> bytes:
    """An EXIF block with the camera's basics (Make, Model, DateTimeOriginal, ExposureTime, FNumber, ISO,
    FocalLength, LensModel), Software, Orientation 1 (pixels are upright). No invisp schema: an edit is not an
    invisp JPEG and ``invisp decode`` refuses it."""
    zeroth: dict = {piexif.ImageIFD.Software: SOFTWARE, piexif.ImageIFD.Orientation: 1}
    exif: dict = {}
    for key, tag in (("make", piexif.ImageIFD.Make), ("model", piexif.ImageIFD.Model)):
        if camera.get(key):
            zeroth[tag] = _ascii(camera[key])
    if camera.get("datetime"):
        zeroth[piexif.ImageIFD.DateTime] = _ascii(camera["datetime"])[:19]
        exif[piexif.ExifIFD.DateTimeOriginal] = _ascii(camera["datetime"])[:19]
    for key, tag in (("exposure_time", piexif.ExifIFD.ExposureTime), ("f_number", piexif.ExifIFD.FNumber),
                     ("focal_length", piexif.ExifIFD.FocalLength)):
        if (v := _number(camera, key)) is not None:
            exif[tag] = _rational(v)
    if (iso := _number(camera, "iso")) is not None and iso < 65536:
        exif[piexif.ExifIFD.ISOSpeedRatings] = int(round(iso))
    if camera.get("lens"):
        exif[piexif.ExifIFD.LensModel] = _ascii(camera["lens"])
    return piexif.dump({"0th": zeroth, "Exif": exif})


def write_jpeg(path: str | os.PathLike, rgb: np.ndarray, camera: dict, icc: bytes, quality: int,
               subsampling: str) -> None:
    """8-bit sRGB JPEG with the ICC profile and the camera EXIF."""
    Image.fromarray(rgb, "RGB").save(path, "JPEG", quality=int(quality), subsampling=SUBSAMPLING[subsampling],
                                     exif=camera_exif(camera), icc_profile=icc, optimize=True)


def write_tiff(path: str | os.PathLike, rgb: np.ndarray, camera: dict, icc: bytes, description: str) -> None:
    """16-bit RGB TIFF (uint16, or float16 for linear light), deflate-compressed, with the ICC profile (tag 34675)
    and the camera EXIF tags in IFD0."""
    import tifffile

    rational, short, ascii_ = 5, 3, "s"
    tags: list[tuple] = []
    for key, code in (("make", 271), ("model", 272), ("lens", 42036)):
        if camera.get(key):
            tags.append((code, ascii_, 0, _ascii(camera[key]), True))
    if camera.get("datetime"):
        tags += [(306, ascii_, 0, _ascii(camera["datetime"])[:19], True),
                 (36867, ascii_, 0, _ascii(camera["datetime"])[:19], True)]
    for key, code in (("exposure_time", 33434), ("f_number", 33437), ("focal_length", 37386)):
        if (v := _number(camera, key)) is not None:
            tags.append((code, rational, 1, _rational(v), True))
    if (iso := _number(camera, "iso")) is not None and iso < 65536:
        tags.append((34855, short, 1, int(round(iso)), True))
    tifffile.imwrite(os.fspath(path), rgb, photometric="rgb", compression="zlib", iccprofile=icc,
                     description=description, software=SOFTWARE, extratags=tags,
                     metadata=None)


def write_compare(path: str | os.PathLike, before: np.ndarray, after: np.ndarray) -> None:
    """PNG: before | after scaled to ``COMPARE_WIDTH`` px wide each, and below them the same centre crop of both at
    100 % (``CROP`` px square, smaller images whole), each panel labelled."""
    h, w = before.shape[:2]
    scale = min(1.0, COMPARE_WIDTH / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    ch, cw = min(CROP, h), min(CROP, w)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    label = 14
    canvas = Image.new("RGB", (2 * max(size[0], cw) + 8, size[1] + ch + 2 * label + 8), (32, 32, 32))
    draw = ImageDraw.Draw(canvas)
    for i, (name, img) in enumerate((("before", before), ("after", after))):
        x = i * (max(size[0], cw) + 8)
        draw.text((x + 2, 0), name, fill=(230, 230, 230))
        canvas.paste(Image.fromarray(img).resize(size, Image.Resampling.LANCZOS), (x, label))
        draw.text((x + 2, label + size[1] + 4), f"{name}, 100 % crop", fill=(230, 230, 230))
        canvas.paste(Image.fromarray(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw])),
                     (x, 2 * label + size[1] + 8))
    buf = io.BytesIO()
    canvas.save(buf, "PNG", optimize=True)
    Path(path).write_bytes(buf.getvalue())
