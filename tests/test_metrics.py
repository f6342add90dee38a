"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from invisp_cli import metrics as m


def test_psnr_known_mse() -> None:
    a = np.zeros((2, 2))
    b = np.array([[0.1, 0.0], [0.0, 0.0]])  # MSE = 0.01 / 4 = 0.0025 → 10·log10(400)
    assert m.psnr(a, b) == pytest.approx(10 * math.log10(400))
    assert m.psnr(a * 255, b * 255, peak=255.0) == pytest.approx(10 * math.log10(400))
    assert m.psnr(b, b) == math.inf
    with pytest.raises(ValueError):
        m.psnr(a, np.zeros(3))


def test_normalise_mosaic_per_position_black_and_clipping() -> None:
    black = np.array([[512.0, 500.0], [510.0, 520.0]])
    v = np.array([[600, 512, 600], [100, 20000, 510], [1024, 1000, 512]], dtype=np.uint16)
    n = m.normalise_mosaic(v, black, 16383)
    assert n.dtype == np.float64
    assert n[0, 0] == pytest.approx(88 / 15871)
    assert n[0, 1] == pytest.approx(12 / 15883)
    assert n[0, 2] == pytest.approx(88 / 15871)  # column 2 reuses the tile's column 0
    assert n[1, 0] == 0.0  # below black: clipped
    assert n[1, 1] == 1.0  # above white: clipped
    assert n[1, 2] == 0.0  # exactly black (510 at position (1, 0))
    assert n[2, 0] == pytest.approx(512 / 15871)
    assert n[2, 1] == pytest.approx(500 / 15883)


def test_normalise_mosaic_full_size_black() -> None:
    v = np.array([[100, 200], [300, 400]])
    black = np.array([[0.0, 100.0], [100.0, 0.0]])
    full = np.array([[0.0, 100.0, 0.0], [0.0, 0.0, 0.0]])
    # (2, 2) is a tile; a full-size array is used as is
    assert np.allclose(m.normalise_mosaic(v, black, 500), [[0.2, 0.25], [0.5, 0.8]])
    assert np.allclose(
        m.normalise_mosaic([[50, 100, 150], [0, 500, 600]], full, 500), [[0.1, 0, 0.3], [0, 1, 1]]
    )
    assert np.allclose(m.normalise_mosaic(v, 100, 500), [[0, 0.25], [0.5, 0.75]])


def test_raw_psnr_lin_and_gamma() -> None:
    n = np.array([[1.0, 0.0], [0.5, 0.5]])
    n_hat = np.array([[0.5**2.2, 0.0], [0.5, 0.5]])
    # γ: (n̂^(1/2.2) − n^(1/2.2)) = (0.5 − 1, 0, 0, 0) → MSE 0.0625 → 10·log10(16)
    assert m.raw_psnr_gamma(n_hat, n) == pytest.approx(10 * math.log10(16))
    # lin: (0.5^2.2 − 1)² / 4
    assert m.raw_psnr_lin(n_hat, n) == pytest.approx(-10 * math.log10((0.5**2.2 - 1) ** 2 / 4))
    mask = np.array([[False, True], [True, False]])
    assert m.raw_psnr_lin(n_hat, n, mask) == math.inf
    assert math.isnan(m.raw_psnr_lin(n_hat, n, np.zeros((2, 2), bool)))
    assert m.raw_psnr_gamma(n_hat, n, gamma=1.0) == pytest.approx(m.raw_psnr_lin(n_hat, n))


def test_raw_psnr_paper_hand_computed() -> None:
    # constant mosaics: every demosaiced value equals the constant; WB (2, 1, 1.5) / 2 scales R, G, B
    n, n_hat = np.full((8, 10), 0.64), np.full((8, 10), 0.49)
    scale = np.array([1.0, 0.5, 0.75])
    d = (0.64 * scale) ** (1 / 2.2) - (0.49 * scale) ** (1 / 2.2)  # per-channel error, everywhere
    expected = -10 * math.log10(np.mean(d**2))
    assert m.raw_psnr_paper(n_hat, n, "RGGB", [2.0, 1.0, 1.5]) == pytest.approx(expected)
    # one wrong R site of an RGGB mosaic: the decimation [::2, ::2] keeps R sites, so its own error counts
    # once; the R values it spreads to by interpolation sit at odd positions, which the decimation drops
    a = np.full((8, 8), 0.25)
    b = a.copy()
    b[2, 2] = 0.36
    got = m.raw_psnr_paper(b, a, "RGGB", [1.0, 1.0, 1.0], gamma=1.0)
    # kept grid 4×4×3 = 48 values; only R at (2, 2) is off (by 0.11): G and B there come from G/B sites
    assert got == pytest.approx(-10 * math.log10(0.11**2 / 48))
    assert m.raw_psnr_paper(a, a, "GBRG", [1.5, 1.0, 2.0]) == math.inf


def test_rgb_psnr_uint8_no_wraparound() -> None:
    img = np.array([[[10, 20, 30]]], dtype=np.uint8)
    ref = np.array([[[20, 10, 30]]], dtype=np.uint8)  # MSE = (100 + 100 + 0) / 3
    assert m.rgb_psnr(img, ref) == pytest.approx(10 * math.log10(255**2 / (200 / 3)))


