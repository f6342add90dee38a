"""Reading any LibRaw Bayer file into a ``RawImage`` (taken the way LibRaw's ``postprocess(use_camera_wb=True)``
takes it), and LibRaw's own render of it; every failure is one ``InputError``/``UnsupportedSensorError`` naming
the file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .. import metadata
from ..errors import InputError, UnsupportedSensorError
from ..fileio import check_input
from ..settings import CFA_LAYOUTS, LINEAR_CFA, MAX_CFA_PERIOD, dng_cfa_problem
from .colour import cam_xyz_coeff, libraw_auto_wb, xyz_to_cam_from_rgb_cam
from .dng import rational
from .exif import carried_metadata, read_exif
from .image import RawImage
from .libraw import libraw_identify, quiet_libraw


def _open_raw(path: str | os.PathLike) -> tuple[Any, str]:
    """Open with rawpy and force the (lazy) unpack; any failure is an ``InputError`` naming the file."""
    import rawpy

    p = check_input(path)  # never a FIFO or device: LibRaw would block reading it
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or e})") from None
    if not head:
        raise InputError(f"{p}: empty file")
    try:
        with quiet_libraw(), _libraw_source(p) as source:
            raw = rawpy.imread(source)
    except rawpy.LibRawFileUnsupportedError:
        small = _tiff_size(p)
        if small and min(small) < MIN_SIDE:
            raise InputError(f"{p}: image too small ({small[1]}×{small[0]}; RAW images need at least "
                             f"{MIN_SIDE}×{MIN_SIDE} pixels)") from None
        raise InputError(f"{p}: not a RAW file LibRaw can read (unknown format or damaged header)") from None
    except (rawpy.LibRawError, OSError, ValueError, MemoryError) as e:
        raise InputError(f"{p}: cannot read RAW ({error_text(e)})") from None
    try:
        with quiet_libraw():
            raw.unpack()  # rawpy decodes lazily: force it here so a corrupt file fails now
            if raw.raw_type == rawpy.RawType.Flat:
                _ = raw.raw_image
    except (rawpy.LibRawError, OSError, ValueError, MemoryError, RuntimeError) as e:
        raw.close()
        raise InputError(f"{p}: corrupt or truncated RAW ({error_text(e)})") from None
    return raw, str(p)


@contextlib.contextmanager
def _libraw_source(p: Path) -> Iterator[str | BinaryIO]:
    """What rawpy opens: the path, or the open file where the name is not UTF-8 (rawpy encodes names as UTF-8;
    a name such as b"\\xff\\xfe.dng" is a valid file all the same)."""
    try:
        str(p).encode("utf-8")
    except UnicodeEncodeError:
        with open(p, "rb") as fh:
            yield fh
        return
    yield str(p)


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


def error_text(e: BaseException) -> str:
    msg = e.args[0] if e.args else ""
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    msg = " ".join(str(msg).split())
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _check_layout(raw: Any, name: str) -> tuple[np.ndarray | None, str]:
    """Refuse what invisp cannot render; return (LibRaw colour-index pattern of the visible area's CFA tile, CFA
    string), or (None, ``LINEAR_CFA``) for a 3-sample linear image (LibRaw raw type Stack with 3 colours)."""
    import rawpy

    desc = bytes(raw.color_desc).split(b"\0")[0].decode("ascii", "replace")
    img = raw.raw_image
    if raw.raw_type != rawpy.RawType.Flat:
        if img is not None and img.ndim == 3 and raw.num_colors == 3 and desc[:3] == "RGB":
            return None, LINEAR_CFA
        raise UnsupportedSensorError(
            f"{name}: not supported: not a one-colour-per-site mosaic or 3-colour linear image (LibRaw raw_type "
            f"{raw.raw_type.name}, {raw.num_colors} colours {desc}: Foveon or other multi-channel data)")
    if img is None or img.ndim != 2:
        raise UnsupportedSensorError(f"{name}: not supported: raw data has {getattr(img, 'ndim', '?')} dimensions")
    try:
        pattern = raw.raw_pattern
    except NotImplementedError as e:
        raise UnsupportedSensorError(f"{name}: not supported: unusual colour filter array ({e})") from None
    if raw.num_colors == 1 or pattern is None or pattern.size == 1:
        raise UnsupportedSensorError(f"{name}: not supported: monochrome sensor (no colour filter array)")
    if max(pattern.shape) > MAX_CFA_PERIOD:
        raise UnsupportedSensorError(
            f"{name}: not supported: {pattern.shape[0]}×{pattern.shape[1]} colour filter array (period above "
            f"{MAX_CFA_PERIOD})")
    letters = np.array([desc[int(c)] if int(c) < len(desc) else "?" for c in pattern.ravel()]).reshape(pattern.shape)
    if any(ch not in "RGB" for ch in letters.ravel()) or (raw.num_colors > 3 and desc[3:4] not in ("G", "")):
        raise UnsupportedSensorError(f"{name}: not supported: {desc} colour filters ({''.join(letters.ravel())}), "
                                     "not an RGB colour filter array")
    letters = _minimal_period(letters)  # LibRaw reports dcraw's filters as 4×4 and more: the pattern's own period
    rows = ["".join(r) for r in letters]
    cfa = "".join(rows) if letters.shape == (2, 2) and "".join(rows) in CFA_LAYOUTS else "/".join(rows)
    try:
        problem = dng_cfa_problem(cfa)
    except ValueError:
        raise UnsupportedSensorError(f"{name}: not supported: colour filter layout {cfa} is not a Bayer pattern "
                                     "nor another RGB CFA (a colour is missing)") from None
    if problem:
        raise UnsupportedSensorError(f"{name}: not supported: {problem}")
    return pattern[: letters.shape[0], : letters.shape[1]].astype(np.int64), cfa


def _minimal_period(a: np.ndarray) -> np.ndarray:
    """The smallest top-left block of which the 2-D array ``a`` is the tiling (``a`` itself if none is)."""
    h, w = a.shape
    p = next(p for p in range(1, h + 1) if h % p == 0 and (a == np.tile(a[:p], (h // p, 1))).all())
    q = next(q for q in range(1, w + 1) if w % q == 0 and (a == np.tile(a[:, :q], (1, w // q))).all())
    return a[:p, :q]


def _float_samples(path: str) -> int:
    """Bits per sample of a float DNG's raw image (TIFF SampleFormat 3 in the IFD of NewSubFileType 0), else 0."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            pages = [tif.pages[0], *(tif.pages[0].pages or [])]
            for page in pages:
                tags = page.tags
                kind = tags.get("NewSubfileType")
                fmt = tags.get("SampleFormat")
                if (kind is None or int(kind.value) == 0) and fmt is not None:
                    values = fmt.value if isinstance(fmt.value, tuple) else (fmt.value,)
                    if any(int(v) == 3 for v in values):
                        bits = tags.get("BitsPerSample")
                        b = bits.value if bits is not None else 32
                        return int(b[0] if isinstance(b, tuple) else b)
    except Exception:  # noqa: BLE001 - not a TIFF: not a float DNG
        return 0
    return 0


