"""Binding the invisp record to its pixels: what decode checks before it trusts a JPEG's record.

Encode stores, in the checksummed record (``params.pixels``):

* ``scan_sha256``: SHA-256 of every JPEG segment that defines the pixels (SOF, DQT, DHT, DRI, SOS and the
  entropy-coded data, from SOI to EOI), i.e. all but APPn/COM. Any decoder gives the same pixels for the same
  bytes, so a match means "bit-identical to what encode wrote", whatever metadata editors did around it.
* ``fingerprint``: each channel's mean over a G × G grid of cells of the decoded image,

      mean_c[i, j] = Σ_{y,x} w_i(y) w_j(x) I_c(y, x),

  with w_i(y) the fraction of pixel row y inside [i·H/G, (i+1)·H/G) divided by H/G. Fractional cell edges make
  the grid exactly equivariant under the 8 dihedral transforms (the grid of a turned image is the turned grid),
  and cell means barely move between JPEG decoders or under small edits.
* ``tables_sha256``: SHA-256 of the quantisation tables. Lossless tools keep them (a transposing turn transposes
  them); an edited table changes the pixels a little or not at all, so it is checked on its own.
* ``samples``: the exact RGB values of ``SAMPLES`` pixels at positions drawn from the image size alone. A lossless
  re-coding gives them back exactly; a lossless turn too, up to the rounding of libjpeg's transposed IDCT
  (a few % of pixels by ≤ 3 levels); a re-save, even at quality 100, changes many.

Decode (``check``): bytes that match → intact. Otherwise each dihedral transform g is tried on the grid, the
best one undone on the pixels (both as a whole-image turn and as jpegtran's lossless one, which leaves partial
iMCU edge rows/columns in place), and the undone image's fingerprint compared with the stored one:

* samples exact (≥ ``INTACT_EXACT`` of them, none off by more than ``INTACT_STEP``) and cells within
  ``INTACT_MEAN`` → ``transformed`` (losslessly; undone) or ``recoded`` (identity, e.g. re-optimised
  Huffman tables): the RAW comes back as from the untouched file;
* otherwise ``changed`` (re-saved, sharpened, damaged): the RAW is approximate; above ``GROSS_CELL`` levels in
  some cell (or the whole image far off) it is a different or destroyed image and decode refuses."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from dataclasses import dataclass

import numpy as np

from ..rawio.image import apply_flip, exif_to_flip, flip_to_exif

GRID = 16
SAMPLES = 1024
#: a lossless turn keeps ≥ 90 % of the sampled values exactly, the rest within 4 levels (measured on jpegtran's
#: transposes: ≥ 96.7 % and 2); a re-save keeps ≤ 60 %, a doubled quantisation entry ≤ 80.6 % (docs/integrity.md)
INTACT_EXACT = 0.9
INTACT_STEP = 4
#: per-cell tolerance (8-bit levels) of a lossless turn (jpegtran: ≤ 0.16, docs/integrity.md)
INTACT_MEAN = 0.35
#: beyond this a cell's mean differs by more than any re-save does: the pixels are not this record's image
GROSS_CELL = 24.0
#: the median cell differing by more than this: another image altogether (a spliced record)
FOREIGN_MEDIAN = 6.0
#: damaged image data: part of the image decodes as encoded (≥ 30 % of the samples exact; a re-save at q95 or
#: below leaves ≤ 30 %, at q100 up to 60 % but none far off) and part is destroyed (2 or more of the 1 024 samples
#: off by more than 64 levels, which no re-save down to quality 20 does): docs/integrity.md
DAMAGED_EXACT = 0.3
DAMAGED_FAR = 0.002
FAR_STEP = 64

_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = {0x01, *range(0xD0, 0xD8)}
_MARKER = re.compile(rb"\xff[\x01-\xcf\xd8-\xfe]")  # a marker inside entropy-coded data (not FF00, RSTn, fill)
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"

#: the names of the 8 dihedral transforms, by the ``rawio.apply_flip`` code that performs them on the upright image
TRANSFORMS = {0: "unchanged", 1: "flipped horizontally", 2: "flipped vertically", 3: "rotated 180°",
              4: "transposed", 5: "rotated 90° counter-clockwise", 6: "rotated 90° clockwise",
              7: "transversed"}


@dataclass(frozen=True)
class Segments:
    """The marker segments of a JPEG file: APP1 XMP payloads, the pixels' digest, sampling factors."""

    xmp: list[bytes]
    scan_sha256: str
    imcu: tuple[int, int]  # (height, width) of an iMCU in pixels: 8 × the largest sampling factors
    components: int
    tables: dict[int, np.ndarray]  # the quantisation tables by id, 8 × 8 in natural (row-major) order

    def tables_sha256(self, transposed: bool = False) -> str:
        """SHA-256 of the quantisation tables (ids and values, natural order, uint16 big-endian); ``transposed``:
        of the tables transposed, as jpegtran writes them for a turn that transposes the image."""
        h = hashlib.sha256()
        for k in sorted(self.tables):
            t = self.tables[k].T if transposed else self.tables[k]
            h.update(bytes([k]) + t.astype(">u2").tobytes())
        return h.hexdigest()


