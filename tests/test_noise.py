"""The noise-bounded residual tier (``--max-error Ks``): the noise model (estimator on synthetic mosaics with known
noise, the DNG NoiseProfile), the sigma quantiser's bound at every value, the CLI round trip, bad input."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from conftest import assert_fails, run
from synthraw import make_raw, write_synthetic_dng

from invisp_cli import metadata, noise, rawio, residual
from invisp_cli.containers import layer
from invisp_cli.errors import InputError, MetadataError


def unit_noise(rng: np.random.Generator, shape: tuple[int, int], kernel: tuple[int, ...] | None) -> np.ndarray:
    """Gaussian noise of variance 1 at every site: white, or white filtered by kernel ⊗ kernel (normalised to
    unit variance; periodic edges) — spatially correlated, as raw data after lossy wavelet compression."""
    z = rng.normal(0, 1, shape)
    if kernel is None:
        return z
    k = np.asarray(kernel, np.float64) / np.sqrt(np.sum(np.square(kernel)))
    for axis in (0, 1):
        z = sum(c * np.roll(z, len(k) // 2 - t, axis) for t, c in enumerate(k))
    return z


def noisy_raw(a: tuple, b: tuple, h: int = 512, w: int = 768, bits: int = 14, seed: int = 0,
              kernel: tuple[int, ...] | None = None):
    """A synthetic RawImage whose mosaic is a smooth scene over the whole range plus Gaussian noise of variance
    a_π·n + b_π (normalised) at every site (``unit_noise``: white, or correlated within each CFA plane), rounded
    to integers."""
    rng = np.random.default_rng(seed)
    raw = make_raw(h, w, bits=bits, seed=seed)
    black = raw.black.reshape(2, 2)
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    n = 0.005 + 0.9 * x * (0.9 + 0.1 * np.cos(3 * y))  # a ramp over the whole range, gently curved
    out = np.empty((h, w))
    for pos, (i, j) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        s = n[i::2, j::2]
        v = s + unit_noise(rng, s.shape, kernel) * np.sqrt(a[pos] * s + b[pos])
        out[i::2, j::2] = black[i, j] + v * (raw.white - black[i, j])
    raw.mosaic = np.clip(np.round(out), 0, raw.white).astype(np.uint16)
    return raw


@pytest.mark.parametrize("a,b", [((2e-4, 1e-4, 1.2e-4, 3e-4), (1e-6, 5e-7, 5e-7, 2e-6)),
                                 ((5e-5,) * 4, (4e-6,) * 4)])
def test_estimator_recovers_known_noise(a, b):
    raw = noisy_raw(a, b)
    est = noise.estimate(raw)
    assert est.source == "estimated"
    for pos in range(4):
        for n in (0.05, 0.2, 0.5, 0.8):
            true = np.sqrt(a[pos] * n + b[pos] + 1 / (12 * (raw.white - raw.black.ravel()[pos]) ** 2))
            assert abs(float(est.sigma(n, pos)) / true - 1) < 0.1, (pos, n)


@pytest.mark.parametrize("kernel,patch_lo,model_lo", [(None, 0.95, 0.95), ((1, 4, 1), 0.9, 0.85)])
def test_independent_estimate_on_white_and_correlated_noise(kernel, patch_lo, model_lo):
    """The bench's independent estimate (8×8 plane-fit patches) finds the per-site σ of white noise and of noise
    correlated within each CFA plane ([1, 4, 1] ⊗ [1, 4, 1]: ρ(1) = 0.44); Immerkær's Laplacian, right on white
    noise, sees less than half of the correlated one; the model itself stays within 15 % on both."""
    from invisp_cli.bench.tiers import laplacian_sigma, patch_sigma

    a, b = (2e-4, 1e-4, 1.2e-4, 3e-4), (1e-6, 5e-7, 5e-7, 2e-6)
    raw = noisy_raw(a, b, kernel=kernel)
    true = noise.NoiseModel(a, b, "truth")
    est, at_patches, n = patch_sigma(raw, true)
    assert n >= 50 and patch_lo < est / at_patches < 1.05, (est, at_patches)
    lap, at_sites, _, _ = laplacian_sigma(raw, true)
    assert (0.95 < lap / at_sites < 1.05) if kernel is None else (lap / at_sites < 0.5), (lap, at_sites)
    got = noise.mid_grey_sigma(noise.estimate(raw)) / noise.mid_grey_sigma(true)
    assert model_lo < got < 1.05, got


def test_estimator_reads_wider_spacings_on_correlated_noise():
    """Noise correlated over three sites ((1, 2, 3, 4, 3, 2, 1) ⊗ itself: ρ(1) = 0.91, ρ(4) = 0.23, as raw data
    after lossy wavelet compression) hides from the contrasts of neighbours (σ·(1 − ρ(d)) at spacing d: 0.09σ,
    0.30σ at spacings 1, 2); the estimate reads spacings 3 and 4 too and finds most of it (0.77σ at spacing 4),
    where spacings 1 and 2 alone would give under 0.35σ. White noise (test above) keeps spacings 1 and 2."""
    a, b = (2e-4, 1e-4, 1.2e-4, 3e-4), (1e-6, 5e-7, 5e-7, 2e-6)
    raw = noisy_raw(a, b, kernel=(1, 2, 3, 4, 3, 2, 1))
    true = noise.mid_grey_sigma(noise.NoiseModel(a, b, "truth"))
    narrow = noise.sigma_by_spacing(raw, (1, 2))
    assert max(narrow) / true < 0.35 and narrow[1] > noise.CORRELATED * narrow[0], narrow
    assert 0.65 < noise.mid_grey_sigma(noise.estimate(raw)) / true < 1.05


def test_noise_profile_and_its_check():
    raw = noisy_raw((1e-4,) * 4, (1e-6,) * 4, h=192, w=256)
    raw.cfa = "GRBG"

    def with_profile(pairs):
        entry = metadata.Entry(12, len(pairs), struct.pack(f"<{len(pairs)}d", *pairs))
        raw.exif = {**raw.exif, "dng": metadata.pack_ifd({noise.NOISE_PROFILE: entry})}
        return raw

    # one pair per colour (R, G, B), mapped through the CFA: GRBG → G R B G
    prof = noise.from_noise_profile(with_profile([1.1e-4, 1e-6, 0.9e-4, 2e-6, 1.2e-4, 3e-6]))
    assert prof.a == (0.9e-4, 1.1e-4, 1.2e-4, 0.9e-4) and prof.b == (2e-6, 1e-6, 3e-6, 2e-6)
    assert noise.noise_model(raw).source == "NoiseProfile"
    # a profile claiming far more noise than the mosaic shows (denoised data) is not trusted
    with_profile([4e-3, 1e-6])
    assert noise.noise_model(raw).source.startswith("estimated")
    with pytest.raises(ValueError):
        noise.NoiseModel((1e-4,) * 4, (0.0,) * 4, "x")


@pytest.mark.parametrize("k", [0.25, 0.5, 1.0, 3.0])
def test_sigma_bins_bound_every_value(k):
    model = noise.NoiseModel((2e-4, 1e-4, 1e-4, 3e-4), (1e-7, 4e-6, 4e-6, 1e-5), "test")
    black, white, hi = np.array([[600, 610], [590, 605]]), 15000, 16383
    bins = residual.SigmaBins.build(k, model, black, white, hi)
    t = residual.SigmaBins.tolerance(k, model, black, white, hi)
    v = np.arange(hi + 1)
    rng = np.random.default_rng(1)
    m = rng.integers(0, hi + 1, (40, 64)).astype(np.uint16)
    sig = noise.sigma_raw(model, m.astype(np.float64), black, white)
    for pos in range(4):
        assert np.all(np.abs(bins.rep[pos][bins.index(pos)] - v) <= t[pos])
    for spread in (0, 50, 20000):  # exact, near and far predictions
        p = np.clip(m.astype(np.int64) + rng.integers(-spread, spread + 1, m.shape), 0, hi).astype(np.uint16)
        d, rec = bins.quantise(m, p)
        assert np.array_equal(bins.reconstruct(d, p), rec)
        err = np.abs(rec.astype(np.int64) - m)
        assert np.all(err <= k * sig + 1e-9) and (k < 1 or err.max() > 0)
    back = residual.SigmaBins.from_json(json.loads(json.dumps(bins.to_json())))
    assert all(np.array_equal(x, y) for x, y in zip(back.rep + back.lower, bins.rep + bins.lower, strict=True))


def test_sigma_tier_round_trip(tmp_path, test_registry):
    src = tmp_path / "in.dng"
    orig = write_synthetic_dng(src, h=96, w=128, cfa="BGGR", bits=14, flip=6, seed=5)
    sizes = {}
    for k in ("0.25s", "0.5s", "1s"):
        jpg = tmp_path / f"{k}.jpg"
        r = run("encode", src, "-o", jpg, "--max-error", k)
        assert r.exit_code == 0 and f"within {k[:-1]}σ" in r.output, r.output + r.stderr
        info = json.loads(run("info", jpg, "--json").output)["record"]
        model = noise.NoiseModel.from_json(info["noise"])
        assert info["noise"]["unit"] == "normalised" and len(info["noise"]["a"]) == 4
        assert info["render"]["layer_sigma"] == float(k[:-1]) and "layer" not in info["render"]
        dng = tmp_path / f"{k}.dng"
        assert run("decode", jpg, "-o", dng).exit_code == 0
        back = rawio.read_raw(dng).mosaic.astype(np.int64)
        sig = noise.sigma_raw(model, orig.mosaic.astype(np.float64), orig.black, orig.white)
        err = np.abs(back - orig.mosaic)
        assert np.all(err <= float(k[:-1]) * sig + 1e-9) and err.max() > 0
        assert "σ" in run("verify", jpg).output
        sizes[k] = len(layer.read_layer(jpg.read_bytes()))
        assert info["render"]["quality"] in residual.QUALITIES  # no -q: the quality minimising the total
    assert sizes["0.25s"] > sizes["0.5s"] > sizes["1s"]
    assert run("encode", src, "-o", tmp_path / "q.jpg", "--max-error", "0.5s", "-q", "95").exit_code == 0
    assert json.loads(run("info", tmp_path / "q.jpg", "--json").output)["record"]["render"]["quality"] == 95
    # the layer removed: decode warns that the σ layer is gone
    run("strip", tmp_path / "1s.jpg", "-o", tmp_path / "plain.jpg")
    r = run("decode", tmp_path / "plain.jpg", "-o", tmp_path / "plain.dng")
    assert r.exit_code == 0 and "1σ" in r.stderr


def test_damaged_sigma_tables_are_refused(tmp_path, test_registry):
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=64, w=64, seed=3)
    jpg = tmp_path / "x.jpg"
    assert run("encode", src, "-o", jpg, "--max-error", "0.5s").exit_code == 0
    data = jpg.read_bytes()
    at = data.index(b'"tables":"') + 20
    bad = bytearray(data)
    bad[at] = ord("A") if bad[at] != ord("A") else ord("B")
    (tmp_path / "bad.jpg").write_bytes(bytes(bad))
    r = run("decode", tmp_path / "bad.jpg", "-o", tmp_path / "bad.dng")
    assert r.exit_code == MetadataError.exit_code and "residual layer" in r.stderr
    assert not (tmp_path / "bad.dng").exists()


def test_ans_codec_round_trip():
    """rANS per context: exact for small and escaped large values, any context layout; damage is an error."""
    rng = np.random.default_rng(2)
    q = np.round(rng.normal(0, 3, (50, 70))).astype(np.int64)
    q[5, 7], q[30, 2] = 90_000, -40_000  # escaped
    ctx = rng.integers(0, 40, q.size).astype(np.uint8)
    ctx[3] = 200  # a context of one site
    yy, xx = np.mgrid[0:50, 0:70]
    q += np.round(30 * np.sin(xx / 6) * np.cos(yy / 8)).astype(np.int64)  # correlated: neighbours predict it
    vals, offset = residual._offset(q.copy())
    other = ctx.copy()
    other[0] = (ctx[0] + 1) % 40  # contexts that do not fit the stored models
    sizes = {}
    for layout in (residual.SORTED, residual.PREDICTED):
        data = residual._encode(vals, "ans", layout, 0, offset, ctx)
        assert np.array_equal(residual._decode(data, "ans", layout, vals.dtype.name, q.shape, offset, ctx), vals)
        with pytest.raises(ValueError):
            residual._decode(data, "ans", layout, vals.dtype.name, q.shape, offset, other)
        sizes[layout] = len(data)
    assert sizes[residual.PREDICTED] < sizes[residual.SORTED]


def test_contexts_as_old_layers_coded_them():
    """The coding contexts (a table lookup now) equal the formula old layers were written with."""
    rng = np.random.default_rng(0)
    pm = rng.integers(0, 1 << 16, (57, 81)).astype(np.uint16)
    pos = (np.arange(57) % 2)[:, None] * 2 + (np.arange(81) % 2)[None, :]
    for base in (0, 2056, 65535):
        octave = np.frexp(np.maximum(pm.astype(np.int64) - base, 0).astype(np.float64))[1]
        assert np.array_equal(residual.contexts(pm, base), (pos * 17 + octave).astype(np.uint8).ravel())


def test_look_predictor_inverts_the_curves_channel_by_channel():
    """With a camera look the predictor's tables are the look's per-channel inverse (3 × 256), stored and read back,
    and a layer built with it reconstructs exactly."""
    from invisp_cli import steps
    from invisp_cli.settings import Look

    rng = np.random.default_rng(4)
    look = Look("camera", tuple(tuple(float(v) for v in rng.normal(0, 0.7, 9)) for _ in range(3)), 0.3,
                (1.0, 0.0, 0.0, 1.0), 0.6, 1.0)
    raw = make_raw(48, 64, seed=4)
    pred = residual.Predictor.analytic(raw, 1.0, raw.white, look)
    grey = np.broadcast_to(np.arange(256) / 255, (1, 3, 1, 256)).copy()
    want = np.round(steps.Look(look).recover_linear(grey) * 2**16).reshape(3, 256)
    assert np.array_equal(np.asarray(pred.lut).reshape(3, 256), want)
    assert residual.Predictor.from_json(json.loads(json.dumps(pred.to_json()))) == pred
    rgb = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)
    header, p, payload = residual.parse_layer(residual.build_layer(raw.mosaic, rgb, [pred], 0), "x")
    assert np.array_equal(residual.reconstruct(header, p, payload, rgb, "x"), raw.mosaic)


@pytest.mark.parametrize("flip", [0, 3, 6])
def test_sample_predictions_equal_the_sample_of_full_predictions(flip):
    """The coder trials predict only the sample's sites: the same values as cutting the sample from the whole."""
    h, w = 1100, 1201  # above 2·SAMPLE² sites: a real sample of four crops; an odd width
    raw = make_raw(h, w, flip=flip, seed=1)
    preds = [residual.Predictor.analytic(raw, 1.3, raw.white), residual.Predictor.none(flip, raw.white)]
    up = np.random.default_rng(0).integers(0, 256, ((w, h) if flip >= 5 else (h, w)) + (3,)).astype(np.uint8)
    got = residual._sample_predictions(up, preds, (h, w))
    assert got is not None and all(np.array_equal(g, residual._sample(p(up))) for p, g in zip(preds, got, strict=True))


