"""The camera look: its invertible steps (tone curves, colour rendering), its record, the fit to a preview, trained
looks and the encode/decode round trip with ``--look``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from conftest import assert_fails, run
from PIL import Image
from synthraw import make_raw, write_synthetic_dng

from invisp_cli import codec, metrics, pipeline, rawio, steps
from invisp_cli import look as looks
from invisp_cli.errors import InputError, ModelError
from invisp_cli.params import ReconstructionParams
from invisp_cli.settings import FrontEnd, Look
from invisp_cli.zoo import find_model


def a_look(seed: int = 0, matrix: tuple[float, ...] = (1.3, 0.1, -0.05, 1.2), name: str = "camera") -> Look:
    rng = np.random.default_rng(seed)
    curves = tuple(tuple(float(v) for v in rng.normal(0, 0.7, 9)) for _ in range(3))
    return Look(name, curves, 0.3, matrix, 0.6, steps.chroma_reach(matrix))  # type: ignore[arg-type]


def test_tone_curves_are_increasing_bijections_with_bounded_slope():
    look = a_look()
    table = steps.ToneCurves(look.curves, 0.3).table
    assert np.all(table[:, 0] == 0) and np.all(table[:, -1] == 1)
    slope = np.diff(table, axis=1) * steps.CURVE_INTERVALS
    assert slope.min() >= 0.3 - 1e-9 and slope.max() > 1.2  # bounded below, and really curved
    x = np.random.default_rng(1).random((2, 3, 17, 19)).astype(np.float32)
    t = steps.ToneCurves(look.curves, 0.3)
    np.testing.assert_allclose(t.inverse(t.forward(x)), x, atol=2e-6)
    xt = torch.from_numpy(x).double()
    np.testing.assert_allclose(t.forward(xt).numpy(), t.forward(x), atol=1e-6)
    np.testing.assert_allclose(t.inverse(t.forward(xt)).numpy(), x, atol=1e-9)


@pytest.mark.parametrize("matrix", [(1.0, 0.0, 0.0, 1.0), (1.3, 0.1, -0.05, 1.2), (2.0, -0.4, 0.3, 0.7)])
def test_chroma_compression_keeps_luma_and_the_cube_and_inverts(matrix):
    c = steps.ChromaCompress(matrix, 0.6, steps.chroma_reach(matrix))
    rng = np.random.default_rng(2)
    x = rng.random((1, 3, 64, 64))
    x[0, :, 0, :8] = np.eye(3).repeat(3, axis=1)[:, :8]  # the primaries: the most saturated colours
    y = c.forward(x)
    assert y.min() >= 0.0 and y.max() <= 1.0  # nothing leaves the cube, so nothing clips on quantisation
    lum = np.tensordot(steps.LUMA, x, axes=([0], [1]))
    np.testing.assert_allclose(np.tensordot(steps.LUMA, y, axes=([0], [1])), lum, atol=1e-12)
    np.testing.assert_allclose(c.inverse(y), x, atol=1e-9)
    t = torch.from_numpy(x)
    np.testing.assert_allclose(c.forward(t).numpy(), y, atol=1e-12)
    np.testing.assert_allclose(c.inverse(c.forward(t)).numpy(), x, atol=1e-9)
    if matrix[0] > 1:  # a saturation boost: weak colours gain chroma (inside the knee), strong ones compress
        d_in, d_out = np.abs(x - lum[:, None]).max(axis=1), np.abs(y - lum[:, None]).max(axis=1)
        weak = d_in < 0.05
        assert d_out[weak].sum() > 1.1 * d_in[weak].sum()


def test_look_fast_paths_match_the_step():
    look = steps.Look(a_look())
    lin = (np.random.default_rng(3).random((1, 3, 40, 50)) * 1.2 - 0.1).astype(np.float32)
    ref = (look.forward(steps.Gamma().forward_unit(lin)) * 255 + 0.5).astype(np.uint8)
    u8 = look.render_u8(lin)
    assert np.abs(u8.astype(int) - ref).max() <= 1 and (u8 != ref).mean() < 1e-3
    v = u8 * np.float32(1 / 255)
    np.testing.assert_allclose(look.recover_linear(v), steps.Gamma().inverse(look.inverse(v)), atol=1e-5)


def test_look_record_round_trips_and_is_validated():
    look = a_look()
    front = FrontEnd(1.5, "mhc", 0.8, look)
    record = json.loads(json.dumps(front.to_json()))
    assert FrontEnd.from_json(record) == front
    assert "look" not in FrontEnd(1.5).to_json() and FrontEnd.from_json({"exposure_gain": 1.5}).look is None
    bad = [{**look.to_json(), "slope_min": 0.0}, {**look.to_json(), "curves": [[0.0] * 9] * 2},
           {**look.to_json(), "chroma": [1, 0, 0, 0]}, {**look.to_json(), "reach": float("nan")},
           {k: v for k, v in look.to_json().items() if k != "knee"}, [1, 2], {**look.to_json(), "curves": 3}]
    for b in bad:
        with pytest.raises(ValueError):
            FrontEnd.from_json({"exposure_gain": 1.0, "look": b})


def test_render_recover_with_a_look_round_trips_the_raw():
    raw = make_raw(64, 96, seed=4)
    front = dataclasses.replace(pipeline.front_end_settings(raw), look=a_look())
    rgb = pipeline.render([raw], None, [front.to_json()])
    plain = pipeline.render([raw], None, [pipeline.front_end_settings(raw).to_json()])
    assert np.abs(rgb.astype(int) - plain).mean() > 5  # the look changes the picture
    entry = find_model("invisp-frontend-v1")
    params = ReconstructionParams.from_raw(raw, entry.id, entry.sha256,
                                           {**codec.render_settings(raw), **front.to_json()})
    rec = pipeline.recover([rgb], params, None)
    n, n_hat = (metrics.normalise_mosaic(m, raw.black, raw.white) for m in (raw.mosaic, rec.mosaic))
    assert metrics.raw_psnr_gamma(n_hat, n) > 40  # 8-bit quantisation only, amplified ≤ 1/slope_min


def test_fit_recovers_a_known_look_from_a_reframed_sharpened_unrotated_preview():
    raw = make_raw(400, 600, seed=5, flip=6)  # a portrait photo …
    front = pipeline.front_end_settings(raw)
    truth = a_look(6, (1.25, 0.05, 0.0, 1.15))
    lin = pipeline.render([raw], None, [front.to_json()], pixels=np.float32)
    lin_t = np.ascontiguousarray(lin.transpose(2, 0, 1)[None])
    camera = (steps.Look(truth).forward(lin_t)[0].transpose(1, 2, 0) * 255 + 0.5).astype(np.uint8)
    camera = np.rot90(camera[9:591, 6:394], -1)  # … whose preview is stored unrotated, in another framing (3 %) …
    blur = metrics.box_resize(camera, (291, 194))  # … smaller …
    sharp = np.clip(blur + 0.5 * (blur - metrics.box_resize(metrics.box_resize(blur, (97, 65)), (291, 194))), 0, 255)
    preview = sharp.astype(np.uint8)  # … and sharpened
    image = looks.working_image(raw, front, 300)
    fitted = looks.fit([looks.training_pairs(image, preview)])
    before = metrics.mean_ciede2000(*looks.training_pairs(image, preview))
    x, y = looks.training_pairs(image, preview)
    after = metrics.mean_ciede2000(looks.apply(np.array(fitted.curves), np.array(fitted.chroma).reshape(2, 2), x), y)
    assert before > 5 and after < 2.0, (before, after)


def _inverse_gain(look: Look, x: np.ndarray) -> np.ndarray:
    """The largest singular value of the look's inverse Jacobian at the rendered colours of x (n, 3): how much the
    inverse amplifies an error of the JPEG at each pixel."""
    step = steps.Look(look)
    y = step.forward(x.clip(1e-3, 1 - 1e-3).T[None, :, :, None])
    base, e = step.inverse(y), 1e-5
    jac = np.stack([(step.inverse(y + e * np.eye(3)[k][None, :, None, None]) - base) / e for k in range(3)], -1)
    return np.linalg.svd(jac[0, :, :, 0].transpose(1, 0, 2), compute_uv=False)[:, 0]


def test_the_fitted_colour_rendering_does_not_amplify_the_error_of_dark_colours():
    """A hue rotation sends dark colours far out of the cube at their luma, and the colour shoulder's inverse then
    amplifies their error ~50×: the fit's colour matrix is diagonal (saturation only; docs/look.md)."""
    raw = make_raw(400, 600, seed=5)
    front = pipeline.front_end_settings(raw)
    truth = a_look(6, (1.0, 0.3, 0.0, 1.0))  # the camera rotates hue
    lin = pipeline.render([raw], None, [front.to_json()], pixels=np.float32)
    camera = steps.Look(truth).forward(np.ascontiguousarray(lin.transpose(2, 0, 1)[None]))[0].transpose(1, 2, 0)
    preview = metrics.box_resize((camera * 255 + 0.5).astype(np.uint8), (300, 200)).astype(np.uint8)
    image = looks.working_image(raw, front, 300)
    x, y = looks.training_pairs(image, preview)
    fitted = looks.fit([(x, y)])
    after = metrics.mean_ciede2000(looks.apply(np.array(fitted.curves), np.array(fitted.chroma).reshape(2, 2), x), y)
    assert metrics.mean_ciede2000(x, y) > 5 and after < 3.0
    pixels = image.reshape(-1, 3)
    assert _inverse_gain(fitted, pixels).max() < 20 < _inverse_gain(truth, pixels).max()  # full 2×2 fit: 57
    assert fitted.chroma[1] == fitted.chroma[2] == 0.0 and fitted.reach < 1.5


