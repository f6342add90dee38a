"""Unprocessing sRGB photos into synthetic Bayer RAW."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from invisp_cli import synth
from invisp_cli.errors import InvispError
from invisp_cli.rawio import RawImage

# Nikon D750 ColorMatrix (XYZ → camera), Adobe DNG Converter / dcraw adobe_coeff
D750_XYZ_TO_CAM = np.array([[7540, -2005, -1067], [-4795, 12527, 2377], [-1050, 1958, 7003]]) / 10000.0


def _photo(h: int = 64, w: int = 96, seed: int = 0) -> np.ndarray:
    """Piecewise-constant 2×2 tiles of moderate colours (no sensor clipping), uint8."""
    rng = np.random.default_rng(seed)
    tiles = rng.integers(30, 200, (h // 2, w // 2, 3), dtype=np.uint8)
    return tiles.repeat(2, axis=0).repeat(2, axis=1)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _reprocess_tiles(raw: RawImage) -> np.ndarray:
    """LibRaw-style render of each 2×2 CFA tile: normalise, ×wb, ×rgb_cam, sRGB curve → [0, 255] float."""
    n = (raw.mosaic - np.tile(raw.black, (raw.mosaic.shape[0] // 2, raw.mosaic.shape[1] // 2))) / (
        raw.white - raw.black[0, 0]
    )
    h, w = n.shape
    cam = np.zeros((h // 2, w // 2, 3))
    count = np.zeros(3)
    for k, c in enumerate(raw.cfa):
        i, j = divmod(k, 2)
        cam[..., "RGB".index(c)] += n[i::2, j::2]
        count["RGB".index(c)] += 1
    cam = cam / count * raw.wb
    return _linear_to_srgb(cam @ raw.rgb_cam.T) * 255.0


def test_fields_shapes_and_ranges() -> None:
    img = _photo()
    raw = synth.unprocess(img, D750_XYZ_TO_CAM, rng=np.random.default_rng(1))
    assert raw.mosaic.shape == img.shape[:2] and raw.mosaic.dtype == np.uint16
    assert raw.mosaic.max() <= 16383
    assert raw.cfa == "RGGB" and raw.white == 16383 and raw.bits == 14
    assert raw.black.shape == (2, 2) and raw.black.dtype == np.float64 and (raw.black == 512).all()
    assert raw.wb[1] == 1.0 and 1.9 <= raw.wb[0] <= 2.4 and 1.5 <= raw.wb[2] <= 1.9
    assert raw.wb_source == "camera"
    assert np.allclose(raw.rgb_cam.sum(axis=1), 1.0)
    assert np.array_equal(raw.xyz_to_cam, D750_XYZ_TO_CAM)
    assert raw.flip == 0 and raw.raw_size == (64, 96) and raw.margins == (0, 0)
    assert raw.exif["make"] == "invisp-synthetic" and raw.exif["model"]
    # signal sits between black and white, noise reaches slightly below black at most
    assert 512 < np.median(raw.mosaic) < 16383


@pytest.mark.parametrize("cfa", synth.CFA_PATTERNS)
def test_red_input_lands_on_red_sites(cfa: str) -> None:
    img = np.zeros((32, 32, 3), np.uint8)
    img[..., 0] = 200
    raw = synth.unprocess(img, D750_XYZ_TO_CAM, cfa=cfa, rng=np.random.default_rng(2), noise=False)
    sites = synth.cfa_channels(cfa, 32, 32)
    r, g, b = (raw.mosaic[sites == c].mean() - 512 for c in range(3))
    assert r > 2 * max(g, b)


def test_cfa_channels_layout() -> None:
    assert synth.cfa_channels("GBRG", 3, 3).tolist() == [[1, 2, 1], [0, 1, 0], [1, 2, 1]]
    with pytest.raises(ValueError):
        synth.cfa_channels("RGBG", 2, 2)


def test_deterministic_with_seed() -> None:
    img = _photo()
    a = synth.unprocess(img, D750_XYZ_TO_CAM, rng=np.random.default_rng(7))
    b = synth.unprocess(img, D750_XYZ_TO_CAM, rng=np.random.default_rng(7))
    c = synth.unprocess(img, D750_XYZ_TO_CAM, rng=np.random.default_rng(8))
    assert np.array_equal(a.mosaic, b.mosaic) and np.array_equal(a.wb, b.wb)
    assert not np.array_equal(a.mosaic, c.mosaic)


def test_noiseless_reprocessing_returns_the_input() -> None:
    img = _photo()
    raw = synth.unprocess(img, D750_XYZ_TO_CAM, rng=np.random.default_rng(3), exposure=1.0, noise=False)
    tiles = img[::2, ::2].astype(np.float64)
    assert np.abs(_reprocess_tiles(raw) - tiles).max() < 0.5


def test_inverse_tone_curve_round_trip() -> None:
    img = _photo(seed=4)
    raw = synth.unprocess(
        img, D750_XYZ_TO_CAM, rng=np.random.default_rng(5), exposure=1.0, invert_tone=True, noise=False
    )
    y = _reprocess_tiles(raw) / 255.0
    assert np.abs((3 * y**2 - 2 * y**3) * 255.0 - img[::2, ::2]).max() < 0.5


def test_per_position_black_wb_and_exposure_clipping() -> None:
    black = np.array([[500.0, 510.0], [520.0, 530.0]])
    dark = np.zeros((4, 6, 3), np.uint8)
    raw = synth.unprocess(dark, D750_XYZ_TO_CAM, black=black, rng=np.random.default_rng(0), noise=False)
    assert np.array_equal(raw.mosaic, np.tile(black, (2, 3)).astype(np.uint16))
    assert np.array_equal(raw.black, black)

    white = np.full((4, 4, 3), 255, np.uint8)
    raw = synth.unprocess(
        white,
        D750_XYZ_TO_CAM,
        rng=np.random.default_rng(0),
        wb=np.array([4.0, 2.0, 3.0]),
        exposure=1.2,
        noise=False,
    )
    assert np.allclose(raw.wb, [2.0, 1.0, 1.5])
    g = synth.cfa_channels("RGGB", 4, 4) == 1
    assert (raw.mosaic[g] == 16383).all()  # green saturates: 1.2 > 1 clips
    assert (raw.mosaic[~g] < 16383).all()


def test_noise_is_heteroscedastic_and_unbiased() -> None:
    img = np.zeros((128, 128, 3), np.uint8)
    img[:, 64:] = 180
    rng_seed = 11
    clean = synth.unprocess(img, D750_XYZ_TO_CAM, rng=np.random.default_rng(rng_seed), noise=False)
    noisy = synth.unprocess(img, D750_XYZ_TO_CAM, rng=np.random.default_rng(rng_seed))
    diff = noisy.mosaic.astype(np.float64) - clean.mosaic
    dark, bright = diff[:, :64], diff[:, 64:]
    assert 0 < dark.std() < bright.std()
    assert abs(bright.mean()) < 3 * bright.std() / np.sqrt(bright.size) + 1


def test_rejects_non_uint8() -> None:
    with pytest.raises(ValueError):
        synth.unprocess(np.zeros((4, 4, 3)), D750_XYZ_TO_CAM, rng=np.random.default_rng(0))


def test_bundled_photos() -> None:
    pytest.importorskip("skimage.data")
    photos = synth.bundled_photos()
    assert [name for name, _ in photos] == list(synth.BUNDLED_PHOTOS)
    for _, img in photos:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 256


def test_bundled_photos_without_skimage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(InvispError, match="pip install scikit-image"):
        synth.bundled_photos()
