"""The camera metadata of a RAW file: EXIF basics (exifread, LibRaw, CIFF records of old Canons) and the whole
EXIF/XMP/DNG tag set of TIFF-based files, carried on into the JPEG and the DNG."""

from __future__ import annotations

import base64
import datetime as _dt
import logging
import math
import struct
from typing import Any

from .. import metadata


def _ratio_to_float(v: Any) -> float | None:
    try:
        if hasattr(v, "num") and hasattr(v, "den"):
            return float(v.num) / float(v.den) if v.den else None
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _ciff_make_model(path: str) -> dict:
    """{"make", "model"} from a Canon CIFF file's MakeModel record (0x080a), as dcraw's ``parse_ciff`` finds it;
    {} for other files."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(14)
            if data[:2] != b"II" or data[6:14] != b"HEAPCCDR":
                return {}
            data += fh.read(1 << 26)
    except OSError:
        return {}

    def heap(start: int, end: int, depth: int) -> dict:
        if depth > 4 or end - start < 6 or end > len(data):
            return {}
        table = start + struct.unpack_from("<I", data, end - 4)[0]
        if table + 2 > end:
            return {}
        for k in range(struct.unpack_from("<H", data, table)[0]):
            p = table + 2 + 10 * k
            if p + 10 > end:
                break
            kind, size, off = struct.unpack_from("<HII", data, p)
            if (kind >> 8) in (0x28, 0x30):  # a sub-heap
                found = heap(start + off, start + off + size, depth + 1)
                if found:
                    return found
            elif kind == 0x080A:
                make, model = (data[start + off : start + off + size].split(b"\0") + [b"", b""])[:2]
                out = {"make": make, "model": model}
                return {k: v.decode("utf-8", "replace").strip() for k, v in out.items() if v.strip()}
        return {}

    try:
        return heap(struct.unpack_from("<I", data, 2)[0], len(data), 0)
    except struct.error:
        return {}


def read_exif(path: str, other: Any, libraw_ids: dict) -> dict:
    """Camera EXIF basics: exifread for TIFF-based files, LibRaw's parse for the rest (CRW, QTK, …)."""
    tags: dict = {}
    try:
        with open(path, "rb") as fh:
            is_tiff = fh.read(4) in (b"II*\0", b"MM\0*")
            if is_tiff:
                import exifread

                fh.seek(0)
                log = logging.getLogger("exifread")
                level = log.level
                log.setLevel(logging.CRITICAL)
                try:
                    tags = exifread.process_file(fh, details=False) or {}
                finally:
                    log.setLevel(level)
    except Exception:  # noqa: BLE001 - exifread raises many things on odd files
        tags = {}

    def present(*names: str) -> bool:
        return any(prefix + n in tags for n in names for prefix in ("EXIF ", "Image "))

    def tag(*names: str) -> Any:
        for n in names:
            for prefix in ("EXIF ", "Image "):
                t = tags.get(prefix + n)
                if t is not None and t.values not in ("", [], None):
                    vals = t.values
                    return vals[0] if isinstance(vals, list) else vals
        return None

    exif: dict = {}
    for key, names in (("make", ("Make",)), ("model", ("Model",)), ("lens", ("LensModel",)),
                       ("datetime", ("DateTimeOriginal", "DateTime"))):
        v = tag(*names)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        if isinstance(v, str) and v.strip("\0 ").strip():
            exif[key] = v.strip("\0 ").strip()
    for key, names in (("exposure_time", ("ExposureTime",)), ("f_number", ("FNumber",)),
                       ("focal_length", ("FocalLength",)),
                       ("iso", ("ISOSpeedRatings", "PhotographicSensitivity"))):
        f = _ratio_to_float(tag(*names))
        if f is not None and f > 0 and math.isfinite(f):
            exif[key] = int(round(f)) if key == "iso" else f

    # Canon CIFF (CRW): make and model as the camera wrote them (LibRaw drops the make from the model).
    if not tags:
        exif.update(_ciff_make_model(path))
    # LibRaw's own parse (covers CIFF/CRW, QuickTake, …), only for what the file's TIFF/EXIF tags do not
    # state at all (a tag that says 0 means "unknown"; LibRaw would report its defaults, e.g. 1 s, f/1).
    for key in ("make", "model"):
        if key not in exif and not present(key.capitalize()) and libraw_ids.get(key):
            exif[key] = libraw_ids[key]
    if other is not None:
        for key, val, names in (("exposure_time", other.shutter_speed, ("ExposureTime",)),
                                ("f_number", other.aperture, ("FNumber",)),
                                ("focal_length", other.focal_length, ("FocalLength",)),
                                ("iso", other.iso_speed, ("ISOSpeedRatings", "PhotographicSensitivity"))):
            if key in exif or present(*names) or not val:
                continue
            f = float(val)
            if f > 0 and math.isfinite(f):
                exif[key] = int(round(f)) if key == "iso" else f
        ts = other.timestamp
        if ("datetime" not in exif and not present("DateTimeOriginal", "DateTime")
                and isinstance(ts, _dt.datetime) and ts.timestamp() > 0):
            exif["datetime"] = ts.strftime("%Y:%m:%d %H:%M:%S")
    return exif


def carried_metadata(path: str) -> dict:
    """What a re-written file must carry beyond the basics (TIFF-based files: DNG, KDC, …), packed for
    ``RawImage.exif``: "exif" (the whole EXIF tree), "xmp" (the XMP packet), "iptc" (the IPTC-NAA record,
    base64), "dng" (the DNG tags a converter needs to render like the original: colour matrices, illuminants,
    opcode lists, noise profile, crops, …)."""
    try:
        tree, dng, xmp, iptc = metadata.raw_file_metadata(path)
    except (OSError, ValueError, struct.error):
        return {}
    out: dict = {}
    if any(tree.values()):
        out["exif"] = metadata.pack_tree(tree)
    if xmp:
        out["xmp"] = xmp.decode("utf-8", "replace").strip("\0")
    if dng:
        out["dng"] = metadata.pack_ifd(dng)
    if iptc.strip(b"\0"):
        out["iptc"] = base64.b64encode(iptc).decode("ascii")
    return out