def segments(data: bytes) -> Segments:
    """Walk a JPEG's markers from SOI to EOI: every XMP packet, the SHA-256 of all non-APPn/COM segments with the
    entropy-coded data, the iMCU size and component count of the frame. ValueError if the structure is broken."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("no SOI marker")
    h = hashlib.sha256(b"\xff\xd8")
    xmp: list[bytes] = []
    tables: dict[int, np.ndarray] = {}
    imcu, ncomp = (8, 8), 0
    i, n = 2, len(data)
    while i < n:
        if data[i] != 0xFF:
            raise ValueError(f"no marker at byte {i}")
        while i + 1 < n and data[i + 1] == 0xFF:
            i += 1
        if i + 1 >= n:
            break
        m = data[i + 1]
        if m == _EOI:
            h.update(b"\xff\xd9")
            return Segments(xmp, h.hexdigest(), imcu, ncomp, tables)
        end = i + 2 if m in _STANDALONE else i + 2 + int.from_bytes(data[i + 2 : i + 4], "big")
        if end > n or (m not in _STANDALONE and end < i + 4):
            raise ValueError(f"marker segment at byte {i} runs past the end")
        payload = data[i + 4 : end]
        if m == 0xE1 and payload.startswith(XMP_HEADER):
            xmp.append(payload[len(XMP_HEADER):])
        if m == 0xDB:
            tables.update(_dqt(payload))
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC) and len(payload) >= 6:
            ncomp = payload[5]
            factors = payload[6 : 6 + 3 * ncomp]
            hs = [factors[k + 1] >> 4 for k in range(0, len(factors) - 2, 3)] or [1]
            vs = [factors[k + 1] & 15 for k in range(0, len(factors) - 2, 3)] or [1]
            imcu = (8 * max(vs), 8 * max(hs))
        if not (0xE0 <= m <= 0xEF or m == 0xFE):
            h.update(data[i:end])
        if m == _SOS:  # the entropy-coded data runs to the next marker that is not RSTn
            hit = _MARKER.search(data, end)
            stop = hit.start() if hit else n
            h.update(data[end:stop])
            end = stop
        i = end
    raise ValueError("no EOI marker (truncated)")


#: natural (row-major) position of each zig-zag index of an 8 × 8 block (ITU T.81, figure A.6)
_ZIGZAG = np.array(sorted(range(64), key=lambda p: (p // 8 + p % 8, (p % 8 if (p // 8 + p % 8) % 2 == 0 else p // 8))))


def _dqt(payload: bytes) -> dict[int, np.ndarray]:
    """The tables of one DQT segment: {id: 8 × 8 natural order}; ValueError if it is cut short."""
    out, i = {}, 0
    while i < len(payload):
        precision, tid = payload[i] >> 4, payload[i] & 15
        n = 128 if precision else 64
        raw = payload[i + 1 : i + 1 + n]
        if len(raw) != n:
            raise ValueError("quantisation table cut short")
        values = np.frombuffer(raw, ">u2" if precision else np.uint8).astype(np.int32)
        table = np.zeros(64, np.int32)
        table[_ZIGZAG] = values
        out[tid] = table.reshape(8, 8)
        i += 1 + n
    return out


def xmp_packets(data: bytes) -> list[bytes]:
    """The XMP packets of a JPEG's APP1 segments, in file order ([] if the structure cannot be read)."""
    try:
        return segments(data).xmp
    except ValueError:
        return []


