"""TIFF/EXIF metadata: read the IFDs of a TIFF-based file, write them back (EXIF blocks, DNG files); XMP packets.

An IFD is a ``dict`` tag → ``Entry`` (TIFF type, count, value bytes in little-endian order); a ``Tree`` names the
IFDs the way EXIF does: "0th" (the descriptive tags of IFD0 only), "Exif", "GPS" and "Interop". Big-endian
files are converted on reading; maker notes are kept as the bytes they are, except that the value offsets of a
note that counts them from the TIFF header (Canon, Sony, Panasonic, …) follow it to wherever it is written
(``Entry.offset``; a note whose offsets point outside itself cannot be carried and is dropped, saying so).

``write_tiff`` lays out any IFD structure (sub-IFDs, image data blocks) in one little-endian TIFF stream; it
writes both the EXIF block of a JPEG and whole DNG files."""

from __future__ import annotations

import base64
import logging
import math
import mmap
import re
import struct
import zlib
from dataclasses import dataclass, field
from fractions import Fraction
from xml.etree import ElementTree
from xml.sax.saxutils import escape

import numpy as np

BYTE, ASCII, SHORT, LONG, RATIONAL, SBYTE, UNDEFINED, SSHORT, SLONG, SRATIONAL, FLOAT, DOUBLE, IFD = range(1, 14)
_UNIT = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 4, SBYTE: 1, UNDEFINED: 1, SSHORT: 2, SLONG: 4,
         SRATIONAL: 4, FLOAT: 4, DOUBLE: 8, IFD: 4}  # byte-swap unit
_PER = {RATIONAL: 2, SRATIONAL: 2}  # units per value
_FMT = {BYTE: "B", SHORT: "H", LONG: "I", SBYTE: "b", SSHORT: "h", SLONG: "i", RATIONAL: "I", SRATIONAL: "i",
        FLOAT: "f", DOUBLE: "d", IFD: "I", UNDEFINED: "B"}

EXIF_IFD, GPS_IFD, INTEROP_IFD, SUB_IFDS, XMP_TAG, IPTC_TAG = 34665, 34853, 40965, 330, 700, 33723
MAKER_NOTE, USER_COMMENT = 37500, 37510

#: IFD0 tags that describe the photo (not the image structure): copied between RAW, JPEG and DNG.
DESCRIPTIVE_IFD0 = frozenset({270, 271, 272, 282, 283, 296, 305, 306, 315, 33432, 18246, 18249,
                              40091, 40092, 40093, 40094, 40095})
#: DNG tags of a RAW's own IFDs that a re-written DNG must carry to render like the original (not the
#: ones invisp writes itself: levels, CFA layout, as-shot neutral, active area, digests).
DNG_CARRIED = frozenset({
    50709, 50718, 50719, 50720, 50721, 50722, 50723, 50724, 50725, 50726, 50727, 50730, 50731, 50732, 50733,
    50734, 50735, 50736, 50738, 50739, 50778, 50779, 50780, 50827, 50931, 50932, 50934, 50936, 50937, 50938,
    50939, 50940, 50941, 50942, 50964, 50965, 50966, 50981, 50982, 51008, 51009, 51022, 51041, 51107, 51108,
    51109, 51110, 51125})
#: EXIF tags that describe a JPEG's own encoding, not the photo: left out of DNGs.
JPEG_ONLY_EXIF = frozenset({37121, 40960, 40961, 40962, 40963})


@dataclass(frozen=True)
class Entry:
    type: int
    count: int
    data: bytes  # little-endian (a maker note: its own byte order)
    #: a maker note whose value offsets count from the TIFF header: the position it was read at (or written for)
    offset: int | None = field(default=None, compare=False)

    def values(self) -> tuple:
        """The numbers (rationals as flat numerator/denominator pairs); ASCII/UNDEFINED give their bytes."""
        if self.type == ASCII:
            return (self.data,)
        fmt = _FMT.get(self.type, "B")
        return struct.unpack(f"<{len(self.data) // struct.calcsize(fmt)}{fmt}", self.data)

    def text(self) -> str:
        return self.data.split(b"\0")[0].decode("utf-8", "replace").strip()


Ifd = dict[int, Entry]
Tree = dict[str, Ifd]


