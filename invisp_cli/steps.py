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
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

CFA_LAYOUTS = ("RGGB", "BGGR", "GRBG", "GBRG")
_CHANNEL = {"R": 0, "G": 1, "B": 2}


def cfa_index(cfa: str) -> np.ndarray:
    """The colour channel (0 R, 1 G, 2 B) of each position of the 2×2 CFA tile."""
    if cfa not in CFA_LAYOUTS:
        raise ValueError(f"unsupported CFA layout {cfa!r}")
    return np.array([_CHANNEL[c] for c in cfa]).reshape(2, 2)


def cfa_masks(cfa: str, h: int, w: int, device=None) -> torch.Tensor:
    """One-hot site masks (1, 3, H, W): mask[c, y, x] = 1 where site (y, x) records colour c."""
    idx = torch.as_tensor(cfa_index(cfa), device=device)
    tile = idx.repeat((h + 1) // 2, (w + 1) // 2)[:h, :w]
    return F.one_hot(tile, 3).permute(2, 0, 1).unsqueeze(0).float()


def site_values(per_position: np.ndarray | Sequence, h: int, w: int) -> torch.Tensor:
    """Tile a 2×2 per-CFA-position array over an (1, 1, H, W) tensor."""
    t = torch.as_tensor(np.asarray(per_position, dtype=np.float64).reshape(2, 2), dtype=torch.float32)
    return t.repeat((h + 1) // 2, (w + 1) // 2)[:h, :w].view(1, 1, h, w)


class Step:
    """An invertible step: ``inverse(forward(x)) == x`` up to float rounding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    #: pixels of context each output pixel depends on (for tiling halos)
    receptive_field: int = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)


class Levels(Step):
    """Raw units → normalised signal:  n = (v − b) / (w − b),  inverse v = n·(w − b) + b.

    ``black`` is per 2×2 CFA position. No clipping, so the step is exactly invertible; quantisation to raw
    units happens only when a DNG is written."""

    def __init__(self, black: np.ndarray, white: float):
        self.black = np.asarray(black, dtype=np.float64).reshape(2, 2)
        self.white = float(white)

    def _bw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = site_values(self.black, x.shape[-2], x.shape[-1]).to(x.device)
        return b, self.white - b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, scale = self._bw(x)
        return (x - b) / scale

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        b, scale = self._bw(y)
        return y * scale + b


class Exposure(Step):
    """A global linear gain  y = g·x  (inverse x = y / g) on the normalised signal."""

    def __init__(self, gain: float):
        if not gain > 0:
            raise ValueError("exposure gain must be positive")
        self.gain = float(gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y / self.gain


def libraw_maximum_gain(mosaic: np.ndarray, black: np.ndarray, white: float, threshold: float = 0.75) -> float:
    """The brightening LibRaw's render applies by default (``adjust_maximum_thr`` = 0.75): when the largest
    black-subtracted value m = max(v − b) lies in (thr·(w − b), w − b), LibRaw takes m as the white point,
    i.e. a gain (w − b)/m; otherwise 1. Emulated so that the analytic ISP renders as bright as LibRaw."""
    b = np.asarray(black, dtype=np.float64).reshape(2, 2)
    h, w = mosaic.shape
    m = float((mosaic.astype(np.float64) - np.tile(b, ((h + 1) // 2, (w + 1) // 2))[:h, :w]).max())
    span = float(white) - float(b.max())
    return span / m if threshold * span < m < span else 1.0


class WhiteBalance(Step):
    """Per-site gain of the site's colour:  y = g_c(site) · n,  inverse n = y / g_c(site)."""

    def __init__(self, cfa: str, wb: Sequence[float]):
        self.cfa = cfa
        self.gains = np.asarray(wb, dtype=np.float64).reshape(3)
        if not np.all(self.gains > 0):
            raise ValueError("white-balance gains must be positive")

    def _g(self, x: torch.Tensor) -> torch.Tensor:
        return site_values(self.gains[cfa_index(self.cfa)], x.shape[-2], x.shape[-1]).to(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._g(x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y / self._g(y)


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

    def _sites(self, per_colour: np.ndarray, x: torch.Tensor) -> torch.Tensor:
        return site_values(per_colour[cfa_index(self.cfa)], x.shape[-2], x.shape[-1]).to(x.device, x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.knee
        d = torch.minimum((x - k).clamp(min=0.0), self._sites(self.ceiling - k, x))
        return torch.where(x > k, k + d / (1.0 + self._sites(self.a, x) * d), x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        k = self.knee
        f = (y - k).clamp(0.0, 1.0 - k)
        return torch.where(y > k, k + f / (1.0 - self._sites(self.a, y) * f), y)


_K_RB = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
_K_G = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]])


class BilinearDemosaic(Step):
    """Bilinear demosaic as normalised convolution; the inverse re-mosaics by reading the CFA sites.

    For colour c with site mask m_c and kernel k_c:  out_c = (k_c * (x·m_c)) / (k_c * m_c).
    At a site that recorded c the kernel's only c-coloured tap is the centre, so out_c = x there: the
    inverse  x = Σ_c m_c · out_c  is exact for any layout, any size (odd included) and at the borders."""

    receptive_field = 1

    def __init__(self, cfa: str):
        self.cfa = cfa
        cfa_index(cfa)  # validate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, inv_den = _demosaic_weights(self.cfa, x.shape[-2], x.shape[-1], x.device, x.dtype)
        k = torch.stack([_K_RB, _K_G, _K_RB]).unsqueeze(1).to(x)
        return F.conv2d(x * m, k, padding=1, groups=3) * inv_den

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        m, _ = _demosaic_weights(self.cfa, y.shape[-2], y.shape[-1], y.device, y.dtype)
        return (y * m).sum(dim=1, keepdim=True)


@functools.lru_cache(maxsize=8)
def _demosaic_weights(cfa: str, h: int, w: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Site masks and 1 / (k_c * m_c) for a tile shape (tiles mostly share one shape: computed once)."""
    m = cfa_masks(cfa, h, w, device).to(dtype)
    k = torch.stack([_K_RB, _K_G, _K_RB]).unsqueeze(1).to(m)
    return m, 1.0 / F.conv2d(m, k, padding=1, groups=3)


_MHC = torch.tensor([
    [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]],  # G at R/B
    [[0, 0, .5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, .5, 0, 0]],  # row neighbours
    [[0, 0, -1, 0, 0], [0, -1, 4, -1, 0], [.5, 0, 5, 0, .5], [0, -1, 4, -1, 0], [0, 0, -1, 0, 0]],  # column nbrs
    [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]],  # diagonal
]).unsqueeze(1) / 8


class MHCDemosaic(BilinearDemosaic):
    """Malvar–He–Cutler gradient-corrected linear demosaic (ICASSP 2004), inverted by re-mosaicking.

    Each missing colour is a 5×5 linear filter of the mosaic (bilinear estimate plus a Laplacian correction
    from the site's own colour), chosen by site type; recorded sites keep their value, so the inverse is the
    same exact re-mosaic as for the bilinear step. Much closer to LibRaw's AHD render than bilinear, at ~100
    MAC per pixel. Borders are mirrored by 2 px (mirroring keeps the CFA phase)."""

    receptive_field = 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        cand = torch.cat([x, F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), _MHC.to(x))], dim=1)  # (N,5,H,W)
        choice = _mhc_choice(self.cfa).to(x.device).repeat(1, 1, (h + 1) // 2, (w + 1) // 2)[..., :h, :w]
        return torch.gather(cand, 1, choice.expand(n, 3, h, w))


@functools.lru_cache(maxsize=4)
def _mhc_choice(cfa: str) -> torch.Tensor:
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
    return torch.as_tensor(table).permute(2, 0, 1).unsqueeze(0)


class ColorMatrix(Step):
    """Per-pixel 3×3 colour transform  y = M x  (camera RGB → linear sRGB), inverse x = M⁻¹ y."""

    def __init__(self, matrix: np.ndarray):
        m = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
        if abs(np.linalg.det(m)) < 1e-8:
            raise ValueError("colour matrix is singular")
        self.m = m
        self.m_inv = np.linalg.inv(m)

    @staticmethod
    def _apply(x: torch.Tensor, m: np.ndarray) -> torch.Tensor:
        return torch.einsum("ij,njhw->nihw", torch.as_tensor(m, dtype=x.dtype, device=x.device), x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._apply(x, self.m)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ax = x.abs()
        hi = self.a * ax.clamp_min(self.t) ** self.p - (self.a - 1)
        return torch.sign(x) * torch.where(ax < self.t, self.s * ax, hi)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        ay = y.abs()
        hi = ((ay.clamp_min(self.y_t) + (self.a - 1)) / self.a) ** (1 / self.p)
        return torch.sign(y) * torch.where(ay < self.y_t, ay / self.s, hi)


class Flow(Step):
    """A learned invertible network (see ``invisp_cli.flows``) as a step; pads H, W by edge replication to
    the network's alignment and crops back.

    Padding is the one place the chain is not exactly invertible: within ``align − 1`` pixels of the
    bottom/right border of an image whose size is not a multiple of ``align``, the inverse sees the
    replicated border of the *output* instead of the forward pass's padded output, an error of the order of
    the network's deviation from identity there."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.align = int(getattr(model, "align", 1))
        self.receptive_field = int(getattr(model, "receptive_field", 0))

    def _run(self, x: torch.Tensor, fn) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.align, (-w) % self.align
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return fn(x)[..., :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, self.model.forward)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return self._run(y, self.model.inverse)


class Chain(Step):
    """Composition f = f_k ∘ … ∘ f_1 of steps; its inverse runs the inverses in reverse order."""

    def __init__(self, steps: Sequence[Step]):
        self.steps = list(steps)
        self.receptive_field = sum(s.receptive_field for s in self.steps)
        self.align = int(np.lcm.reduce([2] + [getattr(s, "align", 1) for s in self.steps]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for s in self.steps:
            x = s.forward(x)
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for s in reversed(self.steps):
            y = s.inverse(y)
        return y


DEMOSAICS: dict[str, type[BilinearDemosaic]] = {"bilinear": BilinearDemosaic, "mhc": MHCDemosaic}
DEFAULT_DEMOSAIC = "mhc"
DEFAULT_KNEE = 0.8  # highlight roll-off of newly trained models (measured trade-off: README, "Highlights")


def analytic_steps(cfa: str, black: np.ndarray, white: float, wb: Sequence[float], rgb_cam: np.ndarray,
                   gain: float = 1.0, demosaic: str = DEFAULT_DEMOSAIC, knee: float | None = None) -> list[Step]:
    """The metadata-driven part of the ISP:
    levels → exposure → white balance → [highlight roll-off, if ``knee``] → demosaic → colour matrix → gamma."""
    rolloff = [HighlightRolloff(cfa, gain * np.asarray(wb, dtype=np.float64), knee)] if knee is not None else []
    return [Levels(black, white), Exposure(gain), WhiteBalance(cfa, wb), *rolloff, DEMOSAICS[demosaic](cfa),
            ColorMatrix(rgb_cam), Gamma()]


def front_end(raw, settings: Mapping) -> list[Step]:
    """``analytic_steps`` of a RawImage (anything with cfa, black, white, wb, rgb_cam) under render settings
    (``params.render``): ``exposure_gain`` (default 1), ``demosaic`` (default MHC), ``highlight_knee``
    (absent or None: no roll-off, as in files written by models trained without one)."""
    return analytic_steps(raw.cfa, raw.black, raw.white, raw.wb, raw.rgb_cam,
                          float(settings.get("exposure_gain", 1.0)), settings.get("demosaic", DEFAULT_DEMOSAIC),
                          settings.get("highlight_knee"))
