"""Lossless JPEG (ITU T.81 process 14, "LJ92") encoder for DNG tiles, in numpy.

Each tile is one JPEG stream as Adobe's DNG converter writes them, which every DNG reader decodes (LibRaw,
dcraw, RawTherapee, darktable's rawspeed — the last only takes predictor 1): predictor 1 (left neighbour), and
two interleaved components of half the tile width, so that each sample is predicted from the sample two columns
to its left, of the same CFA colour. One Huffman table, optimal for the whole image, serves every tile.

The bit packing is vectorised: every sample's Huffman code and difference bits form one ≤ 31-bit word, placed at
its bit offset (see ``_pack_row``)."""

from __future__ import annotations

import heapq
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .threads import thread_count

_SSSS = np.zeros(32769, np.uint8)  # bit length of |difference| 0..32768
for _k in range(1, 17):
    _SSSS[1 << (_k - 1) : min(1 << _k, 32769)] = _k


def encode_tiles(mosaic: np.ndarray, bits: int, tile: tuple[int, int]) -> list[bytes]:
    """``mosaic`` (uint16 (H, W), values < 2**bits) cut into row-major tiles of ``tile`` = (length, width), the
    edge tiles padded (each row's last value, then constant rows: both cost next to nothing), each tile one
    LJ92 stream."""
    h, w = mosaic.shape
    th, tw = tile
    pad = np.pad(mosaic, ((0, 0), (0, -w % tw)), mode="edge")
    pad = np.pad(pad, ((0, -h % th), (0, 0)), mode="constant", constant_values=int(mosaic[-1, -1]))
    ny, nx = pad.shape[0] // th, pad.shape[1] // tw
    ncomp = 2 if tw % 2 == 0 else 1

    def diffs(y: int) -> tuple[np.ndarray, np.ndarray]:
        """(differences, their categories) of the tiles in row ``y``, (nx, th, tw) in stream order."""
        t = pad[y * th : (y + 1) * th].reshape(th, nx, tw).transpose(1, 0, 2).astype(np.int32)
        d = t.copy()
        d[..., ncomp:] -= t[..., :-ncomp]  # predictor 1: the left neighbour of the same component
        d[:, 1:, :ncomp] -= t[:, :-1, :ncomp]  # a row's first samples: the one above
        d[:, 0, :ncomp] -= 1 << (bits - 1)  # the tile's first samples: half the range
        if bits == 16:  # differences are taken modulo 2**16, as -32767..32768
            d += 32767
            d &= 0xFFFF
            d -= 32767
        return d, _SSSS[np.abs(d)]

    def encode(y: int) -> list[bytes]:
        dy, sy = rows[y][0].reshape(nx, -1), rows[y][1].reshape(nx, -1)
        extra = (dy + (dy >> 31)) & masks[sy]  # a negative difference is sent as its ones' complement (d − 1)
        return [header + data + b"\xff\xd9" for data in _pack_row(shifted[sy] | extra, nbits[sy])]

    with ThreadPoolExecutor(max_workers=min(4, thread_count())) as pool:  # numpy releases the GIL
        rows = list(pool.map(diffs, range(ny)))
        lengths, codes = _huffman(sum(np.bincount(s.ravel(), minlength=17) for _, s in rows))
        # per category s: the Huffman code followed by n_s extra bits (n = s, but none for s = 16: difference 32768)
        n = np.minimum(np.arange(17, dtype=np.int32), 15)
        n[16] = 0
        shifted, masks, nbits = codes << n, (1 << n) - 1, lengths + n
        header = _header(bits, th, tw // ncomp, ncomp, lengths)
        return [t for tiles in pool.map(encode, range(ny)) for t in tiles]


def _pack_row(words: np.ndarray, nbits: np.ndarray) -> list[bytes]:
    """The entropy-coded segments of a row of tiles ((tiles, samples) words and their bit counts, < 2**31 bits
    in all): each padded with 1-bits to a whole byte, 0xFF bytes stuffed with 0x00.

    Words go into big-endian 32-bit slots. A word of n ≤ 31 bits starting at bit r of its slot, scaled to the 64
    bits from the slot's start, v = word·2^(64 − r − n), has a high half h = ⌊v / 2^32⌋ in the slot and a low half
    v − h·2^32 spilling into the next (all exact in float64: v has at most 31 significant bits). Words occupy
    disjoint bits, so a slot's OR is the sum of its parts, < 2^32: two weighted ``bincount``s build the stream."""
    pad = (-nbits.sum(axis=1, dtype=np.int64) % 8).astype(np.int32)
    words = np.concatenate([words, ((1 << pad) - 1)[:, None]], axis=1).ravel()
    nbits = np.concatenate([nbits, pad[:, None]], axis=1, dtype=np.int32).ravel()
    ends = np.cumsum(nbits, dtype=np.int32)
    offsets = ends - nbits
    v = np.ldexp(words.astype(np.float64), 64 - (offsets & 31) - nbits)
    high = np.floor(v * 2.0**-32)
    v -= high * 2.0**32
    slot, size = offsets >> 5, int(ends[-1]) // 32 + 2
    total = np.bincount(slot, weights=high, minlength=size)
    total[1:] += np.bincount(slot, weights=v, minlength=size)[:-1]
    out = total.astype(np.uint32)
    stream = out.astype(">u4").view(np.uint8)
    bounds = np.concatenate([[0], ends.reshape(len(pad), -1)[:, -1] // 8])
    res = []
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        seg = stream[a:b]
        ff = np.flatnonzero(seg == 0xFF)
        res.append(np.insert(seg, ff + 1, 0).tobytes() if ff.size else seg.tobytes())
    return res


def _huffman(freq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code length, code) per difference category 0..16: a Huffman code limited to 16 bits without an all-ones
    code word (ITU T.81 K.2/K.3, as libjpeg builds its optimised tables)."""
    freq = [int(f) for f in freq] + [1]  # symbol 17 reserves the all-ones code word
    heap = [(f, [s]) for s, f in enumerate(freq) if f > 0]
    heapq.heapify(heap)
    size = [0] * 18
    if len(heap) == 1:
        size[heap[0][1][0]] = 1
    while len(heap) > 1:
        fa, a = heapq.heappop(heap)
        fb, b = heapq.heappop(heap)
        for s in a + b:
            size[s] += 1
        heapq.heappush(heap, (fa + fb, a + b))
    count = [0] * 33
    for s in size:
        if s:
            count[s] += 1
    for i in range(32, 16, -1):  # K.3: move symbols up to 16 bits
        while count[i] > 0:
            j = i - 2
            while count[j] == 0:
                j -= 1
            count[i] -= 2
            count[i - 1] += 1
            count[j + 1] += 2
            count[j] -= 1
    i = 16
    while count[i] == 0:
        i -= 1
    count[i] -= 1  # drop the reserved code word
    order = sorted((s for s in range(17) if size[s]), key=lambda s: (size[s], s))
    lengths = np.zeros(17, np.int32)
    k = 0
    for n in range(1, 17):
        for _ in range(count[n]):
            lengths[order[k]] = n
            k += 1
    codes = np.zeros(17, np.int32)
    code, prev = 0, 0
    for s in sorted(order, key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - prev
        codes[s], prev = code, int(lengths[s])
        code += 1
    return lengths, codes


def _header(bits: int, height: int, width: int, ncomp: int, lengths: np.ndarray) -> bytes:
    """SOI, DHT (table 0), SOF3 and SOS (predictor 1) for one tile."""
    syms = sorted((s for s in range(17) if lengths[s]), key=lambda s: (lengths[s], s))
    counts = bytes(int((lengths == n).sum()) for n in range(1, 17))
    dht = b"\x00" + counts + bytes(syms)
    sof = struct.pack(">BHHB", bits, height, width, ncomp) + b"".join(bytes([c + 1, 0x11, 0]) for c in range(ncomp))
    sos = bytes([ncomp]) + b"".join(bytes([c + 1, 0x00]) for c in range(ncomp)) + b"\x01\x00\x00"
    return (b"\xff\xd8" + b"\xff\xc4" + struct.pack(">H", 2 + len(dht)) + dht
            + b"\xff\xc3" + struct.pack(">H", 2 + len(sof)) + sof + b"\xff\xda" + struct.pack(">H", 2 + len(sos)) + sos)
