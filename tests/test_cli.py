"""End-to-end CLI tests: encode → JPEG → decode → DNG, metadata, orientation, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import exifread
import numpy as np
import piexif
import pytest
import rawpy
import tifffile
from conftest import assert_fails, real_raw, run
from PIL import Image
from synthraw import write_synthetic_dng

from invisp_cli import metrics, rawio, zoo
from invisp_cli.errors import InputError, MetadataError, ModelError, OutputError, UnsupportedSensorError


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


@pytest.fixture
def encoded(tmp_path, test_registry):
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=96, w=130, cfa="GBRG", bits=12, seed=3)
    jpg = tmp_path / "out.jpg"
    r = run("encode", src, "-o", jpg)
    assert r.exit_code == 0, r.output
    return src, jpg


@pytest.mark.parametrize("cfa,flip,bits", [("RGGB", 0, 14), ("BGGR", 6, 12), ("GRBG", 3, 10), ("GBRG", 5, 14)])
def test_round_trip_keeps_geometry_and_levels(tmp_path, test_registry, cfa, flip, bits):
    src = tmp_path / "in.dng"
    orig = write_synthetic_dng(src, h=70, w=101, cfa=cfa, bits=bits, flip=flip, seed=1)  # odd width
    jpg, dng = tmp_path / "x.jpg", tmp_path / "x.dng"
    assert run("encode", src, "-o", jpg, "--quality", "95").exit_code == 0
    img = Image.open(jpg)
    assert img.size == ((70, 101) if flip & 4 else (101, 70))  # upright pixels: portrait stays portrait
    assert img.getexif().get(0x0112, 1) == 1  # and no orientation tag left for viewers to re-apply
    res = run("decode", jpg, "-o", dng)
    assert res.exit_code == 0, res.output
    back = rawio.read_raw(dng)
    assert back.mosaic.shape == orig.mosaic.shape and back.cfa == cfa and back.flip == flip
    assert np.array_equal(back.black, orig.black) and back.white == orig.white
    with rawpy.imread(str(dng)) as a, rawpy.imread(str(src)) as b:
        assert a.raw_pattern.tolist() == b.raw_pattern.tolist()
        assert list(a.black_level_per_channel) == list(b.black_level_per_channel)
        assert a.sizes.flip == b.sizes.flip
    n = metrics.normalise_mosaic(orig.mosaic, orig.black, orig.white)
    n_hat = metrics.normalise_mosaic(back.mosaic, back.black, back.white)
    assert metrics.raw_psnr_gamma(n_hat, n) > 35
    assert back.mosaic.max() <= orig.white


def test_model_id_visible_to_standard_tools(encoded, test_registry):
    _, jpg = encoded
    desc = piexif.load(str(jpg))["0th"][piexif.ImageIFD.ImageDescription].decode()
    assert test_registry.id in desc and test_registry.sha256 in desc
    with open(jpg, "rb") as f:
        tags = exifread.process_file(f, details=False)
    assert test_registry.id in str(tags["Image ImageDescription"])
    assert str(tags["Image Make"]) == "Invisp" and "EXIF ExposureTime" in tags
    assert len(Image.open(jpg).info["exif"]) < 65533


def test_info_and_models(encoded, test_registry):
    src, jpg = encoded
    r = run("info", jpg)
    assert r.exit_code == 0 and test_registry.id in r.output and "GBRG" in r.output and "invisp/1" in r.output
    r = run("info", src)
    assert r.exit_code == 0 and "GBRG" in r.output
    r = run("models")
    assert r.exit_code == 0 and "test-generic" in r.output


def test_existing_output_is_refused_then_forced(encoded):
    src, jpg = encoded
    before = jpg.read_bytes()
    assert_fails(run("encode", src, "-o", jpg), OutputError, "exists", "--force")
    assert jpg.read_bytes() == before
    assert run("encode", src, "-o", jpg, "--force", "-q", "50").exit_code == 0
    assert jpg.read_bytes() != before
    dng = jpg.with_suffix(".dng")
    dng.write_bytes(b"precious")
    assert_fails(run("decode", jpg, "-o", dng), OutputError, "exists")
    assert dng.read_bytes() == b"precious"
    assert leftovers(jpg.parent) == []


def test_missing_and_unreadable_inputs(tmp_path, test_registry):
    out = tmp_path / "o.jpg"
    assert_fails(run("encode", tmp_path / "nope.CR2", "-o", out), InputError, "nope.CR2")
    fake = tmp_path / "fake.CR2"
    fake.write_text("not a raw file\n")
    assert_fails(run("encode", fake, "-o", out), InputError, "fake.CR2")
    assert_fails(run("decode", tmp_path / "nope.jpg", "-o", tmp_path / "o.dng"), InputError, "nope.jpg")
    assert_fails(run("decode", fake, "-o", tmp_path / "o.dng"), InputError, "fake.CR2")
    assert not out.exists() and not (tmp_path / "o.dng").exists()


def test_truncated_raw(tmp_path, test_registry):
    src = real_raw("nikon-d750_rose_768x512.dng")
    cut = tmp_path / "cut.dng"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    assert_fails(run("encode", cut, "-o", tmp_path / "o.jpg"), InputError, "cut.dng")
    assert not (tmp_path / "o.jpg").exists() and leftovers(tmp_path) == []


def test_non_bayer_raw(tmp_path, test_registry):
    """A linear DNG of float samples (an HDR merge): refused, never converted (tests/test_formats.py: the rest)."""
    p = tmp_path / "linear.dng"
    data = np.random.default_rng(0).random((40, 60, 3)).astype(np.float32)
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "Test", True)]
    with tifffile.TiffWriter(p) as tw:
        tw.write(data, photometric=34892, planarconfig="contig", metadata=None, extratags=tags)
    assert_fails(run("encode", p, "-o", tmp_path / "o.jpg"), UnsupportedSensorError, "not supported")
    assert not (tmp_path / "o.jpg").exists()


def test_jpeg_without_invisp_metadata(tmp_path, test_registry):
    plain = tmp_path / "plain.jpg"
    Image.new("RGB", (32, 32), (100, 150, 200)).save(plain)
    assert_fails(run("decode", plain, "-o", tmp_path / "o.dng"), MetadataError, "no invisp metadata")
    other = tmp_path / "other.jpg"
    Image.new("RGB", (32, 32)).save(other, exif=piexif.dump({"0th": {piexif.ImageIFD.Make: "X"}}))
    assert_fails(run("decode", other, "-o", tmp_path / "o.dng"), MetadataError, "no invisp metadata")
    assert not (tmp_path / "o.dng").exists()


def _rewrite_params(src: Path, dst: Path, edit, fix_checksum: bool) -> None:
    """Copy an invisp JPEG with its stored parameters (the XMP record) edited (optionally re-signing the checksum)."""
    from xml.sax.saxutils import escape, unescape

    from invisp_cli.params import _checksum

    data = src.read_bytes()
    start = data.index(b"<invisp:Record>") + len(b"<invisp:Record>")
    end = data.index(b"</invisp:Record>")
    body = json.loads(unescape(data[start:end].decode()))
    edit(body)
    if fix_checksum:
        body.pop("checksum")
        body["checksum"] = _checksum(body)
    new = escape(json.dumps(body)).encode()
    seg = data.rfind(b"\xff\xe1", 0, start)  # the XMP APP1 segment holding the record
    length = int.from_bytes(data[seg + 2 : seg + 4], "big") + len(new) - (end - start)
    dst.write_bytes(data[: seg + 2] + length.to_bytes(2, "big") + data[seg + 4 : start] + new + data[end:])


def test_tampered_metadata(encoded, tmp_path):
    _, jpg = encoded
    bad = tmp_path / "tampered.jpg"
    _rewrite_params(jpg, bad, lambda b: b["raw"].__setitem__("white", 999), fix_checksum=False)
    assert_fails(run("decode", bad, "-o", tmp_path / "o.dng"), MetadataError, "checksum")
    _rewrite_params(jpg, bad, lambda b: b["raw"].__setitem__("cfa", "XXXX"), fix_checksum=True)
    assert_fails(run("decode", bad, "-o", tmp_path / "o.dng"), MetadataError, "out-of-range")
    _rewrite_params(jpg, bad, lambda b: b["render"].__setitem__("highlight_knee", 1.5), fix_checksum=True)
    assert_fails(run("decode", bad, "-o", tmp_path / "o.dng"), MetadataError, "out-of-range")
    _rewrite_params(jpg, bad, lambda b: b["raw"].__setitem__("visible_size", [10, 10]), fix_checksum=True)
    assert_fails(run("decode", bad, "-o", tmp_path / "o.dng"), MetadataError, "modified")
    assert not (tmp_path / "o.dng").exists()


def test_unknown_model_and_hash_mismatch(encoded, tmp_path, test_registry):
    _, jpg = encoded
    unknown = tmp_path / "unknown.jpg"
    _rewrite_params(jpg, unknown, lambda b: b["model"].__setitem__("id", "no-such-model"), fix_checksum=True)
    assert_fails(run("decode", unknown, "-o", tmp_path / "o.dng"), ModelError, "no-such-model")
    other_hash = tmp_path / "otherhash.jpg"
    _rewrite_params(jpg, other_hash, lambda b: b["model"].__setitem__("sha256", "ab" * 32), fix_checksum=True)
    assert_fails(run("decode", other_hash, "-o", tmp_path / "o.dng"), ModelError, "sha256")
    # the checkpoint on disk replaced by different bytes: refused although the registry names it
    zoo._load.cache_clear()
    ckpt = test_registry.path
    data = bytearray(ckpt.read_bytes())
    data[-1] ^= 0xFF
    ckpt.write_bytes(bytes(data))
    assert_fails(run("decode", jpg, "-o", tmp_path / "o.dng"), ModelError, "corrupt or replaced")
    assert not (tmp_path / "o.dng").exists()
    assert_fails(run("encode", jpg, "-o", tmp_path / "x.jpg", "--model", "no-such-model"), InputError)


def test_unknown_model_on_encode(tmp_path, test_registry):
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=32, w=48)
    assert_fails(run("encode", src, "-o", tmp_path / "o.jpg", "--model", "nope"), ModelError, "unknown model")
    assert not (tmp_path / "o.jpg").exists()


def test_unwritable_output(encoded, tmp_path):
    src, jpg = encoded
    assert_fails(run("encode", src, "-o", tmp_path / "missing-dir" / "o.jpg"), OutputError, "does not exist")
    assert_fails(run("decode", jpg, "-o", tmp_path / "missing-dir" / "o.dng"), OutputError, "does not exist")
    assert_fails(run("decode", jpg, "-o", tmp_path / "o.png"), InputError, "use .dng")


def test_failure_mid_write_leaves_nothing(encoded, tmp_path, monkeypatch):
    _, jpg = encoded

    def boom(path, raw):
        Path(path).write_bytes(b"half a DNG")
        raise OSError("disk full")

    monkeypatch.setattr(rawio, "write_dng", boom)
    r = run("decode", jpg, "-o", tmp_path / "o.dng")
    assert r.exit_code != 0 and "disk full" in r.stderr
    assert not (tmp_path / "o.dng").exists() and leftovers(tmp_path) == []
