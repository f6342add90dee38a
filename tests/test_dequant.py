"""The biased-dequantisation decode (``containers.dequant``): closer to the encoded image than Pillow's 8-bit
decode, the same size and orientation (a lossless turn undone as on Pillow's pixels), used by the approximate
decode only, and decode exactly as before where jpeglib is missing or the file is not one it handles."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import run
from PIL import Image
from synthraw import write_synthetic_dng

from invisp_cli import codec, pipeline, rawio
from invisp_cli.containers import dequant, integrity, jpeg
from invisp_cli.metrics import normalise_mosaic, raw_psnr_gamma
from invisp_cli.zoo import find_model, load_stage

needs_jpeglib = pytest.mark.skipif(not dequant.available(), reason="jpeglib not installed")


def _image(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """uint8 RGB: smooth colour waves, a few edges and noise (Laplacian-like AC coefficients)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 70 * np.sin(x / 7 + c) * np.cos(y / 11 - c) for c in range(3)], -1)
    base += 40 * ((x // 23 + y // 17) % 2)[..., None]
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def _jpeg(rgb: np.ndarray, quality: int = 90, subsampling: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=subsampling)
    return buf.getvalue()


def _pillow(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b) ** 2)))


@needs_jpeglib
@pytest.mark.parametrize("quality", [70, 90, 95])
def test_closer_to_the_encoded_image_and_coefficients_than_pillow(quality):
    """The true coefficients are known (the DCT of the encoder's YCbCr input): the Laplacian centroids of the
    nonzero AC indices are nearer them than the bin centres, and the float pixels nearer the encoded image than
    Pillow's. This image's channels carry independent noise (its colour detail does not follow its luma): chroma
    from luma, shrunk, costs it at most 2 % RMSE and keeps the decode ahead of Pillow's."""
    rgb = _image()
    data = _jpeg(rgb, quality)
    centroids = _rmse(dequant.decode(data, from_luma=False), rgb)
    assert centroids < 0.97 * _rmse(_pillow(data), rgb)
    assert _rmse(dequant.decode(data), rgb) < min(1.02 * centroids, 0.98 * _rmse(_pillow(data), rgb))
    planes, tables, size, _ = dequant.read_coefficients(data)
    ycc = rgb.astype(np.float64) @ np.linalg.inv(dequant._YCC_TO_RGB).T
    ycc[..., 1:] += 128.0
    c = dequant._dct_matrix()
    for i, (k, q) in enumerate(zip(planes, tables, strict=True)):
        x = np.einsum("ux,axby,vy->abuv", c, (ycc[..., i] - 128).reshape(size[0] // 8, 8, size[1] // 8, 8), c)
        moved = k != 0  # nonzero AC indices: the zero bin and the DC stay at k·Q
        moved[..., 0, 0] = False
        centre, centroid = (k * q)[moved], dequant.dequantise(k, q)[moved]
        assert _rmse(centroid, x[moved]) < 0.97 * _rmse(centre, x[moved])
        assert np.array_equal(dequant.dequantise(k, q)[~moved], (k * q)[~moved])


@needs_jpeglib
def test_chroma_from_luma_stays_in_the_bins_and_restores_chroma_detail():
    """An image whose colour detail follows its luma detail (as a demosaic's does): chroma from luma brings the
    decoded chroma nearer the encoded one, and every coefficient it writes lies in the bin the JPEG stores (the
    zero bins only; the nonzero ones keep their centroids)."""
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:96, 0:128]
    detail = rng.normal(0, 1, (96, 128)) * 30 + 25 * np.sin(x / 2.1) * np.cos(y / 3.3)
    tint = np.array([1.3, 1.0, 0.55])  # a warm colour: chroma detail ∝ luma detail
    rgb = np.clip(100 + detail[..., None] * tint + 20 * (x // 40)[..., None], 0, 255).astype(np.uint8)
    data = _jpeg(rgb, 90)
    ycc = rgb.astype(np.float64) @ np.linalg.inv(dequant._YCC_TO_RGB).T
    planes, tables, size, _ = dequant.read_coefficients(data)
    y_coef = dequant.dequantise(planes[0], tables[0])
    for i in (1, 2):
        k, q = planes[i], tables[i]
        plain = dequant.dequantise(k, q)
        out = dequant.chroma_from_luma(y_coef, k, plain, q)
        assert np.array_equal(np.rint(out / q), k)  # the same indices: what the JPEG stores
        assert np.array_equal(out[k != 0], plain[k != 0]) and not np.array_equal(out, plain)
        c = dequant._dct_matrix()
        true = np.einsum("ux,axby,vy->abuv", c, ycc[..., i].reshape(12, 8, 16, 8), c)
        assert _rmse(out, true) < 0.97 * _rmse(plain, true)
    with_luma, without = dequant.decode(data), dequant.decode(data, from_luma=False)
    assert _rmse(with_luma, rgb) < _rmse(without, rgb)


def test_laplace_fit_recovers_the_rate():
    """Indices of Laplacian samples (rate λ, step Q) give back θ = λQ; the centroid shift has its limits."""
    rng = np.random.default_rng(1)
    theta = np.linspace(0.2, 4.0, 64).reshape(8, 8)
    x = rng.laplace(0, 1 / theta, size=(4000, 8, 8))  # Q = 1
    got = dequant.laplace_theta(np.rint(x).astype(np.int16))
    assert np.allclose(got, theta, rtol=0.06)
    shift = dequant.centroid_offset(np.array([1e-3, 1.0, 30.0]))
    assert shift[0] == pytest.approx(0, abs=1e-3) and 0 < shift[1] < 0.5 and shift[2] == pytest.approx(0.5, abs=0.04)


@needs_jpeglib
@pytest.mark.parametrize("shape", [(37, 53), (8, 8), (101, 139)])
def test_float_rgb_of_the_stored_image(shape):
    """Float32 (H, W, 3) in [0, 255], any size, the image as stored (what Pillow decodes, within a level)."""
    data = _jpeg(_image(*shape, seed=2))
    out = dequant.decode(data)
    assert out.shape == (*shape, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255
    assert np.abs(out - _pillow(data)).mean() < 2.0


@needs_jpeglib
@pytest.mark.skipif(not shutil.which("jpegtran"), reason="jpegtran (libjpeg-turbo-progs) not installed")
@pytest.mark.parametrize("args", [["-rotate", "90"], ["-transverse"], ["-flip", "horizontal"]])
@pytest.mark.parametrize("shape", [(96, 128), (101, 139)])
def test_a_lossless_turn_is_undone_on_the_float_pixels(args, shape, tmp_path):
    """jpegtran's turn (whole iMCUs; partial edge strips left in place at 101 × 139) is detected on Pillow's
    pixels and undone on the float ones the same way: they are the untouched file's float pixels."""
    rgb = _image(*shape, seed=3)
    data = _jpeg(rgb)
    pixels = integrity.bind(_pillow(data), data)
    src = tmp_path / "a.jpg"
    src.write_bytes(data)
    turned = subprocess.run(["jpegtran", "-copy", "all", *args, str(src)], capture_output=True, check=True).stdout
    check = integrity.check(_pillow(turned), turned, pixels, shape)
    assert check.state == "transformed"
    got = dequant.recovery_pixels(turned, check)
    want = dequant.recovery_pixels(data, integrity.Check("intact", _pillow(data)))
    assert got.dtype == np.float32 and got.shape == (*shape, 3)
    assert np.abs(got - want).max() < 1e-4


@needs_jpeglib
def test_white_stays_where_pillow_decodes_white():
    """A clipped highlight: where Pillow decodes 255 the recovery pixels are exactly 1, though the centroids alone
    put some of those values below 255; elsewhere they are the float decode's."""
    rgb = _image()
    rgb[20:70, 30:90] = 255
    data = _jpeg(rgb)
    pillow = _pillow(data)
    white = pillow == 255
    assert (dequant.decode(data)[white] < 254.9).any()
    got = dequant.recovery_pixels(data, integrity.Check("intact", pillow))
    assert np.all(got[white] == 1.0)
    assert np.allclose(got[~white], dequant.decode(data)[~white] / 255, atol=1e-6)


def test_without_jpeglib_decode_is_pillows(monkeypatch):
    """jpeglib missing (blocked in sys.modules): nothing is read, and the RAW is recovered from Pillow's pixels."""
    monkeypatch.setitem(sys.modules, "jpeglib", None)
    data = _jpeg(_image())
    check = integrity.Check("intact", _pillow(data))
    assert not dequant.available() and dequant.decode(data) is None
    assert dequant.recovery_pixels(data, check) is check.rgb


@needs_jpeglib
def test_a_reader_failure_gives_pillows_pixels(monkeypatch):
    """jpeglib failing on a file Pillow decoded: no error, Pillow's pixels."""
    import jpeglib

    def fail(path):
        raise RuntimeError("libjpeg: bogus marker")

    monkeypatch.setattr(jpeglib, "read_dct", fail)
    data = _jpeg(_image())
    check = integrity.Check("intact", _pillow(data))
    assert dequant.decode(data) is None and dequant.recovery_pixels(data, check) is check.rgb


@needs_jpeglib
def test_other_files_and_states_get_pillows_pixels():
    """An RGB JPEG (no colour transform: its components are not Y, Cb, Cr) is not read (None); changed pixels
    (a re-save, an edit) and a float decode that disagrees with Pillow's pixels (another image) recover from
    Pillow's pixels."""
    rgb = _image()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, subsampling=0, keep_rgb=True)
    assert Image.open(io.BytesIO(buf.getvalue())).mode == "RGB" and dequant.decode(buf.getvalue()) is None
    data = _jpeg(rgb)
    changed = integrity.Check("changed", _pillow(data))
    assert dequant.recovery_pixels(data, changed) is changed.rgb
    other = integrity.Check("intact", _pillow(_jpeg(_image(seed=9))))
    assert dequant.recovery_pixels(data, other) is other.rgb


@needs_jpeglib
def test_approximate_decode_uses_the_float_pixels(tmp_path, monkeypatch):
    """``invisp decode`` of a plain invisp JPEG recovers from the float pixels, nearer the original RAW than
    from Pillow's; without jpeglib it gives exactly what Pillow's pixels give."""
    src, jpg = tmp_path / "in.dng", tmp_path / "a.jpg"
    write_synthetic_dng(src, h=96, w=128)
    assert run("encode", src, "-o", jpg).exit_code == 0
    raw = rawio.read_raw(src)
    bound = jpeg.read_bound(jpg)
    pillow = pipeline.recover([bound.rgb], bound.params, load_stage(find_model(bound.params.model_id))).mosaic
    got = codec.recover_file(jpg).raw.mosaic
    n = normalise_mosaic(raw.mosaic, raw.black, raw.white)
    assert raw_psnr_gamma(normalise_mosaic(got, raw.black, raw.white), n) > raw_psnr_gamma(
        normalise_mosaic(pillow, raw.black, raw.white), n)
    monkeypatch.setitem(sys.modules, "jpeglib", None)
    assert np.array_equal(codec.recover_file(jpg).raw.mosaic, pillow)


@needs_jpeglib
def test_the_baselines_invert_the_same_decode():
    """bench's LibRaw baselines invert the dequantised float pixels too (closer to the encoded image than
    Pillow's), 255 where Pillow's are 255; Pillow's where the float decode cannot read the file (an RGB JPEG)."""
    from invisp_cli.bench import baselines

    rgb = _image()
    data = _jpeg(rgb)
    got = baselines.recovery_rgb(data, _pillow(data))
    assert got.dtype == np.float32 and got.shape == rgb.shape
    assert _rmse(got, rgb) < _rmse(_pillow(data), rgb)
    assert np.all(got[_pillow(data) == 255] == 255)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90, subsampling=0, keep_rgb=True)
    assert baselines.recovery_rgb(buf.getvalue(), _pillow(buf.getvalue())).dtype == np.uint8


@needs_jpeglib
@pytest.mark.parametrize("subsampling", [1, 2])  # 4:2:2, 4:2:0
def test_subsampled_chroma_is_upsampled_as_libjpeg_does(subsampling, monkeypatch):
    """4:2:2 and 4:2:0 files: the float decode is nearer the encoded image than Pillow's; with the bin centres
    (no centroid shift) it is Pillow's decode up to rounding, so the chroma is upsampled (libjpeg's triangular
    "fancy" filter) and sited as libjpeg does — a shifted or box upsampling is several levels off."""
    rgb = _image(h=101, w=157)  # odd sizes: partial chroma blocks and MCUs
    data = _jpeg(rgb, subsampling=subsampling)
    got = dequant.decode(data)
    assert got.shape == rgb.shape
    assert _rmse(got, rgb) < 0.98 * _rmse(_pillow(data), rgb)
    monkeypatch.setattr(dequant, "centroid_shift", lambda k, table: np.zeros((8, 8), np.float32))
    centres = dequant.decode(data)
    assert np.abs(centres - _pillow(data)).mean() < 0.7
    boxed = centres.copy()  # the same decode with nearest-neighbour chroma, for scale
    monkeypatch.setattr(dequant, "upsample", lambda p, v, h: np.repeat(np.repeat(p, v, 0), h, 1))
    assert np.abs(dequant.decode(data) - _pillow(data)).mean() > 1.5 * np.abs(boxed - _pillow(data)).mean()


@needs_jpeglib
def test_a_file_libjpeg_warns_about_gives_none_and_prints_nothing(capfd):
    """A truncated JPEG that libjpeg still reads (it warns "Premature end of JPEG file" on file descriptor 2): no
    float decode (the caller takes Pillow's pixels) and not a byte on the user's terminal."""
    data = _jpeg(_image())
    assert dequant.decode(data[: len(data) - 300]) is None
    assert capfd.readouterr().err == ""
    assert dequant.decode(data) is not None
