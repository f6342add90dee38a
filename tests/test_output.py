"""Output that survives a pipe (stdout/stderr not a terminal: tables in full, one-line results unbroken) and
optional dependencies checked before any work starts, naming the extra to install."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner
from synthraw import write_synthetic_dng

from invisp_cli import bench
from invisp_cli.bench.records import BenchConfig, BenchResult, FileInfo, Record
from invisp_cli.bench.sizes import Sizes
from invisp_cli.cli import main

LONG = "canon-eos-30d_held-out-camera-with-a-long-name_IMG_0042.CR2"


def _result() -> BenchResult:
    sizes = Sizes(pixels=6144, bits=12, file=None, b_bmp=9270.0, dng=20000, dng_lossless=9000, jxl=None,
                  jxl_layout=None)
    info = FileInfo(LONG, LONG, (64, 96), 12, "RGGB", 0, (0, 0, 64, 96), sizes, 0.1, 0.1)
    rec = Record(LONG, "invisp-frontend-v1-with-a-long-model-name", "invisp", 90, "4:2:0", 4000, 5.2083,
                 raw_psnr_gamma=45.123, raw_psnr_lin=50.5, rgb_psnr=40.25, ssim=0.98765, encode_s=0.5, decode_s=0.25)
    return BenchResult(config=BenchConfig(), files=[info], records=[rec], means=[], error_maps={}, skipped=[],
                       warnings=[], baselines=[], models=[rec.method], rss_method="statm")


def test_bench_tables_print_in_full_when_piped(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(bench, "run_bench", lambda cfg: _result())
    monkeypatch.setattr(bench, "write_outputs", lambda result, out, plots: [])
    res = CliRunner().invoke(main, ["bench", str(tmp_path), "--out", str(tmp_path / "r"), "--no-plots"])
    assert res.exit_code == 0, res.output
    assert res.stdout.count(LONG) == 3 and "invisp-frontend-v1-with-a-long-model-name" in res.stdout
    assert "…" not in res.stdout and "n/a (crop)" in res.stdout and "45.12" in res.stdout
    title = ("RAW recovered from the JPEG (dB; hl/sh: RAW-PSNR-lin on highlight/shadow sites; SSIM over RGB; "
             "ΔE cam: ΔE2000 vs the camera's preview)")
    assert title in res.stdout  # on one line


def test_one_line_result_does_not_wrap_when_piped(tmp_path, monkeypatch) -> None:
    folder = tmp_path / ("a-folder-whose-name-is-long-enough-to-pass-eighty-columns-on-its-own" * 2)
    folder.mkdir()
    write_synthetic_dng(folder / "a.dng", h=32, w=48)
    res = CliRunner().invoke(main, ["encode", str(folder / "a.dng"), "-o", str(folder / "a.jpg")])
    assert res.exit_code == 0, res.output
    (line,) = res.stderr.splitlines()
    assert line.startswith(str(folder / "a.dng")) and line.endswith(" s]") and " MB" in line


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the missing extra was reported")


@pytest.mark.parametrize(("args", "module", "extra", "work"), [
    (["bench", "."], "matplotlib", "bench", (bench, "run_bench")),
    (["train", "--camera", "x", "--data", ".", "--out", "r", "--synthetic", "2"], "skimage.data", "train",
     ("invisp_cli.train", "train")),
    (["train", "--camera", "x", "--data", ".", "--out", "r", "--video"], "av", "video", ("invisp_cli.train", "train")),
    (["encode", ".", "-d", "out", "--scheduler", "tcp://127.0.0.1:1"], "distributed", "dask",
     ("invisp_cli.batch", "build_tasks")),
    (["decode", ".", "-d", "out", "--scheduler", "tcp://127.0.0.1:1"], "distributed", "dask",
     ("invisp_cli.batch", "build_tasks")),
    (["encode", ".", "-d", "out", "--model", "invisp-canon-v3"], "torch", "learned",
     ("invisp_cli.batch", "build_tasks")),
])
def test_missing_extra_is_reported_before_any_work(tmp_path, monkeypatch, args, module, extra, work) -> None:
    target, name = work
    monkeypatch.setattr(target if not isinstance(target, str) else __import__(target, fromlist=["_"]), name,
                        _no_work)
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, args)
    assert res.exit_code in (1, 5), res.output
    assert f"pip install 'invisp[{extra}]'" in res.stderr and "Traceback" not in res.output
