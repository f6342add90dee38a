"""JPEG container: Pillow-encoded sRGB pixels plus the invisp schema in EXIF.

Where things go (all in the APP1 EXIF segment, ≤ 64 KiB):
  0th IFD   Make, Model, DateTime, Orientation = 1 (pixels are stored upright),
            Software = "invisp <version>", ImageDescription = "invisp model <id> sha256 <hash>"
            — the model ID is readable by exiftool, exifread and piexif;
  Exif IFD  UserComment = the full ``ReconstructionParams`` JSON (ASCII character code), and copies of the
            camera's DateTimeOriginal, ExposureTime, FNumber, ISOSpeedRatings, FocalLength, LensModel.

Optional (``encode --exact``/``--max-error``): APP11 segments after the EXIF block carry the residual layer
(``containers/layer.py``, ``residual.py``); it is separate from schema invisp/1 and its checksum."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import piexif
from PIL import Image, UnidentifiedImageError

from .. import __version__
from ..errors import InputError, MetadataError
from ..params import ReconstructionParams

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
_ASCII = b"ASCII\x00\x00\x00"
EXIF_LIMIT = 65533


def _rational(v: float) -> tuple[int, int]:
    f = Fraction(float(v)).limit_denominator(100000)
    return f.numerator, f.denominator


def build_exif(params: ReconstructionParams) -> bytes:
    """The EXIF block carrying the schema and the camera basics; raises if it would exceed a segment."""
    cam = params.camera
    zeroth = {
        piexif.ImageIFD.Software: f"invisp {__version__}",
        piexif.ImageIFD.ImageDescription: f"invisp model {params.model_id} sha256 {params.model_sha256}",
        piexif.ImageIFD.Orientation: 1,
    }
    exif: dict = {piexif.ExifIFD.UserComment: _ASCII + params.to_json().encode("ascii")}
    if cam.get("make"):
        zeroth[piexif.ImageIFD.Make] = str(cam["make"])
    if cam.get("model"):
        zeroth[piexif.ImageIFD.Model] = str(cam["model"])
    if cam.get("datetime"):
        zeroth[piexif.ImageIFD.DateTime] = str(cam["datetime"])
        exif[piexif.ExifIFD.DateTimeOriginal] = str(cam["datetime"])
    for key, tag in (("exposure_time", piexif.ExifIFD.ExposureTime), ("f_number", piexif.ExifIFD.FNumber),
                     ("focal_length", piexif.ExifIFD.FocalLength)):
        if cam.get(key):
            exif[tag] = _rational(cam[key])
    if cam.get("iso"):
        exif[piexif.ExifIFD.ISOSpeedRatings] = int(float(cam["iso"]))
    if cam.get("lens"):
        exif[piexif.ExifIFD.LensModel] = str(cam["lens"])
    blob = piexif.dump({"0th": zeroth, "Exif": exif})
    if len(blob) > EXIF_LIMIT:
        raise MetadataError(f"metadata is {len(blob)} bytes, over the {EXIF_LIMIT}-byte EXIF segment limit")
    return blob


def encode_jpeg(rgb: np.ndarray, params: ReconstructionParams) -> bytes:
    """JPEG bytes of an upright uint8 (H, W, 3) image with the invisp EXIF block."""
    quality = int(params.render["quality"])
    subsampling = SUBSAMPLING[params.render["subsampling"]]
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=quality, subsampling=subsampling,
                                     exif=build_exif(params), optimize=True)
    return buf.getvalue()


def write_jpeg(path: str | os.PathLike, rgb: np.ndarray, params: ReconstructionParams) -> None:
    """Write the JPEG at exactly ``path`` (callers wrap this in ``fileio.atomic_output``)."""
    Path(path).write_bytes(encode_jpeg(rgb, params))


def read_params(img: Image.Image, name: str) -> ReconstructionParams:
    """The ReconstructionParams stored in an opened JPEG; MetadataError if absent or invalid."""
    blob = img.info.get("exif")
    if not blob:
        raise MetadataError(f"{name}: no invisp metadata (the JPEG has no EXIF block)")
    try:
        comment = piexif.load(blob).get("Exif", {}).get(piexif.ExifIFD.UserComment, b"")
    except Exception as e:  # piexif raises bare ValueError/struct.error on damaged EXIF
        raise MetadataError(f"{name}: EXIF block is damaged ({e})") from None
    if not comment.startswith(_ASCII + b"{"):
        raise MetadataError(f"{name}: no invisp metadata (not written by invisp encode)")
    try:
        return ReconstructionParams.from_json(comment[len(_ASCII):].decode("ascii"))
    except UnicodeDecodeError:
        raise MetadataError(f"{name}: invisp metadata is not ASCII: the file was modified") from None
    except MetadataError as e:
        raise MetadataError(f"{name}: {e}") from None


def open_jpeg(path: str | os.PathLike) -> tuple[Image.Image, str]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    try:
        img = Image.open(p)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"{p}: not a readable image ({e})") from None
    if img.format != "JPEG":
        raise InputError(f"{p}: not a JPEG (found {img.format})")
    return img, p.name


def read_jpeg(path: str | os.PathLike) -> tuple[np.ndarray, ReconstructionParams]:
    """Decoded uint8 RGB pixels (H, W, 3) and the validated reconstruction parameters."""
    img, name = open_jpeg(path)
    params = read_params(img, name)
    rgb = np.asarray(img.convert("RGB"))
    h, w = params.raw["visible_size"]
    expect = (w, h) if int(params.raw["flip"]) & 4 else (h, w)
    if rgb.shape[:2] != tuple(expect):
        raise MetadataError(f"{name}: image is {rgb.shape[1]}×{rgb.shape[0]} but its metadata says "
                            f"{expect[1]}×{expect[0]}: the file was modified")
    return rgb, params
