"""Round-trip property tests for every invertible step and for whole chains."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from invisp_cli.flows import build
from invisp_cli.settings import FrontEnd
from invisp_cli.steps import (
    CFA_LAYOUTS,
    DEMOSAICS,
    BilinearDemosaic,
    Chain,
    ColorMatrix,
    Gamma,
    HighlightRolloff,
    Levels,
    WhiteBalance,
    analytic_steps,
    cfa_index,
    front_end,
)

sizes = st.integers(min_value=3, max_value=23)
layouts = st.sampled_from(CFA_LAYOUTS)


def mosaic(h, w, seed, lo=0.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(2, 1, h, w, generator=g)


@settings(max_examples=25, deadline=None)
@given(h=sizes, w=sizes, seed=st.integers(0, 1000), white=st.integers(255, 65535))
def test_levels_round_trip(h, w, seed, white):
    black = np.random.default_rng(seed).uniform(0, white / 8, (2, 2))
    step = Levels(black, white)
    x = mosaic(h, w, seed, 0, white).double()
    y = step.forward(x)
    torch.testing.assert_close(step.inverse(y), x, rtol=0, atol=1e-6 * white)
    # black maps to 0 and white to 1 at every position
    b = torch.as_tensor(black).repeat(h, w)[:h, :w]
    torch.testing.assert_close(step.forward(b.view(1, 1, h, w)), torch.zeros(1, 1, h, w, dtype=b.dtype),
                               atol=1e-6, rtol=0)


@settings(max_examples=25, deadline=None)
@given(h=sizes, w=sizes, cfa=layouts, seed=st.integers(0, 1000))
def test_white_balance_round_trip(h, w, cfa, seed):
    gains = np.random.default_rng(seed).uniform(0.5, 3.0, 3)
    step = WhiteBalance(cfa, gains)
    x = mosaic(h, w, seed)
    y = step.forward(x)
    torch.testing.assert_close(step.inverse(y), x, rtol=1e-6, atol=1e-6)
    idx = cfa_index(cfa)
    assert torch.allclose(y[0, 0, 0, 0], x[0, 0, 0, 0] * float(gains[idx[0, 0]]))


@settings(max_examples=40, deadline=None)
@given(h=sizes, w=sizes, cfa=layouts, seed=st.integers(0, 1000), kind=st.sampled_from(["bilinear", "mhc"]))
def test_demosaic_keeps_sites_and_remosaics_exactly(h, w, cfa, seed, kind):
    step = DEMOSAICS[kind](cfa)
    x = mosaic(h, w, seed)
    rgb = step.forward(x)
    assert rgb.shape == (2, 3, h, w)
    assert torch.equal(step.inverse(rgb), x)
    # every site keeps its own recorded value in its own colour channel
    idx = torch.as_tensor(cfa_index(cfa)).repeat(h, w)[:h, :w]
    assert torch.equal(rgb.gather(1, idx.expand(2, 1, h, w)), x)


@pytest.mark.parametrize("kind", ["bilinear", "mhc"])
@pytest.mark.parametrize("cfa", CFA_LAYOUTS)
def test_demosaic_reproduces_constant_and_ramps(kind, cfa):
    step = DEMOSAICS[kind](cfa)
    assert torch.allclose(step.forward(torch.full((1, 1, 8, 8), 0.3)), torch.full((1, 3, 8, 8), 0.3), atol=1e-6)
    for ramp in (torch.arange(12.0).repeat(12, 1), torch.arange(12.0).repeat(12, 1).T + 0.5 * torch.arange(12.0)):
        rgb = step.forward(ramp.reshape(1, 1, 12, 12))
        # in the interior, linear signals are reproduced exactly (MHC's Laplacian correction vanishes on them)
        assert torch.allclose(rgb[..., 2:-2, 2:-2], ramp.expand(1, 3, 12, 12)[..., 2:-2, 2:-2], atol=1e-5)


def test_mhc_is_closer_than_bilinear_on_a_smooth_colour_image():
    """Natural images share their detail across channels (a luminance pattern times a slowly varying tint);
    there the gradient correction beats bilinear interpolation of the missing colours."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    luma = 0.5 + 0.3 * torch.sin(9 * xx) * torch.cos(7 * yy) + 0.1 * torch.sigmoid(20 * (xx - yy))
    tint = torch.stack([0.9 + 0.1 * xx, 0.8 + 0 * xx, 0.6 + 0.2 * yy])
    truth = (luma * tint).unsqueeze(0)
    mosaic = BilinearDemosaic("RGGB").inverse(truth)
    err = {k: float((DEMOSAICS[k]("RGGB").forward(mosaic) - truth)[..., 2:-2, 2:-2].pow(2).mean()) for k in DEMOSAICS}
    assert err["mhc"] < 0.7 * err["bilinear"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 1000))