def ascii_entry(s: str | bytes) -> Entry:
    b = (s.encode("utf-8") if isinstance(s, str) else bytes(s)).replace(b"\0", b" ") + b"\0"
    return Entry(ASCII, len(b), b)


def num_entry(type_: int, values: list | tuple) -> Entry:
    vals = list(values)
    count = len(vals) // _PER.get(type_, 1)
    return Entry(type_, count, struct.pack(f"<{len(vals)}{_FMT[type_]}", *vals))


# ----------------------------------------------------------------------------------------------- read


class _Reader:
    def __init__(self, data: bytes | mmap.mmap) -> None:
        if data[:4] not in (b"II*\0", b"MM\0*"):
            raise ValueError("not a TIFF stream")
        self.data, self.e = data, "<" if data[:2] == b"II" else ">"

    def first(self) -> int:
        return struct.unpack_from(self.e + "I", self.data, 4)[0]

    def ifd(self, off: int) -> tuple[Ifd, int]:
        """Entries of the IFD at ``off`` (damaged entries skipped) and the next IFD's offset (0 if none)."""
        d, e = self.data, self.e
        if off < 8 or off + 2 > len(d):
            return {}, 0
        n = struct.unpack_from(e + "H", d, off)[0]
        out: Ifd = {}
        for k in range(n):
            p = off + 2 + 12 * k
            if p + 12 > len(d):
                break
            tag, typ, count = struct.unpack_from(e + "HHI", d, p)
            if typ not in _UNIT:
                continue
            size = _UNIT[typ] * _PER.get(typ, 1) * count
            at = p + 8 if size <= 4 else struct.unpack_from(e + "I", d, p + 8)[0]
            if at + size > len(d) or size > 1 << 24:
                continue
            raw = d[at : at + size]
            unit = _UNIT[typ]
            if e == ">" and unit > 1 and tag != MAKER_NOTE:
                raw = np.frombuffer(raw, f">u{unit}").astype(f"<u{unit}").tobytes()
            ent = Entry(typ, count, raw)
            if tag == MAKER_NOTE and size > 4:
                ent = _carried_note(ent, at)
            if ent is not None and _meaningful(ent):
                out[tag] = ent
        p = off + 2 + 12 * n
        nxt = struct.unpack_from(e + "I", d, p)[0] if p + 4 <= len(d) else 0
        return out, nxt

    def pointer(self, ifd: Ifd, tag: int) -> Ifd:
        ent = ifd.get(tag)
        if ent is None or ent.type not in (LONG, IFD) or ent.count < 1:
            return {}
        return self.ifd(struct.unpack_from("<I", ent.data)[0])[0]


def _meaningful(ent: Entry) -> bool:
    """False for values that state nothing and that validators flag: empty text, rationals over zero."""
    if ent.type == ASCII:
        return bool(ent.data.strip(b"\0 "))
    if ent.type in (RATIONAL, SRATIONAL):
        return all(ent.values()[1::2])
    return True


def read_tree(data: bytes | mmap.mmap) -> tuple[Tree, Ifd]:
    """(the EXIF tree of a TIFF stream, all of IFD0's entries); sub-IFD pointers resolved, not kept."""
    r = _Reader(data)
    ifd0, _ = r.ifd(r.first())
    exif = r.pointer(ifd0, EXIF_IFD)
    tree: Tree = {"0th": {t: v for t, v in ifd0.items() if t in DESCRIPTIVE_IFD0},
                  "Exif": {t: v for t, v in exif.items() if t != INTEROP_IFD},
                  "GPS": r.pointer(ifd0, GPS_IFD), "Interop": r.pointer(exif, INTEROP_IFD)}
    return tree, ifd0


def raw_file_metadata(path: str) -> tuple[Tree, dict[int, Entry], bytes, bytes]:
    """(EXIF tree, DNG tags worth carrying, XMP packet, IPTC record) of a TIFF-based RAW file; empty for other
    formats.

    DNG tags are taken from IFD0 and from the raw image's sub-IFD (NewSubFileType 0), the latter winning."""
    with open(path, "rb") as fh:
        if fh.read(4) not in (b"II*\0", b"MM\0*"):
            return {}, {}, b"", b""
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _raw_file_metadata(data)