def test_integer_layers_keep_their_format():
    raw = make_raw(32, 48, seed=1)
    rgb = np.zeros((32, 48, 3), np.uint8)
    blob = residual.build_layer(raw.mosaic, rgb, [residual.Predictor.none(0, raw.white)], 4)
    header = json.loads(blob[4 : 4 + int.from_bytes(blob[:4], "big")])
    assert header["format"] == "invisp-residual/1" and header["guarantee"] == 4 and "sigma" not in header


@pytest.mark.parametrize("bad", ["0s", "-1s", "abc", "nans", "65s", "-3", "70000", "s"])
def test_bad_max_error(tmp_path, bad):
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=32, w=32)
    r = run("encode", src, "-o", tmp_path / "x.jpg", "--max-error", bad)
    assert_fails(r, InputError, "--max-error", repr(bad))  # one line, exit 2
    assert not (tmp_path / "x.jpg").exists()
    assert residual.parse_max_error("0.5s") == residual.Sigma(0.5) and residual.parse_max_error("4") == 4


def test_exact_and_sigma_contradict(tmp_path):
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=32, w=32)
    r = run("encode", src, "-o", tmp_path / "x.jpg", "--exact", "--max-error", "0.5s")
    assert r.exit_code == 2 and "contradict" in r.output


