"""The single definition of every metric invisp reports (each stated where it is defined). numpy, float64."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .steps import BilinearDemosaic


def normalise_mosaic(mosaic: np.ndarray, black: np.ndarray | float, white: float) -> np.ndarray:
    """n = clip((v − b) / (w − b), 0, 1).

    ``black`` is a scalar, a (p, q) per-CFA-position array ((2, 2) Bayer, (6, 6) X-Trans: tiled over the mosaic),
    a full-size array, or for a linear (H, W, 3) image one value per channel (3,).
    """
    v = np.asarray(mosaic, dtype=np.float64)
    b = np.asarray(black, dtype=np.float64)
    if b.ndim == 2 and v.ndim == 2 and b.shape != v.shape:
        (h, w), (p, q) = v.shape, b.shape
        b = np.tile(b, (-(-h // p), -(-w // q)))[:h, :w]
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
        rgb = demosaic.forward(np.asarray(m, dtype=np.float64)[None, None])[0]
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

    from scipy.ndimage import gaussian_filter  # here: decode imports this module but never needs scipy.ndimage

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
    model, shape: tuple[int, int, int, int] = (1, 3, 64, 64), **kwargs
) -> float:
    """Multiply-accumulates of one forward pass ``model(x, **kwargs)`` on a zero tensor of ``shape``,
    divided by the output pixel count N·H·W.

    Counted with ``torch.utils.flop_counter.FlopCounterMode`` at the aten level (MACs = FLOPs / 2), so
    ``nn.Conv2d``/``nn.Linear`` modules, functional ``F.conv2d`` calls (e.g. invertible 1×1 convolutions) and
    matrix products are all included; element-wise ops, biases and activations are not.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    n, _, h, w = shape
    param = next(model.parameters(), None)
    x = torch.zeros(shape) if param is None else torch.zeros(shape, dtype=param.dtype, device=param.device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x, **kwargs)
    return counter.get_total_flops() / 2.0 / (n * h * w)


def bd_rate(rate_ref: Sequence[float], psnr_ref: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float], method: str = "pchip") -> float:
    """Bjøntegaard delta rate (VCEG-M33): the mean relative bit-rate difference of ``test`` against ``ref`` at equal
    quality, in per cent (negative: ``test`` needs fewer bits), over the PSNR range both curves cover.

    Each curve is log(rate) as a function of PSNR: ``method`` "cubic" fits one cubic polynomial through its points
    (Bjøntegaard's original formulation, needs ≥ 4 points), "pchip" interpolates them piecewise-cubically and
    monotonically (the formulation of later VCEG/JVET common test conditions, ≥ 2 points). Each is integrated
    over [max(min PSNR), min(max PSNR)]; BD-rate = exp(mean difference of log rate) − 1, × 100. NaN where the two
    PSNR ranges do not overlap or a curve has too few distinct points."""
    d = _bd_mean_difference(*_curve(rate_ref, psnr_ref, swap=True), *_curve(rate_test, psnr_test, swap=True), method)
    return float((np.exp(d) - 1.0) * 100.0)


def bd_psnr(rate_ref: Sequence[float], psnr_ref: Sequence[float], rate_test: Sequence[float],
            psnr_test: Sequence[float], method: str = "pchip") -> float:
    """Bjøntegaard delta PSNR: the mean PSNR difference (dB) of ``test`` against ``ref`` at equal rate, over the
    log-rate range both cover (PSNR as a function of log rate; ``method`` as in ``bd_rate``)."""
    return _bd_mean_difference(*_curve(rate_ref, psnr_ref), *_curve(rate_test, psnr_test), method)


