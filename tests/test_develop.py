"""``invisp develop``: each option's effect on synthetic images with a known result, the outputs' formats, tiling,
the invisp-JPEG input path, the look it starts from (no edit reproduces the invisp JPEG), and the refusals. Plus
CIEDE2000 against Sharma, Wu & Dalal (2005)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from conftest import assert_fails, real_raw, run
from PIL import Image, ImageCms
from synthraw import make_raw, write_synthetic_dng

from invisp_cli import look as looks
from invisp_cli import metrics, rawio, steps
from invisp_cli.containers import jpeg
from invisp_cli.develop import Edit, colour, develop
from invisp_cli.develop.pipeline import (
    CLIP_LEVEL,
    DevelopChain,
    as_shot_temperature,
    clip_flags,
    reconstruct_highlights,
    tone,
    white_balance,
)
from invisp_cli.errors import InputError, MetadataError, OutputError
from invisp_cli.settings import FrontEnd, Look
from invisp_cli.steps import Gamma, cfa_index


@pytest.fixture
def dng(tmp_path):
    path = tmp_path / "scene.dng"
    write_synthetic_dng(path, h=48, w=64, cfa="GRBG", bits=12)
    return path


def tiff(path) -> np.ndarray:
    return tifffile.imread(path)


def developed(tmp_path, dng, name: str, *options) -> np.ndarray:
    out = tmp_path / name
    r = run("develop", dng, "-o", out, *options)
    assert r.exit_code == 0, r.output
    return tiff(out) if out.suffix == ".tif" else np.asarray(Image.open(out))


# ------------------------------------------------------------------------------------------- options


def test_plus_one_ev_doubles_linear_values(tmp_path, dng):
    base = developed(tmp_path, dng, "a.tif", "--linear").astype(np.float64)
    plus = developed(tmp_path, dng, "b.tif", "--linear", "--exposure", "+1").astype(np.float64)
    ok = base > 1e-3
    assert ok.mean() > 0.9
    np.testing.assert_allclose(plus[ok] / base[ok], 2.0, rtol=2e-3)  # float16 rounding


def test_exposure_in_display_output_below_the_roll_off(tmp_path, dng):
    base = Gamma().inverse(developed(tmp_path, dng, "a.tif", "--look", "libraw") / 65535.0)
    minus = Gamma().inverse(developed(tmp_path, dng, "b.tif", "--look", "libraw", "--exposure", "-1") / 65535.0)
    linear = developed(tmp_path, dng, "c.tif", "--look", "libraw", "--linear").astype(np.float64)
    ok = (base > 0.02) & (np.abs(base - linear) < 1e-3 * linear)  # where neither roll-off nor clip acts
    assert ok.mean() > 0.3
    np.testing.assert_allclose(minus[ok], base[ok] / 2, rtol=2e-3, atol=2e-5)


def test_white_balance_at_the_as_shot_temperature_is_a_noop(tmp_path, dng):
    raw = rawio.read_raw(dng)
    kelvin, tint = as_shot_temperature(raw)
    np.testing.assert_allclose(white_balance(raw, Edit(temperature=kelvin)), raw.wb, rtol=1e-9)
    base = developed(tmp_path, dng, "a.tif").astype(int)
    same = developed(tmp_path, dng, "b.tif", "--wb", f"{kelvin!r}K").astype(int)
    assert np.abs(same - base).max() <= 1


def test_tint_zero_is_a_noop_and_positive_tint_is_magenta(tmp_path, dng):
    base = developed(tmp_path, dng, "a.tif", "--wb", "5000K").astype(np.float64)
    zero = developed(tmp_path, dng, "b.tif", "--wb", "5000K", "--tint", "0").astype(np.float64)
    np.testing.assert_array_equal(zero, base)
    np.testing.assert_array_equal(developed(tmp_path, dng, "c.tif", "--tint", "0"), developed(tmp_path, dng, "d.tif"))
    magenta = developed(tmp_path, dng, "e.tif", "--wb", "5000K", "--tint", "+20").astype(np.float64)

    def green_share(img: np.ndarray) -> float:
        return float(img[..., 1].mean() / img.mean())

    assert green_share(magenta) < green_share(base) - 0.01


def test_temperature_moves_the_colour_the_expected_way(tmp_path, dng):
    warm = developed(tmp_path, dng, "a.tif", "--wb", "7500K").astype(np.float64)  # bluish light assumed: warmer
    cool = developed(tmp_path, dng, "b.tif", "--wb", "3200K").astype(np.float64)
    assert warm[..., 0].mean() / warm[..., 2].mean() > cool[..., 0].mean() / cool[..., 2].mean() + 0.1


def test_multipliers(tmp_path, dng):
    raw = rawio.read_raw(dng)
    as_shot = ",".join(repr(float(v)) for v in raw.wb)
    np.testing.assert_array_equal(developed(tmp_path, dng, "a.tif", "--wb", as_shot),
                                  developed(tmp_path, dng, "b.tif"))
    doubled_red = white_balance(raw, Edit(multipliers=(2 * raw.wb[0], 1.0, raw.wb[2])))
    np.testing.assert_allclose(doubled_red, [2 * raw.wb[0], 1.0, raw.wb[2]])


def test_temperature_tint_round_trip():
    for kelvin, tint in ((2500.0, -10.0), (5200.0, 5.0), (6504.0, 0.0), (9000.0, 30.0)):
        back = colour.temperature_from_xy(colour.xy_from_temperature(kelvin, tint))
        np.testing.assert_allclose(back, (kelvin, tint), rtol=1e-7, atol=1e-6)
    d65 = colour.temperature_from_xy(np.array([0.3127, 0.3290]))
    assert abs(d65[0] - 6504) < 15 and abs(d65[1]) < 15


def test_highlight_reconstruction_rebuilds_clipped_channels():
    rgb = np.array([[1.6, 1.0, 1.2], [0.3, 0.2, 0.1], [1.9, 1.0, 1.5]], np.float32).T.reshape(1, 3, 1, 3)
    clipped = np.array([[False, True, False], [False, False, False], [True, True, True]]).T.reshape(1, 3, 1, 3)
    out = reconstruct_highlights(rgb, clipped)[0, :, 0].T
    np.testing.assert_allclose(out[0], [1.6, 1.4, 1.2], rtol=1e-6)  # G from the mean of R and B
    np.testing.assert_array_equal(out[1], rgb[0, :, 0, 1])  # nothing clipped: unchanged
    np.testing.assert_allclose(out[2], [1.9, 1.9, 1.9], rtol=1e-6)  # all clipped: white at the brightest


def test_clip_flags_are_the_5x5_max_of_each_colours_clipped_sites():
    """``clip_flags`` equals torch's ``F.max_pool2d`` (5×5, stride 1, padding 2) of the per-colour clipped sites."""
    import torch

    rng = np.random.default_rng(3)
    n = rng.uniform(0.0, 0.93, (1, 1, 37, 50)).astype(np.float32)
    for cfa in ("RGGB", "GBRG"):
        masks = torch.from_numpy((cfa_index(cfa)[None, :, :] == np.arange(3)[:, None, None]).astype(np.float32))
        masks = masks.repeat(1, 19, 25)[None, :, :37, :50]
        pooled = torch.nn.functional.max_pool2d(masks * torch.from_numpy(n >= CLIP_LEVEL), 5, 1, padding=2) > 0
        np.testing.assert_array_equal(clip_flags(n, cfa), pooled.numpy())