def _raw_file_metadata(data: bytes | mmap.mmap) -> tuple[Tree, dict[int, Entry], bytes, bytes]:
    r = _Reader(data)
    tree, ifd0 = read_tree(data)
    dng = {t: v for t, v in ifd0.items() if t in DNG_CARRIED}
    if SUB_IFDS in ifd0 and 50706 in ifd0:
        for off in ifd0[SUB_IFDS].values():
            sub, _ = r.ifd(int(off))
            kind = sub.get(254)
            if kind is not None and kind.values()[0] == 0:
                dng.update({t: v for t, v in sub.items() if t in DNG_CARRIED})
    if 50735 in dng and 42033 not in tree["Exif"]:  # CameraSerialNumber → EXIF BodySerialNumber
        tree["Exif"][42033] = ascii_entry(dng[50735].text())
    xmp = ifd0[XMP_TAG].data if XMP_TAG in ifd0 else b""
    iptc = ifd0[IPTC_TAG].data if IPTC_TAG in ifd0 else b""
    return tree, dng, xmp, iptc


# --------------------------------------------------------------------------------------- maker notes

#: maker-note headers and where the IFD starts after them; a note without one (Canon, newer Sony) starts with it
_NOTE_IFD_START = ((b"SONY DSC \0\0\0", 12), (b"SONY CAM \0\0\0", 12), (b"SONY MOBILE\0", 12),
                   (b"Panasonic\0\0\0", 12), (b"AOC\0", 6), (b"PENTAX \0", 10), (b"OLYMP\0", 8), (b"EPSON\0", 8),
                   (b"OLYMPUS\0", 12), (b"OM SYSTEM\0", 16), (b"FUJIFILM", 12), (b"Apple iOS\0", 14))
_TIFF_MAGIC = (b"II*\0", b"MM\0*")


def _note_values(note: bytes) -> tuple[str, list[tuple[int, int, int]]] | None:
    """(byte order, [(where the offset is stored, the offset, the value's size)] for each value stored outside the
    entry table) of a maker note laid out as an IFD; None for a note with its own TIFF header (Nikon type 3, Apple:
    valid anywhere) or one that is no IFD."""
    if note[10:14] in _TIFF_MAGIC or note[8:12] in _TIFF_MAGIC:
        return None
    start = next((at for prefix, at in _NOTE_IFD_START if note.startswith(prefix)), 0)
    for e in "<>":
        if start + 2 > len(note):
            return None
        n = struct.unpack_from(e + "H", note, start)[0]
        if not 0 < n <= 1000 or start + 2 + 12 * n > len(note):
            continue
        values = []
        for k in range(n):
            p = start + 2 + 12 * k
            _, typ, count = struct.unpack_from(e + "HHI", note, p)
            if typ not in _UNIT:
                break
            size = _UNIT[typ] * _PER.get(typ, 1) * count
            if size > 4:
                values.append((p + 8, struct.unpack_from(e + "I", note, p + 8)[0], size))
        else:
            return e, values
    return None


def _carried_note(ent: Entry, at: int) -> Entry | None:
    """The maker note read at ``at``: as it is where its offsets count from itself (or it has none), with
    ``offset`` = ``at`` where they count from the TIFF header, None (dropped, with a warning) where they point
    outside it (its data would be lost or mislead: what cannot be carried is not)."""
    found = _note_values(ent.data)
    if found is None or not found[1]:
        return ent
    n = len(ent.data)
    values = found[1]
    if all(0 <= off and off + size <= n for _, off, size in values):
        return ent
    if all(at <= off and off + size <= at + n for _, off, size in values):
        return Entry(ent.type, ent.count, ent.data, at)
    logging.getLogger("invisp").warning("invisp: warning: maker notes not carried: their offsets point outside "
                                        "them")
    return None


def _rebased_note(note: bytes, old: int, new: int) -> bytes:
    """``note`` (offsets counted from the TIFF header) moved from position ``old`` to ``new``: every value offset
    shifted with it, and a Canon note's footer (byte order + the note's own position) set to ``new``."""
    found = _note_values(note)
    if old == new or found is None:
        return note
    e, values = found
    out = bytearray(note)
    for where, off, _ in values:
        struct.pack_into(e + "I", out, where, off + new - old)
    if out[-8:-4] in _TIFF_MAGIC:
        struct.pack_into("<I" if out[-8:-6] == b"II" else ">I", out, len(out) - 4, new)
    return bytes(out)


