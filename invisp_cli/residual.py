"""Exact or near-lossless RAW inside the JPEG: an optional residual layer (``invisp encode --exact``).

Encode predicts, from the JPEG's decoded 8-bit pixels alone, what each raw value was; the layer stores the
difference to the real mosaic, entropy-coded, in APP12 segments (``containers/layer.py``):

    r = m − p,   q = ⌊(r + N) / (2N + 1)⌋,   m̂ = clip(p + (2N + 1)·q, lo, hi)   ⇒  |m̂ − m| ≤ N

(N = 0: q = r and m̂ = m exactly; clipping to [lo, hi] ∋ m only moves m̂ towards m). Decode recomputes p, adds
the residual, and checks SHA-256(m̂) against the layer's header before writing anything.

**Predictor.** The float flow is not reproducible bit for bit across CPUs, thread counts and library
versions, so p is the analytic inverse of the metadata-driven steps (``steps.analytic_steps``) in integer
arithmetic. At a site of CFA position π (colour c, black b_π) with decoded sRGB codes v_k:

    p = b_π + Σ_k K[π, k]·G⁻¹(v_k / 255),     K[π, k] = (M⁻¹)[c, k]·(w − b_π) / (wb_c·gain)

(M = rgb_cam, G = ``steps.Gamma``), evaluated as  p = clip((Σ_k coef[π][k]·lut[v_k] + bias[π]) >> 32, lo, hi)
in int64 with lut = round(2¹⁶·G⁻¹(v/255)), coef = round(2¹⁶·K), bias = round(2³²·(b_π + ½)). The integers
are computed once, at encode, and stored in the layer, so decode does no floating point at all. The other
inputs are the JPEG's pixels as Pillow decodes them (libjpeg-turbo, integer ISLOW IDCT, whose SIMD paths are
bit-exact with its C code); a decoder that differed would fail the SHA-256 check, never return a wrong RAW.
A trained flow can move the JPEG away from the analytic ISP; the predictor "none" (p = 0: the layer codes
the mosaic itself) is then chosen when it codes smaller. Tried and dropped (larger layers on the real files):
per-file least-squares tone tables, a fitted 3×3 spatial filter, predicting from the site's own channel only.

**Coding.** q − min(q) (uint16) goes to JPEG XL lossless (as the mosaic, or as its four CFA planes tiled 2×2,
the layout of ``bench.sizes.cfa_planes``), or as bytes to zstd, or to lzma on small images (lzma codes
~1 MB/s here), or — usually smallest — sorted by coding context: the residual is mostly sensor noise, whose
spread grows with the signal (shot noise), so sites are grouped by CFA position × octave of their predicted
value (c = 17·π + bitlength(max(p − base, 0)), known to the decoder from the JPEG alone), stably sorted by c,
zigzag-coded (z = 2q for q ≥ 0, −2q − 1 below) and split into byte planes, each zstd-coded; zstd's Huffman
tables, rebuilt every block, then follow the noise level of each group (layout "intensity-sorted"). Codec "ans"
codes the same context-sorted z with one static categorical model per context (its symbol counts, stored; z ≥
``ESCAPE`` escaped to a zstd stream) by rANS (``constriction``): within a few 0.1 % of the empirical
conditional entropy H(z | context), where Huffman byte planes lose most on the small alphabets of the noise
tier (measured in docs/noise.md).
Predictor, codec and layout are chosen per file by coded size on a sample of ``SAMPLE`` × ``SAMPLE`` pixels
(four crops around the quarter points; the whole residual when it is small), then the whole residual is coded
with the winner (up to 8 MP: with the winner and the sorted layout, keeping the smaller). JPEG XL effort is
3 up to 8 MP and 2 above, to keep the layer within ~2 s per 24 MP on 2 cores.

**Noise-bounded tier** (``--max-error Ks``, format ``invisp-residual/2``). Sensor noise grows with the signal,
σ²(n) = a_c·n + b_c (``noise.py``: the DNG NoiseProfile or an estimate from the mosaic), so a bound K·σ(n) lets
bright sites err more than dark ones. ``SigmaBins`` is a fixed scalar quantiser of raw values per CFA position
whose bins hold every value within K·σ of their representative; the layer codes the difference of bin indices
of the true value and of the prediction, d = j(m) − j(p), and decode returns rep_{j(p)+d}. The integer tables
and the noise model travel in the header (key "sigma"); decode is integer-only as above.

Layer blob = u32be header length, header JSON
(format, guarantee N, shape, sha256 of m̂, predictor integers, codec, layout, dtype, offset, payload_bytes,
payload_sha256: damage is reported before decoding), payload."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import lzma
import math
import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import imagecodecs
import numpy as np
from PIL import Image

from . import noise, rawio
from .containers import layer
from .containers.jpeg import SUBSAMPLING
from .containers.layer import LayerError
from .errors import OutputError
from .fileio import atomic_output, check_input
from .params import ReconstructionParams
from .rawio import RawImage
from .settings import Look as LookSettings
from .settings import output_container
from .steps import Gamma, Look, cfa_index
from .threads import thread_count

FORMAT = "invisp-residual/1"
FORMAT_SIGMA = "invisp-residual/2"  # the noise-bounded tier (--max-error Ks): header key "sigma"
MAX_K = 64.0  # the largest K of --max-error Ks
SAMPLE = 512
LZMA_MAX_PIXELS = 1 << 18
FULL_TRIAL_PIXELS = 8_000_000  # up to this size the sorted layout is also run on the whole image
SORTED = "intensity-sorted"  # the context-sorted byte-plane layout (module docstring, "Coding")
ZSTD_LEVEL = 9
ROWS = 128  # rows per block in the predictor (even: keeps the CFA phase); blocks stay in cache
QUANT_ROWS = 256  # rows per band of SigmaBins.quantise (rounded down to whole periods)
_COEF_LIMIT = 1 << 40  # |coef|·lut < 2⁵⁶: three terms and the bias cannot overflow int64


@dataclass(frozen=True)
class Predictor:
    """The integer prediction of the mosaic from upright decoded sRGB (see the module docstring).

    kind "analytic" or "none" (p = lo everywhere); coef/bias per CFA position (row-major over the CFA's period,
    2×2 for Bayer, 6×6 for X-Trans). A linear image (3 samples per pixel) is predicted as the (H, 3W) array of its
    interleaved samples: period (1, 3), ``samples`` 3, position j = channel j of the pixel."""

    kind: str
    flip: int
    lut: tuple[int, ...]
    coef: tuple[tuple[int, int, int], ...]
    bias: tuple[int, ...]
    clip: tuple[int, int]
    period: tuple[int, int] = (2, 2)
    samples: int = 1

    @classmethod
    def analytic(cls, raw: RawImage, gain: float, hi: int, look: LookSettings | None = None) -> Predictor:
        """The fixed-point analytic inverse for ``raw``'s metadata and exposure ``gain``; clip range [0, hi].

        With a camera ``look`` the table is one per channel, 3 × 256: its tone curves and gamma inverted channel
        by channel (``steps.Look.recover_linear`` of grey levels; the look's chroma rendering, which mixes the
        channels, is left out of the prediction and so left to the residual)."""
        v = np.arange(256, dtype=np.float64) / 255
        if look is None:
            lut = np.round(Gamma().inverse(v) * 2**16)
        else:
            lut = np.round(Look(look).recover_linear(np.broadcast_to(v, (1, 3, 1, 256)).copy()) * 2**16).ravel()
        m_inv = np.linalg.inv(np.asarray(raw.rgb_cam, dtype=np.float64))
        idx, samples = _positions(raw)
        black = np.asarray(raw.black, dtype=np.float64).reshape(idx.shape)
        wb = np.asarray(raw.wb, dtype=np.float64)
        coef, bias = [], []
        for (i, j), c in np.ndenumerate(idx):
            k = m_inv[c] * (raw.white - black[i, j]) / (wb[c] * gain)
            coef.append(tuple(int(v) for v in np.round(k * 2**16)))
            bias.append(int(np.round((black[i, j] + 0.5) * 2**32)))
        return cls("analytic", int(raw.flip), tuple(int(v) for v in lut), tuple(coef), tuple(bias), (0, int(hi)),
                   idx.shape, samples)

    @classmethod
    def none(cls, flip: int, hi: int, period: tuple[int, int] = (2, 2), samples: int = 1) -> Predictor:
        n = period[0] * period[1]
        return cls("none", int(flip), (0,) * 256, ((0, 0, 0),) * n, (0,) * n, (0, int(hi)), period, samples)

    @property
    def base(self) -> int:
        """The lowest black level it predicts (raw units): coding contexts count octaves above it."""
        return min(self.bias) >> 32

    def usable(self) -> bool:
        return all(abs(c) < _COEF_LIMIT for row in self.coef for c in row) and all(abs(b) < 2**52 for b in self.bias)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """Upright uint8 (H', W', 3) → predicted uint16 mosaic (H, W) in sensor orientation ((H, 3W) interleaved
        samples for a linear image)."""
        s = rawio.undo_flip(np.asarray(rgb, dtype=np.uint8), self.flip)
        h, w = s.shape[:2]
        lo, hi = self.clip
        out = np.full((h, w * self.samples), lo, np.uint16)
        if self.kind == "none":
            return out
        lut = np.asarray(self.lut, dtype=np.int64).reshape(-1, 256)  # one table, or one per channel
        tables = [[c * lut[k % len(lut)] for k, c in enumerate(row)] for row in self.coef]  # exact int64 products
        pp, pq = self.period
        for y0 in range(0, h, ROWS):
            blk = s[y0 : y0 + ROWS]
            for p in range(pp * pq):
                i, j = divmod(p, pq)
                r = (i - y0) % pp  # the block's first row of phase i
                v = blk[r::pp, j::pq] if self.samples == 1 else blk[r::pp]
                if v.size == 0:
                    continue
                t = tables[p]
                acc = t[0][v[..., 0]]
                acc += t[1][v[..., 1]]
                acc += t[2][v[..., 2]]
                acc += self.bias[p]
                acc >>= 32
                out[y0 + r : y0 + ROWS : pp, j::pq] = _clip(acc, lo, hi)
        return out

    def to_json(self) -> dict:
        layout = {} if (self.period, self.samples) == ((2, 2), 1) else {"period": list(self.period),
                                                                          "samples": self.samples}
        return {"kind": self.kind, "flip": self.flip, "lut_q16": list(self.lut),
                "coef_q16": [list(r) for r in self.coef], "bias_q32": list(self.bias), "clip": list(self.clip),
                **layout}

    @classmethod
    def from_json(cls, d: dict) -> Predictor:
        p = cls(str(d["kind"]), int(d["flip"]), tuple(int(v) for v in d["lut_q16"]),
                tuple(tuple(int(v) for v in r) for r in d["coef_q16"]), tuple(int(v) for v in d["bias_q32"]),
                (int(d["clip"][0]), int(d["clip"][1])), tuple(int(v) for v in d.get("period", (2, 2))),
                int(d.get("samples", 1)))
        n = p.period[0] * p.period[1] if len(p.period) == 2 and all(1 <= v <= 16 for v in p.period) else 0
        ok = (p.kind in ("analytic", "none") and p.flip in range(8) and len(p.lut) in (256, 768)
              and all(0 <= v <= 2**17 for v in p.lut) and len(p.coef) == n and all(len(r) == 3 for r in p.coef)
              and len(p.bias) == n and 0 <= p.clip[0] <= p.clip[1] < 2**16 and p.usable()
              and (p.samples == 1 or (p.samples == 3 and p.period == (1, 3))))
        if not ok:
            raise ValueError("predictor parameters out of range")
        return p


def _positions(raw: RawImage) -> tuple[np.ndarray, int]:
    """(colour of each position of the predicted array's period, samples per pixel): the CFA tile for a mosaic;
    [[0, 1, 2]] and 3 for a linear image (its interleaved samples, ``noise.flat``)."""
    return (np.arange(3)[None], 3) if raw.linear else (cfa_index(raw.cfa), 1)


# ------------------------------------------------------------------------------------------------ coding


def _planes(m: np.ndarray) -> np.ndarray:
    """Even (H, W) mosaic → its four CFA planes tiled 2×2 (same layout as ``bench.sizes.cfa_planes``)."""
    h, w = m.shape
    return m.reshape(h // 2, 2, w // 2, 2).transpose(1, 0, 3, 2).reshape(h, w)


def _unplanes(p: np.ndarray) -> np.ndarray:
    h, w = p.shape
    return np.ascontiguousarray(p.reshape(2, h // 2, 2, w // 2).transpose(1, 0, 3, 2).reshape(h, w))


def _jxl_effort(pixels: int) -> int:
    return 3 if pixels <= 8_000_000 else 2


_OCTAVE = np.frexp(np.arange(1 << 16, dtype=np.float64))[1].astype(np.uint8)  # bit length of 0…65535


def contexts(pm: np.ndarray, base: int) -> np.ndarray:
    """Coding context of each site (flattened, uint8): 17·(CFA position) + bit length of max(p − base, 0).

    Integer-exact (a table of frexp's exponents of exactly representable values), so encoder and decoder agree
    on any machine."""
    octave = _OCTAVE[_clip(np.arange(1 << 16, dtype=np.int32) - base, 0, (1 << 16) - 1)][pm]  # pm: uint16
    octave[0::2, 1::2] += 17
    octave[1::2, 0::2] += 34
    octave[1::2, 1::2] += 51
    return octave.ravel()


def _encode_sorted(values: np.ndarray, offset: int, ctx: np.ndarray) -> bytes:
    """values (= q + offset) → zigzag(q) in context order → byte planes → zstd each; u8 plane count, u32be sizes."""
    q = values.ravel()[np.argsort(ctx, kind="stable")].astype(np.int32)  # |q| < 2¹⁸: int32 is exact
    q -= offset
    z = (q << 1) ^ (q >> 31)  # zigzag
    n_planes = max(1, (int(z.max()).bit_length() + 7) // 8)
    planes = [imagecodecs.zstd_encode(((z >> (8 * i)) & 255).astype(np.uint8).tobytes(), level=ZSTD_LEVEL)
              for i in range(n_planes)]
    return struct.pack(f">B{n_planes}I", n_planes, *map(len, planes)) + b"".join(planes)


def _decode_sorted(payload: bytes, dtype: str, shape: tuple[int, int], offset: int, ctx: np.ndarray) -> np.ndarray:
    (n_planes,) = struct.unpack_from(">B", payload)
    sizes = struct.unpack_from(f">{n_planes}I", payload, 1)
    if n_planes > 3:
        raise ValueError("more byte planes than a residual can need")
    pos, z = 1 + 4 * n_planes, np.zeros(shape[0] * shape[1], np.int32)
    for i, size in enumerate(sizes):
        plane = np.frombuffer(imagecodecs.zstd_decode(payload[pos : pos + size]), np.uint8)
        if plane.size != z.size:
            raise ValueError("byte plane of the wrong length")
        z |= plane.astype(np.int32) << (8 * i)
        pos += size
    q = (z >> 1) ^ -(z & 1)  # un-zigzag
    out = np.empty_like(q)
    out[np.argsort(ctx, kind="stable")] = q + offset
    return out.reshape(shape).astype(dtype)


ESCAPE = 1 << 12  # ANS: zigzag values from here on are coded as this symbol plus the value in the escape stream


def _group_bounds(ctx: np.ndarray, n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(stable order sorting sites by context, start of each context 0…n in that order). The searched keys have
    the contexts' dtype: with int64 keys numpy would cast the whole sorted array (0.4 s of a 24 MP encode)."""
    order = np.argsort(ctx, kind="stable")
    keys = ctx[order]
    return order, np.append(np.searchsorted(keys, np.arange(n, dtype=keys.dtype)), keys.size)


BAND_SITES = 1 << 20  # sites per band of ``_grouped``: its temporaries stay small (and reused, not fresh pages)


def _grouped(q: np.ndarray, ctx: np.ndarray, n_ctx: int, offset: int = 0) -> list[np.ndarray]:
    """zigzag(q − offset) (int32, |q − offset| < 2²⁰) of the sites of each context 0…n_ctx − 1, in site order:
    the stable sort of the sites by context, done band by band (``BAND_SITES``) and joined per context — the same
    order as one sort of the whole frame, without its frame-sized index and copies."""
    q, ctx = q.ravel(), ctx.ravel()
    parts: list[list[np.ndarray]] = [[] for _ in range(n_ctx)]
    for a in range(0, ctx.size, BAND_SITES):
        order, bounds = _group_bounds(ctx[a : a + BAND_SITES], n_ctx)
        z = q[a : a + BAND_SITES][order].astype(np.int32)
        z -= offset
        sign = z >> 31
        z <<= 1
        z ^= sign  # zigzag (q << 1) ^ (q >> 31)
        for c in np.flatnonzero(bounds[1:] > bounds[:-1]):
            parts[c].append(z[bounds[c] : bounds[c + 1]])
    return [np.concatenate(p) if p else np.zeros(0, np.int32) for p in parts]


def _ans_code(q: np.ndarray, ctx: np.ndarray, n_ctx: int, offset: int = 0) -> bytes:
    """Signed integers q − offset → zigzag → in context order (``_grouped``), one static categorical model per
    context (the symbol counts, ESCAPE and above escaped), rANS-coded (``constriction``'s AnsCoder). Payload:
    u32be sizes of the zstd-coded model table (uint32 per context present: context, alphabet size, counts) and
    escape stream (uint32le), then the ANS words (uint32le)."""
    import constriction  # its submodules are attributes of the extension, not importable modules

    Categorical, AnsCoder = constriction.stream.model.Categorical, constriction.stream.stack.AnsCoder

    groups = [(c, z) for c, z in enumerate(_grouped(q, ctx, n_ctx, offset)) if z.size]
    esc = np.concatenate([z[z >= ESCAPE] for _, z in groups])
    syms = [np.minimum(z, ESCAPE, out=z) for _, z in groups]
    counts = [np.bincount(s, minlength=2) for s in syms]  # constriction needs two symbols
    coder = AnsCoder()
    for s, k in zip(reversed(syms), reversed(counts), strict=True):
        coder.encode_reverse(s, Categorical(k.astype(np.float64), perfect=False))
    table = np.concatenate([[c, len(k), *k] for (c, _), k in zip(groups, counts, strict=True)]).astype("<u4")
    table = imagecodecs.zstd_encode(table.tobytes(), level=ZSTD_LEVEL)
    esc = imagecodecs.zstd_encode(esc.astype("<u4").tobytes(), level=ZSTD_LEVEL)
    words = coder.get_compressed().astype("<u4").tobytes()
    return struct.pack(">II", len(table), len(esc)) + table + esc + words


def _ans_decode(payload: bytes, ctx: np.ndarray, n_ctx: int) -> np.ndarray:
    """Inverse of ``_ans_code``: the flat int64 q; ValueError if the payload does not fit ``ctx``."""
    import constriction

    Categorical, AnsCoder = constriction.stream.model.Categorical, constriction.stream.stack.AnsCoder

    n_table, n_esc = struct.unpack_from(">II", payload)
    at = 8 + n_table + n_esc
    if at > len(payload) or (len(payload) - at) % 4:
        raise ValueError("ANS payload sizes do not add up")
    table = np.frombuffer(imagecodecs.zstd_decode(payload[8 : 8 + n_table]), "<u4").astype(np.int64)
    esc = np.frombuffer(imagecodecs.zstd_decode(payload[8 + n_table : at]), "<u4").astype(np.int64)
    coder = AnsCoder(np.frombuffer(payload[at:], "<u4").astype(np.uint32))
    order, bounds = _group_bounds(ctx, n_ctx)
    z = np.zeros(ctx.size, np.int32)
    i = 0
    while i < table.size:
        c, size = int(table[i]), int(table[i + 1]) if i + 1 < table.size else -1
        k = table[i + 2 : i + 2 + size]
        n = int(k.sum())
        if not (0 <= c < n_ctx and 1 < size <= ESCAPE + 1 and k.size == size and n == bounds[c + 1] - bounds[c]):
            raise ValueError("ANS model table does not fit this image")
        z[bounds[c] : bounds[c + 1]] = coder.decode(Categorical(k.astype(np.float64), perfect=False), n)
        i += 2 + size
    hit = z == ESCAPE
    if int(hit.sum()) != esc.size or np.any(esc < ESCAPE) or np.any(esc >= 2**21):
        raise ValueError("ANS escape stream does not fit")
    z[hit] = esc
    out = np.empty(ctx.size, np.int32)  # |q| < 2²⁰
    out[order] = (z >> 1) ^ -(z & 1)
    return out


PREDICTED = "neighbour-predicted"  # ANS layout: three passes over 2×2 blocks, later ones predicted from earlier
_PASS_NEIGHBOURS = (((2, 2), (2, -2), (-2, 2), (-2, -2)), ((2, 0), (-2, 0), (0, 2), (0, -2)))


def _passes(shape: tuple[int, int]) -> np.ndarray:
    """Pass of each site (uint8): 0 for 2×2 blocks (by, bx) both even, 1 both odd, 2 the rest. The same-colour
    diagonal neighbours (±2, ±2) of a pass-1 site are in pass 0, the axial ones (±2, 0), (0, ±2) of a pass-2 site
    in passes 0 and 1."""
    by = (np.arange(shape[0]) // 2 % 2)[:, None]
    bx = (np.arange(shape[1]) // 2 % 2)[None, :]
    return np.where(by == bx, by, 2).astype(np.uint8)


def _neighbour_mean(q: np.ndarray, offsets: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Rounded mean of q at the given same-colour offsets inside the image, ⌊(2Σ + k)/(2k)⌋ (0 where k = 0):
    integer arithmetic only."""
    h, w = q.shape
    total = np.zeros((h, w), np.int32)  # four |q| < 2²⁰
    count = np.zeros((h, w), np.int32)
    for dy, dx in offsets:
        ys, yd = slice(max(dy, 0), h + min(dy, 0)), slice(max(-dy, 0), h + min(-dy, 0))
        xs, xd = slice(max(dx, 0), w + min(dx, 0)), slice(max(-dx, 0), w + min(-dx, 0))
        total[yd, xd] += q[ys, xs]
        count[yd, xd] += 1
    return np.floor_divide(2 * total + count, 2 * np.maximum(count, 1)) * (count > 0)


def _encode_predicted(values: np.ndarray, offset: int, ctx: np.ndarray) -> bytes:
    """q = values − offset; in pass 1 and 2 (``_passes``) code q minus the rounded mean of its decoded
    neighbours (JPEG errors are spatially correlated, so are the residuals), with context ctx + 256·pass."""
    q = values.astype(np.int32) - offset
    passes = _passes(q.shape)
    e = q.copy()
    for k, offsets in enumerate(_PASS_NEIGHBOURS, start=1):
        sel = passes == k
        e[sel] -= _neighbour_mean(q, offsets)[sel]
    return _ans_code(e, ctx.astype(np.uint16) + 256 * passes.ravel().astype(np.uint16), 768)


def _decode_predicted(payload: bytes, shape: tuple[int, int], offset: int, ctx: np.ndarray) -> np.ndarray:
    passes = _passes(shape)
    q = _ans_decode(payload, ctx.astype(np.uint16) + 256 * passes.ravel().astype(np.uint16), 768).reshape(shape)
    for k, offsets in enumerate(_PASS_NEIGHBOURS, start=1):
        sel = passes == k
        q[sel] += _neighbour_mean(np.where(passes < k, q, 0), offsets)[sel]
    return q.astype(np.int64) + offset


def _encode_ans(values: np.ndarray, offset: int, ctx: np.ndarray, layout: str) -> bytes:
    """values (= q + offset) rANS-coded per context: as they are (layout SORTED) or neighbour-predicted."""
    if layout == PREDICTED:
        return _encode_predicted(values, offset, ctx)
    return _ans_code(values, ctx, 256, offset)


def _decode_ans(payload: bytes, dtype: str, shape: tuple[int, int], offset: int, ctx: np.ndarray,
                layout: str) -> np.ndarray:
    if layout == PREDICTED:
        out = _decode_predicted(payload, shape, offset, ctx)
    else:
        out = (_ans_decode(payload, ctx, 256).astype(np.int64) + offset).reshape(shape)
    if out.min() < 0 or out.max() >= 2**32:
        raise ValueError("ANS values out of range")
    return out.astype(dtype)


def _encode(values: np.ndarray, codec: str, layout: str, effort: int, offset: int = 0,
            ctx: np.ndarray | None = None) -> bytes:
    """Lossless coding of a uint16/uint32 (H, W) array (= q + offset; ``ctx`` for the sorted layout)."""
    if codec == "ans":
        return _encode_ans(values, offset, ctx, layout)
    if layout == SORTED:
        return _encode_sorted(values, offset, ctx)
    v = np.ascontiguousarray(_planes(values) if layout == "cfa-planes" else values)
    if codec == "jxl":
        return bytes(imagecodecs.jpegxl_encode(v, lossless=True, effort=effort, numthreads=thread_count()))
    raw = v.astype(v.dtype.newbyteorder("<"), copy=False).tobytes()
    return bytes(imagecodecs.zstd_encode(raw, level=ZSTD_LEVEL)) if codec == "zstd" else lzma.compress(raw)


def _decode(payload: bytes, codec: str, layout: str, dtype: str, shape: tuple[int, int], offset: int = 0,
            ctx: np.ndarray | None = None) -> np.ndarray:
    if codec == "ans" and layout in (SORTED, PREDICTED):
        return _decode_ans(payload, dtype, shape, offset, ctx, layout)
    if layout == SORTED:
        return _decode_sorted(payload, dtype, shape, offset, ctx)
    if codec == "jxl":
        v = np.asarray(imagecodecs.jpegxl_decode(payload, numthreads=thread_count()))
    elif codec in ("zstd", "lzma"):
        raw = imagecodecs.zstd_decode(payload) if codec == "zstd" else lzma.decompress(payload)
        v = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
        v = v.reshape(shape) if v.size == shape[0] * shape[1] else v
    else:
        raise ValueError(f"unknown codec {codec!r}")
    if v.shape != tuple(shape) or v.dtype != np.dtype(dtype):
        raise ValueError(f"payload decodes to {v.dtype} {v.shape}, expected {dtype} {tuple(shape)}")
    return _unplanes(v) if layout == "cfa-planes" else v


def _candidates(shape: tuple[int, int], dtype: np.dtype) -> list[tuple[str, str]]:
    h, w = shape
    out = []
    if dtype == np.uint16:
        out.append(("jxl", "mosaic"))
        if h % 2 == 0 and w % 2 == 0:
            out.append(("jxl", "cfa-planes"))
    out.append(("zstd", "mosaic"))
    out.append(("zstd", SORTED))
    out.append(("ans", SORTED))
    if h * w <= FULL_TRIAL_PIXELS:  # three passes of full-size neighbour sums: kept off the largest frames
        out.append(("ans", PREDICTED))
    if h * w <= LZMA_MAX_PIXELS:
        out.append(("lzma", "mosaic"))
    return out


def _clip(a: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """In-place clip of an integer array (np.clip is several times slower)."""
    np.maximum(a, lo, out=a)
    return np.minimum(a, hi, out=a)


def _quantise(mosaic: np.ndarray, pred: np.ndarray, n: int, clip: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(q, m̂): residual quotients (int32) and the reconstruction they give (uint16)."""
    r = mosaic.astype(np.int32)
    r -= pred
    if n == 0:
        return r, mosaic
    q = np.floor_divide(r + n, 2 * n + 1)
    return q, _clip(pred + q * (2 * n + 1), *clip).astype(np.uint16)


@dataclass(frozen=True)
class Sigma:
    """The near-lossless tier's bound: every site within k·σ(n) of the sensor's noise model (``--max-error Ks``)."""

    k: float

    def __str__(self) -> str:
        return f"{self.k:g}s"


Tolerance = int | Sigma


def parse_max_error(value: str | int) -> Tolerance:
    """``--max-error``: "N" (raw units, 0…65535) or "Ks" (K in (0, MAX_K], σ units) → int or Sigma.

    ValueError with the reason otherwise."""
    if isinstance(value, int | Sigma):
        return value
    text = str(value).strip().lower()
    if text.endswith("s"):
        try:
            k = float(text[:-1])
        except ValueError:
            k = math.nan
        if not (math.isfinite(k) and 0.0 < k <= MAX_K):
            raise ValueError(f"{value!r}: K of Ks must be a number in (0, {MAX_K:g}], e.g. 0.5s")
        return Sigma(k)
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f"{value!r}: expected N (raw units, 0…65535) or Ks (K·σ of the sensor noise, e.g. 0.5s)")
    return int(text)


@dataclass(frozen=True)
class SigmaBins:
    """A fixed scalar quantiser of raw values per position π of the period (``noise.period``: the CFA tile, or a
    linear image's 3 interleaved samples): bin j = [lower_j, lower_{j+1}) with the
    representative rep_j, built so that every integer v of a bin satisfies |v − rep_j| ≤ t_π(v),

        t_π(v) = ⌊K·σ_π(n(v))·(white − black_π)⌋,   n(v) = (v − black_π)/(white − black_π),

    greedily from v = 0: rep = L + t(L) (σ never falls with v, so the worst site below rep is L), then the bin runs
    on while v − rep ≤ t(v). The layer codes d = j(m) − j(p), bin indices of the true value m and of the
    prediction p, and decode gives m̂ = rep_{j(p) + d}: the bound holds at every site against σ of the *true*
    value, and decode needs only the stored integer tables (no floating point)."""

    k: float
    model: noise.NoiseModel
    lower: tuple[np.ndarray, ...]  # per position: int32, lower[0] = 0, strictly increasing
    rep: tuple[np.ndarray, ...]
    hi: int
    period: tuple[int, int] = (2, 2)  # (p, q) of the positions on the coded (H, W) array; len(lower) = p·q

    @staticmethod
    def tolerance(k: float, model: noise.NoiseModel, black: np.ndarray, white: int, hi: int) -> np.ndarray:
        """t_π(v) for v = 0…hi, shape (positions, hi + 1), int64; ``black`` per position (any shape, row-major)."""
        black = np.asarray(black, dtype=np.float64).ravel()
        v = np.arange(hi + 1, dtype=np.float64)
        return np.stack([np.floor(k * model.sigma((v - b) / (white - b), p) * (white - b))
                         for p, b in enumerate(black)]).astype(np.int64)

    @classmethod
    def build(cls, k: float, model: noise.NoiseModel, black: np.ndarray, white: int, hi: int,
              period: tuple[int, int] = (2, 2)) -> SigmaBins:
        if len(model.a) != period[0] * period[1] or np.size(black) != len(model.a):
            raise ValueError(f"noise model of {len(model.a)} positions for a period {period[0]}×{period[1]}")
        lowers, reps = [], []
        for t in cls.tolerance(k, model, black, white, hi).tolist():
            lower, rep, lo = [], [], 0
            while lo <= hi:
                r = min(lo + t[lo], hi)
                u = r
                while u < hi and u + 1 - r <= t[u + 1]:
                    u += 1
                lower.append(lo)
                rep.append(r)
                lo = u + 1
            lowers.append(np.array(lower, np.int32))
            reps.append(np.array(rep, np.int32))
        bins = cls(float(k), model, tuple(lowers), tuple(reps), int(hi), (int(period[0]), int(period[1])))
        v = np.arange(hi + 1)
        if any(np.any(np.abs(bins.rep[p][bins.index(p)] - v) > t) for p, t in enumerate(cls.tolerance(
                k, model, black, white, hi))):
            raise AssertionError("sigma bins break their bound")  # cannot happen: the construction above
        return bins

    def index(self, pos: int) -> np.ndarray:
        """Bin index of every value 0…hi at position ``pos`` (int32)."""
        widths = np.diff(np.append(self.lower[pos], self.hi + 1))
        return np.repeat(np.arange(len(widths), dtype=np.int32), widths)

    def _bands(self, height: int) -> Iterator[tuple[slice, tuple[slice, slice], np.ndarray, np.ndarray]]:
        """(rows, sites, bin index of every value, representatives) for each band of whole periods of ``height``
        rows and each position of the period: the look-ups' temporaries stay a band's size."""
        p, q = self.period
        tables = [((slice(i, None, p), slice(j, None, q)), self.index(pos), self.rep[pos])
                  for pos, (i, j) in enumerate(np.ndindex(p, q))]
        band = max(1, QUANT_ROWS // p) * p
        for y in range(0, height, band):
            for sites, idx, rep in tables:
                yield slice(y, y + band), sites, idx, rep

    def quantise(self, mosaic: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(d, m̂): bin-index residuals (int32) and the reconstruction (uint16) of a mosaic within [0, hi], band by
        band (``_bands``)."""
        d = np.empty(mosaic.shape, np.int32)
        rec = np.empty(mosaic.shape, np.uint16)
        for rows, sites, idx, rep in self._bands(mosaic.shape[0]):
            jm = idx[mosaic[rows][sites]]
            d[rows][sites] = jm - idx[pred[rows][sites]]
            rec[rows][sites] = rep[jm]
        return d, rec

    def reconstruct(self, d: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """m̂ = rep[clip(j(p) + d)] (uint16), band by band as ``quantise``; a damaged d gives a wrong m̂, which the
        SHA-256 check catches."""
        rec = np.empty(pred.shape, np.uint16)
        for rows, sites, idx, rep in self._bands(pred.shape[0]):
            rec[rows][sites] = rep[_clip(idx[pred[rows][sites]] + d[rows][sites], 0, len(rep) - 1)]
        return rec

    def to_json(self) -> dict:
        """{"k", "noise", "hi", "tables"} (+ "period" unless 2×2): tables = base64(zstd(int32le: the bin count of
        each position, then per position the differences of ``lower`` and rep − lower))."""
        parts = [np.array([len(x) for x in self.lower], np.int32)]
        for lo, rep in zip(self.lower, self.rep, strict=True):
            parts += [np.diff(lo, prepend=0), rep - lo]
        blob = imagecodecs.zstd_encode(np.concatenate(parts).astype("<i4").tobytes(), level=ZSTD_LEVEL)
        period = {} if self.period == (2, 2) else {"period": list(self.period)}
        return {"k": self.k, "noise": self.model.to_json(), "hi": self.hi, **period,
                "tables": base64.b64encode(blob).decode("ascii")}

    @classmethod
    def from_json(cls, d: dict) -> SigmaBins:
        """The stored quantiser, checked: bins cover 0…hi in order, each representative inside its bin."""
        k, hi = float(d["k"]), int(d["hi"])
        model = noise.NoiseModel.from_json(d["noise"])
        p, q = (int(v) for v in d.get("period", (2, 2)))
        n = len(model.a)
        if not (math.isfinite(k) and 0.0 < k <= MAX_K and 0 <= hi < 2**16 and p * q == n):
            raise ValueError("sigma quantiser parameters out of range")
        v = np.frombuffer(imagecodecs.zstd_decode(base64.b64decode(d["tables"], validate=True)), "<i4")
        counts = v[:n].astype(np.int64)
        if v.size < n or not all(1 <= c <= hi + 1 for c in counts) or v.size != n + 2 * int(counts.sum()):
            raise ValueError("sigma quantiser tables have the wrong length")
        lowers, reps, at = [], [], n
        for c in counts:
            lo = np.cumsum(v[at : at + c], dtype=np.int64)
            rep = lo + v[at + c : at + 2 * c]
            upper = np.append(lo[1:], hi + 1) - 1
            if lo[0] != 0 or np.any(upper < lo) or np.any(rep < lo) or np.any(rep > upper):
                raise ValueError("sigma quantiser tables are inconsistent")
            lowers.append(lo.astype(np.int32))
            reps.append(rep.astype(np.int32))
            at += 2 * c
        return cls(k, model, tuple(lowers), tuple(reps), hi, (p, q))


def _offset(q: np.ndarray) -> tuple[np.ndarray, int]:
    """(q − min q as uint16, or uint32 if it does not fit; −min q). Overwrites ``q``."""
    lo = int(q.min())
    q -= lo
    return q.astype(np.uint16 if int(q.max()) < 2**16 else np.uint32), -lo


def _sample(a: np.ndarray, align: tuple[int, int] = (2, 2)) -> np.ndarray:
    """What the coders are tried on: the whole (H, W) array if small, else about SAMPLE × SAMPLE made of four
    SAMPLE/2 crops centred on the image's quarter points, tiled 2×2 (offsets and crop sizes multiples of
    ``align``, the period: every site keeps its position)."""
    h, w = a.shape
    if h * w <= 2 * SAMPLE * SAMPLE:
        return a
    ay, ax = align
    sh, sw = min(h // 2, SAMPLE // 2) // ay * ay, min(w // 2, SAMPLE // 2) // ax * ax
    ys = [(h * f // 4 - sh // 2) // ay * ay for f in (1, 3)]
    xs = [(w * f // 4 - sw // 2) // ax * ax for f in (1, 3)]
    return np.block([[a[y : y + sh, x : x + sw] for x in xs] for y in ys])


def sha256_mosaic(m: np.ndarray) -> str:
    """SHA-256 of a mosaic as uint16 little-endian, row-major."""
    return hashlib.sha256(np.ascontiguousarray(m, dtype="<u2")).hexdigest()


def _quantised(mosaic: np.ndarray, pred: np.ndarray, max_error: int, clip: tuple[int, int],
               bins: SigmaBins | None) -> tuple[np.ndarray, np.ndarray]:
    """(residual values, reconstruction) under ±max_error, or under the sigma bins when given."""
    return _quantise(mosaic, pred, max_error, clip) if bins is None else bins.quantise(mosaic, pred)


def _sample_predictions(rgb: np.ndarray, predictors: list[Predictor],
                        shape: tuple[int, ...]) -> list[np.ndarray] | None:
    """Each predictor's prediction of the sample (= ``_sample(p(rgb))``), computed from the sample of the
    un-flipped pixels alone (a prediction is per site and the sample's offsets are even, so the 2×2 phases stay);
    None where that does not hold (another CFA period, a linear image, mixed flips, a size mismatch)."""
    if not predictors or any(p.period != (2, 2) or p.samples != 1 or p.flip != predictors[0].flip
                             for p in predictors):
        return None
    s = rawio.undo_flip(np.asarray(rgb, dtype=np.uint8), predictors[0].flip)
    if s.shape[:2] != tuple(shape):
        return None
    img = np.stack([_sample(np.ascontiguousarray(s[..., c])) for c in range(3)], axis=-1)
    return [dataclasses.replace(p, flip=0)(img) for p in predictors]


def build_layer(mosaic: np.ndarray, rgb: np.ndarray, predictors: list[Predictor], max_error: int,
                bins: SigmaBins | None = None) -> bytes:
    """The layer blob that turns ``rgb`` (the JPEG's decoded pixels) back into ``mosaic`` within ±max_error (or
    within the bound of ``bins``: format ``FORMAT_SIGMA``), with the predictor/codec/layout that codes smallest on
    the sample."""
    mosaic = np.ascontiguousarray(mosaic, dtype=np.uint16)
    shape = mosaic.shape
    effort = _jxl_effort(mosaic.size)
    al = predictors[0].period
    sm = _sample(mosaic, al)
    whole = sm is mosaic
    usable = [p for p in predictors if p.usable()]
    full = None
    sampled = _sample_predictions(rgb, usable, shape)
    if sampled is None:
        full = [p(rgb) for p in usable]
        if any(pm.shape != shape for pm in full):
            raise ValueError("JPEG pixels and mosaic differ in size")
        sampled = [_sample(pm, al) for pm in full]
    trials = []
    for rank, (pred, spm) in enumerate(zip(usable, sampled, strict=True)):
        q, _ = _quantised(sm, spm, max_error, pred.clip, bins)
        vals, offset = _offset(q)
        ctx = contexts(spm, pred.base)
        for codec, layout in _candidates(shape, vals.dtype):
            data = _encode(vals, codec, layout, effort, offset, ctx)
            trials.append((len(data), rank, codec, layout, data))
    trials.sort(key=lambda t: t[:2])
    _, rank, codec, layout, data = trials[0]
    pred = usable[rank]
    pm = full[rank] if full is not None else pred(rgb)  # only the winner over the whole frame
    q, rec = _quantised(mosaic, pm, max_error, pred.clip, bins)
    vals, offset = _offset(q)
    if not whole:
        # up to FULL_TRIAL_PIXELS the sorted layout (a poor judge of itself on small samples) competes too
        tries = list(dict.fromkeys([(codec, layout)] + [("zstd", SORTED)] * (mosaic.size <= FULL_TRIAL_PIXELS)))
        tries = [t for t in tries if t in _candidates(shape, vals.dtype)] or [("zstd", "mosaic")]
        ctx = contexts(pm, pred.base) if any(layout in (SORTED, PREDICTED) for _, layout in tries) else None
        codec, layout, data = min(((c, lay, _encode(vals, c, lay, effort, offset, ctx)) for c, lay in tries),
                                  key=lambda t: len(t[2]))
    header = {"format": FORMAT, "guarantee": int(max_error), "shape": list(shape), "sha256": sha256_mosaic(rec),
              "predictor": pred.to_json(), "codec": codec, "layout": layout, "dtype": vals.dtype.name,
              "offset": offset, "payload_bytes": len(data), "payload_sha256": hashlib.sha256(data).hexdigest()}
    if bins is not None:
        header.update(format=FORMAT_SIGMA, guarantee=0, sigma=bins.to_json())
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("ascii")
    return struct.pack(">I", len(head)) + head + data


def parse_layer(blob: bytes, name: str) -> tuple[dict, Predictor, bytes]:
    """(header, predictor, payload) of a layer blob; LayerError if it is malformed."""
    try:
        (n,) = struct.unpack_from(">I", blob)
        header = json.loads(blob[4 : 4 + n].decode("ascii"))
        if header.get("format") not in (FORMAT, FORMAT_SIGMA):
            raise ValueError(f"unsupported layer format {header.get('format')!r} (this invisp reads {FORMAT} "
                             f"and {FORMAT_SIGMA})")
        if (header["format"] == FORMAT_SIGMA) != isinstance(header.get("sigma"), dict):
            raise ValueError("sigma quantiser missing or misplaced")
        payload = blob[4 + n :]
        h, w = (int(v) for v in header["shape"])
        ok = (len(payload) == int(header["payload_bytes"]) and h > 0 and w > 0
              and 0 <= int(header["guarantee"]) < 2**16 and abs(int(header["offset"])) <= 2**17
              and header["dtype"] in ("uint16", "uint32") and len(str(header["sha256"])) == 64)
        if not ok:
            raise ValueError("header fields out of range")
        if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
            raise ValueError("payload SHA-256 mismatch")
        pred = Predictor.from_json(header["predictor"])
        if "sigma" in header:
            header["sigma"] = SigmaBins.from_json(header["sigma"])
            if header["sigma"].hi != pred.clip[1] or pred.clip[0] != 0 or header["sigma"].period != pred.period:
                raise ValueError("sigma quantiser and predictor disagree on the value range or the period")
        return header, pred, payload
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError,
            RuntimeError) as e:  # RuntimeError: imagecodecs.ZstdError of damaged sigma tables
        raise LayerError(f"{name}: residual layer is damaged ({e})") from None


def reconstruct(header: dict, pred: Predictor, payload: bytes, rgb: np.ndarray, name: str) -> np.ndarray:
    """The verified mosaic a parsed layer gives with the JPEG's decoded pixels ``rgb``.

    LayerError if the payload is damaged or the result's SHA-256 differs from the header's."""
    shape = tuple(int(v) for v in header["shape"])
    pm = pred(rgb)
    if pm.shape != shape:
        raise LayerError(f"{name}: residual layer does not fit this JPEG (shape or value range)")
    try:
        ctx = contexts(pm, pred.base) if header["layout"] in (SORTED, PREDICTED) else None
        vals = _decode(payload, header["codec"], header["layout"], header["dtype"], shape, int(header["offset"]), ctx)
    except Exception as e:  # noqa: BLE001 — codecs raise their own error types on damaged data
        raise LayerError(f"{name}: residual layer is damaged (payload does not decode: {e})") from None
    if int(vals.max()) >= 2**18:
        raise LayerError(f"{name}: residual layer does not fit this JPEG (shape or value range)")
    n = int(header["guarantee"])
    rec = vals.astype(np.int32)  # |values| < 2¹⁸; a product that wraps only comes from a damaged layer
    rec -= int(header["offset"])
    bins = header.get("sigma")
    if bins is not None:
        rec = bins.reconstruct(rec, pm)
    else:
        if n:
            rec *= 2 * n + 1
        rec += pm
        rec = _clip(rec, *pred.clip).astype(np.uint16)
    if sha256_mosaic(rec) != header["sha256"]:
        what = f"RAW within {bins.k:g}σ" if bins is not None else "exact RAW" if n == 0 else f"RAW within ±{n}"
        raise LayerError(f"{name}: residual layer check failed: the {what} it reconstructs does not match its "
                         "SHA-256 (file modified or damaged); no output written (`invisp strip` removes the "
                         "layer for an approximate decode)")
    return rec


def guarantee(header: dict) -> Tolerance:
    """A parsed layer's bound: N raw units, or Sigma(K)."""
    bins = header.get("sigma")
    return Sigma(bins.k) if bins is not None else int(header["guarantee"])


def guarantee_text(n: Tolerance | str) -> str:
    n = parse_max_error(n)
    if isinstance(n, Sigma):
        return f"RAW within {n.k:g}σ of the sensor noise"
    return "bit-exact RAW" if n == 0 else f"RAW within ±{n} raw units"


# ------------------------------------------------------------------------------ file-level entry points


def decode_pixels(data: bytes) -> np.ndarray:
    """JPEG bytes → uint8 RGB, exactly as ``containers.jpeg.read_jpeg`` decodes a file (Pillow)."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def sigma_bins(raw: RawImage, tol: Sigma, model: noise.NoiseModel | None = None) -> SigmaBins:
    """The quantiser of the bound K·σ(n) for ``raw`` (its noise ``model``, by default ``noise.noise_model``), per
    position of its period: any periodic CFA, or a linear image per channel."""
    hi = max(int(raw.white), int(raw.mosaic.max()))
    model = noise.noise_model(raw) if model is None else model
    return SigmaBins.build(tol.k, model, raw.black, int(raw.white), hi, noise.period(raw))


def attach(data: bytes, raw: RawImage, gain: float, max_error: Tolerance | str,
           bins: SigmaBins | None = None, look: LookSettings | None = None,
           pixels: np.ndarray | None = None) -> tuple[bytes, int]:
    """An encoded invisp JPEG plus a layer recovering ``raw.mosaic`` within ±max_error, or within K·σ(n) of the
    noise model for Sigma(K) (``bins``: its ``sigma_bins``, if already made); ``look``: the JPEG's camera look,
    whose channel-wise inverse is tried as a predictor too; ``pixels``: ``data`` decoded, if already done
    (``jpeg.encode_jpeg_pixels``): (bytes, layer bytes)."""
    tol = parse_max_error(max_error)
    if isinstance(tol, int) and tol < 0:
        raise ValueError("max_error must be ≥ 0")
    if not isinstance(tol, Sigma):
        bins = None
    elif bins is None:
        bins = sigma_bins(raw, tol)
    hi = bins.hi if bins is not None else max(int(raw.white), int(raw.mosaic.max()))
    idx, samples = _positions(raw)
    preds = [Predictor.analytic(raw, gain, hi)] + ([Predictor.analytic(raw, gain, hi, look)] if look else [])
    blob = build_layer(noise.flat(raw.mosaic), decode_pixels(data) if pixels is None else pixels, [*preds,
                                                                Predictor.none(raw.flip, hi, idx.shape, samples)],
                       0 if bins is not None else tol, bins)
    out = layer.insert_layer(data, blob)
    return out, len(out) - len(data)


#: the JPEG qualities ``choose_quality`` tries for the noise-bounded tier: on the files of docs/noise.md the
#: total is lowest at q40–50 and flat below (q20–q40 within 3 %), and the JPEG is meant to be looked at; ``-q``
#: sets any quality
QUALITIES = (40, 50, 60, 70)


def choose_quality(raw: RawImage, rgb: np.ndarray, gain: float, bins: SigmaBins, subsampling: str,
                   qualities: tuple[int, ...] = QUALITIES, look: LookSettings | None = None) -> int:
    """The JPEG quality minimising JPEG + layer bytes under ``bins``, judged on a sample: four crops of the
    render (in sensor orientation, at even offsets) tiled into one image, coded at each quality (Pillow, as
    ``containers.jpeg``), predicted, quantised with the sigma bins and coded with ANS in the sorted layout."""
    pred = dataclasses.replace(Predictor.analytic(raw, gain, bins.hi, look), flip=0)  # the sample: sensor order
    al = (2, 2) if raw.linear else bins.period  # crops aligned to the CFA period (a linear image: per pixel)
    m = np.ascontiguousarray(raw.mosaic, dtype=np.uint16)
    mosaic = noise.flat(np.stack([_sample(m[..., c], al) for c in range(3)], -1)) if raw.linear else _sample(m, al)
    sensor = rawio.undo_flip(np.asarray(rgb, np.uint8), raw.flip)
    img = np.stack([_sample(np.ascontiguousarray(sensor[..., c]), al) for c in range(3)], axis=-1)
    best = None
    for q in qualities:
        buf = io.BytesIO()
        Image.fromarray(img, "RGB").save(buf, "JPEG", quality=q, subsampling=SUBSAMPLING[subsampling], optimize=True)
        pm = pred(decode_pixels(buf.getvalue()))
        d, _ = bins.quantise(mosaic, pm)
        vals, offset = _offset(d)
        size = buf.tell() + len(_encode(vals, "ans", SORTED, 0, offset, contexts(pm, pred.base)))
        if best is None or size < best[0]:
            best = (size, q)
    return best[1]


def recover_from_layer(path: str | os.PathLike, rgb: np.ndarray, params: ReconstructionParams,
                       data: bytes) -> tuple[RawImage, Tolerance] | None:
    """(the RAW the residual layer in ``data``, the bytes of the invisp JPEG ``path``, gives, verified; its
    guarantee: N or Sigma), or None without a layer."""
    name = Path(path).name
    blob = layer.read_layer(data, name)
    if blob is None:
        return None
    raw = params.raw_template()
    header, pred, payload = parse_layer(blob, name)
    if tuple(header["shape"]) != noise.flat(raw.mosaic).shape or pred.flip != raw.flip:
        raise LayerError(f"{name}: residual layer does not belong to this image (size or orientation differs)")
    raw.mosaic = reconstruct(header, pred, payload, rgb, name).reshape(raw.mosaic.shape)
    return raw, guarantee(header)


def describe_layer(data: bytes, name: str) -> str:
    """One line for ``invisp info``: the layer's guarantee, size, coding and predictor (or why it is unusable)."""
    try:
        blob = layer.read_layer(data, name)
        if blob is None:
            return "none (decode gives the approximate RAW)"
        header, pred, _ = parse_layer(blob, name)
    except LayerError as e:
        return f"damaged: {str(e).removeprefix(name + ': ')}"
    _, removed = layer.strip_layer(data, name)
    bins = header.get("sigma")
    noise_from = f", noise model {bins.model.source}" if bins is not None else ""
    return (f"{guarantee_text(guarantee(header))}{noise_from}, {removed / 1e6:.2f} MB "
            f"({header['codec']} {header['layout']}, {pred.kind} predictor, sha256 {header['sha256'][:16]}…)")


def layer_noise(data: bytes, name: str) -> dict | None:
    """The noise model a sigma-tier layer carries (``invisp info --json``: "noise"), or None (no such layer, or a
    damaged one)."""
    try:
        blob = layer.read_layer(data, name)
        bins = None if blob is None else parse_layer(blob, name)[0].get("sigma")
    except LayerError:
        return None
    return None if bins is None else {**bins.model.to_json(), "k": bins.k}


def strip_file(src: str | os.PathLike, dst: str | os.PathLike | None, force: bool) -> tuple[Path, int]:
    """Remove the layer: write the plain JPEG to ``dst``, or rewrite ``src`` in place (needs ``force``).

    Returns (the file written, bytes removed); removes nothing and writes nothing in place if there is no
    layer. Atomic either way; an in-place rewrite keeps the file's permission bits."""
    src = check_input(src)
    target = Path(dst) if dst is not None else src
    if dst is not None:
        output_container(target, "jpeg")  # a JPEG is never written under another type's name (s.dng)
    plain, removed = layer.strip_layer(src.read_bytes(), src.name)
    if dst is None:
        if not removed:
            return src, 0
        if not force:
            raise OutputError(f"{src}: refusing to rewrite the file in place (use -o OUT, or --force)")
    with atomic_output(target, force, inputs=[src] if dst is not None else ()) as tmp:
        tmp.write_bytes(plain)
        if dst is None:
            shutil.copymode(src, tmp)
    return target, removed
