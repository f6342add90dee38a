"""Weak spots of the front end against LibRaw's own render on unseen cameras, on synthetic DNGs."""

from __future__ import annotations

import numpy as np
import pytest
from synthraw import write_synthetic_dng

from invisp_cli import codec, metrics, pipeline, rawio
from invisp_cli.flows import build
from invisp_cli.steps import libraw_wb_gain


def _render(path):
    raw = rawio.read_raw(path)
    settings = codec.render_settings(raw, 90, "4:4:4", {"demosaic": "mhc", "highlight_knee": 0.8})
    return raw, pipeline.render([raw], build("frontend"), [settings]), rawio.render_reference(path)


@pytest.mark.parametrize("wb", [(1.6, 1.0, 0.7), (0.8, 1.0, 1.3), (2.0, 1.0, 1.6)])
def test_as_bright_as_libraw_whatever_the_smallest_wb_multiplier(tmp_path, wb):
    """LibRaw divides its WB multipliers by the smallest; with R or B below G (auto WB of a greenish scene, some
    cameras' as-shot WB) a front end keeping G = 1 rendered 1/min(wb) too dark (a CRW with no as-shot WB: 1.13×)."""
    path = tmp_path / "x.dng"
    write_synthetic_dng(path, h=128, w=192, wb=list(wb), seed=3)
    raw, ours, ref = _render(path)
    assert libraw_wb_gain(raw.wb) == pytest.approx(1 / min(1.0, min(wb)), rel=1e-3)
    ratio = ours.astype(np.float64).mean() / ref.astype(np.float64).mean()
    assert 0.97 < ratio < 1.03, ratio
    assert metrics.rgb_psnr(ours, ref) > 30