# ---------------------------------------------------------------------------------------------- write


@dataclass
class Node:
    """One IFD to write: its entries, sub-IFDs by pointer tag, image data blocks by offsets tag (273/324, with
    the byte counts written to 279/325), and the next IFD in its chain."""

    entries: Ifd = field(default_factory=dict)
    subs: dict[int, list[Node]] = field(default_factory=dict)
    blocks: dict[int, list[bytes]] = field(default_factory=dict)
    next: Node | None = None


_COUNTS = {273: 279, 324: 325}


def write_tiff(root: Node) -> bytes:
    """One little-endian TIFF stream holding ``root`` (IFD0) and everything it points to."""
    buf = bytearray(b"II*\0\0\0\0\0")
    struct.pack_into("<I", buf, 4, _write_node(buf, root))
    return bytes(buf)


def _align(buf: bytearray) -> None:
    if len(buf) % 2:
        buf.append(0)


def _write_node(buf: bytearray, node: Node) -> int:
    entries = dict(node.entries)
    for tag, blocks in node.blocks.items():
        entries[tag] = Entry(LONG, len(blocks), bytes(4 * len(blocks)))
        entries[_COUNTS[tag]] = num_entry(LONG, [len(b) for b in blocks])
    for tag, subs in node.subs.items():
        entries[tag] = Entry(LONG, len(subs), bytes(4 * len(subs)))
    _align(buf)
    start = len(buf)
    tags = sorted(entries)
    buf += struct.pack("<H", len(tags)) + bytes(12 * len(tags) + 4)
    where: dict[int, int] = {}  # tag → offset of its value bytes
    for k, tag in enumerate(tags):
        ent = entries[tag]
        p = start + 2 + 12 * k
        struct.pack_into("<HHI", buf, p, tag, ent.type, ent.count)
        if len(ent.data) <= 4:
            buf[p + 8 : p + 8 + len(ent.data)] = ent.data
            where[tag] = p + 8
        else:
            _align(buf)
            struct.pack_into("<I", buf, p + 8, len(buf))
            where[tag] = len(buf)
            buf += ent.data if ent.offset is None else _rebased_note(ent.data, ent.offset, len(buf))
    for tag, subs in node.subs.items():
        for i, sub in enumerate(subs):
            struct.pack_into("<I", buf, where[tag] + 4 * i, _write_node(buf, sub))
    for tag, blocks in node.blocks.items():
        for i, block in enumerate(blocks):
            _align(buf)
            struct.pack_into("<I", buf, where[tag] + 4 * i, len(buf))
            buf += block
    if node.next is not None:
        struct.pack_into("<I", buf, start + 2 + 12 * len(tags), _write_node(buf, node.next))
    return start


def tree_node(tree: Tree, extra0: Ifd | None = None) -> Node:
    """IFD0 (``tree['0th']`` plus ``extra0``) with the Exif, GPS and Interop IFDs the tree holds."""
    root = Node({**tree.get("0th", {}), **(extra0 or {})})
    exif = Node(dict(tree.get("Exif", {})))
    if tree.get("Interop"):
        exif.subs[INTEROP_IFD] = [Node(dict(tree["Interop"]))]
    if exif.entries or exif.subs:
        root.subs[EXIF_IFD] = [exif]
    if tree.get("GPS"):
        root.subs[GPS_IFD] = [Node(dict(tree["GPS"]))]
    return root


#: the EXIF version (×100) that defined each Exif/Interop tag after 2.1 (ExifTool's table of the 2.32 standard):
#: a file stating an older ExifVersion than its tags need fails validation (BodySerialNumber under 0221)
_EXIF_SINCE = {0x9214: 220, 0xa420: 220, 0xa500: 221, 0xa005: 210, **dict.fromkeys(range(0xa401, 0xa40d), 220),
               **dict.fromkeys(range(0x8830, 0x8836), 230), **dict.fromkeys(range(0xa430, 0xa436), 230),
               **dict.fromkeys((0x9010, 0x9011, 0x9012, *range(0x9400, 0x9406)), 231),
               **dict.fromkeys((0xa460, 0xa461, 0xa462), 232)}