def test_highlights_move_the_roll_off_knee():
    """The knee k = k₀·(1 + h/2): h = −1 halves the render's 0.8; without a roll-off in the render (k₀ = 1) h = 0
    clips and h = −1 puts it at 0.5; the ceilings are g₀·2^EV·m."""
    raw = make_raw(16, 16)
    for k0, h, knee in ((0.8, 0.0, 0.8), (0.8, -1.0, 0.4), (None, -1.0, 0.5), (None, 0.0, None)):
        chain = DevelopChain(raw, FrontEnd(1.5, highlight_knee=k0), Edit(highlights=h, exposure=1.0))
        assert (chain.rolloff is None) if knee is None else abs(chain.rolloff.knee - knee) < 1e-12
        if knee is not None:
            np.testing.assert_allclose(chain.rolloff.ceiling, np.maximum(3.0 * raw.wb, 1.0))


def test_highlights_option_recovers_a_clipped_patch(tmp_path):
    raw = make_raw(48, 64, bits=12)
    black = float(raw.black[0, 0])
    raw.mosaic = np.round(black + 0.6 * (raw.mosaic - black)).astype(np.uint16)  # a darker scene …
    raw.mosaic[10:30, 20:44] = raw.white  # … with a clipped highlight
    path = tmp_path / "clipped.dng"
    rawio.write_dng(path, raw)
    flat = developed(tmp_path, path, "a.tif", "--look", "libraw")
    soft = developed(tmp_path, path, "b.tif", "--look", "libraw", "--highlights", "-1")
    for img in (flat, soft):  # every site at its ceiling: white, neutral
        assert np.all(img[14:26, 24:40] == 65535)
    delta = soft.astype(int) - flat
    delta[6:34, 16:48] = 0  # the patch and its 5×5 clip flags: rebuilt channels
    changed = np.abs(delta).max(axis=-1) > 1  # camera R and B (ceilings 2, 1.6) compressed from the lower knee
    assert 0.1 < changed.mean() < 0.5 and delta[changed].mean() < -10  # the rest: every site below the knee


