"""Writing a ``RawImage`` as a DNG (lossless-JPEG tiles, the original's DNG tags, EXIF/GPS/XMP, a preview) and
recognising DNGs invisp wrote."""

from __future__ import annotations

import base64
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .. import lj92, metadata
from ..settings import CFA_LAYOUTS, COLOUR_INDEX, LINEAR_CFA, cfa_rows, dng_cfa_problem
from .colour import cam_xyz_coeff, xyz_to_cam_from_rgb_cam
from .image import RawImage, apply_flip, exif_to_flip, flip_to_exif


def rational(x: float, signed: bool, max_den: int = 1_000_000) -> tuple[int, int]:
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
        return rational(float(best), signed=False)
    return fr.numerator, fr.denominator


def rationals(values: Any, signed: bool) -> list[int]:
    out: list[int] = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        out.extend(rational(v, signed))
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
    rows at the image width, so a tile must not be wider than the image). LibRaw also misreads a DNG exactly two
    tiles wide (every second row comes back empty; measured for tile widths 128–512): such an image is one tile
    wide instead."""
    tw = min(DNG_TILE, w)
    return min(DNG_TILE, h), (w if w == 2 * tw else tw)


def _preview(raw: RawImage) -> np.ndarray:
    """A small sRGB uint8 rendering (sensor orientation) for the DNG's preview IFD: 2×2 CFA cells binned to
    RGB, white-balanced, ``rgb_cam``, sRGB gamma; block-averaged to ≤ PREVIEW_SIDE pixels on the long side."""
    if raw.cfa not in CFA_LAYOUTS:
        return _preview_any(raw)
    m = np.asarray(raw.mosaic)
    h2, w2 = m.shape[0] // 2, m.shape[1] // 2
    f = max(1, -(-max(h2, w2) // PREVIEW_SIDE))
    ph, pw = max(1, h2 // f), max(1, w2 // f)
    # the f rows of a block first (whole contiguous rows), then its f columns: (ph, 2, pw, 2) block means
    rows = m[: 2 * ph * f, : 2 * pw * f].reshape(ph, f, 2, 2 * pw * f).sum(axis=1, dtype=np.float32)
    cells = rows.reshape(ph, 2, pw, f, 2).sum(axis=3) / np.float32(f * f)
    black = np.asarray(raw.black, dtype=np.float32).reshape(2, 2)
    cells = (cells - black[None, :, None, :]) / max(float(raw.white) - float(black.mean()), 1.0)
    rgb = np.zeros((ph, pw, 3), np.float32)
    for r in range(2):
        for c in range(2):
            k = COLOUR_INDEX[raw.cfa[2 * r + c]]
            rgb[..., k] += cells[:, r, :, c] * (0.5 if k == 1 else 1.0)
    return _preview_srgb(raw, rgb)


def _preview_srgb(raw: RawImage, rgb: np.ndarray) -> np.ndarray:
    """Normalised camera RGB → white balance, ``rgb_cam``, sRGB gamma, uint8."""
    rgb = np.clip(rgb * np.asarray(raw.wb, dtype=np.float32)[:3], 0, 1) @ np.asarray(raw.rgb_cam, np.float32).T
    rgb = np.clip(rgb, 0, 1)
    srgb = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    return (srgb * 255 + 0.5).astype(np.uint8)


def _preview_any(raw: RawImage) -> np.ndarray:
    """The preview of a non-Bayer CFA or a linear image: each colour's mean over f × f blocks (f a multiple of the
    CFA's period, so that every block holds every colour), black-subtracted and normalised."""
    m = np.asarray(raw.mosaic, dtype=np.float32)
    rows = cfa_rows(raw.cfa)
    period = int(np.lcm(len(rows), len(rows[0]))) if rows else 1
    h, w = m.shape[:2]
    f = period * max(1, -(-max(h, w) // (PREVIEW_SIDE * period)))
    ph, pw = max(1, h // f), max(1, w // f)
    black = np.asarray(raw.black, dtype=np.float32)
    if not rows:  # linear: (h, w, 3)
        v = m[: ph * f, : pw * f] - black
        rgb = v.reshape(ph, f, pw, f, 3).mean(axis=(1, 3))
    else:
        idx = np.array([[COLOUR_INDEX[c] for c in r] for r in rows])
        reps = (-(-h // idx.shape[0]), -(-w // idx.shape[1]))
        sites = np.tile(idx, reps)[: ph * f, : pw * f]
        v = m[: ph * f, : pw * f] - np.tile(black, reps)[: ph * f, : pw * f]
        rgb = np.stack([(v * (sites == c)).reshape(ph, f, pw, f).sum(axis=(1, 3))
                        / np.maximum((sites == c).reshape(ph, f, pw, f).sum(axis=(1, 3)), 1) for c in range(3)], -1)
    return _preview_srgb(raw, rgb / max(float(raw.white) - float(black.mean()), 1.0))


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
        tree["Exif"][36864] = metadata.exif_version(tree["Exif"], bool(tree.get("Interop")))
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
    (Exif and GPS IFDs) and XMP; a sub-IFD holds a small sRGB preview.

    A RAW without an as-shot white balance (``wb_source == "auto"``) gives a DNG without AsShotNeutral: each
    converter then makes its own choice for the DNG as it does for the original (LibRaw: its auto WB,
    recomputed from the same mosaic; dcraw: daylight). Stating LibRaw's auto WB as AsShotNeutral made dcraw
    and RawTherapee render the Kodak DC120's DNG unlike the original (31.5 / 36.6 dB without any codec)."""
    mosaic = np.asarray(raw.mosaic)
    rows = cfa_rows(raw.cfa)  # ValueError for anything but a Bayer layout, another periodic CFA or linear
    if problem := dng_cfa_problem(raw.cfa):
        raise ValueError(f"cannot write {problem}")
    linear = raw.cfa == LINEAR_CFA
    if mosaic.ndim != (3 if linear else 2) or mosaic.dtype != np.uint16 or (linear and mosaic.shape[2] != 3):
        raise ValueError(f"mosaic must be a {'(H, W, 3)' if linear else '2-D'} uint16 array, got {mosaic.dtype} "
                         f"{mosaic.shape}")
    h, w = mosaic.shape[:2]
    black = np.asarray(raw.black, dtype=np.float64)
    black = black.reshape(3) if linear else black.reshape(len(rows), len(rows[0]))
    if rows and len(rows[0]) == 1:  # LibRaw's filters repeat every 2 columns: a 1-column pattern twice
        rows, black = [r * 2 for r in rows], np.repeat(black, 2, axis=1)
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
        50706: md.num_entry(B, [1, 4, 0, 0]),  # DNGVersion
        50707: md.num_entry(B, [1, 1, 0, 0]),  # DNGBackwardVersion
        50708: md.ascii_entry(unique),  # UniqueCameraModel
        50717: md.num_entry(L, [int(raw.white)]),  # WhiteLevel
    }
    if linear:  # LinearRaw: 3 uncompressed 16-bit samples per pixel in one strip, black per sample
        # (BlackLevel of 3 values, no BlackLevelRepeatDim: its default 1×1 is the spec's; RawTherapee 5.9 leaves the
        # black unsubtracted where the tag is written, docs/formats.md)
        del tags[322], tags[323]
        tags.update({258: md.num_entry(H, [16] * 3), 259: md.num_entry(H, [1]), 262: md.num_entry(H, [34892]),
                     277: md.num_entry(H, [3]), 278: md.num_entry(L, [h])})
    else:
        tags.update({
            33421: md.num_entry(H, list(black.shape)),  # CFARepeatPatternDim: 2×2, 6×6, …
            33422: md.num_entry(B, [COLOUR_INDEX[c] for c in "".join(rows)]),  # CFAPattern
            50710: md.num_entry(B, [0, 1, 2]),  # CFAPlaneColor
            50711: md.num_entry(H, [1]),  # CFALayout: rectangular
            50713: md.num_entry(H, list(black.shape)),  # BlackLevelRepeatDim
        })
    if raw.wb_source != "auto":  # AsShotNeutral
        tags[50728] = md.num_entry(R, [v for m in wb / wb[1] for v in _neutral_rational(m)])
    if np.all(black == np.round(black)) and np.all(black >= 0):
        tags[50714] = md.num_entry(L, [int(v) for v in black.ravel()])  # BlackLevel
    else:
        tags[50714] = md.num_entry(R, rationals(np.maximum(black, 0), False))
    carried = md.unpack_ifd(exif["dng"]) if exif.get("dng") else {}
    if 50721 not in carried:
        tags[50721] = md.num_entry(SR, rationals(_colour_matrix_for_dng(raw), True))  # ColorMatrix1
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
    if linear:
        root.blocks[273] = [np.ascontiguousarray(mosaic, dtype="<u2").tobytes()]
    else:
        root.blocks[324] = lj92.encode_tiles(mosaic, bits, _tile_size(h, w))
    pv = _preview(raw)
    root.subs[md.SUB_IFDS] = [md.Node(
        {254: md.num_entry(L, [1]), 256: md.num_entry(L, [pv.shape[1]]), 257: md.num_entry(L, [pv.shape[0]]),
         258: md.num_entry(H, [8, 8, 8]), 259: md.num_entry(H, [1]), 262: md.num_entry(H, [2]),
         277: md.num_entry(H, [3]), 278: md.num_entry(L, [pv.shape[0]]), 284: md.num_entry(H, [1]),
         50970: md.num_entry(L, [2])},  # PreviewColorSpace: sRGB
        blocks={273: [pv.tobytes()]})]
    Path(path).write_bytes(md.write_tiff(root))  # an OSError is reported by fileio.atomic_output, naming the target