def _curve(rate: Sequence[float], psnr: Sequence[float], swap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A rate–PSNR curve's finite points with rate > 0 as (log rate, PSNR), or (PSNR, log rate) with ``swap``."""
    r, p = np.asarray(rate, dtype=np.float64), np.asarray(psnr, dtype=np.float64)
    ok = np.isfinite(r) & np.isfinite(p) & (r > 0)
    lr, p = np.log(r[ok]), p[ok]
    return (p, lr) if swap else (lr, p)


def _bd_mean_difference(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray, method: str) -> float:
    """Mean of y2(x) − y1(x) over the x range both curves cover: each curve a cubic fit ("cubic", ≥ 4 points) or
    a monotone piecewise-cubic interpolation ("pchip", ≥ 2 points), integrated exactly; NaN where the ranges do
    not overlap or a curve has too few or repeated x."""
    if method not in ("cubic", "pchip"):
        raise ValueError(f"unknown BD method {method!r} (cubic, pchip)")
    lo = max(x1.min(initial=np.inf), x2.min(initial=np.inf))
    hi = min(x1.max(initial=-np.inf), x2.max(initial=-np.inf))
    if not hi > lo:
        return float("nan")
    integrals = []
    for x, y in ((x1, y1), (x2, y2)):
        order = np.argsort(x)
        x, y = x[order], y[order]
        if len(np.unique(x)) != len(x) or len(x) < (4 if method == "cubic" else 2):
            return float("nan")
        if method == "cubic":
            poly = np.polyint(np.polyfit(x, y, 3))
            integrals.append(np.polyval(poly, hi) - np.polyval(poly, lo))
        else:
            from scipy.interpolate import PchipInterpolator

            integrals.append(float(PchipInterpolator(x, y).integrate(lo, hi)))
    return float((integrals[1] - integrals[0]) / (hi - lo))


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB values in [0, 1] (…, 3) → CIELAB (D65 white): the sRGB curve undone (IEC 61966-2-1), linear Rec.709
    → XYZ (D65), then L* = 116·f(Y/Yn) − 16, a* = 500·(f(X/Xn) − f(Y/Yn)), b* = 200·(f(Y/Yn) − f(Z/Zn)), with
    f(t) = t^(1/3) above (6/29)³, else t/(3·(6/29)²) + 4/29."""
    v = np.asarray(rgb, dtype=np.float64)
    lin = np.where(v <= 0.04045, v / 12.92, ((np.clip(v, 0.04045, None) + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    d = 6.0 / 29.0
    f = np.where(xyz > d**3, np.cbrt(np.clip(xyz, d**3, None)), xyz / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def ciede2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference ΔE₀₀ (CIE 142-2001; Sharma, Wu & Dalal 2005, eq. 1–18; k_L = k_C = k_H = 1) of
    CIELAB arrays (…, 3), element-wise. Hue angles in degrees as in the paper; the mean hue and Δh follow its
    conventions for |h₁ − h₂| > 180° and for a zero chroma product."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, dtype=np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, dtype=np.float64), -1, 0)
    c_bar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2.0
    g = 0.5 * (1.0 - np.sqrt(c_bar**7 / (c_bar**7 + 25.0**7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    zero = c1p * c2p == 0
    dh = h2p - h1p
    dh = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dh = np.where(zero, 0.0, dh)
    d_lp, d_cp = L2 - L1, c2p - c1p
    d_hp = 2.0 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2.0))
    l_bar, c_bar_p = (L1 + L2) / 2.0, (c1p + c2p) / 2.0
    h_sum = h1p + h2p
    h_bar = np.where(np.abs(h1p - h2p) <= 180.0, h_sum / 2.0,
                     np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0))
    h_bar = np.where(zero, h_sum, h_bar)
    t = (1.0 - 0.17 * np.cos(np.radians(h_bar - 30.0)) + 0.24 * np.cos(np.radians(2.0 * h_bar))
         + 0.32 * np.cos(np.radians(3.0 * h_bar + 6.0)) - 0.20 * np.cos(np.radians(4.0 * h_bar - 63.0)))
    d_theta = 30.0 * np.exp(-(((h_bar - 275.0) / 25.0) ** 2))
    r_c = 2.0 * np.sqrt(c_bar_p**7 / (c_bar_p**7 + 25.0**7))
    s_l = 1.0 + 0.015 * (l_bar - 50.0) ** 2 / np.sqrt(20.0 + (l_bar - 50.0) ** 2)
    s_c = 1.0 + 0.045 * c_bar_p
    s_h = 1.0 + 0.015 * c_bar_p * t
    r_t = -np.sin(np.radians(2.0 * d_theta)) * r_c
    return np.sqrt((d_lp / s_l) ** 2 + (d_cp / s_c) ** 2 + (d_hp / s_h) ** 2 + r_t * (d_cp / s_c) * (d_hp / s_h))


def mean_ciede2000(img: np.ndarray, ref: np.ndarray, chunk: int = 1 << 20) -> float:
    """Mean ΔE₀₀ over the pixels of two sRGB images (uint8, uint16 or floats in [0, 1]; (H, W, 3)), via
    ``srgb_to_lab``; computed in chunks of ``chunk`` pixels to bound memory."""
    if np.shape(img) != np.shape(ref):
        raise ValueError(f"shape mismatch: {np.shape(img)} vs {np.shape(ref)}")

    def unit(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        return a.reshape(-1, 3) / (np.iinfo(a.dtype).max if np.issubdtype(a.dtype, np.integer) else 1.0)

    x, y = unit(img), unit(ref)
    total = sum(float(ciede2000(srgb_to_lab(x[i:i + chunk]), srgb_to_lab(y[i:i + chunk])).sum())
                for i in range(0, len(x), chunk))
    return total / len(x)


def box_resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area (box-filter) resize of an (H, W, C) image to ``size`` = (width, height), per channel in float32
    (Pillow's BOX filter on "F" images), as float64 in the input's units."""
    from PIL import Image

    a = np.asarray(img, dtype=np.float32)
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(a[..., c]), "F").resize(size, Image.BOX))
                     for c in range(a.shape[-1])], -1).astype(np.float64)