def test_channels_saturating_below_the_white_level_count_as_clipped():
    """A sky whose red sites reach the white level and whose green and blue stop at 93 % of it (sensors saturate
    below their nominal white) is rendered white, not magenta."""
    raw = make_raw(48, 64, cfa="RGGB", bits=12)
    black = float(raw.black[0, 0])
    patch = raw.mosaic[10:30, 20:44]
    patch[:] = np.round(black + 0.93 * (raw.white - black))
    patch[::2, ::2] = raw.white  # R sites of RGGB
    out = develop(raw, FrontEnd(1.0), Edit(highlights=-0.1), "srgb16")  # a highlight edit rebuilds them
    sky = out[14:26, 24:40].astype(int)
    assert np.abs(sky - sky[..., 1:2]).max() <= 1 and sky.min() == 65535


def test_shadows_contrast_saturation():
    x = np.tile([0.001, 0.18, 0.5], (3, 1)).reshape(1, 3, 1, 3)
    lifted = tone(x, Edit(shadows=1.0))[0, 0, 0]
    assert abs(lifted[0] / 0.001 - 2.0) < 1e-3  # +1 EV in deep shadows
    assert 1.0 < lifted[2] / 0.5 < 1.05
    contrast = tone(x, Edit(contrast=1.0))[0, 0, 0]
    assert abs(contrast[1] - 0.18) < 1e-12  # the pivot stays
    assert abs(contrast[2] - 0.18 * (0.5 / 0.18) ** 2) < 1e-12
    colourful = np.array([0.6, 0.3, 0.1]).reshape(1, 3, 1, 1)
    grey = tone(colourful, Edit(saturation=-1.0))
    np.testing.assert_allclose(grey, np.broadcast_to(grey[:, :1], grey.shape), rtol=1e-15)
    y = 0.2126 * 0.6 + 0.7152 * 0.3 + 0.0722 * 0.1
    assert abs(grey[0, 0, 0, 0] - y) < 1e-12
    assert tone(colourful, Edit()) is colourful


def test_tiled_equals_untiled():
    raw = make_raw(150, 134, cfa="BGGR", flip=6)
    edit = Edit(exposure=0.5, highlights=-0.5, shadows=0.3, contrast=0.2, saturation=0.1, temperature=4500.0)
    front = FrontEnd(1.1, highlight_knee=0.8, look=a_look())
    whole = develop(raw, front, edit, "srgb16", tile=1024)
    tiled = develop(raw, front, edit, "srgb16", tile=64)
    assert whole.shape == (134, 150, 3)  # upright (flip 6 transposes)
    assert np.abs(tiled.astype(int) - whole).max() <= 1  # float rounding of the convolutions only
    assert np.mean(tiled == whole) > 0.99


