"""The ISP as a chain of invertible steps.

Every step maps a float32 tensor (N, C, H, W) forward (RAW → sRGB direction) and back (``inverse``); the
parameters it needs are given at construction, never read from files. ``Chain`` composes steps; its inverse
runs the inverses in reverse order:  f = f_k ∘ … ∘ f_1,   f⁻¹ = f_1⁻¹ ∘ … ∘ f_k⁻¹.

Mosaic steps (``Levels``, ``WhiteBalance``) act on (N, 1, H, W) Bayer data; ``BilinearDemosaic`` maps it to
(N, 3, H, W); the rest act on RGB. CFA-aware steps assume the tensor's top-left site has the layout ``cfa``
(tiling keeps tile origins even, so this holds for every tile).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .settings import (  # noqa: F401  (re-exported)
    CFA_LAYOUTS,
    COLOUR_INDEX,
    DEFAULT_DEMOSAIC,
    DEFAULT_KNEE,
    LINEAR_CFA,
    FrontEnd,
    cfa_demosaic,
    cfa_rows,
)
from .settings import Look as LookSettings

if TYPE_CHECKING:
    import torch

Array = Any  #: a float ``np.ndarray`` or ``torch.Tensor``: every step computes in the backend it is given


def _torch():
    """torch, imported on first use: the analytic chain on numpy arrays never loads it."""
    import torch

    return torch


def array_module(x: Array):
    """The array library of ``x``: numpy for ``np.ndarray``, else torch."""
    return np if isinstance(x, np.ndarray) else _torch()


def as_array(values: np.ndarray | Sequence, like: Array) -> Array:
    """Constant ``values`` in the backend, dtype and device of ``like`` (rounded through float32 first, as the
    torch path always has, so both backends compute with the same constants)."""
    v = np.asarray(values, dtype=np.float32)
    if isinstance(like, np.ndarray):
        return v.astype(like.dtype, copy=False)
    return _torch().from_numpy(v).to(like.device, like.dtype)


def _empty(like: Array, shape: tuple[int, ...]) -> Array:
    return np.empty(shape, like.dtype) if isinstance(like, np.ndarray) else like.new_empty(shape)


def cfa_index(cfa: str) -> np.ndarray:
    """The colour channel (0 R, 1 G, 2 B) of each position of the CFA's repeating tile, (p, q): (2, 2) for Bayer,
    (6, 6) for X-Trans; for ``LINEAR_CFA`` (3 samples per pixel) the channels themselves, shape (3, 1, 1), so that
    ``values[cfa_index(cfa)]`` is always what ``per_site`` takes."""
    if cfa == LINEAR_CFA:
        return np.arange(3).reshape(3, 1, 1)
    return np.array([[COLOUR_INDEX[c] for c in row] for row in cfa_rows(cfa)])


def cfa_masks(cfa: str, h: int, w: int, device=None) -> torch.Tensor:
    """One-hot site masks (1, 3, H, W) tensor: mask[c, y, x] = 1 where site (y, x) records colour c."""
    torch = _torch()
    idx = torch.as_tensor(cfa_index(cfa), device=device)
    tile = idx.repeat((h + 1) // 2, (w + 1) // 2)[:h, :w]
    return torch.nn.functional.one_hot(tile, 3).permute(2, 0, 1).unsqueeze(0).float()


def per_site(fn: Callable[..., Array], x: Array, *per_position: np.ndarray | Sequence) -> Array:
    """``fn(x, *v)`` where each v holds a 2×2 per-CFA-position array's value at every site of ``x`` (…, H, W).

    For even H the values are a (2, W) row pattern broadcast over a (…, H/2, 2, W) view of ``x`` instead of
    full-size arrays (the same elementwise arithmetic, so the same result, with contiguous rows and no extra
    memory traffic); an odd H tiles them over (H, W). Values of another period (p, q) are tiled over (H, W);
    values of shape (C, 1, 1) (a 3-sample image, ``cfa_index(LINEAR_CFA)``) broadcast over its channels."""
    h, w = x.shape[-2:]
    shape = np.shape(per_position[0]) if per_position else (2, 2)
    if len(shape) == 3:
        return fn(x, *(as_array(v, x) for v in per_position))
    if np.prod(shape) != 4:
        p, q = shape
        return fn(x, *(as_array(np.tile(np.asarray(v, np.float64), (-(-h // p), -(-w // q)))[:h, :w], x)
                       for v in per_position))

    def pattern(v: np.ndarray | Sequence, rows: int) -> Array:
        return as_array(np.tile(np.asarray(v, np.float64).reshape(2, 2), (rows, (w + 1) // 2))[:, :w], x)

    if h % 2:
        return fn(x, *(pattern(v, (h + 1) // 2)[:h] for v in per_position))
    lead = x.shape[:-2]
    return fn(x.reshape(*lead, h // 2, 2, w), *(pattern(v, 1) for v in per_position)).reshape(*lead, h, w)


class Step:
    """An invertible step: ``inverse(forward(x)) == x`` up to float rounding, on numpy arrays or torch tensors
    alike (the same arithmetic in either; torch where gradients or a GPU are needed)."""

    def forward(self, x: Array) -> Array:
        raise NotImplementedError

    def inverse(self, y: Array) -> Array:
        raise NotImplementedError

    #: pixels of context each output pixel depends on (for tiling halos)
    receptive_field: int = 0

    def __call__(self, x: Array) -> Array:
        return self.forward(x)


class Levels(Step):
    """Raw units → normalised signal:  n = (v − b) / (w − b),  inverse v = n·(w − b) + b.

    ``black`` is per position of the CFA tile ((2, 2) Bayer, (p, q) any other) or, for a 3-sample image, per
    channel (3,). No clipping, so the step is exactly invertible; quantisation to raw units happens only when a
    DNG is written."""

    def __init__(self, black: np.ndarray, white: float):
        b = np.asarray(black, dtype=np.float64)
        self.black = b.reshape(3, 1, 1) if b.ndim == 1 else b.reshape(2, 2) if b.size == 4 else b
        self.white = float(white)

    def forward(self, x: Array) -> Array:
        return per_site(lambda x, b: (x - b) / (self.white - b), x, self.black)

    def inverse(self, y: Array) -> Array:
        return per_site(lambda y, b: y * (self.white - b) + b, y, self.black)


class Exposure(Step):
    """A global linear gain  y = g·x  (inverse x = y / g) on the normalised signal."""

    def __init__(self, gain: float):
        if not gain > 0:
            raise ValueError("exposure gain must be positive")
        self.gain = float(gain)

    def forward(self, x: Array) -> Array:
        return x * self.gain

    def inverse(self, y: Array) -> Array:
        return y / self.gain


def libraw_maximum_gain(mosaic: np.ndarray, black: np.ndarray, white: float, threshold: float = 0.75) -> float:
    """The brightening LibRaw's render applies by default (``adjust_maximum_thr`` = 0.75): when the largest
    black-subtracted value m = max(v − b) lies in (thr·(w − b), w − b), LibRaw takes m as the white point,
    i.e. a gain (w − b)/m; otherwise 1. Emulated so that the analytic ISP renders as bright as LibRaw."""
    b = np.asarray(black, dtype=np.float64)
    b = b.reshape(2, 2) if b.size == 4 else b
    # max(v − b) over all sites = the largest of the per-CFA-position (max v) − b: one pass, no float64 copy
    if b.ndim == 1:  # a 3-sample image, black per channel
        m = max(float(mosaic[..., c].max()) - b[c] for c in range(b.size))
    else:
        p, q = b.shape
        m = max(float(mosaic[i::p, j::q].max()) - b[i, j] for i in range(p) for j in range(q)
                if mosaic[i::p, j::q].size)
    span = float(white) - float(b.max())
    return span / m if threshold * span < m < span else 1.0


def libraw_wb_gain(wb: Sequence[float]) -> float:
    """The brightening LibRaw's ``scale_colors`` adds through its white balance: it divides the multipliers by
    their smallest (with its default clipping highlight mode), whereas ``WhiteBalance`` keeps G = 1; so where R or
    B is below G (an auto white balance of a greenish scene, some as-shot ones) LibRaw's render is 1 / min(wb)
    brighter. Returns that factor (1 when G is the smallest)."""
    low = float(np.min(np.asarray(wb, dtype=np.float64)))
    return 1.0 / low if 0.0 < low < 1.0 else 1.0


def libraw_gain(raw) -> float:
    """The exposure gain that makes the front end as bright as LibRaw's render of a RawImage (anything with mosaic,
    black, white, wb): ``libraw_maximum_gain`` × ``libraw_wb_gain``, from the whole frame."""
    return libraw_maximum_gain(raw.mosaic, raw.black, raw.white) * libraw_wb_gain(raw.wb)


class WhiteBalance(Step):
    """Per-site gain of the site's colour:  y = g_c(site) · n,  inverse n = y / g_c(site)."""

    def __init__(self, cfa: str, wb: Sequence[float]):
        self.cfa = cfa
        self.gains = np.asarray(wb, dtype=np.float64).reshape(3)
        if not np.all(self.gains > 0):
            raise ValueError("white-balance gains must be positive")

    def forward(self, x: Array) -> Array:
        return per_site(lambda x, g: x * g, x, self.gains[cfa_index(self.cfa)])

    def inverse(self, y: Array) -> Array:
        return per_site(lambda y, g: y / g, y, self.gains[cfa_index(self.cfa)])