@dataclass(frozen=True)
class Fingerprint:
    """Cell means of a decoded image: ``mean`` (G, G, 3), in 8-bit levels."""

    mean: np.ndarray

    def to_json(self) -> str:
        """base64 of the float16 values, little-endian: 1 536 bytes at G = 16."""
        return base64.b64encode(self.mean.astype("<f2").tobytes()).decode("ascii")

    @classmethod
    def from_json(cls, text: str, grid: int = GRID) -> Fingerprint:
        """ValueError unless ``text`` holds 3·G² finite float16 values."""
        v = np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), "<f2").astype(np.float32)
        if v.size != 3 * grid * grid or not np.all(np.isfinite(v)):
            raise ValueError("fingerprint has the wrong size or non-finite values")
        return cls(v.reshape(grid, grid, 3))

    def turned(self, flip: int) -> Fingerprint:
        """The fingerprint of ``apply_flip(image, flip)``: the grid turned the same way."""
        return Fingerprint(apply_flip(self.mean, flip))


def _weights(n: int, grid: int) -> np.ndarray:
    """(grid, n) float32: w[i, y] = |[y, y+1) ∩ [i·n/G, (i+1)·n/G)| / (n/G)."""
    edges = np.arange(grid + 1) * (n / grid)
    lo, hi = np.maximum(edges[:-1, None], np.arange(n)[None]), np.minimum(edges[1:, None], np.arange(n)[None] + 1)
    return (np.clip(hi - lo, 0, None) * (grid / n)).astype(np.float32)


def fingerprint(rgb: np.ndarray, grid: int = GRID, rows: int = 256) -> Fingerprint:
    """The ``Fingerprint`` of a uint8 (H, W, 3) image, computed in bands of ``rows`` rows (bounded memory)."""
    h, w = rgb.shape[:2]
    wy, wx = _weights(h, grid), _weights(w, grid)
    acc = np.zeros((grid, w * 3), np.float32)
    for y0 in range(0, h, rows):
        band = rgb[y0 : y0 + rows].reshape(-1, w * 3)
        acc += wy[:, y0 : y0 + len(band)] @ band.astype(np.float32)
    return Fingerprint(np.einsum("ixc,jx->ijc", acc.reshape(grid, w, 3), wx))


@dataclass(frozen=True)
class Distance:
    """How far an image is from what encode wrote: worst and median cell |Δmean| (levels), sampled values."""

    mean_max: float
    mean_median: float
    exact: float = 1.0  # fraction of the sampled values that are exactly as encode wrote them
    step: int = 0  # the largest difference of a sampled value (levels)
    far: float = 0.0  # fraction of the sampled pixels off by more than FAR_STEP levels in some channel
    tables: bool = True  # the quantisation tables are encode's (transposed with the image by a lossless turn)

    @property
    def intact(self) -> bool:
        return (self.tables and self.mean_max <= INTACT_MEAN and self.exact >= INTACT_EXACT
                and self.step <= INTACT_STEP)

    @property
    def foreign(self) -> bool:
        return self.mean_median > FOREIGN_MEDIAN

    @property
    def damaged(self) -> bool:
        return self.exact >= DAMAGED_EXACT and self.far >= DAMAGED_FAR

    @property
    def gross(self) -> bool:
        return self.mean_max > GROSS_CELL or self.foreign or self.damaged

    def __str__(self) -> str:
        return (f"cell means differ by up to {self.mean_max:.2f} levels (median {self.mean_median:.2f}), "
                f"{100 * self.exact:.0f} % of sampled values exact"
                + ("" if self.tables else ", quantisation tables not encode's"))


