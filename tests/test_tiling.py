"""Tiled evaluation equals untiled evaluation."""

import numpy as np
import torch

from invisp_cli.flows import build
from invisp_cli.steps import Chain, Flow, analytic_steps
from invisp_cli.tiling import run_tiled


def perturbed(arch, **hp):
    torch.manual_seed(0)
    model = build(arch, **hp)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_tiled_chain_equals_untiled_both_directions():
    model = perturbed("squeeze", blocks=2, width=16)
    chain = Chain([*analytic_steps("GRBG", np.array([[60, 64], [62, 61]]), 4095, [1.9, 1.0, 1.4],
                                   np.eye(3) + 0.1), Flow(model)])
    h, w = 150, 203  # larger than one tile, odd width, not a multiple of the squeeze factor
    x = torch.rand(1, 1, h, w) * 4000
    with torch.no_grad():
        full = chain.forward(x)
        tiled = run_tiled(chain.forward, x, np.empty((1, 3, h, w), np.float32), tile=64,
                          halo=chain.receptive_field, align=chain.align)
        assert np.abs(tiled - full.numpy()).max() <= 1e-5
        back_full = chain.inverse(full)
        back_tiled = run_tiled(chain.inverse, full, np.empty((1, 1, h, w), np.float32), tile=64,
                               halo=chain.receptive_field, align=chain.align)
        assert np.abs(back_tiled - back_full.numpy()).max() <= 1e-5 * 4095


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