class HighlightRolloff(Step):
    """An invertible highlight shoulder on the white-balanced mosaic, in place of LibRaw's hard clip.

    After white balance a site of colour c reaches at most m_c = gain·wb_c (its white level), which for
    m_c > 1 lies beyond what sRGB can show; LibRaw clips it to 1, and the colour and detail of every bright area
    are lost. Here values t ≤ k pass unchanged and (k, m_c] map onto (k, 1] by a rational (Reinhard-like)
    shoulder, with d = t − k:

        y = k + d / (1 + a_c·d),   a_c = 1/(1 − k) − 1/(m_c − k) ≥ 0

    slope 1 at the knee (C¹), y(m_c) = 1 with slope ((1 − k)/(m_c − k))² > 0 there (well conditioned to the end);
    inverse d = f / (1 − a_c·f) with f = y − k. A ceiling ≤ 1 is taken as 1, where a = 0 and the map is the
    identity; values above the ceiling (beyond the white level) map to 1."""

    def __init__(self, cfa: str, ceiling: Sequence[float], knee: float):
        if not 0.0 < knee < 1.0:
            raise ValueError("highlight knee must lie in (0, 1)")
        self.cfa, self.knee = cfa, float(knee)
        self.ceiling = np.maximum(np.asarray(ceiling, dtype=np.float64).reshape(3), 1.0)
        self.a = 1.0 / (1.0 - self.knee) - 1.0 / (self.ceiling - self.knee)

    def forward(self, x: Array) -> Array:
        k, xp = self.knee, array_module(x)

        def fn(x: Array, top: Array, a: Array) -> Array:
            d = xp.minimum((x - k).clip(0.0, None), top)
            return xp.where(x > k, k + d / (1.0 + a * d), x)

        idx = cfa_index(self.cfa)
        return per_site(fn, x, (self.ceiling - k)[idx], self.a[idx])

    def inverse(self, y: Array) -> Array:
        k, xp = self.knee, array_module(y)

        def fn(y: Array, a: Array) -> Array:
            f = (y - k).clip(0.0, 1.0 - k)
            return xp.where(y > k, k + f / (1.0 - a * f), y)

        return per_site(fn, y, self.a[cfa_index(self.cfa)])


_K_RB = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], np.float32)
_K_G = np.array([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]], np.float32)