def distance(a: Fingerprint, b: Fingerprint, seen: np.ndarray | None = None,
             stored: np.ndarray | None = None) -> Distance:
    """Cells of ``a`` against ``b``; sampled values ``seen`` against ``stored`` where given."""
    dm = np.abs(a.mean - b.mean)
    exact, step, far = 1.0, 0, 0.0
    if seen is not None and stored is not None:
        diff = np.abs(seen.astype(np.int16) - stored)
        exact, step, far = float(np.mean(diff == 0)), int(diff.max()), float(np.mean(diff.max(-1) > FAR_STEP))
    return Distance(float(dm.max()), float(np.median(dm)), exact, step, far)


def sample_sites(h: int, w: int, n: int = SAMPLES) -> np.ndarray:
    """``n`` flat pixel indices of an upright H × W image, drawn from its size alone (the same on decode)."""
    return np.random.default_rng([h, w]).choice(h * w, size=min(n, h * w), replace=False)


def samples(rgb: np.ndarray, n: int = SAMPLES) -> np.ndarray:
    """The (n, 3) uint8 values at ``sample_sites`` of an upright image."""
    h, w = rgb.shape[:2]
    return rgb.reshape(h * w, 3)[sample_sites(h, w, n)]


def _samples_json(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, np.uint8).tobytes()).decode("ascii")


def _samples_from_json(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), np.uint8).reshape(-1, 3)


def _mirror(img: np.ndarray, axis: int, block: int) -> np.ndarray:
    """Mirror ``img`` along ``axis`` within its first ⌊n/block⌋·block entries, the rest untouched (jpegtran's
    lossless flip: partial iMCUs at the far edge stay in place; block = 1 mirrors all)."""
    n = img.shape[axis]
    k = n - n % block
    idx = np.concatenate([np.arange(k)[::-1], np.arange(k, n)])
    return np.take(img, idx, axis=axis)


def undo(img: np.ndarray, flip: int, imcu: tuple[int, int] = (1, 1)) -> np.ndarray:
    """The image before ``apply_flip(·, flip)`` turned it; with ``imcu`` > 1, before jpegtran's lossless version
    of that turn (transpose, then flips within whole iMCUs: libjpeg's rot90 = transpose + flip h, rot270 =
    transpose + flip v, transverse = transpose + both). ``imcu`` is the turned file's (height, width).

    ``apply_flip`` flips rows (bit 2) and columns (bit 1) before it transposes (bit 4); after a transpose the same
    turn is the transpose followed by the swapped flips, which is the order jpegtran applies them in."""
    rows, cols = (flip & 1, flip & 2) if flip & 4 else (flip & 2, flip & 1)
    out = img
    if rows:
        out = _mirror(out, 0, imcu[0])
    if cols:
        out = _mirror(out, 1, imcu[1])
    if flip & 4:
        out = out.swapaxes(0, 1)
    return np.ascontiguousarray(out)


