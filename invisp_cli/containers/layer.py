"""The residual layer's place in a JPEG file: a run of APP12 segments that ordinary readers skip.

Each segment (≤ 64 KiB, as every JPEG marker segment) is

    FF EC  length:u16be  "invisp-residual\\0"  seq:u32be (1-based)  total:u32be  chunk

and the chunks, in ``seq`` order, concatenate to the layer blob (``residual.py`` defines its content). The run
is inserted right after the leading APPn/COM segments (JFIF, EXIF, ICC), so the EXIF block stays where
readers look for it and nothing changes in the compressed image: decoders skip APPn segments they do not
recognise (the signature is not JUMBF's "JP", so C2PA readers ignore them too). Marker segments survive
tools that rewrite metadata (exiftool) better than data after EOI, which many tools drop or flag.
Removing the run gives back the plain JPEG byte for byte. APP12 because ``exiftool -validate`` accepts it (it
flags unknown APP3–APP11, APP13 and APP15 segments as warnings); files written with APP11 segments, as invisp did
before, are read the same way."""

from __future__ import annotations

import struct

from ..errors import InputError, MetadataError

SIGNATURE = b"invisp-residual\x00"
APP12 = 0xEC
LEGACY_APP11 = 0xEB
_HEAD = struct.Struct(">II")  # seq, total
CHUNK = 0xFFFF - 2 - len(SIGNATURE) - _HEAD.size  # payload bytes per segment: 65509
_STANDALONE = {0x01, *range(0xD0, 0xD8)}  # TEM, RST0..7: markers without a length field
_SOS, _EOI = 0xDA, 0xD9


class LayerError(MetadataError):
    """The residual layer is damaged, or what it reconstructs fails its SHA-256 check."""


def _segments(data: bytes, name: str) -> tuple[list[tuple[int, int, int]], int]:
    """The marker segments before the first SOS as (marker, start, end) offsets, and where the scan starts."""
    if data[:2] != b"\xff\xd8":
        raise InputError(f"{name}: not a JPEG (no SOI marker)")
    out, i, n = [], 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise InputError(f"{name}: damaged JPEG (no marker at byte {i})")
        while i + 1 < n and data[i + 1] == 0xFF:  # fill bytes
            i += 1
        if i + 1 >= n:
            break
        m = data[i + 1]
        if m in (_SOS, _EOI):
            return out, i
        end = i + 2 if m in _STANDALONE else i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if end > n or (m not in _STANDALONE and end < i + 4):
            raise InputError(f"{name}: damaged JPEG (marker segment at byte {i} runs past the end)")
        out.append((m, i, end))
        i = end
    raise InputError(f"{name}: damaged JPEG (no image data)")


def _is_layer(data: bytes, marker: int, start: int) -> bool:
    return marker in (APP12, LEGACY_APP11) and data[start + 4 : start + 4 + len(SIGNATURE)] == SIGNATURE


def strip_layer(data: bytes, name: str = "JPEG") -> tuple[bytes, int]:
    """(the JPEG without any layer segments, bytes removed); lenient: removes damaged layers too."""
    segs, scan = _segments(data, name)
    keep = [data[:2]] + [data[s:e] for m, s, e in segs if not _is_layer(data, m, s)] + [data[scan:]]
    plain = b"".join(keep)
    return plain, len(data) - len(plain)


def read_layer(data: bytes, name: str = "JPEG") -> bytes | None:
    """The layer blob carried by a JPEG, or None; LayerError if chunks are missing or inconsistent."""
    segs, _ = _segments(data, name)
    chunks: dict[int, bytes] = {}
    totals = set()
    for m, s, e in segs:
        if _is_layer(data, m, s):
            body = s + 4 + len(SIGNATURE)
            if e < body + _HEAD.size:
                raise LayerError(f"{name}: residual layer is damaged (short segment)")
            seq, total = _HEAD.unpack_from(data, body)
            if seq in chunks:
                raise LayerError(f"{name}: residual layer is damaged (chunk {seq} appears twice)")
            chunks[seq] = data[body + _HEAD.size : e]
            totals.add(total)
    if not chunks:
        return None
    if len(totals) != 1 or sorted(chunks) != list(range(1, totals.pop() + 1)):
        raise LayerError(f"{name}: residual layer is damaged (chunks missing or out of sequence)")
    return b"".join(chunks[k] for k in sorted(chunks))


def insert_layer(data: bytes, blob: bytes) -> bytes:
    """The JPEG with ``blob`` as APP12 segments after its leading APPn/COM segments (it must carry none)."""
    if not blob:
        raise ValueError("empty layer")
    segs, scan = _segments(data, "JPEG")
    if any(_is_layer(data, m, s) for m, s, _ in segs):
        raise ValueError("the JPEG already carries a residual layer")
    at = next((s for m, s, _ in segs if not (0xE0 <= m <= 0xEF or m == 0xFE)), scan)
    total = -(-len(blob) // CHUNK)
    run = []
    for k in range(total):
        chunk = blob[k * CHUNK : (k + 1) * CHUNK]
        run += [bytes((0xFF, APP12)), struct.pack(">H", 2 + len(SIGNATURE) + _HEAD.size + len(chunk)), SIGNATURE,
                _HEAD.pack(k + 1, total), chunk]
    return b"".join([data[:at], *run, data[at:]])
