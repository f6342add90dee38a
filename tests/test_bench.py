"""invisp bench: baselines with known answers, storage-size helpers, and a tiny end-to-end CLI run."""

from __future__ import annotations

import csv
import json
import math

import imagecodecs
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from synthraw import make_raw, write_synthetic_dng

from invisp_cli import metrics, rawio, zoo
from invisp_cli.bench import baselines, sizes
from invisp_cli.bench.run import Stage, crop_window, mean_records
from invisp_cli.cli import main
from invisp_cli.flows import build
from invisp_cli.steps import Chain, Gamma, analytic_steps


def _render_exact(raw: rawio.RawImage, gain: float = 1.0) -> np.ndarray:
    """The analytic ISP forwards, rounded to 8 bits, upright: an 8-bit PNG-exact render (no JPEG)."""
    chain = Chain(analytic_steps(raw.cfa, raw.black, raw.white, raw.wb, raw.rgb_cam, gain))
    h, w = raw.mosaic.shape
    with torch.inference_mode():
        y = chain.forward(torch.from_numpy(raw.mosaic.astype(np.float32)).view(1, 1, h, w))
    u8 = (y.clamp(0, 1) * 255 + 0.5).to(torch.uint8)[0].numpy().transpose(1, 2, 0)
    return rawio.apply_flip(u8, raw.flip)


def _psnr_gamma(raw: rawio.RawImage, mosaic: np.ndarray) -> float:
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    return metrics.raw_psnr_gamma(metrics.normalise_mosaic(mosaic, raw.black, raw.white), n)


@pytest.mark.parametrize(("cfa", "flip", "gain"), [("RGGB", 0, 1.0), ("GRBG", 6, 1.0), ("BGGR", 5, 0.8)])
def test_analytic_baseline_inverts_an_exact_render(cfa: str, flip: int, gain: float) -> None:
    raw = make_raw(48, 64, cfa=cfa, bits=14, flip=flip, seed=3)
    rgb = _render_exact(raw, gain)
    rec = baselines.analytic_recover(rgb, raw, gain)
    assert rec.shape == raw.mosaic.shape and rec.dtype == np.uint16
    assert _psnr_gamma(raw, rec) > 50.0


def test_upi_with_true_priors_inverts_and_default_priors_are_worse() -> None:
    raw = make_raw(48, 64, cfa="GBRG", bits=12, flip=3, seed=5)
    rgb = _render_exact(raw)
    truth = baselines.UPIPriors(rgb_cam=raw.rgb_cam, wb=tuple(raw.wb), curve="bt709")
    exact = _psnr_gamma(raw, baselines.upi_recover(rgb, raw, truth))
    assert exact > 50.0
    assert abs(exact - _psnr_gamma(raw, baselines.analytic_recover(rgb, raw))) < 1e-6
    default = _psnr_gamma(raw, baselines.upi_recover(rgb, raw))
    assert default < exact - 5.0