class BilinearDemosaic(Step):
    """Bilinear demosaic as normalised convolution; the inverse re-mosaics by reading the CFA sites.

    For colour c with site mask m_c and kernel k_c:  out_c = (k_c * (x·m_c)) / (k_c * m_c).
    At a site that recorded c the kernel's only c-coloured tap is the centre, so out_c = x there: the
    inverse  x = Σ_c m_c · out_c  is exact for any layout, any size (odd included) and at the borders.
    (Computed with torch: a numpy array is converted and back.)"""

    receptive_field = 1

    def __init__(self, cfa: str):
        self.cfa = cfa
        cfa_index(cfa)  # validate

    def forward(self, x: Array) -> Array:
        torch = _torch()
        if isinstance(x, np.ndarray):
            return self.forward(torch.from_numpy(np.ascontiguousarray(x))).numpy()
        m, inv_den = _demosaic_weights(self.cfa, x.shape[-2], x.shape[-1], x.device, x.dtype)
        k = torch.from_numpy(np.stack([_K_RB, _K_G, _K_RB])[:, None]).to(x)
        return torch.nn.functional.conv2d(x * m, k, padding=1, groups=3) * inv_den

    def inverse(self, y: Array) -> Array:
        """Re-mosaic: each site keeps the channel of its own colour (the same values as Σ_c m_c·y_c, read
        directly from the four CFA phases)."""
        idx = cfa_index(self.cfa)
        out = _empty(y, (*y.shape[:-3], 1, *y.shape[-2:]))
        for i in range(2):
            for j in range(2):
                out[..., 0, i::2, j::2] = y[..., idx[i, j], i::2, j::2]
        return out