#: the GPSVersionID that defined each GPS tag after 2.0.0.0
_GPS_SINCE = {**dict.fromkeys(range(0x1b, 0x1f), (2, 2, 0, 0)), 0x1f: (2, 3, 0, 0)}


def exif_version(exif: Ifd, interop: bool) -> Entry:
    """The ExifVersion to write for ``exif`` (and an Interop IFD, whose InteropIndex needs 0210): the one it states
    (0232 where it states none), raised to the first version that defines every tag it holds."""
    need = max([_EXIF_SINCE.get(t, 0) for t in exif] + [210 if interop else 0])
    stated = exif.get(36864)
    version = int(stated.data) if stated is not None and len(stated.data) == 4 and stated.data.isdigit() else 232
    return Entry(UNDEFINED, 4, b"%04d" % max(version, need))


def gps_version(gps: Ifd) -> Entry:
    """The GPSVersionID to write for ``gps``: the one it states (2.3.0.0 where none), raised to what its tags need."""
    stated = gps.get(0)
    version = tuple(stated.values()) if stated is not None and stated.count == 4 else (2, 3, 0, 0)
    return num_entry(BYTE, list(max([version, *(_GPS_SINCE.get(t, (0,)) for t in gps)])))


def jpeg_tree(tree: Tree, width: int, height: int) -> Tree:
    """``tree`` completed as the EXIF block of a ``width`` × ``height`` sRGB JPEG needs it to validate: Orientation 1
    (pixels stored upright), X/YResolution (72 dpi where absent), YCbCrPositioning centred (libjpeg),
    ComponentsConfiguration Y Cb Cr, FlashpixVersion, ColorSpace sRGB, PixelX/YDimension, an R98 Interop IFD, and
    ExifVersion and GPSVersionID as new as the tags it holds need."""
    zeroth, exif = tree["0th"], tree["Exif"]
    zeroth[274] = num_entry(SHORT, [1])
    if 282 not in zeroth or 283 not in zeroth:
        zeroth.update({282: num_entry(RATIONAL, [72, 1]), 283: num_entry(RATIONAL, [72, 1]),
                       296: num_entry(SHORT, [2])})
    zeroth.setdefault(296, num_entry(SHORT, [2]))
    zeroth[531] = num_entry(SHORT, [1])
    exif[37121] = Entry(UNDEFINED, 4, b"\x01\x02\x03\x00")
    exif.setdefault(40960, Entry(UNDEFINED, 4, b"0100"))
    exif[40961] = num_entry(SHORT, [1])
    exif[40962] = num_entry(LONG, [width])
    exif[40963] = num_entry(LONG, [height])
    tree["Interop"] = {1: ascii_entry("R98"), 2: Entry(UNDEFINED, 4, b"0100")}
    exif[36864] = exif_version(exif, interop=True)
    if tree.get("GPS"):
        tree["GPS"][0] = gps_version(tree["GPS"])
    return tree


#: the EXIF basics of ``RawImage.exif``/``params.camera`` as (key, IFD, tag, TIFF type)
BASICS = (("make", "0th", 271, ASCII), ("model", "0th", 272, ASCII), ("datetime", "0th", 306, ASCII),
          ("datetime", "Exif", 36867, ASCII), ("exposure_time", "Exif", 33434, RATIONAL),
          ("f_number", "Exif", 33437, RATIONAL), ("focal_length", "Exif", 37386, RATIONAL),
          ("iso", "Exif", 34855, SHORT), ("lens", "Exif", 42036, ASCII))


def _rational(v: float) -> tuple[int, int]:
    f = Fraction(float(v)).limit_denominator(100000)
    return f.numerator, f.denominator


