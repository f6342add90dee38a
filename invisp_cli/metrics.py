"""The single definition of every metric invisp reports (see shared/METRICS.md). numpy, float64."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch.utils.flop_counter import FlopCounterMode

from .steps import BilinearDemosaic


def normalise_mosaic(mosaic: np.ndarray, black: np.ndarray | float, white: float) -> np.ndarray:
    """n = clip((v − b) / (w − b), 0, 1).

    ``black`` is a scalar, a (2, 2) per-CFA-position array (tiled over the mosaic) or a full-size array.
    """
    v = np.asarray(mosaic, dtype=np.float64)
    b = np.asarray(black, dtype=np.float64)
    if b.shape == (2, 2) and v.shape != (2, 2):
        h, w = v.shape
        b = np.tile(b, ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    return np.clip((v - b) / (float(white) - b), 0.0, 1.0)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR = 10·log10(peak² / mean((a − b)²)) in dB; inf when a == b."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0.0 else float(10.0 * np.log10(peak**2 / mse))


def _masked(a: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a if mask is None else a[np.asarray(mask, dtype=bool)]


def raw_psnr_lin(n_hat: np.ndarray, n: np.ndarray, mask: np.ndarray | None = None) -> float:
    """RAW-PSNR-lin: 10·log10(1 / mean((n̂ − n)²)) over the CFA sites where ``mask`` is true (all if None).

    Returns nan when the mask selects no site.
    """
    a, b = _masked(n_hat, mask), _masked(n, mask)
    return float("nan") if a.size == 0 else psnr(a, b, 1.0)


def raw_psnr_gamma(
    n_hat: np.ndarray, n: np.ndarray, gamma: float = 2.2, mask: np.ndarray | None = None
) -> float:
    """RAW-PSNR-γ: RAW-PSNR-lin on n^(1/γ) and n̂^(1/γ) (inputs clipped at 0 first)."""
    g = 1.0 / gamma
    a = np.clip(np.asarray(n_hat, dtype=np.float64), 0.0, None) ** g
    b = np.clip(np.asarray(n, dtype=np.float64), 0.0, None) ** g
    return raw_psnr_lin(a, b, mask)


def raw_psnr_paper(n_hat: np.ndarray, n: np.ndarray, cfa: str, wb: Sequence[float], gamma: float = 2.2) -> float:
    """RAW-PSNR-paper: the InvISP paper's RAW PSNR, as its authors' evaluation code computes it, for comparison
    with the paper's tables only. Both mosaics are bilinear-demosaiced, scaled by the camera white balance
    normalised to its maximum (wb / max wb), clipped to [0, 1], raised to 1/γ and decimated to half resolution
    ([::2, ::2], as their test script does); PSNR (peak 1) over the three channels. One difference: the
    mosaics are normalised by white − black (``normalise_mosaic``), not by the container's full bit range.

    Two thirds of its values are bilinear interpolations (averages of 2–4 sites, which average errors
    down) and the WB scaling darkens two channels, so it reads several dB above RAW-PSNR-γ on the same
    recovery."""
    scale = np.asarray(wb, dtype=np.float64).reshape(3) / float(np.max(wb))
    demosaic = BilinearDemosaic(cfa)

    def prepare(m: np.ndarray) -> np.ndarray:
        rgb = demosaic.forward(torch.from_numpy(np.asarray(m, dtype=np.float64))[None, None])[0].numpy()
        rgb = np.clip(rgb * scale[:, None, None], 0.0, 1.0) ** (1.0 / gamma)
        return rgb[:, ::2, ::2]

    return psnr(prepare(n_hat), prepare(n), 1.0)


def rgb_psnr(img: np.ndarray, ref: np.ndarray) -> float:
    """RGB-PSNR of two uint8 images, peak 255."""
    return psnr(img, ref, 255.0)


def ssim(img: np.ndarray, ref: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) of two uint8 images, computed per RGB channel and averaged over channels.

    Gaussian window 11×11, σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, population (co)variances;
    SSIM = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)), C_i = (K_i·L)², averaged over the
    positions where the window lies fully inside the image (a 5-pixel border is dropped).
    A 2-D (grey) input is treated as one channel.
    """
    x = np.asarray(img, dtype=np.float64)
    y = np.asarray(ref, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {x.shape} vs {y.shape}")
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    r = 5
    if min(x.shape[:2]) < 2 * r + 1:
        raise ValueError(f"SSIM needs images of at least 11×11, got {x.shape[:2]}")
    c1, c2 = (0.01 * 255.0) ** 2, (0.03 * 255.0) ** 2
    sigma = (1.5, 1.5, 0.0)  # no smoothing across channels
    truncate = r / 1.5  # window radius 5 → 11 taps

    def blur(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, sigma=sigma, truncate=truncate, mode="reflect")

    mx, my = blur(x), blur(y)
    vx = blur(x * x) - mx * mx
    vy = blur(y * y) - my * my
    cxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[r:-r, r:-r].mean(axis=(0, 1)).mean())