def read_raw(path: str | os.PathLike) -> RawImage:
    """Read a RAW file (anything LibRaw reads: DNG, CR2, NEF, CRW, KDC, RAF, QuickTake, …) of one colour per site
    (Bayer, X-Trans, any periodic RGB CFA) or 3 samples per pixel (linear DNG).

    Raises ``InputError`` (missing/unreadable/truncated/corrupt/not RAW) or ``UnsupportedSensorError``
    (Foveon, monochrome, 4-colour filters, float samples)."""
    raw, name = _open_raw(path)
    with raw:
        pattern, cfa = _check_layout(raw, name)
        if bits := _float_samples(name):
            raise UnsupportedSensorError(
                f"{name}: not supported: {bits}-bit floating-point samples (an HDR DNG); invisp writes integer "
                "samples only and would change the data's type")
        try:
            visible = raw.raw_image_visible
            mosaic = np.ascontiguousarray(visible if pattern is not None else visible[..., :3], dtype=np.uint16)
            mosaic = mosaic.copy()
        except Exception as e:  # noqa: BLE001
            raise InputError(f"{name}: corrupt RAW ({error_text(e)})") from None
        if mosaic.ndim != (2 if pattern is not None else 3) or min(mosaic.shape[:2]) < 2:
            raise InputError(f"{name}: RAW image has an unusable size {mosaic.shape}")

        # Black: rawpy's black_level_per_channel is indexed by LibRaw colour index (0 R, 1 G, 2 B, 3 G2),
        # LibRaw's 2×2 cblack pattern already folded in (adjust_bl); map it onto the 2×2 CFA positions.
        # raw_pattern is relative to the visible area (LibRaw's COLOR()), unlike rawpy's raw_colors_visible,
        # which tiles from the raw origin and is wrong for odd margins.
        # A linear image: black per channel.
        blc = np.asarray(raw.black_level_per_channel, dtype=np.float64)
        black = blc[pattern] if pattern is not None else blc[:3]
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
        ids = libraw_identify(name, num_colors, color_desc)

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
        elif cam[0] <= 1e-5 and cfa in CFA_LAYOUTS:
            wb = libraw_auto_wb(mosaic, cfa, black, white)
            wb_source = "auto"
        if wb is None:
            if np.all(daylight > 0):
                wb, wb_source = daylight / daylight[1], "daylight"
            else:
                wb, wb_source = np.ones(3), "unity"

        exif = read_exif(name, _safe(lambda: raw.other), ids)
        lens = _safe(lambda: raw.lens)
        if "lens" not in exif and lens is not None and getattr(lens, "model", ""):
            exif["lens"] = str(lens.model).strip()
        exif.update(carried_metadata(name))
        aspect = float(sizes.pixel_aspect or 1.0)
        if abs(aspect - 1.0) > 1e-6:  # non-square pixels (Kodak DC120): a DNG says so with DefaultScale
            dng = metadata.unpack_ifd(exif["dng"]) if exif.get("dng") else {}
            dng.setdefault(50718, metadata.num_entry(metadata.RATIONAL, [*rational(aspect, False, 10000), 1, 1]))
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
            with quiet_libraw():
                return raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)
        except (rawpy.LibRawError, ValueError, MemoryError) as e:
            raise InputError(f"{name}: cannot render RAW ({error_text(e)})") from None