def test_ssim_identical_and_constant_images() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    assert m.ssim(img, img) == pytest.approx(1.0)
    # constant images: σ = 0, so SSIM = (2ab + C1) / (a² + b² + C1) exactly
    a, b, c1 = 100.0, 120.0, (0.01 * 255) ** 2
    x, y = np.full((16, 16, 3), a, np.uint8), np.full((16, 16, 3), b, np.uint8)
    assert m.ssim(x, y) == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1))
    with pytest.raises(ValueError):
        m.ssim(img[:8, :8], img[:8, :8])


def test_ssim_decreases_with_noise() -> None:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:48, :48]
    ref = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).astype(np.uint8)
    scores = [
        m.ssim(np.clip(ref + rng.normal(0, s, ref.shape), 0, 255).astype(np.uint8), ref) for s in (2, 8, 32)
    ]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_ssim_matches_skimage() -> None:
    skm = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(2)
    ref = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    img = np.clip(ref + rng.normal(0, 20, ref.shape), 0, 255).astype(np.uint8)
    expected = skm.structural_similarity(
        img,
        ref,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=-1,
    )
    assert m.ssim(img, ref) == pytest.approx(expected, abs=1e-9)


def test_masks() -> None:
    render = np.array(
        [[[251, 0, 0], [249, 249, 249]], [[10, 10, 10], [11, 0, 0]]],
        dtype=np.uint8,
    )
    assert m.highlight_mask(render).tolist() == [[True, False], [False, False]]
    assert m.shadow_mask(render).tolist() == [[False, False], [True, False]]
    assert m.highlight_mask(render, threshold=249).tolist() == [[True, True], [False, False]]


def test_sizes_and_ratios() -> None:
    assert m.bpp(1000, 8000) == 1.0
    assert m.b_bmp(4000, 6000, 14) == 54 + 4000 * 6000 * 14 / 8
    assert m.b_bmp(2, 3, 12) == 63.0
    assert m.compression_ratio(100, 25) == 4.0


def test_flicker() -> None:
    o = np.array([0.0, 1.0, 3.0]).reshape(3, 1, 1)
    g = np.array([0.0, 1.0, 1.0]).reshape(3, 1, 1)
    # Δo − Δg = (0, 2) → mean 1
    assert m.flicker(o, g) == 1.0
    o2 = [np.array([[0.0, 0.0]]), np.array([[1.0, 3.0]])]
    g2 = [np.array([[0.0, 0.0]]), np.array([[0.0, 0.0]])]
    assert m.flicker(o2, g2) == 2.0
    assert m.flicker(g2, g2) == 0.0
    with pytest.raises(ValueError):
        m.flicker(o[:1], g[:1])


def test_mac_per_pixel_single_conv() -> None:
    assert m.mac_per_pixel(torch.nn.Conv2d(3, 8, 3, padding=1), (1, 3, 16, 16)) == 3 * 8 * 9
    assert m.mac_per_pixel(torch.nn.Conv2d(3, 4, 2, stride=2), (2, 3, 8, 8)) == 3 * 4 * 4 / 4


def test_mac_per_pixel_counts_functional_conv_and_linear() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 1)
            self.inv = torch.nn.Parameter(torch.eye(8)[:, :, None, None])
            self.lin = torch.nn.Linear(8, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = F.conv2d(self.conv(x), self.inv)  # invertible 1×1 convolution, functional
            return self.lin(y.permute(0, 2, 3, 1))

    assert m.mac_per_pixel(Net(), (1, 3, 8, 12)) == 3 * 8 + 8 * 8 + 8 * 4


def test_bd_rate_hand_computed() -> None:
    p = [30.0, 33.0, 36.0, 39.0]
    r = [0.5, 1.0, 2.0, 4.0]
    for method in ("cubic", "pchip"):
        # the same curve at 0.8× the rate: −20 % at every quality
        assert m.bd_rate(r, p, [0.8 * x for x in r], p, method) == pytest.approx(-20.0, abs=1e-9)
        assert m.bd_rate(r, p, r, p, method) == pytest.approx(0.0, abs=1e-9)
        # log-linear curves (exact for both fits): log r = 0.1·(p − 30); the test curve reaches each PSNR 1.5 dB
        # higher at the same rates, i.e. log r_test(p) = 0.1·(p − 31.5): exp(−0.15) − 1 = −13.929 % over [31.5, 39]
        rr = [math.exp(0.1 * (x - 30)) for x in p]
        assert m.bd_rate(rr, p, rr, [x + 1.5 for x in p], method) == pytest.approx(
            100 * (math.exp(-0.15) - 1), abs=1e-6)
        assert m.bd_psnr(rr, p, rr, [x + 1.5 for x in p], method) == pytest.approx(1.5, abs=1e-6)
    # two points each (pchip = linear): ref log r = (p − 30)/10, test 2(p − 30)/10 on [30, 40];
    # mean log-rate difference = mean of (p − 30)/10 = 0.5 → e^0.5 − 1 = +64.87 %
    assert m.bd_rate([1, math.e], [30, 40], [1, math.e**2], [30, 40]) == pytest.approx(
        100 * (math.exp(0.5) - 1), abs=1e-9)
    assert math.isnan(m.bd_rate([1, 2], [30, 31], [1, 2], [35, 36]))  # no overlap
    assert math.isnan(m.bd_rate([1, 2, 3], [30, 31, 32], [1, 2, 3], [30, 31, 32], "cubic"))  # < 4 points
