"""Differentiable JPEG simulator (InvISP: CVPR 2021 sec. 4.2 eq. 9; TPAMI sec. 4.3.1 eq. 10).

Models the lossy part of a baseline libjpeg(-turbo) encode + decode as Pillow runs it: JFIF RGB → YCbCr,
optional chroma subsampling (box average; decoded with libjpeg's "fancy" triangle upsampling, which is
bilinear interpolation with half-pixel centres), 8×8 orthonormal DCT-II, quantisation with the IJG tables
scaled by libjpeg's quality formula, rounding, dequantisation, IDCT, YCbCr → RGB. Entropy coding is lossless
and skipped; the encoder's and decoder's 8-bit roundings of pixel values are not modelled.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# IJG standard tables (ITU-T T.81 Annex K, K.1 and K.2), row-major.
_LUMA = [
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip
_CHROMA = [
    17, 18, 24, 47, 99, 99, 99, 99,
    18, 21, 26, 66, 99, 99, 99, 99,
    24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99,
]  # fmt: skip

# JFIF full-range RGB → YCbCr (before the −128 level shift of Cb, Cr) and its inverse.
_RGB2YCC = [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
_YCC2RGB = [[1.0, 0.0, 1.402], [1.0, -0.344136, -0.714136], [1.0, 1.772, 0.0]]

_SUBSAMPLING = {"4:4:4": (1, 1), "4:2:2": (1, 2), "4:2:0": (2, 2)}  # (vertical, horizontal) factors
ROUNDINGS = ("fourier", "hard", "ste")


def quant_tables(quality: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """libjpeg quantisation tables for ``quality`` in [1, 100] (scalar → (8, 8); (N,) tensor → (N, 8, 8)).

    scale = floor(5000 / q) if q < 50 else 200 − 2q;  table = clamp(floor((T·scale + 50) / 100), 1, 255).
    Integer q reproduces ``jpeg_set_quality(q, force_baseline=TRUE)`` exactly.
    """
    q = torch.as_tensor(quality, dtype=torch.float64).clamp(1.0, 100.0)
    scale = torch.where(q < 50, torch.floor(5000.0 / q), 200.0 - 2.0 * q)[..., None, None]
    tables = []
    for base in (_LUMA, _CHROMA):
        t = torch.tensor(base, dtype=torch.float64).reshape(8, 8)
        tables.append(torch.floor((t * scale + 50.0) / 100.0).clamp(1.0, 255.0).float())
    return tables[0], tables[1]


def fourier_round(x: torch.Tensor, k_terms: int = 10) -> torch.Tensor:
    """Fourier rounding (TPAMI eq. 10), a smooth approximation of round(I):
    Q(I) = I − (1/π) Σ_{k=1..K} (−1)^{k+1}/k · sin(2πkI)."""
    s = torch.zeros_like(x)
    for k in range(1, k_terms + 1):
        s = s + ((-1) ** (k + 1) / k) * torch.sin((2 * math.pi * k) * x)
    return x - s / math.pi


def _dct_matrix() -> torch.Tensor:
    """Orthonormal DCT-II: D[u, i] = c(u)·cos((2i + 1)uπ / 16), c(0) = √(1/8), c(u>0) = √(2/8)."""
    u = torch.arange(8, dtype=torch.float64)[:, None]
    i = torch.arange(8, dtype=torch.float64)[None, :]
    d = torch.cos((2 * i + 1) * u * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.float()


class DiffJPEG(torch.nn.Module):
    """Differentiable JPEG compress + decompress of sRGB images.

    rounding: "fourier" (Fourier series with ``k_terms`` terms, for training), "hard" (torch.round, for
    evaluation) or "ste" (round forward, identity gradient). clamp: clip the decoded image to [0, 1] as a real
    decoder does.
    """

    def __init__(self, rounding: str = "fourier", k_terms: int = 10, clamp: bool = True) -> None:
        super().__init__()
        if rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
        self.rounding = rounding
        self.k_terms = k_terms
        self.clamp = clamp
        self.register_buffer("dct", _dct_matrix(), persistent=False)
        self.register_buffer("rgb2ycc", torch.tensor(_RGB2YCC), persistent=False)
        self.register_buffer("ycc2rgb", torch.tensor(_YCC2RGB), persistent=False)

    def _round(self, x: torch.Tensor) -> torch.Tensor:
        if self.rounding == "hard":
            return torch.round(x)
        if self.rounding == "ste":
            return x + (torch.round(x) - x).detach()
        return fourier_round(x, self.k_terms)

    def _code(self, plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """Blockwise DCT → ÷table → round → ×table → IDCT of (N, C, H, W) planes (H, W multiples of 8);
        table (8, 8) or per-sample (N, 8, 8)."""
        n, c, h, w = plane.shape
        blocks = plane.reshape(n, c, h // 8, 8, w // 8, 8).transpose(3, 4)  # (N, C, H/8, W/8, 8, 8)
        coef = self.dct @ blocks @ self.dct.T
        t = table.to(plane).reshape(-1, 1, 1, 1, 8, 8)
        coef = self._round(coef / t) * t
        blocks = self.dct.T @ coef @ self.dct
        return blocks.transpose(3, 4).reshape(n, c, h, w)

    def forward(
        self, x: torch.Tensor, quality: float | torch.Tensor, subsampling: str = "4:4:4"
    ) -> torch.Tensor:
        """x: (N, 3, H, W) sRGB in [0, 1], any H, W; quality: scalar or (N,) in [1, 100] → (N, 3, H, W)."""
        if subsampling not in _SUBSAMPLING:
            raise ValueError(f"subsampling must be one of {tuple(_SUBSAMPLING)}, got {subsampling!r}")
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W), got {tuple(x.shape)}")
        sv, sh = _SUBSAMPLING[subsampling]
        h, w = x.shape[-2:]
        ph, pw = -h % (8 * sv), -w % (8 * sh)
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        luma_t, chroma_t = quant_tables(quality.detach().cpu() if torch.is_tensor(quality) else quality)

        ycc = torch.einsum("ij,njhw->nihw", self.rgb2ycc, x * 255.0)
        y = self._code(ycc[:, :1] - 128.0, luma_t)
        cc = ycc[:, 1:]  # Cb, Cr are centred at 0 already: the +128 / −128 offsets cancel
        if sv > 1 or sh > 1:
            cc = F.avg_pool2d(cc, (sv, sh))
        cc = self._code(cc, chroma_t)
        if sv > 1 or sh > 1:
            cc = F.interpolate(cc, scale_factor=(sv, sh), mode="bilinear", align_corners=False)
        out = torch.einsum("ij,njhw->nihw", self.ycc2rgb, torch.cat([y + 128.0, cc], 1)) / 255.0
        out = out[..., :h, :w]
        return out.clamp(0.0, 1.0) if self.clamp else out
