"""Tiled evaluation equals untiled evaluation."""

import numpy as np
import torch

from invisp_cli.flows import build
from invisp_cli.tiling import run_tiled


def perturbed(arch, **hp):
    torch.manual_seed(0)
    model = build(arch, **hp)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_tiled_pipeline_with_a_flow_equals_untiled_both_directions():
    """The front end followed by a learned flow, rendered and recovered in 64² tiles, equals one whole tile: odd
    width, not a multiple of the squeeze factor, rotated."""
    from synthraw import make_raw

    from invisp_cli import codec, pipeline
    from invisp_cli.params import ReconstructionParams

    model = perturbed("squeeze", blocks=2, width=16)
    raw = make_raw(150, 203, cfa="GRBG", bits=12, flip=5, seed=4)
    settings = codec.render_settings(raw, isp={"highlight_knee": 0.8})
    full, tiled = (pipeline.render([raw], model, [settings], tile=t, pixels=np.float32) for t in (4096, 64))
    assert np.abs(tiled - full).max() <= 1e-5
    params = ReconstructionParams.from_raw(raw, "t", "0" * 64, settings)
    back_full, back_tiled = (pipeline.recover([full], params, model, tile=t).mosaic.astype(int) for t in (4096, 64))
    assert np.abs(back_tiled - back_full).max() <= 1
    assert np.abs(back_full - raw.mosaic.astype(int)).max() > 0  # clipped highlights: not the identity


def test_paper_flow_tiled_equals_untiled():
    model = perturbed("paper", blocks=1, growth=4)
    x = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        full = model(x).numpy()
        tiled = run_tiled(model, x, np.empty_like(full), tile=32, halo=model.receptive_field, align=1)
    assert np.abs(tiled - full).max() <= 1e-5


def test_too_small_halo_is_detectably_different():
    """Guards the test above: with no halo the seams differ, so equality is not vacuous."""
    model = perturbed("squeeze", blocks=2, width=16)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        full = model(x).numpy()
        tiled = run_tiled(model, x, np.empty_like(full), tile=32, halo=0, align=4)
    assert np.abs(tiled - full).max() > 1e-4
