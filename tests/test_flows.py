"""One contract for every registered architecture, image and video (``flows.InvertibleFlow``): round trip with
and without conditioning, exact tiling with the stated receptive field and alignment, the stated attributes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from invisp_cli.flows import ARCHITECTURES, InvertibleFlow, build, is_video, register
from invisp_cli.tiling import run_tiled

SMALL = {"squeeze": {"blocks": 1, "width": 8}, "video-squeeze": {"blocks": 1, "width": 8, "cond_width": 4},
         "paper": {"blocks": 2, "growth": 4}, "frontend": {}}


def perturbed(arch: str) -> InvertibleFlow:
    """A small instance of ``arch`` moved away from its identity initialisation, as after training."""
    torch.manual_seed(0)
    model = build(arch, **SMALL.get(arch, {})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def test_every_registered_architecture_is_covered():
    assert set(ARCHITECTURES) == set(SMALL)


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_contract_attributes(arch):
    model = perturbed(arch)
    assert isinstance(model, InvertibleFlow)
    assert model.align >= 1 and model.receptive_field >= 0 and model.window % 2 == 1
    assert is_video(arch) == (model.window > 1)
    assert model.identity == (sum(p.numel() for p in model.parameters()) == 0)


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_round_trip(arch):
    model = perturbed(arch)
    x = torch.rand(2, 3, 24, 40) * 1.2 - 0.1
    conds = [None] if model.window == 1 else [None, torch.rand(2, 3 * (model.window - 1), 24, 40)]
    for c in conds:
        with torch.no_grad():
            y = model.padded(x, c)
            back = model.padded(y, c, inverse=True)
        assert y.shape == x.shape
        assert model.identity or (y - x).abs().max() > 1e-3  # the check is not vacuous
        if 24 % model.align == 0 and 40 % model.align == 0:
            assert torch.allclose(back, x, atol=2e-4), (arch, float((back - x).abs().max()))


@pytest.mark.parametrize("arch", sorted(SMALL))
@pytest.mark.parametrize("inverse", [False, True])
def test_tiled_equals_untiled_with_the_stated_receptive_field(arch, inverse):
    model = perturbed(arch)
    k = model.window // 2
    x = torch.rand(1, 3 * model.window, 72, 88)

    def fn(t: torch.Tensor) -> torch.Tensor:
        centre = t[:, 3 * k : 3 * k + 3]
        cond = torch.cat([t[:, : 3 * k], t[:, 3 * k + 3 :]], 1) if k else None
        return model.padded(centre, cond, inverse=inverse)

    with torch.no_grad():
        whole = fn(x).numpy()
        tiled = run_tiled(fn, x, np.empty_like(whole), tile=32, halo=model.receptive_field,
                          align=int(np.lcm(2, model.align)))
    assert np.abs(tiled - whole).max() < 1e-5


def test_registry_refuses_a_class_outside_the_contract():
    with pytest.raises(TypeError, match="InvertibleFlow"):
        register("plain")(torch.nn.Identity)

    @register("test-forgetful")
    class Forgetful(InvertibleFlow):  # states no align / receptive_field
        pass

    try:
        with pytest.raises(TypeError, match="align"):
            build("test-forgetful")
    finally:
        del ARCHITECTURES["test-forgetful"]
