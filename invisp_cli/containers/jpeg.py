"""JPEG container: Pillow-encoded sRGB pixels, the photo's own metadata, and the invisp record in XMP.

Where things go:
  APP1 EXIF  the original's EXIF, all of it (IFD0's descriptive tags, Exif IFD incl. maker notes where they fit,
             GPS, Interop), completed so that it validates for a JPEG: Orientation = 1 (pixels are stored
             upright), X/YResolution, ExifVersion, ColorSpace = sRGB, PixelX/YDimension; where the original has
             none, ImageDescription = "invisp model <id> sha256 <hash>" and Software = "invisp <version>";
  APP1 XMP   the original's XMP packet plus one ``rdf:Description`` in the invisp namespace whose
             ``invisp:Record`` is the ``ReconstructionParams`` JSON (schema invisp/1 and its checksum) — its
             own place, so editing any EXIF field (UserComment included) leaves decode intact;
  APP2 ICC   an sRGB profile;
  APP13      the original's IPTC record (a TIFF-based RAW's IPTC-NAA tag), where it has one.

Files written before the record moved to XMP carry it in Exif ``UserComment``; they still decode.
On decode (``read_jpeg``) the EXIF, XMP and IPTC *as they are in the JPEG now* (GPS, copyright, keywords, ratings added
later by a photo manager) go into ``params.camera`` ("exif", "xmp", "iptc"), from where ``rawio.write_dng`` writes
them.

The record is bound to its pixels (``integrity``): encode stores a fingerprint of the decoded image and the
SHA-256 of the image data in it; decode checks them (``read_bound``), undoes a lossless rotation or flip made
after encode, and refuses a record that is not this image's, a second record, or a greyscale copy.

Optional (``encode --exact``/``--max-error``): APP12 segments after these carry the residual layer
(``containers/layer.py``, ``residual.py``); it is separate from schema invisp/1 and its checksum."""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import struct
import threading
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from .. import __version__
from .. import metadata as md
from ..errors import InputError, MetadataError
from ..fileio import check_input
from ..params import ReconstructionParams
from ..settings import JPEG
from . import integrity

SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
_ASCII = b"ASCII\x00\x00\x00"  # the legacy record's UserComment prefix
EXIF_LIMIT = 65533
_EXIF_HEADER = b"Exif\x00\x00"
#: keys of ``params.camera`` that travel in the JPEG's own EXIF/XMP blocks, not in the record
TRANSIENT = ("exif", "xmp", "iptc", "orientation")
#: never dropped to fit the segment: what makes the block valid for a JPEG
_REQUIRED = {"0th": {271, 272, 274, 282, 283, 296, 531}, "Exif": {36864, 37121, 40960, 40961, 40962, 40963}}


def exif_tree(params: ReconstructionParams, width: int, height: int) -> md.Tree:
    """The EXIF tree of the JPEG: the camera's own (``params.camera['exif']``), completed as a JPEG needs."""
    tree = md.camera_tree(params.camera)
    tree["0th"].setdefault(270, md.ascii_entry(f"invisp model {params.model_id} sha256 {params.model_sha256}"))
    tree["0th"].setdefault(305, md.ascii_entry(f"invisp {__version__}"))
    return md.jpeg_tree(tree, width, height)


def build_exif(params: ReconstructionParams, width: int, height: int) -> bytes:
    """The APP1 EXIF block (``exif_tree``); maker notes, then the bulkiest optional tags, are left out if it
    would exceed one segment."""
    tree = exif_tree(params, width, height)
    while True:
        blob = _EXIF_HEADER + md.write_tiff(md.tree_node(tree))
        if len(blob) <= EXIF_LIMIT:
            return blob
        optional = [(len(e.data) + (1 << 30 if tag == md.MAKER_NOTE else 0), ifd, tag) for ifd in ("0th", "Exif", "GPS")
                    for tag, e in tree[ifd].items() if tag not in _REQUIRED.get(ifd, ())]
        if not optional:
            raise MetadataError(f"metadata is {len(blob)} bytes, over the {EXIF_LIMIT}-byte EXIF segment limit")
        _, ifd, tag = max(optional)
        del tree[ifd][tag]


def record_params(params: ReconstructionParams) -> ReconstructionParams:
    """``params`` as the record stores it: without the metadata that travels in the EXIF/XMP blocks."""
    camera = {k: v for k, v in params.camera.items() if k not in TRANSIENT}
    return ReconstructionParams(params.model_id, params.model_sha256, params.raw, params.render, camera,
                                params.pixels)


