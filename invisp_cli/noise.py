"""The sensor's noise model σ²(n) = a_π·n + b_π, per position π of the CFA's period (row-major: 2×2 Bayer, 6×6
X-Trans, any periodic CFA; a linear image's 3 samples per pixel, as the (H, 3W) array of its interleaved samples:
period (1, 3), π = channel), in normalised units n = (v − black_π) / (white − black_π); the near-lossless tier
(``--max-error Ks``) bounds the error by K·σ(n).

**Source.** The DNG ``NoiseProfile`` tag (51041: pairs (S, O) with variance S·x + O of the linear signal
x ∈ [0, 1], one pair for all planes or one per CFA colour) when the file has one; otherwise ``estimate``.

**Estimator** (``estimate``, from the mosaic alone). Each position's plane (the sites m[i::p, j::q] of a
period-(p, q) array) is cut into 2×2 blocks
x₀₀ x₀₁ / x₁₀ x₁₁ (4×4 sites of the mosaic). Their Hadamard contrasts

    μ = (x₀₀ + x₀₁ + x₁₀ + x₁₁)/4,   e = (x₀₀ − x₀₁ − x₁₀ + x₁₁)/2,
    g = |x₀₀ + x₀₁ − x₁₀ − x₁₁| + |x₀₀ − x₀₁ + x₁₀ − x₁₁|

give the level μ, a noise sample e (Var e = σ²(μ) for independent noise; any plane a + b·y + c·x cancels) and
a gradient measure g that, for Gaussian noise, is independent of e (orthogonal contrasts). Blocks with a site
at or above 98 % of white are dropped; the rest are grouped into ``LEVELS`` groups of equal count by μ (fewer
on small images: at least 2·``MIN_BLOCKS`` blocks each); in each
group the half with the smallest g (flat areas: texture leaks into e) gives σ̂² = (1.4826·median|e|)², at the
group's median μ. a, b come from a least-squares fit of σ̂² against μ weighted by count/σ̂⁴ (the variance of
σ̂² grows as σ⁴), with a ≥ 0 and b ≥ 1/(12·(white − black)²) (the rounding floor of integer raw values).
The same runs on blocks of sites two apart (the four sub-planes plane[u::2, v::2]) and the fit with the larger
σ at mid-grey is kept: for white noise both agree, but noise that is spatially correlated (raw data stored after
lossy wavelet compression, as GoPro's VC-5) hides from the 2×2 contrast of neighbours, and a per-site bound needs
its per-site spread. For noise correlated over d sites along each axis with ρ(d), Var e = σ²·(1 − ρ(d))² at
spacing d, so where spacing 2 shows more than ``CORRELATED`` × the σ of spacing 1 (ρ(1) ≳ 0.5 — no sensor's own
noise; 6–9× on the GoPro files, ≤ 1.4× on the others) the spacings ``WIDE_SCALES`` are read too and the largest σ
at mid-grey is kept (docs/noise.md, the GoPro rows).
Planes above ``MAX_SITES`` sites are read in bands of ``BAND`` rows spread over the frame (a 24 MP frame in
every 6th band). ``tests/test_noise.py`` checks it on synthetic mosaics with known a, b."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np

from . import metadata
from .rawio import RawImage
from .steps import cfa_index

NOISE_PROFILE = 51041
SCALES = (1, 2)  # block spacings of the estimate (plane sites); the larger σ at mid-grey is kept
WIDE_SCALES = (3, 4)  # also read where the noise is correlated between neighbours
CORRELATED = 2.0  # σ(spacing 2) / σ(spacing 1) at mid-grey above which the noise counts as correlated
#: normalised level at which fits, the profile and the estimate are compared (18 % grey)
MID_GREY = 0.18
#: a NoiseProfile claiming more than this × the noise the mosaic shows is not used (the data was denoised)
PROFILE_TRUST = 1.5
LEVELS = 16
MIN_BLOCKS = 32  # a level group needs this many flat blocks (small images get fewer groups)
UNIT = "normalised"
MAX_POSITIONS = 256  # positions of a period: settings.MAX_CFA_PERIOD² at most


def period(raw: RawImage) -> tuple[int, int]:
    """The period (p, q) of the positions of the coded array: the CFA tile; (1, 3) for a linear image (its
    (H, 3W) interleaved samples, ``flat``)."""
    if raw.linear:
        return (1, 3)
    p, q = cfa_index(raw.cfa).shape
    return int(p), int(q)


def flat(mosaic: np.ndarray) -> np.ndarray:
    """A mosaic as it is coded: (H, W) as it is; a linear (H, W, 3) image as (H, 3W) interleaved samples (a view)."""
    return mosaic.reshape(mosaic.shape[0], -1)


@dataclass(frozen=True)
class NoiseModel:
    """σ²(n) = a[π]·n + b[π] for position π of the period (row-major; 4 for Bayer, 36 for X-Trans, 3 for a linear
    image), n normalised; ``source`` says where it came from ("NoiseProfile" or "estimated")."""

    a: tuple[float, ...]
    b: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        vals = (*self.a, *self.b)
        if not (1 <= len(self.a) == len(self.b) <= MAX_POSITIONS) or not all(
                isinstance(v, float) and math.isfinite(v) for v in vals):
            raise ValueError(f"noise model: a and b need the same number (1…{MAX_POSITIONS}) of finite numbers")
        if not all(0.0 <= v < 1.0 for v in self.a) or not all(0.0 < v < 1.0 for v in self.b):
            raise ValueError("noise model: a must lie in [0, 1) and b in (0, 1)")

    def sigma(self, n: np.ndarray | float, pos: int) -> np.ndarray:
        """σ(n) at CFA position ``pos`` (n clipped to [0, 1]), normalised units."""
        return np.sqrt(self.a[pos] * np.clip(n, 0.0, 1.0) + self.b[pos])

    def to_json(self) -> dict:
        return {"a": list(self.a), "b": list(self.b), "unit": UNIT, "source": self.source}

    @classmethod
    def from_json(cls, d: dict) -> NoiseModel:
        if d.get("unit") != UNIT:
            raise ValueError(f"noise model unit {d.get('unit')!r} (expected {UNIT!r})")
        return cls(tuple(float(v) for v in d["a"]), tuple(float(v) for v in d["b"]), str(d.get("source", "")))


def from_noise_profile(raw: RawImage) -> NoiseModel | None:
    """The model a DNG's NoiseProfile tag gives, mapped to CFA positions; None without a usable tag."""
    packed = raw.exif.get("dng")
    entry = metadata.unpack_ifd(packed).get(NOISE_PROFILE) if packed else None
    if entry is None or entry.type != 12 or entry.count not in (2, 6) or len(entry.data) != 8 * entry.count:
        return None
    pairs = np.asarray(struct.unpack(f"<{entry.count}d", entry.data)).reshape(-1, 2)
    colours = cfa_index(raw.cfa).ravel()
    rows = [pairs[0 if len(pairs) == 1 else c] for c in colours]
    try:
        return NoiseModel(tuple(float(r[0]) for r in rows), tuple(float(r[1]) for r in rows), "NoiseProfile")
    except ValueError:
        return None