def camera_tree(camera: dict) -> Tree:
    """The EXIF tree for ``camera`` (a ``RawImage.exif``/``params.camera``): its packed "exif" tree if any, with
    the basics (make, model, exposure, …) added where the tree lacks them."""
    packed = camera.get("exif")
    tree = unpack_tree(packed) if packed else {}
    tree = {k: dict(tree.get(k, {})) for k in ("0th", "Exif", "GPS", "Interop")}
    for key, ifd, tag, type_ in BASICS:
        value = camera.get(key)
        if value is None or tag in tree[ifd]:
            continue
        if type_ == ASCII:
            if str(value).strip():
                tree[ifd][tag] = ascii_entry(str(value))
            continue
        v = float(value)
        if v > 0 and math.isfinite(v):
            tree[ifd][tag] = num_entry(type_, [min(65535, round(v))] if type_ == SHORT else _rational(v))
    return tree


# ------------------------------------------------------------------------------------ compact storage


def pack_ifd(ifd: Ifd) -> str:
    """An IFD as compact text for JSON (zlib-compressed one-IFD TIFF, base64)."""
    return base64.b64encode(zlib.compress(write_tiff(Node(dict(ifd))), 9)).decode("ascii")


def unpack_ifd(text: str) -> Ifd:
    r = _Reader(zlib.decompress(base64.b64decode(text)))
    return r.ifd(r.first())[0]


def pack_tree(tree: Tree) -> str:
    return base64.b64encode(write_tiff(tree_node(tree))).decode("ascii")


def unpack_tree(text: str) -> Tree:
    return read_tree(base64.b64decode(text))[0]


# ----------------------------------------------------------------------------------------------- XMP

INVISP_NS = "http://ns.invisp.dev/1.0/"
_RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
_OURS = re.compile(rb'\s*<rdf:Description rdf:about="" xmlns:invisp="' + re.escape(INVISP_NS.encode())
                   + rb'">.*?</rdf:Description>', re.S)


def _strip_record(packet: bytes) -> bytes:
    """``packet`` without any invisp:Record, in whichever form and under whichever prefix a tool rewrote it (an
    old record must never travel on: it would shadow the new one)."""
    packet = _OURS.sub(b"", packet)
    ns = re.escape(INVISP_NS.encode())
    for prefix in set(re.findall(rb"xmlns:([\w.-]+)=[\"']" + ns + rb"[\"']", packet)):
        p = re.escape(prefix)
        packet = re.sub(rb"\s*<" + p + rb":Record\b[^>]*?(/>|>.*?</" + p + rb":Record>)", b"", packet, flags=re.S)
        packet = re.sub(rb"\s+" + p + rb":Record=([\"']).*?\1", b"", packet, flags=re.S)
    return packet


def xmp_with_record(record: str, source: bytes = b"") -> bytes:
    """An XMP packet holding ``record`` as invisp:Record, merged into ``source`` (an existing packet) if given."""
    ours = (f'<rdf:Description rdf:about="" xmlns:invisp="{INVISP_NS}">'
            f"<invisp:Record>{escape(record)}</invisp:Record></rdf:Description>").encode("ascii")
    source = _strip_record(source.rstrip(b"\0 \r\n\t"))
    at = source.rfind(b"</rdf:RDF>")
    if at < 0:
        return (b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
                b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="' + _RDF_NS.encode() + b'">'
                + ours + b"</rdf:RDF></x:xmpmeta>\n" + b'<?xpacket end="w"?>')
    return source[:at] + ours + source[at:]


def xmp_record(packet: bytes) -> str | None:
    """The invisp:Record of an XMP packet (element or attribute form, as XMP tools may rewrite it), or None."""
    if INVISP_NS.encode() not in packet:
        return None
    try:
        root = ElementTree.fromstring(packet.strip(b"\0 \r\n\t"))
    except ElementTree.ParseError:
        return None
    name = f"{{{INVISP_NS}}}Record"
    for el in root.iter():
        if el.tag == name and el.text:
            return el.text
        if name in el.attrib:
            return el.attrib[name]
    return None


def xmp_without_record(packet: bytes) -> bytes:
    """The packet less the invisp record (``_strip_record``); b"" if nothing else is left."""
    rest = _strip_record(packet)
    try:
        root = ElementTree.fromstring(rest.strip(b"\0 \r\n\t"))
    except ElementTree.ParseError:
        return rest
    return rest if any(len(d) or len(d.attrib) > 1 for d in root.iter(f"{{{_RDF_NS}}}Description")) else b""