_XMP_LIMIT = EXIF_LIMIT - len(b"http://ns.adobe.com/xap/1.0/\x00")


def build_xmp(params: ReconstructionParams) -> bytes:
    """The XMP packet: the camera's own (``params.camera['xmp']``, if it fits) plus the invisp record. Over one
    segment, the camera's packet goes first, then the bulkiest carried DNG tags (profile tables, opcode lists)."""
    source = str(params.camera.get("xmp") or "").encode("utf-8")
    record = record_params(params)
    dng = md.unpack_ifd(record.camera["dng"]) if record.camera.get("dng") else {}
    while True:
        xmp = md.xmp_with_record(record.to_json(), source)
        if len(xmp) <= _XMP_LIMIT:
            return xmp
        if source:
            source = b""
        elif dng:
            del dng[max(dng, key=lambda t: len(dng[t].data))]
            record.camera["dng"] = md.pack_ifd(dng)
        else:
            raise MetadataError(f"invisp record is {len(xmp)} bytes, over the {_XMP_LIMIT}-byte XMP segment limit")


@functools.cache
def srgb_icc() -> bytes:
    """An sRGB ICC profile (LittleCMS's built-in), dated 2000-01-01 instead of now so that the same input always
    gives the same JPEG bytes; its profile ID (MD5, ICC.1 7.2.18) recomputed."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    icc[24:36] = struct.pack(">6H", 2000, 1, 1, 0, 0, 0)
    icc[84:100] = bytes(16)
    masked = bytearray(icc)
    masked[44:48] = masked[64:68] = bytes(4)
    icc[84:100] = hashlib.md5(masked).digest()
    return bytes(icc)


def encode_jpeg(rgb: np.ndarray, params: ReconstructionParams) -> bytes:
    """JPEG bytes of an upright uint8 (H, W, 3) image with its EXIF, the XMP record and an sRGB profile; the
    record bound to the encoded pixels (``integrity.bind`` of the decoded image, spliced into the XMP segment:
    the image data does not depend on it)."""
    return encode_jpeg_pixels(rgb, params)[0]


def encode_jpeg_pixels(rgb: np.ndarray, params: ReconstructionParams) -> tuple[bytes, np.ndarray]:
    """(``encode_jpeg``'s bytes, their decoded pixels: what a reader's Pillow decode gives, as bound)."""
    settings = JPEG.from_json(params.render)
    quality, subsampling = settings.quality, SUBSAMPLING[settings.subsampling]
    exif = build_exif(params, rgb.shape[1], rgb.shape[0])
    xmp, icc = build_xmp(params), srgb_icc()
    _reserve_output_buffer(4 * rgb.shape[0] * rgb.shape[1] + len(exif) + len(xmp) + len(icc) + (1 << 16))
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, "JPEG", quality=quality, subsampling=subsampling, exif=exif,
                                     xmp=xmp, icc_profile=icc, optimize=True)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as img:
        decoded = np.asarray(img.convert("RGB"))
    bound = build_xmp(replace(params, pixels=integrity.bind(decoded, data)))
    data = _replace_xmp(data, xmp, bound)
    return _with_iptc(data, base64.b64decode(params.camera.get("iptc") or "")), decoded


def _replace_xmp(data: bytes, old: bytes, new: bytes) -> bytes:
    """``data`` with the APP1 XMP segment holding packet ``old`` replaced by one holding ``new``."""
    payload = integrity.XMP_HEADER + old
    at = data.index(payload) - 4
    segment = b"\xff\xe1" + struct.pack(">H", 2 + len(integrity.XMP_HEADER) + len(new)) + integrity.XMP_HEADER + new
    return data[:at] + segment + data[at + 4 + len(payload) :]


_PHOTOSHOP = b"Photoshop 3.0\x00"


def _with_iptc(data: bytes, iptc: bytes) -> bytes:
    """The JPEG with an APP13 segment (Photoshop IRB, resource 0x0404) holding the IPTC record, after the APPn
    segments Pillow wrote; unchanged without a record or where it would not fit one segment."""
    block = b"8BIM\x04\x04\x00\x00" + struct.pack(">I", len(iptc)) + iptc + bytes(len(iptc) % 2)
    if not iptc or len(_PHOTOSHOP + block) > EXIF_LIMIT:
        return data
    at = 2
    while data[at] == 0xFF and 0xE0 <= data[at + 1] <= 0xEF:
        at += 2 + int.from_bytes(data[at + 2 : at + 4], "big")
    return data[:at] + b"\xff\xed" + struct.pack(">H", 2 + len(_PHOTOSHOP + block)) + _PHOTOSHOP + block + data[at:]


_BUFFER_LOCK = threading.Lock()


def _reserve_output_buffer(nbytes: int) -> None:
    """Let Pillow's one-shot buffer hold the whole JPEG. With ``optimize=True`` libjpeg writes the file in one
    pass into a buffer Pillow sizes at W·H bytes, which noisy content (high ISO) at high quality outgrows
    ("Suspension not allowed here"); 4 bytes per pixel is above any baseline JPEG of 8-bit RGB (uniform noise at
    quality 100, 4:4:4: 2.92 bytes per pixel). The buffer is allocated lazily by the OS, so untouched pages cost
    no memory."""
    with _BUFFER_LOCK:
        ImageFile.MAXBLOCK = max(ImageFile.MAXBLOCK, nbytes)


def read_params(img: Image.Image, name: str, data: bytes | None = None) -> ReconstructionParams:
    """The ReconstructionParams stored in an opened JPEG (XMP record, or the legacy Exif UserComment);
    MetadataError if absent or invalid, or if the file's bytes ``data`` hold more than one invisp record (one
    was added from another file: which is this image's cannot be told)."""
    if data is None:
        record = md.xmp_record(img.info.get("xmp") or b"")
    else:
        records = [r for r in map(md.xmp_record, integrity.xmp_packets(data)) if r is not None]
        if len(records) > 1:
            raise MetadataError(f"{name}: holds {len(records)} invisp records (one was added from another file "
                                "or an editor duplicated it): which one belongs to this image cannot be told")
        record = records[0] if records else None
    if record is None:
        record = _legacy_record(img, name)
    try:
        return ReconstructionParams.from_json(record)
    except MetadataError as e:
        raise MetadataError(f"{name}: {e}") from None