@pytest.mark.parametrize("kind", ["xtrans", "linear"])
def test_sigma_tier_on_xtrans_and_linear(tmp_path, test_registry, kind):
    """--max-error Ks on the synthetic X-Trans / linear frames of ``rawio.synthetic`` (here from a noisy smooth
    camera-RGB scene): a model per position of the period (36 / 3), every site within K·σ after decode."""
    from invisp_cli.rawio.synthetic import as_cfa, as_linear

    rng = np.random.default_rng(4)
    base = make_raw(96, 120, bits=12, seed=4)
    y, x = np.mgrid[0:96, 0:120] / np.array([96, 120])[:, None, None]
    n = np.stack([0.05 + 0.8 * x * (0.7 + 0.3 * c * y) for c in (0.5, 1.0, 1.5)], -1)
    rgb = np.clip(np.round(300 + (n + rng.normal(0, 1, n.shape) * np.sqrt(2e-4 * n + 1e-6)) * (base.white - 300)),
                  0, base.white).astype(np.uint16)
    src = tmp_path / f"{kind}.dng"
    rawio.write_dng(src, as_cfa(base, rgb) if kind == "xtrans" else as_linear(base, rgb))
    orig = rawio.read_raw(src)
    for k in (0.5, 2.0):
        jpg, dng = tmp_path / f"{k}.jpg", tmp_path / f"{k}.dng"
        r = run("encode", src, "-o", jpg, "--max-error", f"{k:g}s")
        assert r.exit_code == 0 and f"within {k:g}σ" in r.output, r.output + r.stderr
        info = json.loads(run("info", jpg, "--json").output)["record"]
        model = noise.NoiseModel.from_json(info["noise"])
        assert len(model.a) == (36 if kind == "xtrans" else 3)
        assert run("decode", jpg, "-o", dng).exit_code == 0 and "σ" in run("verify", jpg).output
        err = np.abs(rawio.read_raw(dng).mosaic.astype(np.int64) - orig.mosaic)
        sig = noise.sigma_raw(model, orig.mosaic, orig.black, orig.white)
        assert np.all(err <= k * sig + 1e-9) and err.max() > 0


def test_sigma_bins_of_another_period():
    """A 6×6 quantiser: each position keeps its own tables through JSON; a model of the wrong size is refused."""
    model = noise.NoiseModel(tuple(float(v) for v in np.linspace(1e-5, 3e-4, 36)), (1e-6,) * 36, "test")
    black, white, hi = np.full((6, 6), 256.0), 4095, 4095
    bins = residual.SigmaBins.build(1.0, model, black, white, hi, (6, 6))
    back = residual.SigmaBins.from_json(json.loads(json.dumps(bins.to_json())))
    assert back.period == (6, 6) and len(back.rep) == 36 and len(bins.rep[0]) > len(bins.rep[35])
    m = np.random.default_rng(2).integers(0, hi + 1, (30, 42)).astype(np.uint16)
    d, rec = bins.quantise(m, np.zeros_like(m))
    assert np.array_equal(back.reconstruct(d, np.zeros_like(m)), rec)
    assert np.all(np.abs(rec.astype(np.int64) - m) <= noise.sigma_raw(model, m, black, white) + 1e-9)
    with pytest.raises(ValueError):
        residual.SigmaBins.build(1.0, model, black, white, hi, (2, 2))
