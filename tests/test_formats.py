"""Every camera a user owns: X-Trans (any periodic CFA), linear (3-sample) DNGs and float DNGs.

The X-Trans and linear files are made from a real Bayer file (``rawio.synthetic``: LibRaw's linear camera-RGB
demosaic sampled on Fujifilm's 6×6 pattern, or written whole as LinearRaw); LibRaw must read them as the raw
type meant. Round trips go through the command line, the recovered DNG through LibRaw again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rawpy
import tifffile
import torch
from conftest import assert_fails, real_raw, run

from invisp_cli import metrics, rawio, residual
from invisp_cli.errors import MetadataError, UnsupportedSensorError
from invisp_cli.params import ReconstructionParams
from invisp_cli.rawio.synthetic import XTRANS, as_cfa, as_linear, linear_source
from invisp_cli.settings import cfa_rows
from invisp_cli.steps import Chain, PatternDemosaic, analytic_steps, cfa_index
from invisp_cli.tiling import run_tiled

SOURCE = "nikon-d750_rose_768x512.dng"  # 768×512: the smallest real file


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """The synthetic X-Trans and linear DNGs of ``SOURCE`` (written once for the module)."""
    folder = tmp_path_factory.mktemp("formats")
    raw, rgb = linear_source(real_raw(SOURCE))
    out = {"xtrans": folder / "xtrans.dng", "linear": folder / "linear.dng"}
    rawio.write_dng(out["xtrans"], as_cfa(raw, rgb))
    rawio.write_dng(out["linear"], as_linear(raw, rgb))
    return out


def _xtrans_indices() -> np.ndarray:
    return np.array([["RGB".index(c) for c in row] for row in XTRANS.split("/")])


def test_libraw_reads_the_made_files_as_meant(made):
    with rawpy.imread(str(made["xtrans"])) as r:
        assert r.raw_type == rawpy.RawType.Flat and r.raw_pattern.shape == (6, 6)
        assert r.raw_pattern.tolist() == _xtrans_indices().tolist()
    with rawpy.imread(str(made["linear"])) as r:
        assert r.raw_type == rawpy.RawType.Stack and r.num_colors == 3
    x, lin = rawio.read_raw(made["xtrans"]), rawio.read_raw(made["linear"])
    assert x.cfa == XTRANS and x.black.shape == (6, 6) and x.mosaic.shape == (512, 768)
    assert lin.cfa == "linear" and lin.black.shape == (3,) and lin.mosaic.shape == (512, 768, 3)


def _levels(path: Path) -> tuple:
    with rawpy.imread(str(path)) as r:
        pattern = None if r.raw_pattern is None else r.raw_pattern.tolist()
        return r.raw_type, pattern, r.raw_image_visible.shape, list(r.black_level_per_channel), r.white_level


def _raw_psnr_gamma(orig: Path, rec: Path) -> float:
    """RAW-PSNR-γ over every sample: CFA sites, or all three channels of a linear image (per-channel black)."""
    a, b = rawio.read_raw(orig), rawio.read_raw(rec)
    return metrics.raw_psnr_gamma(metrics.normalise_mosaic(b.mosaic, a.black, a.white),
                                  metrics.normalise_mosaic(a.mosaic, a.black, a.white))


@pytest.mark.parametrize("kind,floor", [("xtrans", 33.0), ("linear", 33.0)])
def test_round_trip_approximate_and_exact(made, tmp_path, kind, floor):
    src = made[kind]
    jpg, dng, xjpg, xdng = (tmp_path / n for n in ("a.jpg", "a.dng", "x.jpg", "x.dng"))
    for args in (("encode", src, "-o", jpg), ("decode", jpg, "-o", dng),
                 ("encode", src, "-o", xjpg, "--exact"), ("decode", xjpg, "-o", xdng)):
        r = run(*args)
        assert r.exit_code == 0, r.output
    assert _levels(dng) == _levels(src) == _levels(xdng)  # raw type, pattern, size, black per channel, white
    assert _raw_psnr_gamma(src, dng) > floor  # docs/formats.md: 37.2 (X-Trans) / 37.5 dB (linear), --look libraw
    with rawpy.imread(str(src)) as a, rawpy.imread(str(xdng)) as b:
        assert np.array_equal(a.raw_image_visible, b.raw_image_visible)  # --exact: bit-exact
    with tifffile.TiffFile(src) as a, tifffile.TiffFile(dng) as b:  # the original's colour and WB tags
        for tag in ("ColorMatrix1", "AsShotNeutral", "CalibrationIlluminant1"):
            assert a.pages[0].tags[tag].value == b.pages[0].tags[tag].value


def test_record_of_an_xtrans_file(made, tmp_path):
    jpg = tmp_path / "a.jpg"
    assert run("encode", made["xtrans"], "-o", jpg).exit_code == 0
    info = run("info", jpg, "--json")
    assert info.exit_code == 0, info.output
    raw = json.loads(info.output)["record"]["raw"]
    assert raw["cfa"] == XTRANS and np.shape(raw["black"]) == (6, 6)
    assert json.loads(info.output)["record"]["render"]["demosaic"] == "pattern"
    assert "black R 600, G 600, B 600 (per colour; 6×6 sites)" in run("info", made["xtrans"]).output


def _params(raw: dict, demosaic: str) -> ReconstructionParams:
    return ReconstructionParams("invisp-frontend-v1", "0" * 64, raw, {"codec": "jpeg", "quality": 90,
                                "subsampling": "4:4:4", "demosaic": demosaic, "exposure_gain": 1.0})


def _raw_record(cfa: str, black) -> dict:
    return {"cfa": cfa, "black": black, "white": 4095, "bits": 12, "visible_size": [36, 48], "flip": 0,
            "wb": [2.0, 1.0, 1.5], "rgb_cam": np.eye(3).tolist(), "xyz_to_cam": np.eye(3).tolist()}


def test_record_validation_old_and_new_layouts():
    _params(_raw_record("RGGB", [[64, 64], [64, 64]]), "mhc").validate()  # the records of before
    _params(_raw_record(XTRANS, np.full((6, 6), 64).tolist()), "pattern").validate()
    _params(_raw_record("linear", [64, 64, 64]), "none").validate()
    bad = [(_raw_record(XTRANS, [[64, 64], [64, 64]]), "pattern"),  # black of the wrong period
           (_raw_record("RGGB", [[64, 64], [64, 64]]), "none"),  # a Bayer mosaic needs a demosaic
           (_raw_record(XTRANS, np.full((6, 6), 64).tolist()), "mhc"),
           (_raw_record("linear", [64, 64, 64]), "pattern"),
           (_raw_record("GG/GR", np.full((2, 2), 64).tolist()), "pattern"),  # no blue site
           (_raw_record("RGX/GBG", np.full((2, 3), 64).tolist()), "pattern"),
           (_raw_record("RG/GBB", np.full((2, 2), 64).tolist()), "pattern")]
    for raw, demosaic in bad:
        with pytest.raises(MetadataError):
            _params(raw, demosaic).validate()


def test_cfa_rows():
    assert cfa_rows("RGGB") == ("RG", "GB") and cfa_rows("linear") == ()
    assert len(cfa_rows(XTRANS)) == 6
    for bad in ("RGGBX", "RG/G", "GG/GG", "R" * 17 + "/" + "G" * 17, ""):
        with pytest.raises(ValueError):
            cfa_rows(bad)


@pytest.mark.parametrize("cfa", [XTRANS, "RGB/GBR/BRG", "GRGB/BGRG", "RGGB"])
def test_pattern_demosaic_keeps_sites_tiles_exactly_and_matches_torch(cfa):
    rng = np.random.default_rng(1)
    rows = cfa_rows(cfa)
    step = PatternDemosaic(cfa)
    x = rng.random((1, 1, 41, 53)).astype(np.float32)  # odd sizes, not multiples of the period
    y = step.forward(x)
    assert y.shape == (1, 3, 41, 53) and np.array_equal(step.inverse(y), x)
    idx = cfa_index(cfa)
    sites = np.tile(idx, (-(-41 // idx.shape[0]), -(-53 // idx.shape[1])))[:41, :53]
    assert np.array_equal(np.take_along_axis(y[0], sites[None], 0)[0], x[0, 0])  # each site keeps its value
    assert np.allclose(step.forward(np.full((1, 1, 24, 24), 0.3, np.float32)), 0.3, atol=1e-6)
    assert np.allclose(step.forward(torch.from_numpy(x)).numpy(), y, atol=1e-6)
    chain = Chain(analytic_steps(cfa, np.full((len(rows), len(rows[0])), 64.0), 4095, [2.0, 1.0, 1.5], np.eye(3),
                                 1.1, "pattern", 0.8))
    m = rng.integers(64, 4095, (1, 1, 60, 66)).astype(np.float32)
    whole = chain.forward(m)
    tiled = np.empty_like(whole)
    run_tiled(chain.forward, m, tiled, tile=12, halo=chain.receptive_field, align=chain.align)
    assert np.array_equal(tiled, whole)
    assert np.allclose(chain.inverse(whole), m, atol=0.05)


def test_bayer_layer_header_is_unchanged():
    """A Bayer layer's predictor JSON has no period keys: layers written before still parse, and new ones are
    byte-identical to them."""
    p = residual.Predictor.none(0, 4095)
    assert "period" not in p.to_json() and residual.Predictor.from_json(p.to_json()) == p
    x = residual.Predictor.none(0, 4095, (6, 6))
    assert residual.Predictor.from_json(x.to_json()) == x
    with pytest.raises(ValueError):
        residual.Predictor.from_json({**x.to_json(), "period": [2, 2]})


def _float_dng(path: Path, data: np.ndarray) -> None:
    cm = [v for x in (9020, -2890, -715, -4535, 12436, 2348, -934, 1919, 7086) for v in (x, 10000)]
    tags = [(254, 4, 1, 0, True), (271, "s", 0, "Test", True), (272, "s", 0, "Cam", True),
            (50706, 1, 4, (1, 4, 0, 0), True), (50708, "s", 0, "Test Cam", True), (50717, 4, 1, 1, True),
            (50721, 10, 9, cm, True), (50778, 3, 1, 21, True)]
    if data.ndim == 2:
        tags += [(33421, 3, 2, (2, 2), True), (33422, 1, 4, (0, 1, 1, 2), True), (50710, 1, 3, (0, 1, 2), True)]
    with tifffile.TiffWriter(path) as tw:
        tw.write(data, photometric=32803 if data.ndim == 2 else 34892, planarconfig="contig", rowsperstrip=40,
                 metadata=None, extratags=tags)


@pytest.mark.parametrize("shape", [(40, 60), (40, 60, 3)])
def test_float_dng_is_refused_not_converted(tmp_path, shape):
    src = tmp_path / "hdr.dng"
    _float_dng(src, np.random.default_rng(0).random(shape).astype(np.float32))
    with rawpy.imread(str(src)) as r:
        assert r.raw_image.dtype == np.uint16  # what LibRaw does with it: integers
    assert_fails(run("encode", src, "-o", tmp_path / "o.jpg"), UnsupportedSensorError, "hdr.dng",
                 "32-bit floating-point samples")
    assert not (tmp_path / "o.jpg").exists()


def test_info_says_values_above_white_are_clipped():
    src = real_raw(SOURCE)  # the rose holds sites above its WhiteLevel
    r = run("info", src)
    assert r.exit_code == 0, r.output
    assert "above the white level" in r.output and "--exact" in r.output


def test_xtrans_behind_a_learned_stage(tmp_path, test_registry):
    """A learned flow (the test registry's squeeze flow) after the X-Trans front end: its alignment combines with
    the CFA's period 6; encode and decode keep the raw type, pattern and levels."""
    raw, rgb = linear_source(real_raw(SOURCE))
    src, jpg, dng = tmp_path / "x.dng", tmp_path / "x.jpg", tmp_path / "x.out.dng"
    rawio.write_dng(src, as_cfa(raw.crop(0, 0, 96, 130), rgb[:96, :130]))  # 130: not a multiple of 6
    assert run("encode", src, "-o", jpg).exit_code == 0
    r = run("decode", jpg, "-o", dng)
    assert r.exit_code == 0, r.output
    assert _levels(dng) == _levels(src) and _raw_psnr_gamma(src, dng) > 25


@pytest.mark.parametrize("cfa", ["RG/GB/GB/RG", "R/G/B/G", XTRANS])
def test_other_periods_round_trip_through_libraw(tmp_path, cfa):
    """Periods LibRaw's DNG reader keeps (6×6; 2 columns by 1, 2, 4 or 8 rows) are written and read back as the
    same pattern; others (3×3, 2×4: LibRaw scrambles them) are refused, by the writer and in a record."""
    raw, rgb = linear_source(real_raw(SOURCE))
    made = as_cfa(raw.crop(0, 0, 48, 72), rgb[:48, :72], cfa)
    rawio.write_dng(tmp_path / "p.dng", made)
    back = rawio.read_raw(tmp_path / "p.dng")
    assert back.cfa == cfa and np.array_equal(back.mosaic, made.mosaic)
    for bad in ("RGB/GBR/BRG", "RGBG/GBRG"):
        with pytest.raises(ValueError, match="colour filter array"):
            rawio.write_dng(tmp_path / "q.dng", as_cfa(raw.crop(0, 0, 48, 72), rgb[:48, :72], bad))
        with pytest.raises(MetadataError, match="cfa"):
            _params(_raw_record(bad, np.full(np.shape([list(r) for r in bad.split("/")]), 64).tolist()),
                    "pattern").validate()


def test_develop_refuses_what_it_cannot_edit(made, tmp_path):
    for src in made.values():
        assert_fails(run("develop", src, "-o", tmp_path / "d.jpg"), UnsupportedSensorError, "Bayer mosaics only")


def test_bounded_layer_and_the_noise_tier(made, tmp_path):
    """--max-error N bounds every sample of an X-Trans mosaic; the noise-bounded tier (Ks) takes a linear image too
    (its bound per site: tests/test_noise.py)."""
    jpg, dng = tmp_path / "n.jpg", tmp_path / "n.dng"
    assert run("encode", made["xtrans"], "-o", jpg, "--max-error", "3").exit_code == 0
    assert run("decode", jpg, "-o", dng).exit_code == 0
    with rawpy.imread(str(made["xtrans"])) as a, rawpy.imread(str(dng)) as b:
        err = np.abs(a.raw_image_visible.astype(int) - b.raw_image_visible.astype(int)).max()
    assert 0 < err <= 3
    r = run("encode", made["linear"], "-o", tmp_path / "s.jpg", "--max-error", "1s")
    assert r.exit_code == 0 and "within 1σ" in r.output, r.output + r.stderr


def _converters():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import converters

    return converters


def test_linear_dng_black_level_has_no_repeat_dim(made):
    """A LinearRaw DNG states its black as 3 values without BlackLevelRepeatDim (the spec's default 1×1): where
    the tag was written, RawTherapee 5.9 left the black unsubtracted (test below); LibRaw reads black per channel."""
    with tifffile.TiffFile(made["linear"]) as t:
        tags = t.pages[0].tags
        assert "BlackLevelRepeatDim" not in tags and len(tags["BlackLevel"].value) == 3
    with rawpy.imread(str(made["linear"])) as r:
        assert list(r.black_level_per_channel)[:3] == list(rawio.read_raw(made["linear"]).black)


@pytest.mark.parametrize("kind", ["xtrans", "linear"])
def test_rawtherapee_renders_the_made_and_decoded_dngs(made, tmp_path, kind):
    """RawTherapee opens the X-Trans and linear DNGs and the ones decoded from their JPEGs: the decoded one renders
    like the made one (docs/formats.md: 35.5 / 39.9 dB), and the made one as bright, per channel, as RawTherapee's
    render of the Bayer file it was made from (a linear DNG with BlackLevelRepeatDim: R 168 instead of 130)."""
    cv = _converters()
    if "rawtherapee" not in cv.available():
        pytest.skip("rawtherapee-cli not installed")
    jpg, dng = tmp_path / "a.jpg", tmp_path / "a.dng"
    assert run("encode", made[kind], "-o", jpg, "--look", "libraw").exit_code == 0
    assert run("decode", jpg, "-o", dng).exit_code == 0
    source, original, decoded = (cv._to_u8(cv.rawtherapee_render(f, tmp_path))
                                 for f in (real_raw(SOURCE), made[kind], dng))
    psnr, resized = cv.compare(original, decoded)
    assert not resized and psnr >= 32.0, psnr
    means = [img.reshape(-1, 3).mean(axis=0) for img in (source, original)]
    assert np.abs(means[0] - means[1]).max() < 5.0, means