def test_color_matrix_round_trip(seed):
    rng = np.random.default_rng(seed)
    m = np.eye(3) + rng.uniform(-0.4, 0.4, (3, 3))
    step = ColorMatrix(m)
    x = torch.rand(1, 3, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(step.inverse(step.forward(x)), x)
    with pytest.raises(ValueError):
        ColorMatrix(np.ones((3, 3)))


def test_gamma_properties():
    g = Gamma()
    x = torch.linspace(-2, 3, 10001, dtype=torch.float64)
    y = g.forward(x)
    torch.testing.assert_close(g.inverse(y), x, atol=1e-9, rtol=1e-9)
    assert torch.all(y[1:] > y[:-1])  # strictly increasing
    assert abs(float(g.forward(torch.tensor([1.0], dtype=torch.float64))) - 1) < 1e-12
    assert abs(g.t - 0.018) < 1e-3 and abs(g.a - 1.099) < 1e-3  # BT.709 constants
    assert torch.allclose(g.forward(-x), -y)


@pytest.mark.parametrize("arch,hp", [("squeeze", {"blocks": 2, "width": 16}), ("paper", {"blocks": 2, "growth": 8})])
def test_flow_round_trip_fp32(arch, hp):
    torch.manual_seed(0)
    model = build(arch, **hp)
    with torch.no_grad():
        for p in model.parameters():  # move away from the identity initialisation
            p.add_(0.05 * torch.randn_like(p))
    x = torch.rand(2, 3, 32, 48)
    with torch.no_grad():
        y = model(x)
        assert (y - x).abs().max() > 1e-2  # it does something
        assert (model.inverse(y) - x).abs().max() <= 1e-5


def test_squeeze_flow_starts_as_identity():
    model = build("squeeze", blocks=2, width=16)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert (model(x) - x).abs().max() < 1e-6


@settings(max_examples=15, deadline=None)
@given(h=sizes, w=sizes, cfa=layouts, seed=st.integers(0, 1000))
def test_whole_analytic_chain_round_trip(h, w, cfa, seed):
    rng = np.random.default_rng(seed)
    white = 16383
    black = rng.uniform(0, 1000, (2, 2))
    m = np.eye(3) + rng.uniform(-0.3, 0.3, (3, 3))
    chain = Chain(analytic_steps(cfa, black, white, rng.uniform(1, 2.5, 3), m))
    x = mosaic(h, w, seed, 0, white).double()
    torch.testing.assert_close(chain.inverse(chain.forward(x)), x, atol=1e-6, rtol=0)


def test_front_end_then_flow_round_trip():
    """The analytic chain followed by a learned flow (as ``pipeline`` composes them) inverts in reverse order."""
    torch.manual_seed(1)
    model = build("squeeze", blocks=2, width=16)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.03 * torch.randn_like(p))
    front = Chain(analytic_steps("GBRG", np.full((2, 2), 64.0), 1023, [2.0, 1.0, 1.5], np.eye(3)))
    x = mosaic(24, 40, 3, 64, 1023)
    with torch.no_grad():
        y = model.padded(front.forward(x))
        back = front.inverse(model.padded(y, inverse=True))
    assert (back - x).abs().max() < 1e-5 * 1023


@settings(max_examples=30, deadline=None)
@given(h=sizes, w=sizes, cfa=layouts, seed=st.integers(0, 1000), knee=st.floats(0.3, 0.95))
def test_highlight_rolloff_round_trip(h, w, cfa, seed, knee):
    ceiling = np.random.default_rng(seed).uniform(0.8, 3.5, 3)  # some channels ≤ 1: identity there
    step = HighlightRolloff(cfa, ceiling, knee)
    site_ceiling = torch.as_tensor(np.maximum(ceiling, 1.0)[cfa_index(cfa)]).repeat(h, w)[:h, :w]
    x = mosaic(h, w, seed, -0.1, 1.0).double() * site_ceiling  # from below black up to each site's ceiling
    y = step.forward(x)
    assert float(y.max()) <= 1.0 + 1e-12  # everything a site can record now fits the output range
    torch.testing.assert_close(step.inverse(y), x, atol=1e-6, rtol=0)
    below = x <= knee
    assert torch.equal(y[below], x[below])  # identity up to the knee