def test_develop_never_imports_torch(tmp_path, dng):
    """A develop of a RAW file and of a front-end invisp JPEG (its RAW recovered on numpy) in a fresh process, with
    every edit and each output mode, leaves torch unloaded."""
    import os
    import subprocess
    import sys

    code = ("import sys; from invisp_cli.cli import main; d = sys.argv[1]; edits = ['--exposure', '0.5', '--wb', "
            "'4000K', '--highlights', '-1', '--shadows', '0.3', '--contrast', '0.2', '--saturation', '0.1']; "
            "main(['encode', sys.argv[2], '-o', d + '/a.jpg'], standalone_mode=False); "
            "main(['develop', d + '/a.jpg', '-o', d + '/b.jpg', *edits], standalone_mode=False); "
            "main(['develop', sys.argv[2], '-o', d + '/c.tif', '--compare', d + '/c.png', *edits], "
            "standalone_mode=False); "
            "main(['develop', sys.argv[2], '-o', d + '/d.tif', '--linear', '--primaries', 'prophoto'], "
            "standalone_mode=False); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {k: v for k, v in os.environ.items() if k != "INVISP_WEIGHTS"}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(dng)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert all((tmp_path / name).stat().st_size > 0 for name in ("b.jpg", "c.tif", "c.png", "d.tif"))


# --------------------------------------------------------------------------------------------- outputs


def test_tiff_is_16_bit_with_icc_and_exif(tmp_path, dng):
    out = tmp_path / "edit.tif"
    assert run("develop", dng, "-o", out, "--exposure", "0.5").exit_code == 0
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint16 and page.shape == (48, 64, 3)
        icc = page.tags[34675].value
        assert page.tags["Make"].value == "Invisp" and page.tags[33437].value == (14, 5)  # f/2.8
    assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc)))


@pytest.mark.parametrize("primaries", ["rec709", "prophoto"])
def test_linear_tiff_is_16_bit_float_with_a_linear_icc(tmp_path, dng, primaries):
    out = tmp_path / "scene.tif"
    assert run("develop", dng, "-o", out, "--linear", "--primaries", primaries).exit_code == 0
    with tifffile.TiffFile(out) as tif:
        page = tif.pages[0]
        assert page.dtype == np.float16
        profile = ImageCms.ImageCmsProfile(io.BytesIO(page.tags[34675].value))
    assert "linear" in ImageCms.getProfileDescription(profile)
    ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), "RGB", "RGB")  # lcms accepts it


def test_prophoto_matrix_and_white():
    white = colour.REC709_TO_PROPHOTO @ np.ones(3)
    np.testing.assert_allclose(white, 1.0, atol=2e-4)  # D65 white → ProPhoto white (Bradford to D50)
    np.testing.assert_allclose(colour.PROPHOTO_TO_XYZ_D50 @ np.ones(3), colour.D50, atol=1e-12)


def test_jpeg_output_has_icc_and_camera_exif_and_is_not_an_invisp_jpeg(tmp_path, dng):
    out = tmp_path / "edit.jpg"
    assert run("develop", dng, "-o", out, "-q", "80", "--subsampling", "4:2:0").exit_code == 0
    img = Image.open(out)
    assert img.info.get("icc_profile") and img.getexif()[271] == "Invisp"
    assert_fails(run("decode", out, "-o", tmp_path / "x.dng"), MetadataError, "no invisp metadata")


def test_compare_png(tmp_path, dng):
    out, side = tmp_path / "edit.jpg", tmp_path / "side.png"
    assert run("develop", dng, "-o", out, "--exposure", "+2", "--compare", side).exit_code == 0
    img = np.asarray(Image.open(side).convert("RGB"))
    assert img.shape[1] >= 2 * 64 and img.shape[0] >= 2 * 48
    edited = np.asarray(Image.open(out))
    assert img.mean() > 0 and edited.mean() > 0


# ----------------------------------------------------------------------------------------- invisp JPEG


def test_invisp_jpeg_input_develops_like_its_raw(tmp_path, dng, test_registry):
    jpg, exact = tmp_path / "photo.jpg", tmp_path / "exact.jpg"
    assert run("encode", dng, "-o", jpg).exit_code == 0
    assert run("encode", dng, "-o", exact, "--exact").exit_code == 0
    options = ("--exposure", "1", "--wb", "4000K")
    truth = developed(tmp_path, dng, "truth.tif", *options)
    approx = developed(tmp_path, jpg, "approx.tif", *options)
    assert metrics.psnr(approx, truth, 65535.0) > 25  # the test registry's perturbed flow (measured 26.95 dB)
    np.testing.assert_array_equal(developed(tmp_path, exact, "exact.tif", *options), truth)  # the layer is used