@dataclass(frozen=True)
class Check:
    """What a JPEG's pixels are relative to its record.

    state: ``intact`` (bytes as encode wrote them), ``recoded`` (other bytes, same pixels), ``transformed``
    (a lossless dihedral turn, undone in ``rgb``), ``changed`` (pixels differ: the RAW is approximate),
    ``foreign`` (not this record's image), ``unbound`` (an older file without a fingerprint)."""

    state: str
    rgb: np.ndarray
    flip: int = 0
    distance: Distance | None = None
    imcu: tuple[int, int] = (1, 1)  # the block size ``undo`` turned ``rgb`` back with: (1, 1) a whole-image turn

    @property
    def summary(self) -> str:
        """One line for verify/info/decode."""
        turn = TRANSFORMS[self.flip]
        return {
            "intact": "pixels bit-identical to what encode wrote",
            "recoded": "pixels as encode wrote them (the image data was losslessly re-coded)",
            "transformed": f"image {turn} losslessly after encode: undone",
            "changed": (f"pixels changed after encode ({'re-saved, edited or damaged' if not self.flip else turn})"
                        f": {self.distance}; the RAW is approximate"),
            "foreign": (f"the pixels are not this record's image ({self.distance})"
                        if self.distance is None or self.distance.foreign else
                        f"the image data is damaged: {100 * self.distance.exact:.0f} % of the sampled values decode "
                        f"as encoded, {100 * self.distance.far:.1f} % of the pixels are off by more than {FAR_STEP} "
                        "levels" if self.distance.damaged else
                        f"the pixels are damaged beyond a re-save ({self.distance})"),
            "unbound": "no fingerprint: written by an older release (pixels not checked)",
        }[self.state]

    def orientation(self, tag: int) -> int:
        """The EXIF orientation the DNG should show: the user's turn of the pixels (``flip``), then the JPEG's
        Orientation ``tag`` (1..8)."""
        probe = np.arange(6).reshape(2, 3)
        want = apply_flip(apply_flip(probe, self.flip), exif_to_flip(tag))
        code = next(c for c in range(8) if apply_flip(probe, c).shape == want.shape
                    and np.array_equal(apply_flip(probe, c), want))
        return flip_to_exif(code)


def bind(rgb: np.ndarray, data: bytes) -> dict:
    """What encode stores in ``params.pixels`` for the JPEG ``data`` whose decoded pixels are ``rgb``."""
    seg = segments(data)
    return {"grid": GRID, "fingerprint": fingerprint(rgb).to_json(), "samples": _samples_json(samples(rgb)),
            "scan_sha256": seg.scan_sha256, "tables_sha256": seg.tables_sha256()}


def check(rgb: np.ndarray, data: bytes, pixels: dict | None, shape: tuple[int, int]) -> Check:
    """Compare a JPEG's decoded pixels ``rgb`` (and its bytes ``data``) with the stored ``pixels`` binding;
    ``shape`` is the upright (H, W) the record describes. Returns the upright pixels in ``Check.rgb``."""
    if pixels is None:
        return Check("unbound", rgb)
    seg = segments(data)
    if seg.scan_sha256 == pixels["scan_sha256"]:
        return Check("intact", rgb)
    grid = int(pixels["grid"])
    stored = Fingerprint.from_json(pixels["fingerprint"], grid)
    values = _samples_from_json(pixels["samples"]) if "samples" in pixels else None
    seen = fingerprint(rgb, grid)
    turns = [f for f in range(8) if (rgb.shape[1::-1] if f & 4 else rgb.shape[:2]) == tuple(shape)]
    if not turns:
        return Check("foreign", rgb, 0, distance(seen, stored))
    # the grid of a turned image is the turned grid: rank the turns by the median cell (robust to jpegtran's edge
    # strips) and try each one that nearly ties the best (a near-symmetric image) on the pixels
    median = {f: distance(seen, stored.turned(f)).mean_median for f in turns}
    best = min(median.values())
    tried = []
    for f in sorted(turns, key=median.get):
        if median[f] > best + 0.5 + 0.1 * best:
            break
        tables = pixels.get("tables_sha256") in (None, seg.tables_sha256(transposed=bool(f & 4)))
        for v in ([(1, 1)] if f == 0 else list({(1, 1), seg.imcu})):
            u = rgb if f == 0 else undo(rgb, f, v)
            fp = seen if f == 0 else fingerprint(u, grid)
            d = distance(fp, stored, None if values is None else samples(u, len(values)), values)
            tried.append((dataclasses.replace(d, tables=tables), f, u, v))
    d, flip, upright, imcu = min(tried, key=lambda t: (not t[0].intact, -t[0].exact, t[0].mean_max))
    state = ("recoded" if flip == 0 else "transformed") if d.intact else ("foreign" if d.gross else "changed")
    return Check(state, upright, flip, d, imcu)