def test_highlight_rolloff_shape():
    step = HighlightRolloff("RGGB", [2.0, 1.0, 0.9], 0.8)
    t = torch.linspace(0, 2.5, 2501, dtype=torch.float64)
    red = torch.zeros(1, 1, 2, 2501, dtype=torch.float64)
    red[0, 0, 0, :] = t  # row 0 alternates R, G sites
    y = step.forward(red)[0, 0, 0]
    r, g = y[0::2], y[1::2]
    tr, tg = t[0::2], t[1::2]
    assert torch.all(torch.diff(r[tr <= 2.0]) > 0)  # strictly increasing up to the ceiling …
    assert torch.allclose(r[tr >= 2.0], torch.ones(1, dtype=r.dtype), atol=1e-6)  # … reaching 1 there, and above

    def slope(t: float) -> float:  # at a single R site
        a, b = (float(step.forward(torch.tensor([[[[v]]]], dtype=torch.float64))) for v in (t - 1e-7, t))
        return (b - a) / 1e-7

    assert abs(slope(0.8 + 1e-6) - 1.0) < 1e-4  # C¹ at the knee
    assert abs(slope(2.0) - 1 / 36) < 1e-4  # slope 1/p² at the ceiling (p = 6): never flat
    # a channel whose ceiling is 1 (G) is the identity up to 1 and clips above
    assert torch.allclose(g[tg <= 1.0], tg[tg <= 1.0]) and torch.allclose(g[tg > 1.0], torch.ones(1, dtype=g.dtype))


def test_front_end_follows_render_settings():
    args = ("RGGB", np.full((2, 2), 64.0), 1023, [2.0, 1.0, 1.5], np.eye(3))
    raw = type("R", (), dict(zip(("cfa", "black", "white", "wb", "rgb_cam"), args, strict=True)))()
    plain = front_end(raw, FrontEnd.from_json({"exposure_gain": 1.2}))
    assert not any(isinstance(s, HighlightRolloff) for s in plain)  # files of models trained without one
    knee = front_end(raw, FrontEnd(1.2, "bilinear", 0.8))
    roll = [s for s in knee if isinstance(s, HighlightRolloff)]
    assert len(roll) == 1 and roll[0].knee == 0.8 and np.allclose(roll[0].ceiling, [2.4, 1.2, 1.8])
    assert type(knee[knee.index(roll[0]) + 1]) is BilinearDemosaic


@pytest.mark.parametrize("h, w", [(36, 50), (35, 50), (36, 49), (5, 7), (3, 3)])
def test_mhc_phase_plane_form_equals_the_5x5_filters(h, w):
    """MHC runs as one 3×3 correlation on the CFA phase planes (odd sizes with one more row or column); on
    tensors and on numpy arrays it must equal the direct 5×5 filters at every site (up to float rounding), for
    every layout."""
    import torch.nn.functional as F

    from invisp_cli.steps import _MHC, MHCDemosaic, _mhc_choice

    x = torch.rand(2, 1, h, w)
    for cfa in ("RGGB", "BGGR", "GRBG", "GBRG"):
        cand = torch.cat([x, F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), torch.as_tensor(_MHC))], dim=1)
        choice = torch.as_tensor(_mhc_choice(cfa)).repeat(1, 1, (h + 1) // 2, (w + 1) // 2)[..., :h, :w]
        direct = torch.gather(cand, 1, choice.expand(2, 3, h, w))
        assert torch.allclose(MHCDemosaic(cfa).forward(x), direct, atol=1e-6), cfa
        np.testing.assert_allclose(MHCDemosaic(cfa).forward(x.numpy()), direct.numpy(), atol=1e-6, err_msg=cfa)


@pytest.mark.parametrize("knee", [None, 0.8])
@pytest.mark.parametrize("demosaic", ["mhc", "bilinear"])
def test_numpy_and_torch_chains_agree(knee, demosaic):
    """The analytic chain computes the same on numpy arrays (encode/decode of the front end: no torch) as on
    tensors (training, learned models), forwards and backwards, odd sizes included."""
    rng = np.random.default_rng(3)
    for h, w in ((40, 56), (23, 31)):
        steps = analytic_steps("GRBG", rng.uniform(60, 70, (2, 2)), 4095, [2.1, 1.0, 1.6],
                               np.array([[1.7, -0.5, -0.2], [-0.2, 1.5, -0.3], [0.0, -0.6, 1.6]]), 1.3, demosaic, knee)
        chain = Chain(steps)
        x = rng.uniform(0, 4095, (1, 1, h, w)).astype(np.float32)
        y_np, y_t = chain.forward(x), chain.forward(torch.from_numpy(x))
        assert isinstance(y_np, np.ndarray) and y_np.dtype == np.float32
        np.testing.assert_allclose(y_np, y_t.numpy(), atol=2e-6)
        np.testing.assert_allclose(chain.inverse(y_np), chain.inverse(y_t).numpy(), rtol=2e-5, atol=2e-3)
        np.testing.assert_allclose(chain.inverse(y_np), x, atol=0.05)
    gamma = Gamma()
    v = np.linspace(-0.1, 1.1, 4001, dtype=np.float32)
    assert np.array_equal(gamma.forward_u8(v), gamma.forward_u8(torch.from_numpy(v)).numpy())
    assert np.array_equal(gamma.forward_u8(v), (gamma.forward_unit(v) * 255 + 0.5).astype(np.uint8))