# ------------------------------------------------------------------------------------------------- look


def a_look(name: str = "camera") -> Look:
    """A clearly non-trivial look: random tone curves and a 20–30 % chroma boost."""
    rng = np.random.default_rng(0)
    matrix = (1.3, 0.1, -0.05, 1.2)
    curves = tuple(tuple(float(v) for v in rng.normal(0, 0.7, 9)) for _ in range(3))
    return Look(name, curves, 0.3, matrix, 0.6, steps.chroma_reach(matrix))  # type: ignore[arg-type]


@pytest.fixture
def generic_look() -> Look:
    """A trained look for any camera in the user's looks folder: what encode --look camera picks for a file
    without a preview (the synthetic DNGs)."""
    return looks.save_look(a_look("test-look"), looks.user_looks_dir(), ["*"], {}, {}).load()


def test_no_edit_develop_reproduces_the_invisp_jpeg(tmp_path, dng, generic_look):
    jpg = tmp_path / "photo.jpg"
    assert run("encode", dng, "-o", jpg).exit_code == 0
    with Image.open(jpg) as img:
        assert jpeg.read_params(img, "photo.jpg").front_end.look.name == generic_look.name  # adapted to the file
        photo = np.asarray(img.convert("RGB"))
    assert metrics.psnr(developed(tmp_path, jpg, "a.jpg"), photo, 255.0) >= 45  # from its pixels
    np.testing.assert_array_equal(developed(tmp_path, dng, "b.jpg"), photo)  # the look encode chooses: the same JPEG
    assert metrics.psnr(developed(tmp_path, dng, "c.jpg", "--look", "libraw"), photo, 255.0) < 30
    brighter = developed(tmp_path, jpg, "d.jpg", "--exposure", "1")
    assert brighter.mean() > photo.mean() + 20  # edits act on top of the look
    options = ("--exposure", "-0.5", "--wb", "4000K")
    edited, truth = developed(tmp_path, jpg, "e.tif", *options), developed(tmp_path, dng, "f.tif", *options)
    assert metrics.psnr(edited, truth, 65535.0) > 33  # against the same edit of the RAW (measured 35.17 dB)


def test_real_raw_develops_to_its_default_look_render(tmp_path):
    """A Canon S40 CRW: develop of the RAW and of its invisp JPEG (the look fitted to the CRW's preview) against
    that JPEG: the same JPEG, and 65.36 dB (24.85 and 24.83 dB before develop had the look)."""
    src, jpg = real_raw("canon-powershot-s40_box_CRW_0119.CRW"), tmp_path / "box.jpg"
    assert run("encode", src, "-o", jpg).exit_code == 0
    photo = np.asarray(Image.open(jpg).convert("RGB"))
    np.testing.assert_array_equal(developed(tmp_path, src, "a.jpg"), photo)
    assert metrics.psnr(developed(tmp_path, jpg, "b.jpg"), photo, 255.0) >= 60


# ------------------------------------------------------------------------------------------- refusals


def test_refusals(tmp_path, dng):
    out = tmp_path / "edit.jpg"
    assert_fails(run("develop", tmp_path / "missing.dng", "-o", out), InputError, "no such file")
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (16, 16)).save(plain)
    assert_fails(run("develop", plain, "-o", out), MetadataError, "no invisp metadata")
    assert_fails(run("develop", dng, "-o", tmp_path / "edit.png"), InputError, "unsupported output type")
    assert_fails(run("develop", dng, "-o", out, "--linear"), InputError, ".tif")
    assert_fails(run("develop", dng, "-o", tmp_path / "a.tif", "--compare", tmp_path / "c.jpg"), InputError, ".png")
    before = plain.read_bytes()
    assert_fails(run("develop", plain, "-o", plain, "--force"), OutputError, "never overwrites its input")
    assert plain.read_bytes() == before
    out.write_bytes(b"keep")
    assert_fails(run("develop", dng, "-o", out), OutputError, "exists")
    assert out.read_bytes() == b"keep"
    assert run("develop", dng, "-o", out, "--force").exit_code == 0
    for bad in (("--wb", "hot"), ("--wb", "900K"), ("--exposure", "20"), ("--highlights", "0.5")):
        r = run("develop", dng, "-o", tmp_path / "x.jpg", *bad)
        assert r.exit_code == 2 and "Invalid value" in r.output, r.output
    r = run("develop", dng, "-o", tmp_path / "x.jpg", "--wb", "2,1,1.5", "--tint", "5")
    assert r.exit_code == 2 and "--tint" in r.output