def test_upi_priors_and_curves() -> None:
    m = baselines.average_rgb_cam()
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-9)  # white stays white
    x = torch.linspace(-1, 1, 101, dtype=torch.float64)
    for name in baselines.CURVES:
        step = baselines.curve_step(name)
        torch.testing.assert_close(step.inverse(step.forward(x)), x, rtol=0, atol=1e-9)
        assert float(step.forward(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(1.0)
    assert isinstance(baselines.curve_step("bt709"), Gamma)
    with pytest.raises(ValueError):
        baselines.curve_step("linear")


def test_jpeg_helpers_round_trip_pixels() -> None:
    raw = make_raw(32, 48, seed=1)
    rgb = _render_exact(raw)
    plain = baselines.encode_libraw_jpeg(rgb, raw, 100, "4:4:4")
    with_params = baselines.encode_libraw_jpeg(rgb, raw, 100, "4:4:4", gain=1.0)
    assert len(with_params) > len(plain)  # the EXIF block
    for data in (plain, with_params):
        dec = baselines.decode_jpeg(data)
        assert dec.shape == rgb.shape and metrics.rgb_psnr(dec, rgb) > 40


def test_jxl_lossless_decodes_to_the_exact_mosaic() -> None:
    raw = make_raw(40, 56, bits=14, seed=2)
    n, layout, data = sizes.jxl_lossless(raw.mosaic, effort=3)
    assert n == len(data) and layout in ("mosaic", "cfa-planes")
    dec = imagecodecs.jpegxl_decode(data)
    if layout == "cfa-planes":
        dec = sizes.from_cfa_planes(dec)
    np.testing.assert_array_equal(dec, raw.mosaic)
    odd = raw.mosaic[:39, :55]
    n_odd, layout_odd, data_odd = sizes.jxl_lossless(odd, effort=3)
    assert layout_odd == "mosaic"
    np.testing.assert_array_equal(imagecodecs.jpegxl_decode(data_odd), odd)


def test_cfa_planes_and_lj92_tiles_are_lossless() -> None:
    m = make_raw(20, 30, seed=4).mosaic
    planes = sizes.cfa_planes(m)
    np.testing.assert_array_equal(planes[:10, :15], m[0::2, 0::2])
    np.testing.assert_array_equal(sizes.from_cfa_planes(planes), m)
    with pytest.raises(ValueError):
        sizes.cfa_planes(m[:19])
    tiles = sizes.lj92_tiles(m, tile=16)
    assert len(tiles) == 2 * 2
    back = np.vstack([np.hstack([imagecodecs.jpeg8_decode(tiles[2 * r + c]).reshape(-1, 16 if c == 0 else 14)
                                 for c in range(2)]) for r in range(2)])
    np.testing.assert_array_equal(back, m)


def test_measure_sizes_arithmetic() -> None:
    raw = make_raw(64, 96, bits=12, seed=6)
    s = sizes.measure_sizes(raw, file_bytes=12345)
    assert s.pixels == 64 * 96 and s.bits == 12 and s.file == 12345
    assert s.b_bmp == 54 + 64 * 96 * 12 / 8
    assert s.dng is not None and s.dng > 64 * 96 * 2
    assert s.dng_lossless is not None and s.dng_lossless < s.dng
    assert s.jxl is not None and 0 < s.jxl < s.dng
    assert metrics.bpp(s.jxl, s.pixels) == pytest.approx(8 * s.jxl / (64 * 96))
    none = sizes.measure_sizes(raw, None, dng=False, jxl=False)
    assert none.dng is none.dng_lossless is none.jxl is None


def test_crop_window_is_centred_and_even() -> None:
    assert crop_window(100, 200, 50) == (24, 74, 50, 50)
    top, left, h, w = crop_window(101, 37, 64)
    assert top % 2 == 0 and left % 2 == 0 and (h, w) == (64, 37)


def test_stage_measures_time_and_memory() -> None:
    with Stage() as st:
        a = np.ones(4_000_000)
        assert a.sum() > 0
    assert st.seconds > 0 and st.peak_mb > 10


def test_means_skip_nan() -> None:
    from invisp_cli.bench.run import Record

    rs = [Record("a", "m", "baseline", 90, "4:4:4", 100, 1.0, raw_psnr_gamma=40.0, rgb_psnr=math.nan),
          Record("b", "m", "baseline", 90, "4:4:4", 300, 3.0, raw_psnr_gamma=30.0, rgb_psnr=20.0)]
    (m,) = mean_records(rs)
    assert m.n_files == 2 and m.bytes == 200 and m.bpp == 2.0 and m.raw_psnr_gamma == 35.0 and m.rgb_psnr == 20.0


@pytest.fixture
def identity_registry(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    model = build("squeeze", blocks=1, width=8)
    name, sha = zoo.save_checkpoint(model, folder, "bench-identity")
    entry = zoo.ModelEntry(id="bench-identity", file=name, sha256=sha, arch="squeeze",
                           hparams={"blocks": 1, "width": 8}, cameras=["*"], folder=folder)
    zoo.write_registry(folder, [entry])
    monkeypatch.setenv("INVISP_WEIGHTS", str(folder))
    return entry


def test_bench_cli_end_to_end(tmp_path, identity_registry) -> None:
    src = tmp_path / "synthetic.dng"
    write_synthetic_dng(src, h=64, w=96, cfa="GRBG", bits=12, flip=6, seed=7)
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["bench", str(src), "--model", "bench-identity", "--quality", "80,95",
                                    "--baselines", "analytic,upi,dng,jxl", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "RAW recovered from the JPEG" in res.output and "analytic" in res.output
    for name in ("report.json", "report.csv", "rd_curve.png", "errors_synthetic.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    recs = report["records"]
    assert {(r["method"], r["quality"]) for r in recs} == {(m, q) for m in ("bench-identity", "analytic", "upi")
                                                         for q in (80, 95)}
    size = report["files"][0]["sizes"]
    for r in recs:
        assert r["bpp"] == pytest.approx(8 * r["bytes"] / (64 * 96))
        assert r["ratio_file"] == pytest.approx(src.stat().st_size / r["bytes"])
        assert r["ratio_jxl"] == pytest.approx(size["jxl"] / r["bytes"])
        assert r["raw_psnr_gamma"] > 25 and r["rgb_psnr"] > 25 and 0 < r["ssim"] <= 1
    ident = {r["quality"]: r for r in recs if r["method"] == "bench-identity"}
    assert ident[95]["raw_psnr_gamma"] > ident[80]["raw_psnr_gamma"] > 30
    assert len(report["means"]) == 6 and all(m["n_files"] == 1 for m in report["means"])
    rows = list(csv.DictReader((out / "report.csv").open()))
    assert len(rows) == 12 and sum(r["file"] == "MEAN" for r in rows) == 6

    crop = CliRunner().invoke(main, ["bench", str(src), "--model", "bench-identity", "--crop", "32",
                                     "--baselines", "analytic", "--out", str(tmp_path / "c"), "--no-plots"])
    assert crop.exit_code == 0, crop.output
    rep = json.loads((tmp_path / "c" / "report.json").read_text())
    assert {r["method"] for r in rep["records"]} == {"bench-identity", "analytic"}
    assert all(r["ratio_file"] is None and r["ratio_dng"] is None for r in rep["records"])
    assert rep["files"][0]["shape"] == [32, 32] and not list((tmp_path / "c").glob("*.png"))


def test_bench_cli_errors(tmp_path, identity_registry) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(main, ["bench", str(empty), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "no RAW files" in res.output
    src = tmp_path / "x.dng"
    write_synthetic_dng(src, h=32, w=32)
    res = CliRunner().invoke(main, ["bench", str(src), "--model", "nope", "--out", str(tmp_path / "o")])
    assert res.exit_code == 5 and "unknown model" in res.output
    res = CliRunner().invoke(main, ["bench", str(src), "--baselines", "analytic,zip", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "zip" in res.output
    res = CliRunner().invoke(main, ["bench", str(src), "--quality", "0,90"])
    assert res.exit_code == 2 and "1..100" in res.output


def test_bench_delta_e_cam_scores_every_method_against_the_preview(tmp_path, identity_registry,
                                                                   monkeypatch) -> None:
    """ΔE cam (METRICS.md "Look") for each method of a file with a preview (rawio.write_dng embeds one: a render of
    LibRaw's look, taken here as the camera's — look.read_preview ignores it in a DNG invisp wrote), the camera look
    as MODEL+look with --looks, n/a without a usable preview (too small)."""
    from invisp_cli.rawio import dng

    monkeypatch.setattr(dng, "is_invisp_dng", lambda path: False)
    big, small = tmp_path / "big.dng", tmp_path / "small.dng"
    write_synthetic_dng(big, h=192, w=256, cfa="RGGB", bits=12, seed=3)
    write_synthetic_dng(small, h=64, w=96, cfa="GRBG", bits=12, seed=7)
    out = tmp_path / "report"
    res = CliRunner().invoke(main, ["bench", str(big), str(small), "--model", "bench-identity", "--looks",
                                    "--baselines", "analytic", "--no-plots", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "ΔE cam" in res.output
    recs = {(r["file"], r["method"]): r["delta_e_cam"] for r in json.loads((out / "report.json").read_text())
            ["records"]}
    assert set(recs) == {(f, m) for f in ("big.dng", "small.dng")
                         for m in ("bench-identity", "bench-identity+look", "analytic")}
    assert all(recs["small.dng", m] is None or math.isnan(recs["small.dng", m])
               for m in ("bench-identity", "analytic"))
    assert 0 < recs["big.dng", "bench-identity"] < 3 and 0 < recs["big.dng", "analytic"] < 3
    assert 0 < recs["big.dng", "bench-identity+look"] < 3  # a look fitted to that same preview


def test_bench_tiers_size_table_and_plot(tmp_path) -> None:
    """``invisp bench --tiers``: per file and tier bpp, max error in σ (within the tier's bound; 0 for exact) and
    RAW-PSNR, against JPEG XL lossless / lossy d0.2 and the LJ92 DNG; tiers.json and tiers.png written."""
    src = tmp_path / "syn.dng"
    write_synthetic_dng(src, h=64, w=96, cfa="GRBG", bits=12, flip=6, seed=7)
    out = tmp_path / "t"
    res = CliRunner().invoke(main, ["bench", str(src), "--tiers", "0.5s,2s,exact", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "Storage tiers" in res.output and "JXL lossy d0.2" in res.output and "LJ92 DNG" in res.output
    assert (out / "tiers.png").stat().st_size > 0
    doc = json.loads((out / "tiers.json").read_text())
    assert doc["tiers"] == ["0.5s", "2s", "exact"] and len(doc["rows"]) == 1
    row = doc["rows"][0]
    t = row["tiers"]
    assert 0 < t["0.5s"]["max_sigma"] <= 0.5 and 0.5 < t["2s"]["max_sigma"] <= 2
    assert t["exact"]["max_sigma"] == 0 and t["exact"]["psnr"] == "inf" and t["exact"]["quality"] == 90
    assert all(t[k]["bpp"] > t[k]["layer_bpp"] > 0 for k in t)
    assert t["0.5s"]["psnr"] > t["2s"]["psnr"] > row["jxl_lossy"]["psnr"] - 20
    assert row["jxl_lossy"]["bpp"] > 0 and row["jxl_lossless_bpp"] > 0 and row["lj92_dng_bpp"] > 0
    assert len(row["noise"]["a"]) == 4 and row["noise"]["unit"] == "normalised"
    bad = CliRunner().invoke(main, ["bench", str(src), "--tiers", "0.5s,0s", "--out", str(out)])
    assert bad.exit_code == 2 and "0s" in bad.output
    mixed = CliRunner().invoke(main, ["bench", str(src), "--tiers", "1s", "--crop", "32", "--out", str(out)])
    assert mixed.exit_code == 2 and "--crop" in mixed.output


def test_bench_tiers_needs_jpeg_xl_before_any_work(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(imagecodecs.JPEGXL, "available", False)
    res = CliRunner().invoke(main, ["bench", str(tmp_path / "missing.dng"), "--tiers", "1s", "--out",
                                    str(tmp_path / "o")])
    assert res.exit_code != 0 and "JPEG XL" in res.output and "pip install" in res.output
    assert not (tmp_path / "o").exists()