BAND = 64  # rows of a band of the plane that the estimate reads on large images
MAX_SITES = 1 << 20  # per plane: larger planes are read in every k-th band of BAND rows


def _normalised_planes(raw: RawImage) -> list[np.ndarray]:
    """The position planes of the mosaic (``period``, row-major) as float64 n (not clipped: noise below black
    counts); on large images every k-th band of ``BAND`` rows only (bands spread over the frame, at most
    ~``MAX_SITES`` sites)."""
    p, q = period(raw)
    black = np.asarray(raw.black, dtype=np.float64).reshape(p, q)
    m = flat(raw.mosaic)
    h, w = m.shape[0] // p, m.shape[1] // q
    k = max(1, -(-h * w // MAX_SITES))
    rows = np.concatenate([np.arange(y, min(y + BAND, h)) for y in range(0, h, BAND * k)]) if k > 1 else slice(None)
    return [(m[i::p, j::q][rows].astype(np.float64) - black[i, j]) / (raw.white - black[i, j])
            for i in range(p) for j in range(q)]


def level_variances(plane: np.ndarray, top: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median level, robust σ̂², flat blocks) of each level group of one plane (see the module docstring)."""
    h, w = (s // 2 * 2 for s in plane.shape)
    x = plane[:h, :w]
    x00, x01, x10, x11 = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
    mu = ((x00 + x01 + x10 + x11) / 4).ravel()
    e = ((x00 - x01 - x10 + x11) / 2).ravel()
    g = (np.abs(x00 + x01 - x10 - x11) + np.abs(x00 - x01 + x10 - x11)).ravel()
    keep = np.maximum(np.maximum(x00, x01), np.maximum(x10, x11)).ravel() < top
    mu, e, g = mu[keep], e[keep], g[keep]
    levels, variances, counts = [], [], []
    groups = min(LEVELS, mu.size // (2 * MIN_BLOCKS))
    order = np.argsort(mu, kind="stable")
    for grp in np.array_split(order, groups) if groups else ():
        flat = grp[g[grp] <= np.median(g[grp])]
        if flat.size < MIN_BLOCKS:
            continue
        s = 1.4826 * float(np.median(np.abs(e[flat])))
        levels.append(float(np.median(mu[flat])))
        variances.append(s * s)
        counts.append(flat.size)
    return np.array(levels), np.array(variances), np.array(counts)


def fit_line(levels: np.ndarray, variances: np.ndarray, counts: np.ndarray, floor: float) -> tuple[float, float]:
    """(a, b) of σ² = a·n + b by weighted least squares (weights count/σ̂⁴), a ≥ 0, b ≥ floor."""
    ok = variances > 0
    n, v, wts = levels[ok], variances[ok], counts[ok] / np.maximum(variances[ok], floor) ** 2
    if n.size == 0:
        return 0.0, floor
    if n.size >= 2 and np.ptp(n) > 0:
        sw = np.sqrt(wts)
        a, b = np.linalg.lstsq(np.stack([n, np.ones_like(n)], 1) * sw[:, None], v * sw, rcond=None)[0]
    else:
        a, b = 0.0, float(np.average(v, weights=wts))
    if a < 0:
        a, b = 0.0, float(np.average(v, weights=wts))
    if b < floor:  # refit the slope through the floor
        b = floor
        a = max(0.0, float(np.sum(wts * n * (v - b)) / max(np.sum(wts * n * n), 1e-300)))
    return float(a), float(b)


def fit_at_spacing(plane: np.ndarray, step: int, floor: float) -> tuple[float, float]:
    """(a, b) from the 2×2 blocks of sites ``step`` apart: every sub-plane plane[u::step, v::step]."""
    parts = [level_variances(plane[u::step, v::step], 0.98) for u in range(step) for v in range(step)]
    return fit_line(*(np.concatenate(x) for x in zip(*parts, strict=True)), floor)


def mid_variance(fit: tuple[float, float]) -> float:
    """σ² at mid-grey of a fit (a, b)."""
    return fit[0] * MID_GREY + fit[1]


def _floors(raw: RawImage) -> list[float]:
    """The rounding floor 1/(12·(white − black_π)²) of σ² (normalised) at each position of the period."""
    return [1.0 / (12.0 * (raw.white - b) ** 2) for b in np.asarray(raw.black, dtype=np.float64).ravel()]


def sigma_by_spacing(raw: RawImage, spacings: tuple[int, ...] = SCALES + WIDE_SCALES) -> list[float]:
    """The mean over the period's positions of σ at mid-grey of the fit at each block spacing: what ``estimate``
    chooses from (the honesty bench reports it)."""
    planes = list(zip(_normalised_planes(raw), _floors(raw), strict=True))
    return [float(np.mean([math.sqrt(mid_variance(fit_at_spacing(plane, step, floor))) for plane, floor in planes]))
            for step in spacings]


def estimate(raw: RawImage) -> NoiseModel:
    """The noise model estimated from ``raw``'s mosaic (module docstring, "Estimator")."""
    a, b = [], []
    for plane, floor in zip(_normalised_planes(raw), _floors(raw), strict=True):
        fits = [fit_at_spacing(plane, step, floor) for step in SCALES]
        if mid_variance(fits[1]) > CORRELATED**2 * mid_variance(fits[0]):
            fits += [fit_at_spacing(plane, step, floor) for step in WIDE_SCALES]
        ai, bi = max(fits, key=mid_variance)
        a.append(min(ai, 0.5))
        b.append(min(max(bi, floor), 0.5))
    return NoiseModel(tuple(a), tuple(b), "estimated")


def mid_grey_sigma(model: NoiseModel) -> float:
    """Mean over the period's positions of σ(MID_GREY), normalised."""
    return float(np.mean([model.sigma(MID_GREY, p) for p in range(len(model.a))]))


def noise_model(raw: RawImage) -> NoiseModel:
    """The file's NoiseProfile when it has a usable one that the mosaic does not contradict (its σ at mid-grey at
    most ``PROFILE_TRUST`` × the estimate's), else the estimate from the mosaic."""
    est = estimate(raw)
    prof = from_noise_profile(raw)
    if prof is not None and mid_grey_sigma(prof) <= PROFILE_TRUST * mid_grey_sigma(est):
        return prof
    return est if prof is None else NoiseModel(est.a, est.b, "estimated (NoiseProfile above the mosaic's noise)")


def sigma_raw(model: NoiseModel, mosaic: np.ndarray, black: np.ndarray, white: int) -> np.ndarray:
    """σ(n) of every site of ``mosaic`` in raw units: σ_π(n)·(white − black_π), n = (v − black_π)/(white − black_π);
    ``black`` per position of the CFA tile, (p, q), or per channel (3,) of a linear (H, W, 3) image."""
    m = np.asarray(mosaic, dtype=np.float64)
    black = np.asarray(black, dtype=np.float64).reshape((1, 3) if m.ndim == 3 else np.shape(black))
    p, q = black.shape
    out = np.empty(m.shape, np.float64)
    fm, fo = flat(m), flat(out)
    for i in range(p):
        for j in range(q):
            span = white - black[i, j]
            fo[i::p, j::q] = model.sigma((fm[i::p, j::q] - black[i, j]) / span, i * q + j) * span
    return out
