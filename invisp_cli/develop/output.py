"""Writing develop's outputs: JPEG (sRGB ICC, camera EXIF), 16-bit TIFF (ICC, camera EXIF tags in IFD0, as
TIFF/EP and DNG place them) and the before/after comparison PNG. Callers wrap each in ``fileio.atomic_output``."""

from __future__ import annotations

import io
import math
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .. import __version__
from .. import metadata as md
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


def camera_exif(camera: dict, width: int, height: int) -> bytes:
    """An EXIF block with the camera's basics (Make, Model, DateTime(Original), ExposureTime, FNumber, ISO,
    FocalLength, LensModel) and Software, completed as a ``width`` × ``height`` JPEG needs it to validate
    (``metadata.jpeg_tree``: Orientation 1, ExifVersion as new as LensModel needs, …). No invisp schema: an edit is
    not an invisp JPEG and ``invisp decode`` refuses it."""
    basics = {key: camera[key] for key, *_ in md.BASICS if camera.get(key) is not None}
    if "datetime" in basics:
        basics["datetime"] = _ascii(basics["datetime"])[:19]
    tree = md.camera_tree(basics)
    tree["0th"][305] = md.ascii_entry(SOFTWARE)
    return b"Exif\0\0" + md.write_tiff(md.tree_node(md.jpeg_tree(tree, width, height)))


def write_jpeg(path: str | os.PathLike, rgb: np.ndarray, camera: dict, icc: bytes, quality: int,
               subsampling: str) -> None:
    """8-bit sRGB JPEG with the ICC profile and the camera EXIF."""
    Image.fromarray(rgb, "RGB").save(path, "JPEG", quality=int(quality), subsampling=SUBSAMPLING[subsampling],
                                     exif=camera_exif(camera, rgb.shape[1], rgb.shape[0]), icc_profile=icc,
                                     optimize=True)


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