def _legacy_record(img: Image.Image, name: str) -> str:
    """The record as invisp wrote it before it moved to XMP: Exif UserComment, ASCII character code."""
    blob = img.info.get("exif")
    if not blob:
        raise MetadataError(f"{name}: no invisp metadata (the JPEG has neither an invisp XMP record nor EXIF)")
    try:
        comment = md.read_tree(blob[len(_EXIF_HEADER):] if blob.startswith(_EXIF_HEADER) else blob)[0]["Exif"]
    except (ValueError, struct.error) as e:
        raise MetadataError(f"{name}: EXIF block is damaged ({e})") from None
    data = comment[md.USER_COMMENT].data if md.USER_COMMENT in comment else b""
    if not data.startswith(_ASCII + b"{"):
        raise MetadataError(f"{name}: no invisp metadata (not written by invisp encode)")
    try:
        return data[len(_ASCII):].decode("ascii")
    except UnicodeDecodeError:
        raise MetadataError(f"{name}: invisp metadata is not ASCII: the file was modified") from None


def current_metadata(img: Image.Image) -> dict:
    """The photo metadata a JPEG carries now, for the DNG: {"exif": packed tree, "xmp": packet, "iptc": base64,
    "orientation": EXIF Orientation 2..8 if the JPEG was turned by a tag} (keys only where present), less what
    describes the JPEG encoding and what invisp itself put there."""
    out: dict = {}
    blob = img.info.get("exif") or b""
    try:
        tree, ifd0 = md.read_tree(blob[len(_EXIF_HEADER):] if blob.startswith(_EXIF_HEADER) else blob)
    except (ValueError, struct.error):
        tree, ifd0 = {}, {}
    orientation = ifd0[274].values()[0] if 274 in ifd0 and ifd0[274].type == md.SHORT else 1
    if orientation in range(2, 9):  # turned in a photo manager after encode
        out["orientation"] = int(orientation)
    if tree:
        zeroth, exif = tree["0th"], tree["Exif"]
        for tag in (282, 283, 296):
            zeroth.pop(tag, None)
        if 270 in zeroth and zeroth[270].text().startswith("invisp model "):
            del zeroth[270]
        if 305 in zeroth and zeroth[305].text().startswith("invisp"):
            del zeroth[305]
        for tag in md.JPEG_ONLY_EXIF:
            exif.pop(tag, None)
        if md.USER_COMMENT in exif and exif[md.USER_COMMENT].data.startswith(_ASCII + b"{"):
            del exif[md.USER_COMMENT]
        tree["Interop"] = {}
        if any(tree.values()):
            out["exif"] = md.pack_tree(tree)
    xmp = md.xmp_without_record(img.info.get("xmp") or b"")
    if xmp:
        out["xmp"] = xmp.decode("utf-8", "replace")
    iptc = (img.info.get("photoshop") or {}).get(0x0404)
    if iptc:
        out["iptc"] = base64.b64encode(iptc).decode("ascii")
    return out


