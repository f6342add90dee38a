"""RAW input/output: read any LibRaw Bayer file into a ``RawImage``; write DNG.

Reading goes through rawpy (LibRaw). Everything a later render needs is taken the way LibRaw's own
``postprocess(use_camera_wb=True)`` takes it, so that a render of a ``RawImage`` can match LibRaw's:

* white balance: the camera's as-shot multipliers when the file has them; otherwise LibRaw (0.21+)
  falls back to its grey-world *auto* white balance, which ``libraw_auto_wb`` reproduces exactly
  (``wb_source="auto"``); LibRaw's daylight multipliers and unity are last resorts;
* ``rgb_cam`` is LibRaw's own ``color.rgb_cam`` (read through LibRaw's C API, which rawpy bundles);
* black levels are per position of the 2×2 CFA tile (rawpy gives them per colour index).

Orientation follows LibRaw/dcraw: ``flip`` is ``sizes.flip``; ``apply_flip`` turns a sensor-oriented array
into the upright orientation LibRaw's ``postprocess`` outputs. Verified against rawpy on DNGs with every
EXIF orientation 1..8 (see tests/test_rawio.py).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import datetime as _dt
import functools
import glob
import logging
import math
import os
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from . import lj92, metadata
from .errors import InputError, UnsupportedSensorError
from .settings import CFA_LAYOUTS


@dataclass
class RawImage:
    """A Bayer RAW frame in sensor orientation, with everything needed to render and re-write it.

    mosaic:     uint16 (H, W), the visible area, sensor orientation.
    cfa:        the 2×2 colour layout of the visible area's top-left, row-major: "RGGB", "BGGR", "GRBG", "GBRG".
    black:      float64 (2, 2), black level at each position of the 2×2 CFA tile.
    white:      white (saturation) level in raw units.
    wb:         float64 (3,), R, G, B white-balance multipliers, normalised so that G = 1.
    wb_source:  "camera" (as shot), "daylight" (LibRaw's pre_mul, when the file has no camera WB) or "unity".
                Also "auto": the file has no camera WB and LibRaw's postprocess(use_camera_wb=True) then
                uses its grey-world auto WB (LibRaw >= 0.21), which ``read_raw`` reproduces.
    rgb_cam:    float64 (3, 3), white-balanced camera RGB → linear sRGB (LibRaw's rgb_cam; rows sum to 1).
    xyz_to_cam: float64 (3, 3), XYZ → camera RGB (DNG ColorMatrix1; LibRaw's rgb_xyz_matrix[:3]).
    flip:       LibRaw/dcraw orientation code (``sizes.flip``): bit 4 transpose, bit 2 flip rows, bit 1 flip cols.
    bits:       bit depth of the data, ceil(log2(white + 1)).
    raw_size:   (raw_height, raw_width) of the full sensor readout.
    margins:    (top, left) of the visible area inside the raw readout.
    exif:       camera EXIF basics present in the file: make, model, datetime, exposure_time, f_number, iso,
                focal_length, lens (keys only where present; str/int/float values); for TIFF-based files also
                the packed "exif" tree, "xmp" packet and "dng" tags (``_carried_metadata``) that the JPEG and
                the DNG written from it carry on.
    """

    mosaic: np.ndarray
    cfa: str
    black: np.ndarray
    white: int
    wb: np.ndarray
    wb_source: str
    rgb_cam: np.ndarray
    xyz_to_cam: np.ndarray
    flip: int = 0
    bits: int = 16
    raw_size: tuple[int, int] = (0, 0)
    margins: tuple[int, int] = (0, 0)
    exif: dict = field(default_factory=dict)

    def crop(self, y0: int, x0: int, h: int, w: int) -> RawImage:
        """The same frame cropped to rows y0:y0+h, columns x0:x0+w of the mosaic (sensor orientation, flip 0);
        offsets must be even so the CFA layout is unchanged."""
        if y0 % 2 or x0 % 2:
            raise ValueError(f"crop offsets must be even, got ({y0}, {x0})")
        return RawImage(**{**self.__dict__, "mosaic": self.mosaic[y0 : y0 + h, x0 : x0 + w], "flip": 0})


BAYER_LAYOUTS = CFA_LAYOUTS

# LibRaw_constants::xyz_rgb: linear sRGB (D65) → XYZ, as dcraw/LibRaw use it in cam_xyz_coeff.
XYZ_RGB = np.array([[0.4124564, 0.3575761, 0.1804375],
                    [0.2126729, 0.7151522, 0.0721750],
                    [0.0193339, 0.1191920, 0.9503041]])

# dcraw: flip = "50132467"[orientation & 7]; the table below is its inverse.
_EXIF_TO_FLIP = {1: 0, 2: 1, 3: 3, 4: 2, 5: 4, 6: 6, 7: 7, 8: 5}
_FLIP_TO_EXIF = {v: k for k, v in _EXIF_TO_FLIP.items()}

_COLOUR_INDEX = {"R": 0, "G": 1, "B": 2}
_AUTO_WB_ADJUST_MAXIMUM_THR = 0.75  # LibRaw's default adjust_maximum_thr (rawpy's default too)


# --------------------------------------------------------------------------------------------- colour


def cam_xyz_coeff(xyz_to_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LibRaw's ``cam_xyz_coeff``: XYZ→camera matrix → (rgb_cam (3, 3), daylight pre_mul (3,)).

    cam_rgb = xyz_to_cam · xyz_rgb, rows normalised to sum 1 (the row sums' inverses are the daylight
    multipliers), rgb_cam = inverse(cam_rgb)."""
    cam_rgb = np.asarray(xyz_to_cam, dtype=np.float64)[:3, :3] @ XYZ_RGB
    num = cam_rgb.sum(axis=1)
    ok = num > 1e-5
    cam_rgb = np.where(ok[:, None], cam_rgb / np.where(ok, num, 1.0)[:, None], 0.0)
    pre_mul = np.where(ok, 1.0 / np.where(ok, num, 1.0), 1.0)
    return np.linalg.pinv(cam_rgb), pre_mul


def xyz_to_cam_from_rgb_cam(rgb_cam: np.ndarray, pre_mul: np.ndarray | None = None) -> np.ndarray:
    """Inverse of ``cam_xyz_coeff``: an XYZ→camera matrix whose ``cam_xyz_coeff`` is ``rgb_cam``.

    ``pre_mul`` (daylight multipliers) sets the per-channel scale that rgb_cam does not carry (default 1)."""
    cam_rgb = np.linalg.inv(np.asarray(rgb_cam, dtype=np.float64))
    cam_rgb = cam_rgb / cam_rgb.sum(axis=1, keepdims=True)
    if pre_mul is not None:
        cam_rgb = cam_rgb / np.asarray(pre_mul, dtype=np.float64)[:3, None]
    return cam_rgb @ np.linalg.inv(XYZ_RGB)


def cfa_indices(cfa: str) -> np.ndarray:
    """LibRaw colour indices (0 R, 1 G, 2 B, 3 second G) of a 2×2 layout, as rawpy's ``raw_pattern``.

    Which green becomes 3 follows LibRaw's ``filters`` relabelling (RGGB → [[0, 1], [3, 2]] but
    BGGR → [[2, 3], [1, 0]])."""
    if cfa not in BAYER_LAYOUTS:
        raise ValueError(f"not a Bayer layout: {cfa!r}")
    col = [[_COLOUR_INDEX[cfa[2 * (r % 2) + c]] for c in range(2)] for r in range(8)]
    filters = sum(col[r][c] << (2 * (2 * r + c)) for r in range(8) for c in range(2))
    filters |= ((filters >> 2 & 0x22222222) | (filters << 2 & 0x88888888)) & (filters << 1) & 0xFFFFFFFF
    return np.array([[filters >> (2 * ((r << 1 & 14) | c)) & 3 for c in range(2)] for r in range(2)],
                    dtype=np.int64)


def libraw_auto_wb(mosaic: np.ndarray, cfa: str, black: np.ndarray, white: float) -> np.ndarray | None:
    """LibRaw's grey-world auto white balance (``scale_colors`` with ``use_auto_wb``), reproduced exactly.

    Black-subtract (clip at 0), take LibRaw's adjusted maximum, skip every 8×8 block holding a value above
    maximum − 25, and average each colour over the rest: multiplier = 1 / mean. Returns (R, G, B) normalised
    to G = 1 (G = LibRaw's colour 1, see ``cfa_indices``; its separate 2nd-green multiplier is dropped),
    or None if no block was usable."""
    black = np.asarray(black, dtype=np.float64).reshape(2, 2)
    blk = np.floor(black).astype(np.int32)
    h, w = mosaic.shape
    tile = np.tile(blk, ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    val = np.maximum(mosaic.astype(np.int32) - tile, 0)
    black_common = int(blk.min())
    maximum = int(white) - black_common
    dmax = int(val.max()) if val.size else 0
    if 0 < dmax < maximum and dmax > maximum * np.float32(_AUTO_WB_ADJUST_MAXIMUM_THR):
        maximum = dmax
    hb, wb_ = -(-h // 8), -(-w // 8)
    pad = np.zeros((hb * 8, wb_ * 8), dtype=np.int32)
    pad[:h, :w] = val
    cnt = np.zeros((hb * 8, wb_ * 8), dtype=np.uint8)
    cnt[:h, :w] = 1
    blocks_ok = pad.reshape(hb, 8, wb_, 8).max(axis=(1, 3)) <= maximum - 25
    sums = pad.reshape(hb, 4, 2, wb_, 4, 2).sum(axis=(1, 4), dtype=np.int64)  # (hb, 2, wb, 2)
    cnts = cnt.reshape(hb, 4, 2, wb_, 4, 2).sum(axis=(1, 4), dtype=np.int64)
    m = blocks_ok[:, None, :, None]
    s = (sums * m).sum(axis=(0, 2)).astype(np.float64)  # per 2×2 position
    n = (cnts * m).sum(axis=(0, 2)).astype(np.float64)
    idx = cfa_indices(cfa)
    pre = {}
    for c in (0, 1, 2):
        pos = idx == c
        if s[pos].sum() <= 0:
            return None
        pre[c] = float(np.float32(n[pos].sum() / s[pos].sum()))
    return np.array([pre[0] / pre[1], 1.0, pre[2] / pre[1]])


# ---------------------------------------------------------------------------------------- orientation


def apply_flip(img: np.ndarray, flip: int) -> np.ndarray:
    """Sensor-oriented (H, W[, C]) → upright, exactly as LibRaw's postprocess orients its output.

    dcraw/LibRaw output pixel (r, c) reads source (r', c'): swap(r, c) if flip & 4, then r' = H-1-r if
    flip & 2, c' = W-1-c if flip & 1."""
    flip = _check_flip(flip)
    out = img
    if flip & 2:
        out = out[::-1]
    if flip & 1:
        out = out[:, ::-1]
    if flip & 4:
        out = out.swapaxes(0, 1)
    return np.ascontiguousarray(out)


def undo_flip(img: np.ndarray, flip: int) -> np.ndarray:
    """Inverse of ``apply_flip``: upright (as LibRaw outputs it) → sensor orientation."""
    flip = _check_flip(flip)
    out = img
    if flip & 4:
        out = out.swapaxes(0, 1)
    if flip & 1:
        out = out[:, ::-1]
    if flip & 2:
        out = out[::-1]
    return np.ascontiguousarray(out)


def flip_to_exif(flip: int) -> int:
    """LibRaw ``sizes.flip`` (0..7) → EXIF/TIFF Orientation (1..8)."""
    return _FLIP_TO_EXIF[_check_flip(flip)]


def exif_to_flip(orientation: int) -> int:
    """EXIF/TIFF Orientation (1..8) → LibRaw flip code (dcraw: ``"50132467"[o & 7]``)."""
    if int(orientation) not in _EXIF_TO_FLIP:
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation!r}")
    return _EXIF_TO_FLIP[int(orientation)]


def _check_flip(flip: int) -> int:
    f = int(flip)
    if not 0 <= f <= 7:
        raise ValueError(f"flip must be 0..7, got {flip!r}")
    return f


# ------------------------------------------------------------------------------------- LibRaw C API


@functools.lru_cache(maxsize=1)
def _libraw_capi() -> Any:
    """The LibRaw shared library rawpy itself uses, through ctypes; None where it cannot be found."""
    try:
        import rawpy

        if tuple(rawpy.libraw_version) < (0, 20):  # libraw_iparams_t layout used below
            return None
        d = os.path.dirname(rawpy.__file__)
        cands = sorted(glob.glob(os.path.join(d, "libraw_r*.so*")) + glob.glob(os.path.join(d, "libraw_r*.dylib"))
                       + glob.glob(os.path.join(d, "libraw*.dll")) + glob.glob(os.path.join(d, "*.libs", "libraw*")))
        if not cands:
            return None
        lib = ctypes.CDLL(cands[0])
        lib.libraw_init.restype = ctypes.c_void_p
        lib.libraw_init.argtypes = [ctypes.c_uint]
        lib.libraw_open_file.restype = ctypes.c_int
        lib.libraw_open_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.libraw_get_rgb_cam.restype = ctypes.c_float
        lib.libraw_get_rgb_cam.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.libraw_get_iparams.restype = ctypes.c_void_p
        lib.libraw_get_iparams.argtypes = [ctypes.c_void_p]
        lib.libraw_close.restype = None
        lib.libraw_close.argtypes = [ctypes.c_void_p]
        return lib
    except Exception:  # noqa: BLE001 - optional acceleration of metadata only
        return None


def _libraw_identify(path: str, num_colors: int, color_desc: bytes) -> dict:
    """LibRaw's make, model and rgb_cam for ``path`` (identify only, no decoding); {} if unavailable.

    The iparams layout is checked against what rawpy reports (colors, cdesc) before it is trusted."""
    lib = _libraw_capi()
    if lib is None:
        return {}
    handle = lib.libraw_init(0)
    if not handle:
        return {}
    try:
        if lib.libraw_open_file(handle, os.fsencode(path)) != 0:
            return {}
        buf = ctypes.string_at(lib.libraw_get_iparams(handle), 426)
        colors = int.from_bytes(buf[340:344], "little", signed=True)
        cdesc = buf[420:425].split(b"\0")[0]
        if colors != num_colors or cdesc != color_desc.split(b"\0")[0]:
            return {}
        out: dict = {"rgb_cam": np.array([[lib.libraw_get_rgb_cam(handle, i, j) for j in range(3)]
                                          for i in range(3)], dtype=np.float64)}
        for key, (a, b) in (("make", (4, 68)), ("model", (68, 132))):
            s = buf[a:b].split(b"\0")[0].decode("utf-8", "replace").strip()
            if s:
                out[key] = s
        return out
    finally:
        lib.libraw_close(handle)


# ---------------------------------------------------------------------------------------------- EXIF


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


def _read_exif(path: str, other: Any, libraw_ids: dict) -> dict:
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


def _carried_metadata(path: str) -> dict:
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


# ---------------------------------------------------------------------------------------------- read


_QUIET_LOCK = threading.Lock()
_QUIET_STATE = {"depth": 0, "saved": -1}


@contextlib.contextmanager
def _quiet_libraw() -> Iterator[None]:
    """Silence LibRaw's C-level stderr chatter ("…: Unexpected end of file") while it parses: the
    caller turns failures into one-line errors. Reference-counted, so concurrent threads restore fd 2
    correctly; does nothing where fd 2 cannot be swapped."""
    with _QUIET_LOCK:
        if _QUIET_STATE["depth"] == 0:
            _QUIET_STATE["saved"] = -1
            try:
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
            try:
                saved = os.dup(2)
            except OSError:
                saved = -1
            if saved >= 0:
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    try:
                        os.dup2(devnull, 2)
                    finally:
                        os.close(devnull)
                    _QUIET_STATE["saved"] = saved
                except OSError:
                    os.close(saved)
        _QUIET_STATE["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_STATE["depth"] -= 1
            if _QUIET_STATE["depth"] == 0 and _QUIET_STATE["saved"] >= 0:
                os.dup2(_QUIET_STATE["saved"], 2)
                os.close(_QUIET_STATE["saved"])
                _QUIET_STATE["saved"] = -1


def _open_raw(path: str | os.PathLike) -> tuple[Any, str]:
    """Open with rawpy and force the (lazy) unpack; any failure is an ``InputError`` naming the file."""
    import rawpy

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a RAW file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or e})") from None
    if not head:
        raise InputError(f"{p}: empty file")
    try:
        with _quiet_libraw():
            raw = rawpy.imread(str(p))
    except rawpy.LibRawFileUnsupportedError:
        small = _tiff_size(p)
        if small and min(small) < MIN_SIDE:
            raise InputError(f"{p}: image too small ({small[1]}×{small[0]}; RAW images need at least "
                             f"{MIN_SIDE}×{MIN_SIDE} pixels)") from None
        raise InputError(f"{p}: not a RAW file LibRaw can read (unknown format or damaged header)") from None
    except (rawpy.LibRawError, OSError, ValueError, MemoryError) as e:
        raise InputError(f"{p}: cannot read RAW ({_err(e)})") from None
    try:
        with _quiet_libraw():
            raw.unpack()  # rawpy decodes lazily: force it here so a corrupt file fails now
            if raw.raw_type == rawpy.RawType.Flat:
                _ = raw.raw_image
    except (rawpy.LibRawError, OSError, ValueError, MemoryError, RuntimeError) as e:
        raw.close()
        raise InputError(f"{p}: corrupt or truncated RAW ({_err(e)})") from None
    return raw, str(p)


#: LibRaw refuses images with a side below 22 pixels
MIN_SIDE = 22


def _tiff_size(path: Path) -> tuple[int, int] | None:
    """(H, W) of the largest image of a TIFF/DNG file, or None if it is not a readable TIFF."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            shapes = [tuple(page.shape[:2]) for page in tif.pages]
    except Exception:  # noqa: BLE001 - anything unreadable is simply not a TIFF we can size
        return None
    return max(shapes, key=lambda s: s[0] * s[1]) if shapes else None


def _err(e: BaseException) -> str:
    msg = e.args[0] if e.args else ""
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    msg = " ".join(str(msg).split())
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _check_bayer(raw: Any, name: str) -> tuple[np.ndarray, str]:
    """Refuse non-Bayer sensors; return (LibRaw 2×2 colour-index pattern, CFA string)."""
    import rawpy

    desc = bytes(raw.color_desc).split(b"\0")[0].decode("ascii", "replace")
    if raw.raw_type != rawpy.RawType.Flat:
        raise UnsupportedSensorError(
            f"{name}: not supported: not a Bayer mosaic (LibRaw raw_type {raw.raw_type.name}: "
            "linear/demosaiced DNG, Foveon or other multi-channel data)")
    img = raw.raw_image
    if img is None or img.ndim != 2:
        raise UnsupportedSensorError(f"{name}: not supported: raw data has {getattr(img, 'ndim', '?')} dimensions")
    try:
        pattern = raw.raw_pattern
    except NotImplementedError as e:
        raise UnsupportedSensorError(f"{name}: not supported: unusual colour filter array ({e})") from None
    if raw.num_colors == 1 or pattern is None or pattern.size == 1:
        raise UnsupportedSensorError(f"{name}: not supported: monochrome sensor (no colour filter array)")
    if pattern.shape == (6, 6):
        raise UnsupportedSensorError(f"{name}: not supported: Fujifilm X-Trans 6×6 colour filter array")
    if pattern.shape != (2, 2):
        raise UnsupportedSensorError(
            f"{name}: not supported: {pattern.shape[0]}×{pattern.shape[1]} colour filter array (not Bayer 2×2)")
    letters = []
    for c in pattern.ravel():
        ch = desc[int(c)] if int(c) < len(desc) else "?"
        letters.append(ch)
    if any(ch not in "RGB" for ch in letters) or (raw.num_colors > 3 and desc[3:4] not in ("G", "")):
        raise UnsupportedSensorError(
            f"{name}: not supported: {desc} colour filters ({''.join(letters)}), not an RGB Bayer sensor")
    cfa = "".join(letters)
    if cfa not in BAYER_LAYOUTS:
        raise UnsupportedSensorError(f"{name}: not supported: colour filter layout {cfa} is not a Bayer pattern")
    return pattern.astype(np.int64), cfa


def read_raw(path: str | os.PathLike) -> RawImage:
    """Read a Bayer RAW file (anything LibRaw reads: DNG, CR2, NEF, CRW, KDC, QuickTake, …).

    Raises ``InputError`` (missing/unreadable/truncated/corrupt/not RAW) or ``UnsupportedSensorError``
    (X-Trans, Foveon, linear DNG, monochrome, 4-colour filters)."""
    raw, name = _open_raw(path)
    with raw:
        pattern, cfa = _check_bayer(raw, name)
        try:
            mosaic = np.ascontiguousarray(raw.raw_image_visible, dtype=np.uint16).copy()
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{name}: corrupt RAW ({_err(e)})") from None
        if mosaic.ndim != 2 or min(mosaic.shape) < 2:
            raise InputError(f"{name}: RAW image has an unusable size {mosaic.shape}")

        # Black: rawpy's black_level_per_channel is indexed by LibRaw colour index (0 R, 1 G, 2 B, 3 G2),
        # LibRaw's 2×2 cblack pattern already folded in (adjust_bl); map it onto the 2×2 CFA positions.
        # raw_pattern is relative to the visible area (LibRaw's COLOR()), unlike rawpy's raw_colors_visible,
        # which tiles from the raw origin and is wrong for odd margins.
        blc = np.asarray(raw.black_level_per_channel, dtype=np.float64)
        black = blc[pattern]
        white = int(raw.white_level)
        if white <= 0 or white > 65535:
            raise InputError(f"{name}: implausible white level {white}")
        if np.any(black >= white) or np.any(black < 0):
            raise InputError(f"{name}: implausible levels: black {black.ravel().tolist()} not within [0, white "
                             f"{white})")
        sizes = raw.sizes
        flip = int(sizes.flip) & 7

        num_colors = int(raw.num_colors)
        color_desc = bytes(raw.color_desc)
        ids = _libraw_identify(name, num_colors, color_desc)

        # Colour: LibRaw's rgb_cam as postprocess uses it (C API); without the C API, LibRaw's identify rule:
        # DNG embedded matrix (cmatrix) if cmatrix[0][0] > 0.125, else from its XYZ→camera table, else identity.
        cmatrix = np.asarray(raw.color_matrix, dtype=np.float64)[:, :3]
        xyz = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
        daylight = np.asarray(raw.daylight_whitebalance, dtype=np.float64)[:3]
        has_xyz = bool(np.abs(xyz).sum() > 0)
        rgb_cam = ids.get("rgb_cam")
        if rgb_cam is None or not np.all(np.isfinite(rgb_cam)):
            if cmatrix[0, 0] > 0.125 and name.lower().endswith(".dng"):
                rgb_cam = cmatrix
            elif has_xyz:
                rgb_cam = cam_xyz_coeff(xyz)[0]
            else:
                rgb_cam = np.eye(3)
        rgb_cam = np.asarray(rgb_cam, dtype=np.float64)
        if not (np.all(np.isfinite(rgb_cam)) and abs(np.linalg.det(rgb_cam)) > 1e-8 and np.all(np.isfinite(xyz))):
            raise InputError(f"{name}: unusable colour matrix (singular or not finite): damaged metadata")
        if has_xyz:
            xyz_to_cam = xyz
        else:
            pm = daylight if np.all(daylight > 0) else None
            xyz_to_cam = xyz_to_cam_from_rgb_cam(rgb_cam, pm)

        # White balance, as LibRaw's postprocess(use_camera_wb=True) chooses it (scale_colors):
        cam = np.asarray(raw.camera_whitebalance, dtype=np.float64)
        wb: np.ndarray | None = None
        if cam[0] > 1e-5 and cam[2] > 1e-5:
            g = cam[1] if cam[1] > 1e-5 else 1.0
            wb, wb_source = np.array([cam[0] / g, 1.0, cam[2] / g]), "camera"
        elif cam[0] <= 1e-5:
            wb = libraw_auto_wb(mosaic, cfa, black, white)
            wb_source = "auto"
        if wb is None:
            if np.all(daylight > 0):
                wb, wb_source = daylight / daylight[1], "daylight"
            else:
                wb, wb_source = np.ones(3), "unity"

        exif = _read_exif(name, _safe(lambda: raw.other), ids)
        lens = _safe(lambda: raw.lens)
        if "lens" not in exif and lens is not None and getattr(lens, "model", ""):
            exif["lens"] = str(lens.model).strip()
        exif.update(_carried_metadata(name))
        aspect = float(sizes.pixel_aspect or 1.0)
        if abs(aspect - 1.0) > 1e-6:  # non-square pixels (Kodak DC120): a DNG says so with DefaultScale
            dng = metadata.unpack_ifd(exif["dng"]) if exif.get("dng") else {}
            dng.setdefault(50718, metadata.num_entry(metadata.RATIONAL, [*_rational(aspect, False, 10000), 1, 1]))
            exif["dng"] = metadata.pack_ifd(dng)

    return RawImage(
        mosaic=mosaic,
        cfa=cfa,
        black=black.astype(np.float64),
        white=white,
        wb=np.asarray(wb, dtype=np.float64),
        wb_source=wb_source,
        rgb_cam=rgb_cam,
        xyz_to_cam=np.asarray(xyz_to_cam, dtype=np.float64),
        flip=flip,
        bits=max(1, white.bit_length()),
        raw_size=(int(sizes.raw_height), int(sizes.raw_width)),
        margins=(int(sizes.top_margin), int(sizes.left_margin)),
        exif=exif,
    )


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


def render_reference(path: str | os.PathLike) -> np.ndarray:
    """LibRaw's own render: ``postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)``.

    uint8 (H', W', 3), upright as LibRaw outputs it (``apply_flip`` of the sensor orientation; LibRaw
    also stretches non-square pixels, e.g. Kodak DC120, so H', W' need not be the mosaic's)."""
    import rawpy

    raw, name = _open_raw(path)
    with raw:
        try:
            with _quiet_libraw():
                return raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)
        except (rawpy.LibRawError, ValueError, MemoryError) as e:
            raise InputError(f"{name}: cannot render RAW ({_err(e)})") from None


# --------------------------------------------------------------------------------------------- write


def _rational(x: float, signed: bool, max_den: int = 1_000_000) -> tuple[int, int]:
    """x as the closest (numerator, denominator) pair for TIFF (S)RATIONAL (exact for 1/455, 14/5, …)."""
    x = float(x)
    if not math.isfinite(x) or (x < 0 and not signed):
        raise ValueError(f"cannot write {x} as a{'' if signed else 'n unsigned'} rational")
    lim = 2**31 - 1 if signed else 2**32 - 1
    while True:
        fr = Fraction(x).limit_denominator(max_den)
        if abs(fr.numerator) <= lim or max_den == 1:
            break
        max_den //= 10
    return max(-lim, min(lim, fr.numerator)), fr.denominator


def _neutral_rational(mult: float) -> tuple[int, int]:
    """AsShotNeutral entry for multiplier ``mult`` (= 1/neutral), chosen so that LibRaw's float32
    ``1 / neutral`` gives back exactly float32(mult) (LibRaw computes it both in float and via double)."""
    target = np.float32(mult)
    n0 = np.float32(1.0 / float(target))
    cands = [n0]
    up = down = n0
    for _ in range(4):
        up = np.nextafter(up, np.float32(np.inf), dtype=np.float32)
        down = np.nextafter(down, np.float32(0), dtype=np.float32)
        cands += [up, down]
    one = np.float32(1.0)
    best = next((c for c in cands if one / c == target and np.float32(1.0 / float(c)) == target), n0)
    fr = Fraction(float(best))  # exact: a float32 is a binary fraction
    if fr.numerator > 2**32 - 1 or fr.denominator > 2**32 - 1:
        return _rational(float(best), signed=False)
    return fr.numerator, fr.denominator


def _rationals(values: Any, signed: bool) -> list[int]:
    out: list[int] = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        out.extend(_rational(v, signed))
    return out


def _colour_matrix_for_dng(raw: RawImage) -> np.ndarray:
    """ColorMatrix1 whose LibRaw reading (cam_xyz_coeff) gives ``raw.rgb_cam``: ``xyz_to_cam`` when the two
    agree, otherwise a matrix rebuilt from rgb_cam with xyz_to_cam's channel scales."""
    xyz = np.asarray(raw.xyz_to_cam, dtype=np.float64)
    rgb_cam = np.asarray(raw.rgb_cam, dtype=np.float64)
    if np.all(np.isfinite(xyz)) and np.abs(xyz).sum() > 0:
        derived, pre_mul = cam_xyz_coeff(xyz)
        if np.allclose(derived, rgb_cam, atol=2e-3):
            return xyz
        if np.all(pre_mul > 0):
            return xyz_to_cam_from_rgb_cam(rgb_cam, pre_mul)
    return xyz_to_cam_from_rgb_cam(rgb_cam)


def is_invisp_dng(path: str | os.PathLike) -> bool:
    """True if ``path`` is a TIFF/DNG whose Software tag says invisp wrote it (``write_dng``)."""
    import tifffile

    try:
        with tifffile.TiffFile(os.fspath(path)) as tif:
            software = tif.pages[0].tags.get("Software")
            return software is not None and str(software.value).startswith("invisp")
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False


DNG_TILE = 256
PREVIEW_SIDE = 256


def _tile_size(h: int, w: int) -> tuple[int, int]:
    """(tile length, tile width): DNG_TILE, or the image's own side where it is smaller (LibRaw wraps a tile's
    rows at the image width, so a tile must not be wider than the image)."""
    return min(DNG_TILE, h), min(DNG_TILE, w)


def _preview(raw: RawImage) -> np.ndarray:
    """A small sRGB uint8 rendering (sensor orientation) for the DNG's preview IFD: 2×2 CFA cells binned to
    RGB, white-balanced, ``rgb_cam``, sRGB gamma; block-averaged to ≤ PREVIEW_SIDE pixels on the long side."""
    m = np.asarray(raw.mosaic, dtype=np.float32)
    h2, w2 = m.shape[0] // 2, m.shape[1] // 2
    f = max(1, -(-max(h2, w2) // PREVIEW_SIDE))
    ph, pw = max(1, h2 // f), max(1, w2 // f)
    cells = m[: 2 * ph * f, : 2 * pw * f].reshape(ph, f, 2, pw, f, 2).mean(axis=(1, 4))  # (ph, 2, pw, 2)
    black = np.asarray(raw.black, dtype=np.float32).reshape(2, 2)
    cells = (cells - black[None, :, None, :]) / max(float(raw.white) - float(black.mean()), 1.0)
    rgb = np.zeros((ph, pw, 3), np.float32)
    for r in range(2):
        for c in range(2):
            k = _COLOUR_INDEX[raw.cfa[2 * r + c]]
            rgb[..., k] += cells[:, r, :, c] * (0.5 if k == 1 else 1.0)
    rgb = np.clip(rgb * np.asarray(raw.wb, dtype=np.float32)[:3], 0, 1) @ np.asarray(raw.rgb_cam, np.float32).T
    rgb = np.clip(rgb, 0, 1)
    srgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    return (srgb * 255 + 0.5).astype(np.uint8)


def _dng_exif(exif: dict, make: str, model: str) -> metadata.Tree:
    """The EXIF tree of the DNG: the photo's (``exif['exif']``, i.e. the JPEG's EXIF as it is now, or the RAW's)
    completed with the basics; Make/Model as the DNG states them, no JPEG Interop IFD."""
    tree = metadata.camera_tree(exif)
    tree["0th"].update({271: metadata.ascii_entry(make), 272: metadata.ascii_entry(model)})
    tree["0th"].pop(305, None)
    tree["Interop"] = {}
    for tag in metadata.JPEG_ONLY_EXIF:
        tree["Exif"].pop(tag, None)
    if tree["Exif"]:
        tree["Exif"].setdefault(36864, metadata.Entry(metadata.UNDEFINED, 4, b"0232"))  # ExifVersion
    return tree


def _dng_flip(flip: int, orientation: Any) -> int:
    """The sensor's flip, then the JPEG's EXIF ``orientation`` (2..8: turned by a tag after encode), as one flip."""
    if orientation not in range(2, 9):
        return flip
    probe = np.arange(6).reshape(2, 3)
    want = apply_flip(apply_flip(probe, flip), exif_to_flip(orientation))
    return next(f for f in range(8) if np.array_equal(apply_flip(probe, f), want))


def write_dng(path: str | os.PathLike, raw: RawImage) -> None:
    """Write ``raw`` as a lossless-JPEG-compressed CFA DNG at exactly ``path`` (no temp file; the caller renames).

    LibRaw reads it back with the same visible mosaic, CFA pattern, per-position black levels, white level,
    flip and as-shot white balance. IFD0 holds the raw image, the DNG tags carried from the original
    (``exif['dng']``: colour matrices with their illuminants, forward matrices, opcode lists, noise profile,
    baseline exposure, crops, …; otherwise a ``ColorMatrix1`` (D65) reproducing ``rgb_cam``), the photo's EXIF
    (Exif and GPS IFDs) and XMP; a sub-IFD holds a small sRGB preview."""
    mosaic = np.asarray(raw.mosaic)
    if mosaic.ndim != 2 or mosaic.dtype != np.uint16:
        raise ValueError(f"mosaic must be a 2-D uint16 array, got {mosaic.dtype} {mosaic.shape}")
    if raw.cfa not in BAYER_LAYOUTS:
        raise ValueError(f"cfa must be one of {BAYER_LAYOUTS}, got {raw.cfa!r}")
    h, w = mosaic.shape
    black = np.asarray(raw.black, dtype=np.float64).reshape(2, 2)
    wb = np.asarray(raw.wb, dtype=np.float64).ravel()[:3]
    if not (np.all(np.isfinite(wb)) and np.all(wb > 0)):
        wb = np.ones(3)
    exif = dict(raw.exif or {})
    make = str(exif.get("make") or "invisp").replace("\0", " ")  # UTF-8 where it is not ASCII
    model = str(exif.get("model") or "Unknown").replace("\0", " ")
    unique = model if model.lower().startswith(make.lower()) else f"{make} {model}"
    bits = max(2, int(raw.bits), int(mosaic.max(initial=0)).bit_length())

    md = metadata
    B, H, L, R, SR = md.BYTE, md.SHORT, md.LONG, md.RATIONAL, md.SRATIONAL
    tags: md.Ifd = {
        254: md.num_entry(L, [0]),  # NewSubFileType: main image
        256: md.num_entry(L, [w]), 257: md.num_entry(L, [h]), 258: md.num_entry(H, [bits]),
        259: md.num_entry(H, [7]),  # lossless JPEG
        262: md.num_entry(H, [32803]),  # CFA
        274: md.num_entry(H, [flip_to_exif(_dng_flip(raw.flip, exif.get("orientation")))]),
        277: md.num_entry(H, [1]), 284: md.num_entry(H, [1]),
        305: md.ascii_entry("invisp"),
        322: md.num_entry(L, [_tile_size(h, w)[1]]), 323: md.num_entry(L, [_tile_size(h, w)[0]]),
        33421: md.num_entry(H, [2, 2]),  # CFARepeatPatternDim
        33422: md.num_entry(B, [_COLOUR_INDEX[c] for c in raw.cfa]),  # CFAPattern
        50706: md.num_entry(B, [1, 4, 0, 0]),  # DNGVersion
        50707: md.num_entry(B, [1, 1, 0, 0]),  # DNGBackwardVersion
        50708: md.ascii_entry(unique),  # UniqueCameraModel
        50710: md.num_entry(B, [0, 1, 2]),  # CFAPlaneColor
        50711: md.num_entry(H, [1]),  # CFALayout: rectangular
        50713: md.num_entry(H, [2, 2]),  # BlackLevelRepeatDim
        50717: md.num_entry(L, [int(raw.white)]),  # WhiteLevel
        50728: md.num_entry(R, [v for m in wb / wb[1] for v in _neutral_rational(m)]),  # AsShotNeutral
    }
    if np.all(black == np.round(black)) and np.all(black >= 0):
        tags[50714] = md.num_entry(L, [int(v) for v in black.ravel()])  # BlackLevel
    else:
        tags[50714] = md.num_entry(R, _rationals(np.maximum(black, 0), False))
    carried = md.unpack_ifd(exif["dng"]) if exif.get("dng") else {}
    if 50721 not in carried:
        tags[50721] = md.num_entry(SR, _rationals(_colour_matrix_for_dng(raw), True))  # ColorMatrix1
        tags[50778] = md.num_entry(H, [21])  # CalibrationIlluminant1: D65
    tags.update({t: e for t, e in carried.items() if t not in tags})
    tree = _dng_exif(exif, make, model)
    root = md.tree_node(tree, tags)
    if exif.get("xmp"):
        root.entries[md.XMP_TAG] = md.Entry(B, len(x := str(exif["xmp"]).encode("utf-8")), x)
    if exif.get("iptc"):  # IPTC-NAA as Photoshop writes it in TIFF: LONGs, zero-padded
        iptc = base64.b64decode(exif["iptc"])
        iptc += bytes(-len(iptc) % 4)
        root.entries[md.IPTC_TAG] = md.Entry(L, len(iptc) // 4, iptc)
    root.blocks[324] = lj92.encode_tiles(mosaic, bits, _tile_size(h, w))
    pv = _preview(raw)
    root.subs[md.SUB_IFDS] = [md.Node(
        {254: md.num_entry(L, [1]), 256: md.num_entry(L, [pv.shape[1]]), 257: md.num_entry(L, [pv.shape[0]]),
         258: md.num_entry(H, [8, 8, 8]), 259: md.num_entry(H, [1]), 262: md.num_entry(H, [2]),
         277: md.num_entry(H, [3]), 278: md.num_entry(L, [pv.shape[0]]), 284: md.num_entry(H, [1]),
         50970: md.num_entry(L, [2])},  # PreviewColorSpace: sRGB
        blocks={273: [pv.tobytes()]})]
    Path(path).write_bytes(md.write_tiff(root))  # an OSError is reported by fileio.atomic_output, naming the target
