"""Differentiable simulator of H.264/H.265 compression (TPAMI sec. 4.3.2), built on ``simulators.jpeg.DiffJPEG``.

Each sample is, at random, an intra frame or an inter frame (the codec's I/P/B choice depends on content and
settings; the paper alternates at random instead):

* intra: JPEG-style coding — YCbCr, 8×8 DCT, quantisation by quality-q tables, Fourier rounding (eq. 10);
* inter: per 16×16 macroblock a dominant motion d (|d| ~ U[0, M], random direction) and a jitter j (|j| ~ U[0, 0.1]);
  the reference frame is the current frame displaced by the true motion v = d + j and intra-coded (a decoded
  previous frame), motion compensation warps it back by the estimated d (missing the jitter, with the block
  edges and interpolation blur of real compensation), and the residual y − pred is DCT-quantised:

      ref = I_q(warp(y, v)),   pred = warp(ref, −d),   ŷ = clip(pred + (R_q(y − pred + ½) − ½), 0, 1)

  with R_q the same DCT quantiser without clipping (offset ½ so that the residual sits mid-range).

The colour transform is BT.709 (what ``container`` writes), chroma 4:2:0 by default. CRF maps to a JPEG quality
through the table scale s(q) = 200 − 2q (q ≥ 50) or 5000/q, which is proportional to the quantiser step:

    s = S₂₃ · 2^((crf − 23)/K),      S₂₃ = 23, K = 3.9

fitted so that the simulator's PSNR matches libx264's (medium preset, 4:2:0) on real frames from CRF 13 to 38
(``benchmarks/video.py --calibrate``). H.264/H.265 double the step every 6 QP; K < 6 because JPEG's frequency-
weighted tables lose less PSNR per step than the codecs' flat ones."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..simulators.jpeg import DiffJPEG
from .container import RGB2YCC, YCC2RGB

#: JPEG table scale (percent) equivalent to CRF 23 and the CRF change that doubles it, fitted to libx264
CRF23_SCALE, CRF_DOUBLING = 23.0, 3.9


def crf_to_quality(crf: float | torch.Tensor) -> torch.Tensor:
    """The JPEG quality whose tables lose as much as a CRF: s = S₂₃·2^((crf − 23)/K), q = 100 − s/2 (s ≤ 100) or
    5000/s; clamped to [1, 100]."""
    crf = torch.as_tensor(crf, dtype=torch.float64)
    s = CRF23_SCALE * torch.pow(2.0, (crf - 23.0) / CRF_DOUBLING)
    return torch.where(s <= 100, 100 - s / 2, 5000 / s).clamp(1, 100)


def _bt709(codec: DiffJPEG) -> DiffJPEG:
    codec.rgb2ycc.copy_(torch.from_numpy(RGB2YCC))
    codec.ycc2rgb.copy_(torch.from_numpy(YCC2RGB))
    return codec


def block_motion(n: int, h: int, w: int, block: int, max_motion: float, jitter: float,
                 device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-macroblock dominant motion d (|d| ≤ M) and true motion v = d + j (|j| ≤ jitter), random directions,
    as (N, H, W, 2) per-pixel (x, y) displacement fields in pixels."""
    bh, bw = -(-h // block), -(-w // block)

    def polar(radius: float) -> torch.Tensor:
        r = torch.rand(n, bh, bw, 1, device=device) * radius
        a = torch.rand(n, bh, bw, 1, device=device) * (2 * math.pi)
        return torch.cat([r * torch.cos(a), r * torch.sin(a)], -1)

    d = polar(max_motion)
    v = d + polar(jitter)

    def per_pixel(f: torch.Tensor) -> torch.Tensor:
        return f.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :h, :w]

    return per_pixel(d), per_pixel(v)


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp out(p) = img(p + flow(p)), bilinear, border replicated; flow (N, H, W, 2) in pixels (x, y)."""
    n, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=img.device, dtype=img.dtype),
                            torch.arange(w, device=img.device, dtype=img.dtype), indexing="ij")
    gx = (xs + flow[..., 0]) * (2 / max(w - 1, 1)) - 1
    gy = (ys + flow[..., 1]) * (2 / max(h - 1, 1)) - 1
    grid = torch.stack([gx, gy], -1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)


class VideoCodecSim(nn.Module):
    """Differentiable H.264/H.265 stand-in (see module docstring): ``sim(y, crf)`` → compressed-looking y."""

    def __init__(self, max_motion: float = 1.0, jitter: float = 0.1, p_inter: float = 0.5, block: int = 16,
                 subsampling: str = "4:2:0", rounding: str = "fourier"):
        super().__init__()
        self.max_motion, self.jitter, self.p_inter, self.block = max_motion, jitter, p_inter, block
        self.subsampling = subsampling
        self.intra_codec = _bt709(DiffJPEG(rounding, clamp=True))
        self.residual_codec = _bt709(DiffJPEG(rounding, clamp=False))

    def intra(self, y: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """I-frame: DCT quantisation of the frame itself."""
        return self.intra_codec(y, quality, self.subsampling)

    def inter(self, y: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
        """P-frame: motion-compensated prediction from a decoded reference, DCT-quantised residual."""
        n, _, h, w = y.shape
        d, v = block_motion(n, h, w, self.block, self.max_motion, self.jitter, y.device)
        pred = warp(self.intra(warp(y, v), quality), -d)
        residual = self.residual_codec(y - pred + 0.5, quality, self.subsampling) - 0.5
        return (pred + residual).clamp(0, 1)

    def forward(self, y: torch.Tensor, crf: float | torch.Tensor, mode: str = "random") -> torch.Tensor:
        """y: (N, 3, H, W) sRGB in [0, 1]; crf scalar or (N,); mode "random" (each sample inter with probability
        ``p_inter``), "intra" or "inter"."""
        n = y.shape[0]
        q = crf_to_quality(crf).float().expand(n).contiguous()
        if mode == "intra":
            return self.intra(y, q)
        if mode == "inter":
            return self.inter(y, q)
        is_inter = torch.rand(n) < self.p_inter
        out = torch.empty_like(y)
        for mask, fn in ((is_inter, self.inter), (~is_inter, self.intra)):
            if mask.any():
                out[mask] = fn(y[mask], q[mask])
        return out