def open_jpeg(path: str | os.PathLike, data: bytes | None = None) -> tuple[Image.Image, str]:
    """The opened, loaded JPEG at ``path`` (from its bytes ``data`` when given) and its file name."""
    p = check_input(path)  # missing, a folder, a FIFO or a device: said as such
    try:
        img = Image.open(p if data is None else io.BytesIO(data))
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise InputError(f"{p}: not a readable image ({e})") from None
    if img.format != "JPEG":
        raise InputError(f"{p}: not a JPEG (found {img.format})")
    return img, p.name


@dataclass
class Bound:
    """An invisp JPEG as decode uses it: its pixels upright as encode wrote them (a lossless turn undone), the
    validated record, and what the pixels are relative to the record (``integrity.Check``)."""

    rgb: np.ndarray
    params: ReconstructionParams
    check: integrity.Check
    data: bytes


def read_bound(path: str | os.PathLike) -> Bound:
    """Read an invisp JPEG and check its pixels against its record (``integrity.check``).

    MetadataError (exit 4) for a greyscale copy, two records, a size that fits neither way round, or pixels
    that are not this record's image or are damaged beyond what a re-save does; a ``changed`` or
    ``transformed`` image is returned with its check for the caller to report. ``params.camera`` holds the
    photo metadata the JPEG carries now (``current_metadata``), for the DNG, and the EXIF orientation the DNG
    should show (a turn of the pixels after encode included)."""
    data = _read_bytes(path)
    img, name = open_jpeg(path, data)
    params = read_params(img, name, data)
    if img.mode in ("L", "LA", "1", "I", "I;16", "F"):
        raise MetadataError(f"{name}: the image was converted to greyscale after encode: the colour the RAW is "
                            "recovered from is gone")
    rgb = np.asarray(img.convert("RGB"))
    h, w = params.raw["visible_size"]
    expect = (w, h) if int(params.raw["flip"]) & 4 else (h, w)
    if rgb.shape[:2] not in (tuple(expect), tuple(expect[::-1])) or (
            rgb.shape[:2] != tuple(expect) and params.pixels is None):
        raise MetadataError(f"{name}: image is {rgb.shape[1]}×{rgb.shape[0]} but its metadata says "
                            f"{expect[1]}×{expect[0]}: the file was modified")
    try:
        check = integrity.check(rgb, data, params.pixels, tuple(expect))
    except ValueError as e:
        raise InputError(f"{name}: damaged JPEG ({e})") from None
    if check.state == "foreign":
        raise MetadataError(f"{name}: {check.summary}; no RAW can be recovered from it")
    meta = current_metadata(img)
    tag = meta.pop("orientation", 1)
    turned = check.orientation(tag)
    if turned != 1:
        meta["orientation"] = turned
    params.camera.update(meta)
    return Bound(check.rgb, params, check, data)


def describe_pixels(path: str | os.PathLike) -> tuple[str, str]:
    """(state, one line) of an invisp JPEG's pixels against its record, for ``invisp info``: the
    ``integrity.Check`` state, or "refused" with the reason decode would give."""
    try:
        check = read_bound(path).check
    except MetadataError as e:
        return "refused", str(e).split(": ", 1)[-1]
    return check.state, check.summary


def _read_bytes(path: str | os.PathLike) -> bytes:
    p = check_input(path)
    try:
        return p.read_bytes()
    except OSError as e:
        raise InputError(f"{p}: cannot be read ({e.strerror})") from None


def read_jpeg(path: str | os.PathLike) -> tuple[np.ndarray, ReconstructionParams]:
    """Decoded upright uint8 RGB pixels (H, W, 3) and the validated reconstruction parameters (``read_bound``)."""
    bound = read_bound(path)
    return bound.rgb, bound.params