def _gradient_signature(grey: np.ndarray) -> np.ndarray:
    """Gradient magnitude |(∂x, ∂y)| (forward differences), mean removed, unit norm: what framing is matched by
    (independent of tone and colour)."""
    m = np.hypot(np.diff(grey, axis=1)[:-1], np.diff(grey, axis=0)[:, :-1])
    m = m - m.mean()
    return m / (np.linalg.norm(m) + 1e-12)


def align_framing(image: np.ndarray, preview: np.ndarray) -> tuple[int, int, int, int, int]:
    """The framing of ``preview`` in ``image`` (both (H, W, 3), any units), METRICS.md "Look": the crop of the image
    with the preview's aspect ratio, 94–100 % (7 steps) of the largest such crop at any of 9×9 offsets, whose area
    downscale to 256 px best matches the preview's by normalised correlation of gradient magnitudes; both 90°
    rotations of the preview when the orientations disagree. The search runs on the image downscaled to 1.25× the
    preview's size. Returns (top, left, height, width, k): the crop in image pixels and the rotation np.rot90(·, k)
    that turns the preview to the image's orientation."""
    h, w = image.shape[:2]
    f = min(1.0, 1.25 * max(preview.shape[:2]) / max(h, w))
    work = box_resize(image, (max(8, int(w * f)), max(8, int(h * f)))) if f < 1 else np.asarray(image, np.float64)
    hs, ws = work.shape[:2]
    best: tuple[float, tuple[int, int, int, int, int]] = (-2.0, (0, 0, h, w, 0))
    for k in ([1, -1] if (h > w) != (preview.shape[0] > preview.shape[1]) else [0]):
        cam = np.rot90(preview, k)
        ph, pw = cam.shape[:2]
        sw, sh = max(8, int(pw * 256 / max(ph, pw))), max(8, int(ph * 256 / max(ph, pw)))
        ref = _gradient_signature(box_resize(cam, (sw, sh)).mean(-1))
        for scale in np.linspace(0.94, 1.0, 7):
            cw = int(min(ws, hs * pw / ph) * scale)
            ch = int(cw * ph / pw)
            if ch > hs or cw > ws or min(ch, cw) < 8:
                continue
            for dy in np.linspace(0, hs - ch, 9).astype(int):
                for dx in np.linspace(0, ws - cw, 9).astype(int):
                    sig = _gradient_signature(box_resize(work[dy:dy + ch, dx:dx + cw], (sw, sh)).mean(-1))
                    r = float((sig * ref).sum())
                    if r > best[0]:
                        best = (r, (int(dy / f), int(dx / f), int(ch / f), int(cw / f), k))
    return best[1]


def delta_e_camera(image: np.ndarray, preview: np.ndarray,
                   framing: tuple[int, int, int, int, int] | None = None) -> float:
    """ΔE2000 vs camera (METRICS.md "Look"): mean CIEDE2000 between the camera preview (uint8 sRGB) and the image
    (uint8 sRGB, e.g. the decoded invisp JPEG) cropped to the preview's framing (``align_framing``; ``framing``: the
    one it found on another render of the same file, to score several without searching again) and area
    downscaled to the preview's size."""
    dy, dx, ch, cw, k = align_framing(image, preview) if framing is None else framing
    cam = np.rot90(preview, k)
    crop = box_resize(np.asarray(image)[dy:dy + ch, dx:dx + cw], (cam.shape[1], cam.shape[0]))
    return mean_ciede2000(np.clip(crop / 255.0, 0.0, 1.0), np.asarray(cam, np.float64) / 255.0)