def highlight_mask(render: np.ndarray, threshold: int = 250) -> np.ndarray:
    """Bool (H, W): max over channels of the 8-bit render ≥ threshold."""
    return np.asarray(render).max(axis=-1) >= threshold


def shadow_mask(render: np.ndarray, threshold: int = 10) -> np.ndarray:
    """Bool (H, W): max over channels of the 8-bit render ≤ threshold."""
    return np.asarray(render).max(axis=-1) <= threshold


def bpp(n_bytes: int, n_pixels: int) -> float:
    """Bits per pixel: 8·bytes / pixels."""
    return 8.0 * n_bytes / n_pixels


def b_bmp(h: int, w: int, bitdepth: int) -> float:
    """Uncompressed BMP size of the RAW (TPAMI eq. 12, CVPR eq. 11): B_BMP = 54 + H·W·b/8 bytes."""
    return 54.0 + h * w * bitdepth / 8.0


def compression_ratio(original_bytes: float, compressed_bytes: float) -> float:
    """C_ratio = original size / compressed size."""
    return float(original_bytes) / float(compressed_bytes)


def flicker(outputs: Sequence[np.ndarray] | np.ndarray, truths: Sequence[np.ndarray] | np.ndarray) -> float:
    """Temporal flicker: mean over t ≥ 1 of mean |(o_t − o_{t−1}) − (g_t − g_{t−1})|."""
    o = np.asarray(outputs, dtype=np.float64)
    g = np.asarray(truths, dtype=np.float64)
    if o.shape != g.shape:
        raise ValueError(f"shape mismatch: {o.shape} vs {g.shape}")
    if o.shape[0] < 2:
        raise ValueError("flicker needs at least two frames")
    d = np.abs(np.diff(o, axis=0) - np.diff(g, axis=0))
    return float(d.reshape(d.shape[0], -1).mean(axis=1).mean())


def mac_per_pixel(
    model: torch.nn.Module, shape: tuple[int, int, int, int] = (1, 3, 64, 64), **kwargs
) -> float:
    """Multiply-accumulates of one forward pass ``model(x, **kwargs)`` on a zero tensor of ``shape``,
    divided by the output pixel count N·H·W.

    Counted with ``torch.utils.flop_counter.FlopCounterMode`` at the aten level (MACs = FLOPs / 2), so
    ``nn.Conv2d``/``nn.Linear`` modules, functional ``F.conv2d`` calls (e.g. invertible 1×1 convolutions) and
    matrix products are all included; element-wise ops, biases and activations are not.
    """
    n, _, h, w = shape
    param = next(model.parameters(), None)
    x = torch.zeros(shape) if param is None else torch.zeros(shape, dtype=param.dtype, device=param.device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x, **kwargs)
    return counter.get_total_flops() / 2.0 / (n * h * w)