@functools.lru_cache(maxsize=8)
def _demosaic_weights(cfa: str, h: int, w: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Site masks and 1 / (k_c * m_c) for a tile shape (tiles mostly share one shape: computed once)."""
    torch = _torch()
    m = cfa_masks(cfa, h, w, device).to(dtype)
    k = torch.from_numpy(np.stack([_K_RB, _K_G, _K_RB])[:, None]).to(m)
    return m, 1.0 / torch.nn.functional.conv2d(m, k, padding=1, groups=3)


_MHC = np.array([
    [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]],  # G at R/B
    [[0, 0, .5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, .5, 0, 0]],  # row neighbours
    [[0, 0, -1, 0, 0], [0, -1, 4, -1, 0], [.5, 0, 5, 0, .5], [0, -1, 4, -1, 0], [0, 0, -1, 0, 0]],  # column nbrs
    [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]],  # diagonal
], np.float32)[:, None] / 8


class MHCDemosaic(BilinearDemosaic):
    """Malvar–He–Cutler gradient-corrected linear demosaic (ICASSP 2004), inverted by re-mosaicking.

    Each missing colour is a 5×5 linear filter of the mosaic (bilinear estimate plus a Laplacian correction
    from the site's own colour), chosen by site type; recorded sites keep their value, so the inverse is the
    same exact re-mosaic as for the bilinear step. Much closer to LibRaw's AHD render than bilinear, at ~100
    MAC per pixel. Borders are mirrored by 2 px (mirroring keeps the CFA phase)."""

    receptive_field = 2

    def forward(self, x: Array) -> Array:
        """The filters run on the four CFA phase planes of the 2-px-mirrored mosaic as one 3×3 correlation
        (4 → 8 planes: the two missing colours at each phase; ``_phase_correlate``), 1/4 of the multiplies of the
        5×5 filters at every site. An odd height or width gets one more (zero) row or column after the mirror,
        which only the cropped-off output row or column reads."""
        n, _, h, w = x.shape
        odd = (0, 0), (0, 0), (0, h % 2), (0, w % 2)
        if isinstance(x, np.ndarray):
            xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="reflect")
            xp = np.pad(xp, odd) if h % 2 or w % 2 else xp
            planes = np.stack([xp[:, 0, a::2, b::2] for a in range(2) for b in range(2)], axis=1)
        else:
            pad = _torch().nn.functional.pad
            xp = pad(x, (2, 2, 2, 2), mode="reflect")
            xp = pad(xp, (0, w % 2, 0, h % 2)) if h % 2 or w % 2 else xp
            planes = _torch().nn.functional.pixel_unshuffle(xp, 2)  # plane 2a + b: padded sites (2u + a, 2v + b)
        cand = _phase_correlate(planes, self.cfa)  # (N, 8, ⌈H/2⌉, ⌈W/2⌉)
        h2, w2 = cand.shape[-2:]
        out = _empty(x, (n, 3, 2 * h2, 2 * w2))
        for c, i, j, k in _mhc_phase_filters(self.cfa)[1]:  # k < 0: the site's own value, from its phase plane
            out[:, c, i::2, j::2] = planes[:, 2 * i + j, 1:1 + h2, 1:1 + w2] if k < 0 else cand[:, k]
        return out[..., :h, :w] if h % 2 or w % 2 else out


def _phase_correlate(planes: Array, cfa: str) -> Array:
    """cand[:, k] = Σ_{p,r,q} W[k, p, r, q] · planes[:, p, r:r+h, q:q+w] (a valid 3×3 correlation, W from
    ``_mhc_phase_filters``): torch's ``conv2d`` for tensors; for numpy arrays a sparse form — the taps that share
    a weight are summed first, then scaled once (80 of the 288 taps are non-zero, in 3–4 distinct weights per
    output plane)."""
    weights = _mhc_phase_filters(cfa)[0]
    if not isinstance(planes, np.ndarray):
        return _torch().nn.functional.conv2d(planes, _torch().from_numpy(weights).to(planes))
    n, _, hp, wp = planes.shape
    h, w = hp - 2, wp - 2
    out = np.empty((n, len(weights), h, w), planes.dtype)
    acc = np.empty((n, h, w), planes.dtype)
    for k, groups in enumerate(_mhc_tap_groups(cfa)):
        for g, (weight, taps) in enumerate(groups):
            dst = out[:, k] if g == 0 else acc
            p, r, q = taps[0]
            np.copyto(dst, planes[:, p, r:r + h, q:q + w])
            for p, r, q in taps[1:]:
                dst += planes[:, p, r:r + h, q:q + w]
            dst *= weight
            if g:
                out[:, k] += acc
    return out


@functools.lru_cache(maxsize=4)
def _mhc_tap_groups(cfa: str) -> list[list[tuple[np.float32, list[tuple[int, int, int]]]]]:
    """Per output plane k: [(weight, [(plane, dy, dx), …]), …] over the non-zero taps of ``_mhc_phase_filters``."""
    weights = _mhc_phase_filters(cfa)[0]
    groups = []
    for wk in weights:
        by_weight: dict[float, list[tuple[int, int, int]]] = {}
        for p, r, q in zip(*np.nonzero(wk), strict=True):
            by_weight.setdefault(float(wk[p, r, q]), []).append((int(p), int(r), int(q)))
        groups.append([(np.float32(v), taps) for v, taps in by_weight.items()])
    return groups


@functools.lru_cache(maxsize=4)
def _mhc_choice(cfa: str) -> np.ndarray:
    """(1, 3, 2, 2) index, per output colour and CFA position, into the candidates [site value, G-at-R/B,
    row, column, diagonal]."""
    idx = cfa_index(cfa)
    table = np.zeros((2, 2, 3), dtype=np.int64)  # candidate index per 2×2 position and output colour
    for i in range(2):
        for j in range(2):
            c = idx[i, j]
            row_colour = idx[i, 1 - j]  # the other colour on this row
            col_colour = idx[1 - i, j]  # the other colour on this column
            for out in range(3):
                if out == c:
                    table[i, j, out] = 0
                elif c != 1:  # at R or B: G from the cross, the opposite colour from the diagonals
                    table[i, j, out] = 1 if out == 1 else 4
                else:  # at G: the colour met along the row uses the row kernel, the other the column kernel
                    table[i, j, out] = 2 if out == row_colour else 3
                    assert out in (row_colour, col_colour)
    return table.transpose(2, 0, 1)[None]


@functools.lru_cache(maxsize=4)
def _mhc_phase_filters(cfa: str) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The MHC filters rewritten on the 2×2 phase planes of the 2-px-padded mosaic (plane 2a + b holds padded
    sites (2u + a, 2v + b)): tap (dy, dx) of the filter for phase (i, j) reads plane ((i + dy) mod 2,
    (j + dx) mod 2) at offset ((i + 2 + dy) // 2, (j + 2 + dx) // 2), a 3×3 window. Returns the (8, 4, 3, 3)
    float32 weights and the plan (output colour, i, j, output plane or −1 for the site's own value)."""
    table = _mhc_choice(cfa)[0]
    weights = np.zeros((8, 4, 3, 3), np.float32)
    plan: list[tuple[int, int, int, int]] = []
    k = 0
    for i in range(2):
        for j in range(2):
            for c in range(3):
                cand = int(table[c, i, j])
                if cand == 0:
                    plan.append((c, i, j, -1))
                    continue
                kernel = _MHC[cand - 1, 0]
                for dy in range(-2, 3):
                    for dx in range(-2, 3):
                        a, r = (i + 2 + dy) % 2, (i + 2 + dy) // 2
                        b, q = (j + 2 + dx) % 2, (j + 2 + dx) // 2
                        weights[k, 2 * a + b, r, q] = kernel[dy + 2, dx + 2]
                plan.append((c, i, j, k))
                k += 1
    return weights, plan


def _reach(idx: np.ndarray, colour: int) -> int:
    """The least r such that every (r + 1) × (r + 1) window of the periodic layout ``idx``, at any phase, holds a
    site of ``colour``: a (2r + 1)² window then holds one at every site, corners of the image included."""
    p, q = idx.shape
    for r in range(max(p, q)):
        tiled = np.tile(idx == colour, (2 + r // p, 2 + r // q))
        if all(tiled[i : i + r + 1, j : j + r + 1].any() for i in range(p) for j in range(q)):
            return r
    raise ValueError(f"colour {colour} is missing from the CFA")


def _tent(x: Array, r: int) -> Array:
    """Separable tent filter of radius r with zero padding, on the last two axes:
    out(y, x) = Σ_{|a|, |b| ≤ r} (r + 1 − |a|)(r + 1 − |b|) · x(y + a, x + b),
    each pass as (r + 1)·x₀ + Σ_{k=1..r} (r + 1 − k)·(x₋ₖ + x₊ₖ), accumulated in place."""
    h, w = x.shape[-2:]
    if isinstance(x, np.ndarray):
        xp = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(r, r), (0, 0)])
        rows = xp[..., r : r + h, :] * np.float32(r + 1)
        for k in range(1, r + 1):
            pair = np.add(xp[..., r - k : r - k + h, :], xp[..., r + k : r + k + h, :])
            rows += pair * np.float32(r + 1 - k) if k < r else pair
        rp = np.pad(rows, [(0, 0)] * (x.ndim - 1) + [(r, r)])
        out = rows
        out *= np.float32(r + 1)
        for k in range(1, r + 1):
            pair = np.add(rp[..., r - k : r - k + w], rp[..., r + k : r + k + w])
            out += pair * np.float32(r + 1 - k) if k < r else pair
        return out
    xp = _torch().nn.functional.pad(x, (r, r, r, r))
    rows = sum((r + 1 - abs(a)) * xp[..., r + a : r + a + h, :] for a in range(-r, r + 1))
    return sum((r + 1 - abs(b)) * rows[..., r + b : r + b + w] for b in range(-r, r + 1))


class PatternDemosaic(Step):
    """Demosaic of any periodic one-colour-per-site CFA (X-Trans 6×6, any period), by normalised convolution of
    colour differences with one refinement of green; the inverse re-mosaics (each site takes its own colour's value
    back), exactly.

    With site masks m_c, T the tent filter of radius r_c (``_reach``: every window holds colour c), ⟨f⟩_c =
    T(f·m_c) / T(m_c) the normalised convolution of f's values at the c sites, and C = R, B:

        G₁ = x at G sites,  ⟨x⟩_G elsewhere
        C₁ = x at C sites,  G₁ + ⟨x − G₁⟩_C elsewhere
        G₂ = x at G sites,  x + ⟨G₁ − C₁⟩_G at a C site  (the green–C difference of the neighbouring greens)
        C₂ = x at C sites,  G₂ + ⟨x − G₂⟩_C elsewhere;   output (C₂_R, G₂, C₂_B)

    Interpolating colour differences keeps the edges of the dense green channel; the refinement puts the site's
    own value into its green (docs/formats.md measures each stage). Tile origins must keep the CFA phase:
    ``align`` is the period."""

    def __init__(self, cfa: str):
        self.cfa = cfa
        self.idx = cfa_index(cfa)
        if self.idx.ndim != 2:
            raise ValueError(f"{cfa!r} is not a colour filter array")
        self.r = [_reach(self.idx, c) for c in range(3)]
        self.receptive_field = 2 * self.r[1] + 2 * max(self.r[0], self.r[2])
        self.align = int(np.lcm(*self.idx.shape))

    def forward(self, x: Array) -> Array:
        xp, v = array_module(x), x[..., 0, :, :]
        masks, inv = _pattern_weights(self.cfa, *v.shape[-2:])
        m, inv = [as_array(k, v) for k in masks], [as_array(k, v) for k in inv]

        def mean(f: Array, c: int) -> Array:  # ⟨f⟩_c
            return _tent(f * m[c], self.r[c]) * inv[c]

        g1 = xp.where(m[1] > 0, v, mean(v, 1))
        d1 = v - g1
        c1 = [xp.where(m[c] > 0, v, g1 + mean(d1, c)) for c in (0, 2)]
        g2 = xp.where(m[0] > 0, v + mean(g1 - c1[0], 1), xp.where(m[2] > 0, v + mean(g1 - c1[1], 1), v))
        d2 = v - g2
        rb = [xp.where(m[c] > 0, v, g2 + mean(d2, c)) for c in (0, 2)]
        return xp.stack([rb[0], g2, rb[1]], -3)

    def inverse(self, y: Array) -> Array:
        """Re-mosaic: each site keeps the channel of its own colour."""
        out = _empty(y, (*y.shape[:-3], 1, *y.shape[-2:]))
        p, q = self.idx.shape
        for (i, j), c in np.ndenumerate(self.idx):
            out[..., 0, i::p, j::q] = y[..., c, i::p, j::q]
        return out


@functools.lru_cache(maxsize=8)
def _pattern_weights(cfa: str, h: int, w: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Site masks m_c (H, W) float32 and 1 / T_{r_c}(m_c) for a tile shape (computed once per shape)."""
    idx = cfa_index(cfa)
    sites = np.tile(idx, (-(-h // idx.shape[0]), -(-w // idx.shape[1])))[:h, :w]
    masks = [(sites == c).astype(np.float32) for c in range(3)]
    return masks, [1.0 / _tent(m, _reach(idx, c)) for c, m in enumerate(masks)]


class NoDemosaic(Step):
    """A 3-sample (linear, already demosaiced) image has nothing to demosaic: the identity."""

    def __init__(self, cfa: str = LINEAR_CFA):
        self.cfa = cfa

    def forward(self, x: Array) -> Array:
        return x

    def inverse(self, y: Array) -> Array:
        return y


class ColorMatrix(Step):
    """Per-pixel 3×3 colour transform  y = M x  (camera RGB → linear sRGB), inverse x = M⁻¹ y."""

    def __init__(self, matrix: np.ndarray):
        m = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
        if abs(np.linalg.det(m)) < 1e-8:
            raise ValueError("colour matrix is singular")
        self.m = m
        self.m_inv = np.linalg.inv(m)

    @staticmethod
    def _apply(x: Array, m: np.ndarray) -> Array:
        if isinstance(x, np.ndarray):
            return np.einsum("ij,njhw->nihw", m.astype(x.dtype), x)
        return _torch().einsum("ij,njhw->nihw", _torch().as_tensor(m, dtype=x.dtype, device=x.device), x)

    def forward(self, x: Array) -> Array:
        return self._apply(x, self.m)

    def inverse(self, y: Array) -> Array:
        return self._apply(y, self.m_inv)


class Gamma(Step):
    """BT.709-style transfer curve, LibRaw's default (power p = 0.45, toe slope s = 4.5), odd-extended to
    negative values so that it is a bijection of ℝ:

        g(x) = sign(x) · (a·|x|^p − (a − 1))  for |x| ≥ t,      g(x) = s·x  for |x| < t

    with t and a chosen (as in dcraw's gamma_curve) so that g is C¹ at t and g(1) = 1."""

    def __init__(self, power: float = 0.45, slope: float = 4.5):
        self.p, self.s = power, slope
        # solve for the threshold t where  s·t = a·t^p − (a−1)  and  s = a·p·t^(p−1)  with g(1) = 1
        t = 0.018
        for _ in range(60):
            a = slope * t ** (1 - power) / power
            f = slope * t - (a * t**power - (a - 1))
            # Newton on t
            da = slope * (1 - power) * t ** (-power) / power
            df = slope - (da * t**power + a * power * t ** (power - 1) - da)
            t -= f / df
        self.t = t
        self.a = slope * t ** (1 - power) / power
        self.y_t = slope * t

    def forward(self, x: Array) -> Array:
        xp, ax = array_module(x), abs(x)
        hi = self.a * ax.clip(self.t, None) ** self.p - (self.a - 1)
        return xp.sign(x) * xp.where(ax < self.t, self.s * ax, hi)

    def inverse(self, y: Array) -> Array:
        xp, ay = array_module(y), abs(y)
        hi = ((ay.clip(self.y_t, None) + (self.a - 1)) / self.a) ** (1 / self.p)
        return xp.sign(y) * xp.where(ay < self.y_t, ay / self.s, hi)

    def forward_unit(self, x: Array) -> Array:
        """g(clamp(x, 0, 1)), which equals clamp(g(x), 0, 1) (g is increasing with g(0) = 0, g(1) = 1), in fewer
        operations than ``forward``: the same arithmetic on the same values where 0 ≤ x ≤ 1."""
        x = x.clip(0.0, 1.0)
        return array_module(x).where(x < self.t, self.s * x, self.a * x.clip(self.t, None) ** self.p - (self.a - 1))

    def forward_u8(self, x: Array) -> Array:
        """uint8 of ``forward_unit``: ⌊255·g(clamp(x, 0, 1)) + 0.5⌋, by table instead of a power per value (the
        levels numpy's float32 arithmetic gives; a tensor is looked up in numpy and returned as a tensor).

        [0, 1] is cut into 4096 bins (x·4096 is exact in float32); the slope of 255·g is at most 255·s = 1147.5,
        so a bin holds at most one step of the 8-bit output, and each bin stores its level at the bin's start and
        the float32 at which the next level begins (found by bisection over float32 bit patterns on this very
        function): level = lo[bin] + (x ≥ threshold[bin]), the same levels as evaluating it per value."""
        lo, thr = self._u8_table
        xn = x.clip(0.0, 1.0) if isinstance(x, np.ndarray) else x.detach().clamp(0.0, 1.0).cpu().numpy()
        idx = (xn * _U8_BINS).astype(np.intp)
        levels = lo[idx] + (xn >= thr[idx])
        return levels if isinstance(x, np.ndarray) else _torch().from_numpy(levels).to(x.device)

    def _u8_levels(self, x: np.ndarray) -> np.ndarray:
        return (self.forward_unit(x) * 255 + 0.5).astype(np.uint8)

    @functools.cached_property
    def _u8_table(self) -> tuple[np.ndarray, np.ndarray]:
        n = _U8_BINS
        start = np.arange(n + 1, dtype=np.float32) / n
        lo = self._u8_levels(start)
        a = start.view(np.int32).copy()  # first float32 of each bin …
        b = np.append(start[1:], np.float32(2.0)).view(np.int32)  # … and of the next one
        top = self._u8_levels(np.append(start[1:], np.float32(1.0)))
        # bisection for the first float32 in [a, b) whose level exceeds lo (none: threshold +inf)
        has_step = self._u8_levels((b - 1).view(np.float32).clip(None, 1.0)) > lo
        lo_bits, hi_bits = a, b - 1
        for _ in range(32):
            mid = lo_bits + (hi_bits - lo_bits) // 2
            up = self._u8_levels(mid.view(np.float32).clip(None, 1.0)) > lo
            hi_bits = np.where(up, mid, hi_bits)
            lo_bits = np.where(up, lo_bits, mid + 1)
        thr = np.where(has_step, hi_bits.view(np.float32), np.float32(np.inf))
        if bool((top.astype(np.int16) - lo > 1).any()):  # cannot happen with slope ≤ 1147.5 and 4096 bins
            raise AssertionError("gamma quantiser bins too coarse")
        return lo, thr

    def inverse_lut(self) -> np.ndarray:
        """``inverse`` of the 256 8-bit levels v/255 (float32), the same values ``inverse(u8 / 255)`` gives in
        numpy, to look up instead of evaluating the power per pixel."""
        return self.inverse(np.arange(256, dtype=np.float32) / np.float32(255.0))


_U8_BINS = 4096


#: the tone curves' table: uniform intervals of [0, 1] on which a curve is its piecewise-linear interpolant
CURVE_INTERVALS = 4096
#: Rec. 709 luma weights: the look's colour rendering keeps w·x of the sRGB-gamma values
LUMA = (0.2126, 0.7152, 0.0722)
_EPS = 1e-6


def _lerp_table(x: Array, table: np.ndarray) -> Array:
    """Per-channel piecewise-linear look-up of x ∈ [0, 1] (…, 3, H, W) in tables (3, n + 1) on the uniform grid
    j/n: t[c, j] + (x·n − j)·(t[c, j + 1] − t[c, j]), j = min(⌊x·n⌋, n − 1)."""
    n = table.shape[1] - 1
    out = _empty(x, x.shape)
    for c in range(3):
        xc = x[..., c, :, :] * n
        if isinstance(x, np.ndarray):  # j = n (x = 1) reads the end value with a zero difference
            j = xc.astype(np.intp)
            t0 = table[c].astype(x.dtype)
            step = np.append(np.diff(t0), t0.dtype.type(0))
            out[..., c, :, :] = t0[j] + np.subtract(xc, j, dtype=x.dtype) * step[j]
        else:
            t0 = as_array(table[c], x)
            j = xc.floor().clamp(0, n - 1).long()
            out[..., c, :, :] = t0[j] + (xc - j) * (t0[j + 1] - t0[j])
    return out


class ToneCurves(Step):
    """Per-channel strictly increasing tone curves of the cube [0, 1]³ (sRGB-gamma values; inputs are clamped to
    it, as the 8-bit render clamps), slope bounded below by s₀ so that the 8-bit JPEG's error is amplified at most
    1/s₀ by the inverse:

        f_c(x) = s₀·x + (1 − s₀)·∫₀ˣ σ_c / ∫₀¹ σ_c,    σ_c piecewise linear through exp(θ_c,j) at x = j/(K − 1)

    so f_c(0) = 0, f_c(1) = 1, f_c is C¹ with slope ≥ s₀. It is defined as its piecewise-linear interpolant on
    ``CURVE_INTERVALS`` uniform intervals (within 1e-7 of the C¹ curve), and the inverse interpolates the same
    table the other way: forward and inverse are exact inverses."""

    def __init__(self, curves: Sequence[Sequence[float]], slope_min: float):
        theta = np.asarray(curves, dtype=np.float64)
        if theta.ndim != 2 or theta.shape[0] != 3 or not 0.0 < slope_min <= 1.0:
            raise ValueError("tone curves: 3 rows of log-slopes and a minimum slope in (0, 1]")
        self.table = curve_table(theta, slope_min)
        self.grid = np.linspace(0.0, 1.0, CURVE_INTERVALS + 1)

    def forward(self, x: Array) -> Array:
        return _lerp_table(x.clip(0.0, 1.0), self.table)

    def inverse(self, y: Array) -> Array:
        y = y.clip(0.0, 1.0)
        out = _empty(y, y.shape)
        for c in range(3):
            if isinstance(y, np.ndarray):
                out[..., c, :, :] = np.interp(y[..., c, :, :], self.table[c], self.grid)
            else:
                torch, t = _torch(), as_array(self.table[c], y)
                yc = y[..., c, :, :].contiguous()
                j = (torch.searchsorted(t, yc, right=True) - 1).clamp(0, CURVE_INTERVALS - 1)
                out[..., c, :, :] = (j + (yc - t[j]) / (t[j + 1] - t[j])) / CURVE_INTERVALS
        return out


def curve_table(theta: np.ndarray, slope_min: float, n: int = CURVE_INTERVALS) -> np.ndarray:
    """(3, n + 1) values f_c(j/n) of ``ToneCurves``' curves (float64; knots must fall on the grid: K − 1 | n)."""
    k = theta.shape[1]
    if k < 2 or n % (k - 1):
        raise ValueError("tone curves: 2 … n + 1 knots with K − 1 dividing the table's intervals")
    x = np.linspace(0.0, 1.0, n + 1)
    sigma = np.stack([np.interp(x, np.linspace(0.0, 1.0, k), np.exp(t)) for t in theta])
    area = np.concatenate([np.zeros((3, 1)), np.cumsum((sigma[:, 1:] + sigma[:, :-1]) / 2, axis=1)], axis=1)
    table = slope_min * x + (1.0 - slope_min) * area / area[:, -1:]
    table[:, 0], table[:, -1] = 0.0, 1.0
    return table


class ChromaCompress(Step):
    """The look's colour rendering on the cube [0, 1]³ of sRGB-gamma values (inputs clamped to it): it changes
    chroma and hue, never luma, and compresses instead of clipping. With L = w·x (``LUMA``), d = x − L·1:

        u = B·M·(d_R, d_B)    (M the look's 2×2 colour matrix; B restores u_G = −(w_R·u_R + w_B·u_B)/w_G)
        r = max_c max(u_c / (1 − L), −u_c / L)     (r ≤ 1 ⇔ L + u lies in the cube)
        y = L + u·g(r)/r,   g(r) = r for r ≤ k,  k + e/(1 + a·e) above (e = min(r, R) − k, a = 1/(1 − k) − 1/(R − k))

    g is the ``HighlightRolloff`` shoulder: C¹ at the knee k, g(R) = 1 with slope ((1 − k)/(R − k))² > 0, and R
    (``reach``) ≥ the largest r any point of the cube reaches (``chroma_reach``), so y stays in the cube and
    nothing clips. Inverse: L = w·y, v = y − L, ρ = max_c max(v_c/(1 − L), −v_c/L), r = k + f/(1 − a·f) above k
    (f = ρ − k), u = v·r/ρ, (d_R, d_B) = M⁻¹·(u_R, u_B), x = L + B·(d_R, d_B)."""

    def __init__(self, matrix: Sequence[float], knee: float, reach: float):
        m = np.asarray(matrix, dtype=np.float64).reshape(2, 2)
        if abs(np.linalg.det(m)) < 1e-3 or not 0.0 < knee < 1.0 or not reach >= 1.0:
            raise ValueError("chroma: an invertible 2×2 matrix, a knee in (0, 1) and a reach ≥ 1")
        self.m, self.m_inv, self.knee, self.reach = m, np.linalg.inv(m), float(knee), float(reach)
        self.a = 1.0 / (1.0 - self.knee) - 1.0 / (self.reach - self.knee) if self.reach > 1.0 else 0.0

    @staticmethod
    def _luma_chroma(x: Array) -> tuple[Array, Array, Array]:
        r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
        lum = LUMA[0] * r + LUMA[1] * g + LUMA[2] * b
        return lum, r - lum, b - lum

    @staticmethod
    def _gauge(lum: Array, ur: Array, ub: Array) -> tuple[Array, Array]:
        """(u_G, r): the green chroma and max_c max(u_c/(1 − L), −u_c/L)."""
        xp = array_module(lum)
        ug = -(LUMA[0] * ur + LUMA[2] * ub) / LUMA[1]
        up, down = 1.0 / (1.0 - lum).clip(_EPS, None), 1.0 / lum.clip(_EPS, None)
        high, low = xp.maximum(xp.maximum(ur, ug), ub), xp.minimum(xp.minimum(ur, ug), ub)
        return ug, xp.maximum(high * up, -low * down)  # = max_c max(u_c·up, −u_c·down): up, down > 0

    def _assemble(self, x: Array, lum: Array, ur: Array, ub: Array, ug: Array, scale: Array) -> Array:
        out = _empty(x, x.shape)
        out[..., 0, :, :] = lum + ur * scale
        out[..., 1, :, :] = lum + ug * scale
        out[..., 2, :, :] = lum + ub * scale
        return out

    def forward(self, x: Array) -> Array:
        k, m = self.knee, self.m
        x = x.clip(0.0, 1.0)
        lum, dr, db = self._luma_chroma(x)
        ur, ub = m[0, 0] * dr + m[0, 1] * db, m[1, 0] * dr + m[1, 1] * db
        ug, r = self._gauge(lum, ur, ub)
        e = r.clip(k, self.reach) - k  # 0 at and below the knee, where the scale is k/k = 1
        scale = (k + e / (1.0 + self.a * e)) / r.clip(k, None)
        return self._assemble(x, lum, ur, ub, ug, scale)

    def inverse(self, y: Array) -> Array:
        k, m = self.knee, self.m_inv
        y = y.clip(0.0, 1.0)
        lum, vr, vb = self._luma_chroma(y)
        _, rho = self._gauge(lum, vr, vb)
        f = rho.clip(k, 1.0) - k  # as in forward: scale 1 at and below the knee
        scale = (k + f / (1.0 - self.a * f)) / rho.clip(k, None)
        ur, ub = vr * scale, vb * scale
        dr, db = m[0, 0] * ur + m[0, 1] * ub, m[1, 0] * ur + m[1, 1] * ub
        return self._assemble(y, lum, dr, db, -(LUMA[0] * dr + LUMA[2] * db) / LUMA[1], 1.0)


def chroma_reach(matrix: Sequence[float], margin: float = 1.01, samples: int = 4097) -> float:
    """The reach R of ``ChromaCompress`` for a 2×2 colour matrix: ``margin`` × the largest gauge r of B·M·(d_R,
    d_B) over the cube (a convex function of the chroma at each luma, so its maximum lies on the cube's edges:
    sampled at ``samples`` points of each of the 12), at least 1."""
    lum, dr, db = _cube_edges(samples)
    m = np.asarray(matrix, dtype=np.float64).reshape(2, 2)
    _, r = ChromaCompress._gauge(lum, m[0, 0] * dr + m[0, 1] * db, m[1, 0] * dr + m[1, 1] * db)
    return max(1.0, margin * float(r.max()))


@functools.lru_cache(maxsize=4)
def _cube_edges(samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L, d_R, d_B) of ``samples`` points along each of the cube's 12 edges (black and white left out)."""
    t = np.linspace(0.0, 1.0, samples)
    edges = []
    for axis in range(3):
        for a in (0.0, 1.0):
            for b in (0.0, 1.0):
                p = np.empty((t.size, 3))
                p[:, axis] = t
                p[:, [i for i in range(3) if i != axis]] = (a, b)
                edges.append(p)
    x = np.concatenate(edges).T[:, :, None]  # (3, n, 1) as (C, H, W)
    lum, dr, db = ChromaCompress._luma_chroma(x)
    inside = (lum > 1e-3) & (lum < 1 - 1e-3)
    return lum[inside], dr[inside], db[inside]


class Look(Step):
    """A camera look after the gamma (``settings.Look``): tone curves, then the colour rendering, on the cube
    [0, 1]³ of sRGB-gamma values: y = C(T(x)), x = T⁻¹(C⁻¹(y)).

    ``render_u8`` and ``recover_u8`` are the fast paths of the front end on numpy: gamma and curves in one table
    per channel, and the 8-bit levels ⌊255·y + 0.5⌋ / their inverse."""

    def __init__(self, look: LookSettings):
        self.settings = look
        self.curves = ToneCurves(look.curves, look.slope_min)
        self.chroma = ChromaCompress(look.chroma, look.knee, look.reach)

    def forward(self, x: Array) -> Array:
        return self.chroma.forward(self.curves.forward(x))

    def inverse(self, y: Array) -> Array:
        return self.curves.inverse(self.chroma.inverse(y))

    @functools.cached_property
    def _gamma_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """(T∘g on the uniform grid of linear [0, 1], (T∘g)⁻¹ on the uniform grid of [0, 1]), (3, n + 1) each."""
        gamma, grid = Gamma(), self.curves.grid
        fwd = np.stack([np.interp(gamma.forward(grid), grid, t) for t in self.curves.table])
        inv = np.stack([gamma.inverse(np.interp(grid, t, grid)) for t in self.curves.table])
        return fwd, inv

    def render_unit(self, x: Array) -> Array:
        """C(T(g(clamp(x, 0, 1)))) in [0, 1] from linear sRGB x (N, 3, H, W), T∘g by its table's interpolant."""
        return _by_rows(lambda t: self.chroma.forward(_lerp_table(t.clip(0.0, 1.0), self._gamma_tables[0])), x)

    def render_u8(self, x: Array) -> Array:
        """⌊255·``render_unit``(x) + 0.5⌋ as uint8."""
        y = self.render_unit(x) * 255 + 0.5
        return y.astype(np.uint8) if isinstance(y, np.ndarray) else y.byte()

    def recover_linear(self, y: Array) -> Array:
        """g⁻¹(T⁻¹(C⁻¹(y))): linear sRGB of decoded values y ∈ [0, 1] (N, 3, H, W), (T∘g)⁻¹ by its table."""
        return _by_rows(lambda t: _lerp_table(self.chroma.inverse(t).clip(0.0, 1.0), self._gamma_tables[1]), y)


def _by_rows(fn: Callable[[Array], Array], x: Array, pixels: int = 1 << 15) -> Array:
    """``fn`` (elementwise over pixels) of a numpy (N, C, H, W) array in blocks of rows of about ``pixels`` pixels,
    so that its temporaries stay in the CPU cache (the same values; a tensor in one piece)."""
    if not isinstance(x, np.ndarray):
        return fn(x)
    rows = max(1, pixels // max(1, x.shape[-1]))
    parts = [fn(x[..., y0 : y0 + rows, :]) for y0 in range(0, x.shape[-2], rows)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-2)


class Chain(Step):
    """Composition f = f_k ∘ … ∘ f_1 of steps; its inverse runs the inverses in reverse order."""

    def __init__(self, steps: Sequence[Step]):
        self.steps = list(steps)
        self.receptive_field = sum(s.receptive_field for s in self.steps)
        self.align = int(np.lcm.reduce([2] + [getattr(s, "align", 1) for s in self.steps]))

    def forward(self, x: Array) -> Array:
        for s in self.steps:
            x = s.forward(x)
        return x

    def inverse(self, y: Array) -> Array:
        for s in reversed(self.steps):
            y = s.inverse(y)
        return y


DEMOSAICS: dict[str, type[Step]] = {"bilinear": BilinearDemosaic, "mhc": MHCDemosaic, "pattern": PatternDemosaic,
                                    "none": NoDemosaic}


def analytic_steps(cfa: str, black: np.ndarray, white: float, wb: Sequence[float], rgb_cam: np.ndarray,
                   gain: float = 1.0, demosaic: str = DEFAULT_DEMOSAIC, knee: float | None = None) -> list[Step]:
    """The metadata-driven part of the ISP:
    levels → exposure → white balance → [highlight roll-off, if ``knee``] → demosaic → colour matrix → gamma."""
    if cfa_demosaic(cfa, demosaic) != demosaic:
        raise ValueError(f"demosaic {demosaic!r} does not apply to CFA {cfa!r}")
    rolloff = [HighlightRolloff(cfa, gain * np.asarray(wb, dtype=np.float64), knee)] if knee is not None else []
    return [Levels(black, white), Exposure(gain), WhiteBalance(cfa, wb), *rolloff, DEMOSAICS[demosaic](cfa),
            ColorMatrix(rgb_cam), Gamma()]


def front_end(raw, front: FrontEnd) -> list[Step]:
    """``analytic_steps`` of a RawImage (anything with cfa, black, white, wb, rgb_cam) under the front end's
    settings (``settings.FrontEnd``: exposure gain, demosaic, highlight knee or None for no roll-off), followed by
    its ``Look`` when it has one (after the gamma)."""
    steps = analytic_steps(raw.cfa, raw.black, raw.white, raw.wb, raw.rgb_cam, front.exposure_gain, front.demosaic,
                           front.highlight_knee)
    return steps if front.look is None else [*steps, Look(front.look)]
