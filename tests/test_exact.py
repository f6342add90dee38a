"""The residual layer (issue 6): bit-exact and ±N RAW recovery from the JPEG, its integrity check, `strip`,
what other JPEG readers see, and the determinism of the integer predictor."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import torch
from conftest import real_raw, run
from PIL import Image
from synthraw import make_raw, write_synthetic_dng

from invisp_cli import rawio, residual
from invisp_cli.bench.sizes import cfa_planes
from invisp_cli.containers import layer
from invisp_cli.errors import MetadataError, OutputError
from invisp_cli.steps import Chain, analytic_steps


def ok(*args: str):
    r = run(*args)
    assert r.exit_code == 0, r.output + r.stderr
    return r


def one_line_error(r, exc: type, *fragments: str) -> None:
    assert r.exit_code == exc.exit_code, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("invisp: error:"), r.stderr
    assert all(f in lines[0] for f in fragments), lines[0]


def encode_pair(tmp_path: Path, **kw) -> tuple[np.ndarray, Path, Path]:
    """A synthetic DNG encoded twice: plain and with --exact. Returns (mosaic, plain.jpg, exact.jpg)."""
    src = tmp_path / "in.dng"
    raw = write_synthetic_dng(src, **kw)
    plain, exact = tmp_path / "plain.jpg", tmp_path / "exact.jpg"
    ok("encode", src, "-o", plain)
    ok("encode", src, "-o", exact, "--exact")
    return raw.mosaic, plain, exact


def same_pixels(a: Path, b: Path) -> bool:
    with Image.open(a) as x, Image.open(b) as y:
        return np.array_equal(np.asarray(x), np.asarray(y))


def decoded_mosaic(jpg: Path, tmp_path: Path) -> np.ndarray:
    dng = tmp_path / (jpg.stem + "-back.dng")
    ok("decode", jpg, "-o", dng, "--force")
    return rawio.read_raw(dng).mosaic


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("cfa,flip,bits,h,w", [("RGGB", 0, 14, 64, 96), ("BGGR", 6, 12, 70, 101),
                                               ("GRBG", 3, 10, 57, 80), ("GBRG", 5, 16, 48, 66)])
def test_exact_round_trip_synthetic(tmp_path, test_registry, cfa, flip, bits, h, w):
    src = tmp_path / "in.dng"
    orig = write_synthetic_dng(src, h=h, w=w, cfa=cfa, bits=bits, flip=flip, seed=4)
    jpg = tmp_path / "x.jpg"
    assert "bit-exact RAW layer" in ok("encode", src, "-o", jpg, "--exact").output
    assert "SHA-256 verified" in ok("decode", jpg, "-o", tmp_path / "x.dng").output
    back = rawio.read_raw(tmp_path / "x.dng")
    assert back.mosaic.dtype == np.uint16 and np.array_equal(back.mosaic, orig.mosaic)
    assert back.cfa == cfa and back.flip == flip and back.white == orig.white


@pytest.mark.parametrize("name", ["nikon-d750_rose_768x512.dng", "canon-eos-550d_colorchart.dng"])
def test_exact_round_trip_real(tmp_path, test_registry, name):
    src = real_raw(name)
    jpg = tmp_path / "x.jpg"
    ok("encode", src, "-o", jpg, "--exact")
    assert np.array_equal(decoded_mosaic(jpg, tmp_path), rawio.read_raw(src).mosaic)


def test_max_error_bound(tmp_path, test_registry):
    src = tmp_path / "in.dng"
    orig = write_synthetic_dng(src, h=96, w=128, cfa="GRBG", bits=14, flip=0, seed=7).mosaic.astype(np.int64)
    sizes = []
    for n in (1, 4, 16):
        jpg = tmp_path / f"n{n}.jpg"
        ok("encode", src, "-o", jpg, "--max-error", str(n))
        err = np.abs(decoded_mosaic(jpg, tmp_path).astype(np.int64) - orig)
        assert err.max() <= n and err.max() > 0
        assert f"±{n}" in ok("info", jpg).output
        sizes.append(len(layer.read_layer(jpg.read_bytes())))
    assert sizes[0] > sizes[1] > sizes[2]
    r = run("encode", src, "-o", tmp_path / "c.jpg", "--exact", "--max-error", "3")
    assert r.exit_code == 2 and "contradict" in r.output and not (tmp_path / "c.jpg").exists()


def test_quantiser_bound_and_clip():
    """|m̂ − m| ≤ N for every residual value, including predictions far outside [0, white]."""
    rng = np.random.default_rng(0)
    m = rng.integers(0, 4096, (40, 60)).astype(np.uint16)
    pred = np.clip(m.astype(np.int64) + rng.integers(-3000, 3000, m.shape), 0, 4095).astype(np.uint16)
    for n in (0, 1, 2, 7, 100):
        q, rec = residual._quantise(m, pred, n, (0, 4095))
        assert np.abs(rec.astype(np.int64) - m).max() <= n


# ------------------------------------------------------------------------------------- integrity


def test_tampered_layer_is_refused(tmp_path, test_registry):
    _, _, exact = encode_pair(tmp_path, h=64, w=96, seed=2)
    data = exact.read_bytes()
    blob = layer.read_layer(data)
    head = 4 + int.from_bytes(blob[:4], "big")
    payload_at = data.index(blob[head : head + 64])  # a spot inside the payload, as stored in the file
    sha_at = data.index(b'"sha256":"', data.index(layer.SIGNATURE)) + 12  # the header's, not the EXIF's
    for what, pos in {"payload": payload_at + 40, "header": sha_at}.items():
        bad = bytearray(data)
        bad[pos] ^= 0x01
        (tmp_path / "bad.jpg").write_bytes(bytes(bad))
        out = tmp_path / f"{what}.dng"
        r = run("decode", tmp_path / "bad.jpg", "-o", out)
        one_line_error(r, MetadataError, "residual layer")
        assert not out.exists() and not [p for p in tmp_path.iterdir() if ".part" in p.name]
    # a missing chunk, and pixels that no longer match the layer
    chunked = layer.insert_layer(layer.strip_layer(data)[0], blob + bytes(layer.CHUNK))
    first = chunked.index(layer.SIGNATURE) - 4
    seg_len = int.from_bytes(chunked[first + 2 : first + 4], "big") + 2
    (tmp_path / "cut.jpg").write_bytes(chunked[:first] + chunked[first + seg_len :])
    one_line_error(run("decode", tmp_path / "cut.jpg", "-o", tmp_path / "o.dng"), MetadataError, "chunks missing")
    raw = make_raw(h=64, w=96, seed=2)
    rgb = residual.decode_pixels(data).copy()
    analytic = residual.build_layer(raw.mosaic, rgb, [residual.Predictor.analytic(raw, 1.0, raw.white)], 0)
    header, pred, payload = residual.parse_layer(analytic, "x.jpg")
    assert np.array_equal(residual.reconstruct(header, pred, payload, rgb, "x.jpg"), raw.mosaic)
    rgb[10, 10] ^= 1
    with pytest.raises(MetadataError, match="SHA-256"):
        residual.reconstruct(header, pred, payload, rgb, "x.jpg")


# ------------------------------------------------------------------------------------------- strip


def test_strip(tmp_path, test_registry):
    mosaic, plain, exact = encode_pair(tmp_path, h=64, w=96, cfa="BGGR", seed=5)
    assert "bit-exact RAW" in ok("info", exact).output and "none" in ok("info", plain).output
    out = tmp_path / "stripped.jpg"
    ok("strip", exact, "-o", out)
    assert same_pixels(out, plain) and not layer.read_layer(out.read_bytes(), "out")  # the plain invisp JPEG
    back = decoded_mosaic(out, tmp_path)  # decodes normally, approximately, as the plain one does
    assert np.array_equal(back, decoded_mosaic(plain, tmp_path)) and not np.array_equal(back, mosaic)
    r = ok("decode", out, "-o", tmp_path / "warned.dng")  # the record says a layer was there: decode says so
    assert "no longer in the file" in " ".join(r.stderr.split()) and "bit-exact" in r.stderr
    # in place: refused without --force, done atomically with it, permission bits kept
    before = exact.read_bytes()
    one_line_error(run("strip", exact), OutputError, "in place")
    assert exact.read_bytes() == before
    exact.chmod(0o644)
    ok("strip", exact, "--force")
    assert exact.read_bytes() == out.read_bytes() and stat.S_IMODE(exact.stat().st_mode) == 0o644
    r = ok("strip", exact)
    assert "nothing to do" in " ".join(r.output.split())


# ------------------------------------------------------------------------------ other JPEG readers


def test_other_readers_ignore_the_layer(tmp_path, test_registry):
    _, plain, exact = encode_pair(tmp_path, h=80, w=120, cfa="RGGB", seed=9)
    assert same_pixels(plain, exact)
    pix = imagecodecs.jpeg8_decode(exact.read_bytes())  # libjpeg-turbo directly, as browsers use it
    assert np.array_equal(pix, imagecodecs.jpeg8_decode(plain.read_bytes()))
    assert np.array_equal(pix, residual.decode_pixels(exact.read_bytes()))
    import av  # ffmpeg's own JPEG decoder: an independent implementation

    def ffmpeg(p: Path) -> np.ndarray:
        with av.open(str(p)) as c:
            return next(c.decode(video=0)).to_ndarray(format="rgb24")

    assert np.array_equal(ffmpeg(exact), ffmpeg(plain))


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
def test_exiftool_reads_and_keeps_the_layer(tmp_path, test_registry):
    mosaic, _, exact = encode_pair(tmp_path, h=64, w=96, seed=11)
    r = subprocess.run(["exiftool", "-j", str(exact)], capture_output=True, text=True)
    assert r.returncode == 0 and "Error" not in r.stderr and "Warning" not in r.stderr, r.stderr
    tags = json.loads(r.stdout)[0]
    assert "Warning" not in tags and "Error" not in tags
    assert test_registry.id in tags["ImageDescription"] and tags["ImageWidth"] == 96
    # a metadata edit by exiftool keeps the layer (APP segments survive, unlike data after EOI)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-Artist=someone", str(exact)], check=True)
    assert np.array_equal(decoded_mosaic(exact, tmp_path), mosaic)


# --------------------------------------------------------------------------------------- predictor


def reference_predict(pred: residual.Predictor, rgb: np.ndarray) -> np.ndarray:
    """Pixel by pixel with Python integers: clip((Σ_k coef[π][k]·lut[v_k] + bias[π]) >> 32, lo, hi)."""
    s = rawio.undo_flip(rgb, pred.flip)
    out = np.zeros(s.shape[:2], np.uint16)
    for y in range(s.shape[0]):
        for x in range(s.shape[1]):
            p = 2 * (y % 2) + x % 2
            acc = sum(pred.coef[p][k] * pred.lut[int(s[y, x, k])] for k in range(3)) + pred.bias[p]
            out[y, x] = min(max(acc >> 32, pred.clip[0]), pred.clip[1])
    return out


@pytest.mark.parametrize("cfa,flip", [("RGGB", 0), ("GBRG", 5)])
def test_predictor_matches_reference_and_float_chain(cfa, flip):
    raw = make_raw(30, 41, cfa=cfa, bits=14, flip=flip, seed=1)
    pred = residual.Predictor.analytic(raw, 1.3, raw.white)
    rgb = np.random.default_rng(3).integers(0, 256, (41, 30, 3) if flip & 4 else (30, 41, 3), dtype=np.uint8)
    fast = pred(rgb)
    assert np.array_equal(fast, reference_predict(pred, rgb))
    # it is the analytic ISP's inverse (float64 chain), rounded: off by at most one unit from float rounding
    chain = Chain(analytic_steps(raw.cfa, raw.black, raw.white, raw.wb, raw.rgb_cam, 1.3))
    sensor = torch.from_numpy(rawio.undo_flip(rgb, flip).transpose(2, 0, 1)[None].astype(np.float64))
    ref = chain.inverse(sensor / 255.0)[0, 0].numpy()
    assert np.abs(fast - np.clip(np.round(ref), 0, raw.white)).max() <= 1
    assert residual.Predictor.from_json(json.loads(json.dumps(pred.to_json()))) == pred


_PREDICT_SCRIPT = """
import hashlib, json, sys
import numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
from invisp_cli import residual
rgb = np.load(sys.argv[2])
pred = residual.Predictor.from_json(json.load(open(sys.argv[3])))
print(hashlib.sha256(pred(rgb).tobytes()).hexdigest())
"""


def test_prediction_independent_of_thread_counts(tmp_path):
    raw = make_raw(64, 96, cfa="GRBG", seed=2)
    pred = residual.Predictor.analytic(raw, 1.0, raw.white)
    rgb = np.random.default_rng(1).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    np.save(tmp_path / "rgb.npy", rgb)
    (tmp_path / "p.json").write_text(json.dumps(pred.to_json()))
    hashes = {hashlib.sha256(pred(rgb).tobytes()).hexdigest()}
    for threads in (1, 2):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        r = subprocess.run([sys.executable, "-c", _PREDICT_SCRIPT, str(threads), str(tmp_path / "rgb.npy"),
                            str(tmp_path / "p.json")], capture_output=True, text=True, env=env, check=True)
        hashes.add(r.stdout.strip())
    assert len(hashes) == 1


# ------------------------------------------------------------------------------- codecs, container


@pytest.mark.parametrize("codec,layout,dtype", [("jxl", "mosaic", np.uint16), ("jxl", "cfa-planes", np.uint16),
                                                ("zstd", "mosaic", np.uint16), ("lzma", "mosaic", np.uint32)])
def test_codecs_round_trip(codec, layout, dtype):
    v = np.random.default_rng(0).integers(0, 70000 if dtype == np.uint32 else 65536, (20, 34)).astype(dtype)
    data = residual._encode(v, codec, layout, effort=2)
    assert np.array_equal(residual._decode(data, codec, layout, np.dtype(dtype).name, v.shape), v)
    assert np.array_equal(residual._planes(v), cfa_planes(v))  # the layout of bench.sizes


@pytest.mark.parametrize("dtype,hi", [(np.uint16, 65536), (np.uint32, 1 << 18)])
def test_intensity_sorted_layout_round_trip(dtype, hi):
    rng = np.random.default_rng(1)
    pm = rng.integers(0, 16384, (22, 36))
    v = rng.integers(0, hi, pm.shape).astype(dtype)
    ctx = residual.contexts(pm, 512)
    data = residual._encode(v, "zstd", residual.SORTED, effort=2, offset=4000, ctx=ctx)
    back = residual._decode(data, "zstd", residual.SORTED, np.dtype(dtype).name, v.shape, offset=4000, ctx=ctx)
    assert back.dtype == dtype and np.array_equal(back, v)


def test_contexts_are_cfa_position_and_octave():
    pm = np.array([[512, 513, 514, 515], [516, 1536, 1535, 65535]])
    # p − base = 0, 1, 2, 3 / 4, 1024, 1023, 65023 → bit lengths 0, 1, 2, 2 / 3, 11, 10, 16
    expected = np.array([[0, 17 + 1, 0 + 2, 17 + 2], [34 + 3, 51 + 11, 34 + 10, 51 + 16]])
    assert np.array_equal(residual.contexts(pm, 512), expected.ravel())


def test_intensity_sorted_layout_wins_on_signal_dependent_noise():
    """Shot noise (spread ∝ √signal) on a finely textured scene, whose neighbours do not tell the local noise level
    (the JPEG's prediction does): grouping by predicted level codes smaller than every spatial coder."""
    rng = np.random.default_rng(2)
    h, w = 256, 384
    signal = np.where(rng.random((h, w)) < 0.5, 700.0, 15000.0)  # dark and bright sites interleaved
    mosaic = np.clip(signal + rng.normal(0, 1, (h, w)) * np.sqrt(signal * 2), 0, 16383).astype(np.uint16)
    pm = np.round(signal).astype(np.int64)
    q = mosaic.astype(np.int32) - pm.astype(np.int32)
    vals, offset = residual._offset(q.copy())
    sizes = {(codec, layout): len(residual._encode(vals, codec, layout, 3, offset, residual.contexts(pm, 600)))
             for codec, layout in residual._candidates((h, w), vals.dtype)}
    best_other = min(v for k, v in sizes.items() if k[1] != residual.SORTED)
    assert sizes["zstd", residual.SORTED] < 0.96 * best_other, sizes


def test_residual_beyond_16_bits_falls_back_to_a_byte_codec():
    """16-bit data whose residual spans ±65535 outside the sample: JPEG XL (uint16) cannot code it."""
    h, w = 600, 1000
    rgb = np.zeros((h, w, 3), np.uint8)
    mosaic = np.full((h, w), 1000, np.uint16)
    rgb[:8, :8, 0] = 255 * (np.indices((8, 8)).sum(0) % 2)  # a corner where prediction and truth disagree
    mosaic[:8, :8] = np.where(rgb[:8, :8, 0] == 255, 0, 65535)
    pred = residual.Predictor("analytic", 0, tuple(257 * v for v in range(256)), ((1 << 32, 0, 0),) * 4, (0,) * 4,
                              (0, 65535))
    blob = residual.build_layer(mosaic, rgb, [pred], 0)
    header, p, payload = residual.parse_layer(blob, "x")
    assert header["dtype"] == "uint32" and header["codec"] == "zstd"
    assert np.array_equal(residual.reconstruct(header, p, payload, rgb, "x"), mosaic)


def test_container_chunks():
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buf, "JPEG", exif=b"Exif\x00\x00" + bytes(20))
    plain = buf.getvalue()
    blob = bytes(np.random.default_rng(0).integers(0, 256, 3 * layer.CHUNK + 5, dtype=np.uint8))
    data = layer.insert_layer(plain, blob)
    assert data.count(b"\xff\xec") >= 4 and layer.read_layer(data) == blob
    assert layer.strip_layer(data) == (plain, len(data) - len(plain))
    legacy = re.sub(rb"\xff\xec(?=..%s)" % re.escape(layer.SIGNATURE), b"\xff\xeb", data,
                    flags=re.DOTALL)  # the segments as invisp wrote them before the layer moved from APP11
    assert layer.read_layer(legacy) == blob and layer.strip_layer(legacy)[0] == plain
    assert layer.read_layer(plain) is None
    assert data.index(layer.SIGNATURE) > data.index(b"Exif")  # after the EXIF block, before the image
    with pytest.raises(ValueError):
        layer.insert_layer(data, blob)
