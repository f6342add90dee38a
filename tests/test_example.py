"""The bundled example through the shipped default model, as ``make demo`` runs it: the recovered DNG must be
close to the original (a broken writer or reader anywhere in the chain shows here first)."""

from __future__ import annotations

from pathlib import Path

from conftest import run

from invisp_cli import rawio
from invisp_cli.metrics import normalise_mosaic, raw_psnr_gamma

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut_synthetic_canon.dng"


def test_bundled_example_round_trips_with_the_default_model(tmp_path):
    jpg, dng = tmp_path / "example.jpg", tmp_path / "example.dng"
    assert run("encode", EXAMPLE, "-o", jpg).exit_code == 0
    assert run("decode", jpg, "-o", dng).exit_code == 0
    a, b = rawio.read_raw(EXAMPLE), rawio.read_raw(dng)
    assert (a.mosaic.shape, a.cfa, a.white) == (b.mosaic.shape, b.cfa, b.white)
    psnr = raw_psnr_gamma(normalise_mosaic(b.mosaic, b.black, b.white), normalise_mosaic(a.mosaic, a.black, a.white))
    assert psnr > 36.0, psnr  # 38.6 dB measured with invisp-frontend-v1 at q90