def test_trained_looks_are_found_without_environment_variables(tmp_path):
    look = a_look(name="my-s40")
    folder = looks.user_looks_dir()
    entry = looks.save_look(look, folder, ["Canon PowerShot S40"], {"command": "test"}, {})
    assert looks.find_look("my-s40").load() == look
    raw = make_raw(32, 48, exif={"make": "Canon", "model": "Canon PowerShot S40"})
    assert looks.trained_look(looks.camera_name(raw)).id == "my-s40"
    assert entry.matches("canon canon  PowerShot S40") and not entry.matches("Canon PowerShot S45")
    with pytest.raises(InputError, match="unknown look 'nope'"):
        looks.find_look("nope")
    (folder / entry.file).write_bytes(b"replaced")
    with pytest.raises(ModelError, match="SHA-256"):
        looks.find_look("my-s40").load()


def test_encode_looks_round_trip_and_libraw_is_todays_render(tmp_path):
    src = tmp_path / "a.dng"
    raw = write_synthetic_dng(src, h=64, w=96, seed=7)
    looks.save_look(a_look(name="test-look"), looks.user_looks_dir(), ["*"], {}, {})
    for name in ("libraw", "test-look", "camera"):  # camera: no preview in the DNG → the generic ("*") look
        jpg, dng = tmp_path / f"{name}.jpg", tmp_path / f"{name}.dng"
        r = run("encode", src, "-o", jpg, "--look", name)
        assert r.exit_code == 0, r.output
        with Image.open(jpg) as img:
            params = codec.jpeg.read_params(img, "x")
        expected = None if name == "libraw" else "test-look"
        assert (params.front_end.look and params.front_end.look.name) == expected
        assert ("look" in params.render) == (name != "libraw")
        assert run("decode", jpg, "-o", dng).exit_code == 0
        back = rawio.read_raw(dng)
        n, n_hat = (metrics.normalise_mosaic(m, raw.black, raw.white) for m in (raw.mosaic, back.mosaic))
        assert metrics.raw_psnr_gamma(n_hat, n) > 35
        info = run("info", jpg)
        assert f"look: {expected or 'libraw'}" in info.output
    assert_fails(run("encode", src, "-o", tmp_path / "x.jpg", "--look", "nope"), InputError, "unknown look")


