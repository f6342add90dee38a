"""The differentiable JPEG simulator against Pillow's real libjpeg encode + decode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.ndimage import gaussian_filter

from invisp_cli.metrics import psnr
from invisp_cli.simulators import DiffJPEG, fourier_round, quant_tables

ROSE = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw" / "nikon-d750_rose_768x512.dng"
PIL_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}
QUALITIES = (50, 75, 90, 95)


def _synthetic_photo(h: int = 128, w: int = 128) -> np.ndarray:
    """A smooth random field with a sharp saturated rectangle and disc and a little grain, uint8."""
    rng = np.random.default_rng(0)
    f = gaussian_filter(rng.normal(size=(h, w, 3)), (6, 6, 0))
    f = (f - f.min()) / (f.max() - f.min())
    yy, xx = np.mgrid[:h, :w]
    f[(xx > 40) & (xx < 90) & (yy > 30) & (yy < 70)] = (0.9, 0.2, 0.1)
    f[(xx - 90) ** 2 + (yy - 95) ** 2 < 400] = (0.1, 0.3, 0.8)
    f += rng.normal(0, 0.01, f.shape)
    return (np.clip(f, 0, 1) * 255).round().astype(np.uint8)


def _rose() -> np.ndarray | None:
    rawpy = pytest.importorskip("rawpy")
    if not ROSE.exists():
        return None
    with rawpy.imread(str(ROSE)) as raw:
        return raw.postprocess(use_camera_wb=True, no_auto_bright=True)


def _pillow_jpeg(img: np.ndarray, quality: int, subsampling: str) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality, subsampling=PIL_SUBSAMPLING[subsampling])
    return np.asarray(Image.open(buf).convert("RGB"))


def _to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0


def _to_image(x: torch.Tensor) -> np.ndarray:
    return x[0].permute(1, 2, 0).detach().numpy() * 255.0


@pytest.fixture(scope="module")
def psnr_table() -> list[tuple[str, str, int, float, float, float]]:
    """(image, subsampling, quality, PSNR vs Pillow's JPEG of: hard-rounded sim, Fourier sim, the input)."""
    images = {"synthetic": _synthetic_photo()}
    rose = _rose()
    if rose is not None:
        images["rose"] = rose
    hard, fourier = DiffJPEG("hard"), DiffJPEG("fourier")
    rows = []
    with torch.no_grad():
        for name, img in images.items():
            x = _to_tensor(img)
            for sub in PIL_SUBSAMPLING:
                for q in QUALITIES:
                    ref = _pillow_jpeg(img, q, sub)
                    rows.append((
                        name, sub, q,
                        psnr(_to_image(hard(x, q, sub)), ref, 255.0),
                        psnr(_to_image(fourier(x, q, sub)), ref, 255.0),
                        psnr(img, ref, 255.0),
                    ))  # fmt: skip
    print("\nimage      sub    q   hard  fourier  input (dB vs Pillow)")
    for row in rows:
        print("{:10s} {} {:3d} {:6.2f} {:6.2f} {:6.2f}".format(*row))
    return rows


def test_simulator_matches_pillow(psnr_table: list[tuple[str, str, int, float, float, float]]) -> None:
    for name, sub, q, p_hard, p_fourier, p_input in psnr_table:
        where = f"{name} {sub} q={q}"
        assert p_hard >= 44.0, where
        assert p_fourier >= 41.0, where
        # the simulator models the actual loss: its output is closer to Pillow's JPEG than the input is
        assert p_hard >= p_input + 2.0, where
        assert p_fourier >= p_input + 2.0, where


@pytest.mark.parametrize("sub", list(PIL_SUBSAMPLING))
def test_any_size_matches_pillow(sub: str) -> None:
    img = np.ascontiguousarray(_synthetic_photo(101, 91))
    out = DiffJPEG("hard")(_to_tensor(img), 75, sub)
    assert out.shape == (1, 3, 101, 91)
    ref = _pillow_jpeg(img, 75, sub)
    assert psnr(_to_image(out), ref, 255.0) > max(44.0, psnr(img, ref, 255.0) + 2.0)


def test_quant_tables_equal_libjpeg() -> None:
    img = np.zeros((8, 8, 3), np.uint8)
    for q in range(1, 101):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=q)
        tables = Image.open(buf).quantization
        luma, chroma = quant_tables(q)
        assert luma.flatten().tolist() == list(tables[0]), q
        assert chroma.flatten().tolist() == list(tables[1]), q
    luma, chroma = quant_tables(torch.tensor([10.0, 50.0, 100.0]))
    assert luma.shape == chroma.shape == (3, 8, 8)
    assert luma[1, 0, 0] == 16 and chroma[1, 0, 0] == 17 and luma[2].eq(1).all()


def test_fourier_round() -> None:
    x = torch.linspace(-3, 3, 601)
    away_from_half = (x - x.floor() - 0.5).abs() > 0.2
    assert (fourier_round(x) - x.round())[away_from_half].abs().max() < 0.05
    assert (fourier_round(x, 40) - x.round())[away_from_half].abs().max() < 0.02


@pytest.mark.parametrize("rounding", ["fourier", "ste"])
def test_gradient_flows(rounding: str) -> None:
    x = torch.rand(2, 3, 24, 40, requires_grad=True)
    DiffJPEG(rounding)(x * 0.8 + 0.1, 75, "4:2:0").square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_per_sample_quality() -> None:
    x = torch.rand(3, 3, 32, 32)
    qualities = torch.tensor([20.0, 60.0, 95.0])
    sim = DiffJPEG("hard")
    batched = sim(x, qualities, "4:2:0")
    for i, q in enumerate(qualities.tolist()):
        assert torch.allclose(batched[i : i + 1], sim(x[i : i + 1], q, "4:2:0"), atol=1e-5)
    err = (batched - x).square().mean(dim=(1, 2, 3))
    assert err[0] > err[1] > err[2]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        DiffJPEG("floor")
    with pytest.raises(ValueError):
        DiffJPEG()(torch.rand(1, 3, 8, 8), 75, "4:1:1")
    with pytest.raises(ValueError):
        DiffJPEG()(torch.rand(1, 1, 8, 8), 75)