# ------------------------------------------------------------------------------------------- CIEDE2000

# Sharma, Wu & Dalal (2005), Table 1: the 34 published pairs (L*, a*, b*) and ΔE₀₀ to 4 decimals.
SHARMA = [
    ((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425), ((50, 3.1571, -77.2803), (50, 0, -82.7485), 2.8615),
    ((50, 2.8361, -74.0200), (50, 0, -82.7485), 3.4412), ((50, -1.3802, -84.2814), (50, 0, -82.7485), 1.0000),
    ((50, -1.1848, -84.8006), (50, 0, -82.7485), 1.0000), ((50, -0.9009, -85.5211), (50, 0, -82.7485), 1.0000),
    ((50, 0, 0), (50, -1, 2), 2.3669), ((50, -1, 2), (50, 0, 0), 2.3669),
    ((50, 2.4900, -0.0010), (50, -2.4900, 0.0009), 7.1792), ((50, 2.4900, -0.0010), (50, -2.4900, 0.0010), 7.1792),
    ((50, 2.4900, -0.0010), (50, -2.4900, 0.0011), 7.2195), ((50, 2.4900, -0.0010), (50, -2.4900, 0.0012), 7.2195),
    ((50, -0.0010, 2.4900), (50, 0.0009, -2.4900), 4.8045), ((50, -0.0010, 2.4900), (50, 0.0010, -2.4900), 4.8045),
    ((50, -0.0010, 2.4900), (50, 0.0011, -2.4900), 4.7461), ((50, 2.5, 0), (50, 0, -2.5), 4.3065),
    ((50, 2.5, 0), (73, 25, -18), 27.1492), ((50, 2.5, 0), (61, -5, 29), 22.8977),
    ((50, 2.5, 0), (56, -27, -3), 31.9030), ((50, 2.5, 0), (58, 24, 15), 19.4535),
    ((50, 2.5, 0), (50, 3.1736, 0.5854), 1.0000), ((50, 2.5, 0), (50, 3.2972, 0), 1.0000),
    ((50, 2.5, 0), (50, 1.8634, 0.5757), 1.0000), ((50, 2.5, 0), (50, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def test_ciede2000_sharma_pairs():
    lab1 = np.array([p[0] for p in SHARMA], dtype=np.float64)
    lab2 = np.array([p[1] for p in SHARMA], dtype=np.float64)
    expected = np.array([p[2] for p in SHARMA])
    np.testing.assert_allclose(metrics.ciede2000(lab1, lab2), expected, atol=5e-5)
    np.testing.assert_allclose(metrics.ciede2000(lab2, lab1), expected, atol=5e-5)  # symmetric


def test_srgb_to_lab_and_mean_ciede2000():
    np.testing.assert_allclose(metrics.srgb_to_lab(np.ones(3)), [100, 0, 0], atol=1e-3)  # D65 white
    np.testing.assert_allclose(metrics.srgb_to_lab(np.zeros(3)), [0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(metrics.srgb_to_lab(np.array([1.0, 0, 0])), [53.24, 80.09, 67.20], atol=0.02)
    img = np.random.default_rng(0).integers(0, 256, (8, 9, 3), dtype=np.uint8)
    assert metrics.mean_ciede2000(img, img) == 0.0
    other = img.copy()
    other[0, 0] = 255 - other[0, 0]
    expected = float(metrics.ciede2000(metrics.srgb_to_lab(img[0, 0] / 255), metrics.srgb_to_lab(other[0, 0] / 255)))
    assert abs(metrics.mean_ciede2000(other, img, chunk=7) - expected / 72) < 1e-12