def test_batch_encode_takes_the_look(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_synthetic_dng(src / "a.dng", h=32, w=48, seed=8)
    looks.save_look(a_look(name="batch-look"), looks.user_looks_dir(), ["*"], {}, {})
    for name, expected in (("libraw", None), ("batch-look", "batch-look")):
        out = tmp_path / name
        r = run("encode", src, "-d", out, "--look", name)
        assert r.exit_code == 0, r.output
        with Image.open(out / "a.jpg") as img:
            look = codec.jpeg.read_params(img, "a.jpg").front_end.look
        assert (look and look.name) == expected


def test_letterbox_bars_are_trimmed_from_a_preview():
    img = np.full((120, 160, 3), 90, np.uint8)
    img[:15], img[-15:], img[:, :3] = 0, 4, 0  # black bars of a 3:2 frame in a 4:3 thumbnail
    assert looks.trim_borders(img).shape == (90, 157, 3)
    assert looks.trim_borders(np.zeros((20, 30, 3), np.uint8)).shape == (20, 30, 3)  # all dark: left as it is


def test_the_preview_of_a_dng_invisp_wrote_is_not_the_cameras(tmp_path):
    write_synthetic_dng(tmp_path / "a.dng", h=600, w=900, seed=9)  # write_dng embeds its own ≤ 256-px plain render
    assert looks.read_preview(tmp_path / "a.dng") is None
