"""The record is bound to its pixels: lossless turns are detected and undone, changed pixels are reported,
records that are not this image's are refused (issue "Trust what decode returns", items 1–4)."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np
import pytest
from conftest import assert_fails, run
from PIL import Image, ImageFilter
from synthraw import write_synthetic_dng

from invisp_cli import rawio
from invisp_cli.containers import integrity
from invisp_cli.errors import MetadataError, PixelsChangedError
from invisp_cli.rawio.image import apply_flip


def _image(h: int = 101, w: int = 139, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 90 * np.sin(x / 9 + c) * np.cos(y / 13 - c) for c in range(3)], -1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def _jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality, subsampling=0)
    return buf.getvalue()


def _decoded(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _jpegtran_turn(img: np.ndarray, flip: int, imcu: tuple[int, int]) -> np.ndarray:
    """What jpegtran does to the pixels: transpose, then flips of whole iMCUs (the inverse of ``undo``)."""
    out = img.swapaxes(0, 1) if flip & 4 else img
    rows, cols = (flip & 1, flip & 2) if flip & 4 else (flip & 2, flip & 1)
    if rows:
        out = integrity._mirror(out, 0, imcu[0])
    if cols:
        out = integrity._mirror(out, 1, imcu[1])
    return np.ascontiguousarray(out)


def test_fingerprint_is_equivariant_under_the_eight_turns():
    rgb = _image()
    fp = integrity.fingerprint(rgb)
    for f in range(8):
        d = integrity.distance(integrity.fingerprint(apply_flip(rgb, f)), fp.turned(f))
        assert d.mean_max < 1e-3, (f, d)
    assert integrity.distance(integrity.fingerprint(rgb, rows=7), fp).mean_max < 1e-3  # banding changes nothing


@pytest.mark.parametrize("flip", range(1, 8))
@pytest.mark.parametrize("jpegtran", [False, True])
def test_every_turn_is_found_and_undone_exactly(flip: int, jpegtran: bool):
    """A whole-image turn and jpegtran's lossless one (partial iMCU edges left in place, here 101×139 with 8×8
    iMCUs) both come back as the pixels encode wrote, bit for bit."""
    data = _jpeg(_image())
    rgb = _decoded(data)
    pixels = integrity.bind(rgb, data)
    pixels.pop("tables_sha256")  # the stand-in file below has untransposed tables; jpegtran's are checked end to end
    turned = _jpegtran_turn(rgb, flip, (8, 8)) if jpegtran else apply_flip(rgb, flip)
    check = integrity.check(turned, _jpeg(_image(seed=1)), pixels, rgb.shape[:2])
    assert check.state == "transformed" and check.flip == flip
    assert np.array_equal(check.rgb, rgb)


def test_a_changed_image_is_changed_and_another_image_is_foreign():
    data = _jpeg(_image())
    rgb = _decoded(data)
    pixels = integrity.bind(rgb, data)
    assert integrity.check(rgb, data, pixels, rgb.shape[:2]).state == "intact"
    resaved = _jpeg(rgb, 80)
    assert integrity.check(_decoded(resaved), resaved, pixels, rgb.shape[:2]).state == "changed"
    sharp = np.asarray(Image.fromarray(rgb).filter(ImageFilter.UnsharpMask(2, 80, 2)))
    assert integrity.check(sharp, resaved, pixels, rgb.shape[:2]).state == "changed"
    other = _jpeg(255 - _image(seed=5))
    assert integrity.check(_decoded(other), other, pixels, rgb.shape[:2]).state == "foreign"
    assert integrity.check(rgb, data, None, rgb.shape[:2]).state == "unbound"


@pytest.fixture
def encoded(tmp_path):
    """An invisp JPEG of a 100 × 138 synthetic DNG (sizes that are not multiples of the 8-pixel iMCU)."""
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=100, w=138)
    jpg = tmp_path / "a.jpg"
    assert run("encode", src, "-o", jpg).exit_code == 0
    dng = tmp_path / "a.dng"
    assert run("decode", jpg, "-o", dng).exit_code == 0
    return src, jpg, rawio.read_raw(dng).mosaic


def _decode(jpg, tmp_path):
    dng = tmp_path / "out.dng"
    dng.unlink(missing_ok=True)
    r = run("decode", jpg, "-o", dng)
    return r, (rawio.read_raw(dng).mosaic if r.exit_code == 0 else None)


def test_verify_and_decode_of_an_untouched_file(encoded, tmp_path):
    _, jpg, _ = encoded
    r = run("verify", jpg)
    assert r.exit_code == 0 and "bit-identical" in r.output


@pytest.mark.skipif(not shutil.which("jpegtran"), reason="jpegtran (libjpeg-turbo-progs) not installed")
@pytest.mark.parametrize("args", [["-rotate", "180"], ["-flip", "horizontal"], ["-rotate", "90"], ["-transverse"]])
def test_jpegtran_turns_decode_to_the_untouched_raw(encoded, tmp_path, args):
    _, jpg, mosaic = encoded
    turned = tmp_path / "t.jpg"
    turned.write_bytes(subprocess.run(["jpegtran", "-copy", "all", *args, str(jpg)], capture_output=True,
                                      check=True).stdout)
    r, got = _decode(turned, tmp_path)
    assert r.exit_code == 0, r.output
    assert "losslessly after encode: undone" in r.stderr
    assert np.mean(got == mosaic) > 0.9  # the rest within decoder rounding (transposed IDCTs round differently)
    v = run("verify", turned)
    assert v.exit_code == 0 and "undone" in v.output


@pytest.mark.skipif(not shutil.which("jpegtran"), reason="jpegtran (libjpeg-turbo-progs) not installed")
def test_greyscale_copy_is_refused(encoded, tmp_path):
    _, jpg, _ = encoded
    grey = tmp_path / "g.jpg"
    grey.write_bytes(subprocess.run(["jpegtran", "-copy", "all", "-grayscale", str(jpg)], capture_output=True,
                                    check=True).stdout)
    assert_fails(run("decode", grey, "-o", tmp_path / "g.dng"), MetadataError, "greyscale")


def test_pillow_rotation_and_resave_decode_with_a_warning_and_fail_verify(encoded, tmp_path):
    _, jpg, mosaic = encoded
    with Image.open(jpg) as img:
        info = dict(img.info)
        img.convert("RGB").rotate(180).save(tmp_path / "r.jpg", quality=92, exif=info["exif"], xmp=info["xmp"])
    r, got = _decode(tmp_path / "r.jpg", tmp_path)
    assert r.exit_code == 0 and "pixels changed after encode" in r.stderr and "rotated 180°" in r.stderr
    assert np.corrcoef(got.ravel(), mosaic.ravel())[0, 1] > 0.99  # turned back: the RAW, approximately
    assert_fails(run("verify", tmp_path / "r.jpg"), PixelsChangedError, "pixels changed")


def test_scan_damage_and_table_edit_are_caught(encoded, tmp_path):
    _, jpg, _ = encoded
    data = jpg.read_bytes()
    at = data.index(b"\xff\xdb") + 5 + 10
    edited = bytearray(data)
    edited[at] = min(255, 2 * edited[at])
    (tmp_path / "q.jpg").write_bytes(bytes(edited))
    v = run("verify", tmp_path / "q.jpg")
    assert v.exit_code in (PixelsChangedError.exit_code, MetadataError.exit_code), v.output
    assert "quantisation tables not encode's" in v.output + v.stderr


def test_two_records_and_a_spliced_image_are_refused(encoded, tmp_path):
    src, jpg, _ = encoded
    other_src = tmp_path / "other.dng"
    write_synthetic_dng(other_src, h=100, w=138, seed=7)
    other = tmp_path / "b.jpg"
    assert run("encode", other_src, "-o", other).exit_code == 0
    a, b = jpg.read_bytes(), other.read_bytes()

    def xmp_segment(data: bytes) -> bytes:
        at = data.index(integrity.XMP_HEADER) - 4
        return data[at : at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")]

    at = a.index(xmp_segment(a)) + len(xmp_segment(a))
    (tmp_path / "two.jpg").write_bytes(a[:at] + xmp_segment(b) + a[at:])
    assert_fails(run("decode", tmp_path / "two.jpg", "-o", tmp_path / "x.dng"), MetadataError, "2 invisp records")
    cut_a, cut_b = a.index(b"\xff\xdb"), b.index(b"\xff\xdb")
    (tmp_path / "splice.jpg").write_bytes(a[:cut_a] + b[cut_b:])
    assert_fails(run("decode", tmp_path / "splice.jpg", "-o", tmp_path / "y.dng"), MetadataError,
                 "not this record's image")
    assert not (tmp_path / "x.dng").exists() and not (tmp_path / "y.dng").exists()


def test_a_file_written_before_the_binding_decodes_and_verifies_as_unbound(encoded, tmp_path):
    """The record of an older release has no ``pixels``: decode is unchanged, verify and info say so."""
    from invisp_cli import metadata as md
    from invisp_cli.containers import jpeg
    from invisp_cli.params import ReconstructionParams

    _, jpg, mosaic = encoded
    data = jpg.read_bytes()
    packet = integrity.xmp_packets(data)[0]
    old = ReconstructionParams.from_json(md.xmp_record(packet))
    old.pixels = None
    older = jpeg._replace_xmp(data, packet, md.xmp_with_record(old.to_json(), packet))
    (tmp_path / "old.jpg").write_bytes(older)
    r, got = _decode(tmp_path / "old.jpg", tmp_path)
    assert r.exit_code == 0 and np.array_equal(got, mosaic)
    v = run("verify", tmp_path / "old.jpg")
    assert v.exit_code == 0 and "no fingerprint: written by an older release" in v.output
    info = run("info", tmp_path / "old.jpg")
    assert "no fingerprint" in info.output
    assert "bit-identical" in run("info", jpg).output


@pytest.mark.skipif(not shutil.which("jpegtran"), reason="jpegtran (libjpeg-turbo-progs) not installed")
def test_an_exact_file_turned_is_refused_with_the_way_back(tmp_path):
    """A turned --exact file cannot give the bit-exact RAW (turned blocks decode a few values differently): refused,
    saying so; turned back with jpegtran it gives the exact RAW again."""
    src = tmp_path / "in.dng"
    raw = write_synthetic_dng(src, h=64, w=96)
    jpg = tmp_path / "e.jpg"
    assert run("encode", src, "-o", jpg, "--exact").exit_code == 0

    def jpegtran(path, *args):
        out = path.with_name(path.stem + "t.jpg")
        out.write_bytes(subprocess.run(["jpegtran", "-copy", "all", *args, str(path)], capture_output=True,
                                       check=True).stdout)
        return out

    turned = jpegtran(jpg, "-transpose")
    r = run("decode", turned, "-o", tmp_path / "t.dng")
    if r.exit_code != 0:  # the usual case: some values decode differently
        assert_fails(r, MetadataError, "transposed after encode", "turning it back")
    back = jpegtran(turned, "-transpose")
    assert run("decode", back, "-o", tmp_path / "b.dng").exit_code == 0
    assert np.array_equal(rawio.read_raw(tmp_path / "b.dng").mosaic, raw.mosaic)


def test_a_near_symmetric_image_is_turned_back_by_its_pixels_not_its_grid():
    """A mirror-symmetric scene has the same grid either way round: the sampled values decide the turn."""
    half = _image(101, 70)
    rgb0 = np.concatenate([half, half[:, ::-1]], axis=1)
    data = _jpeg(rgb0)
    rgb = _decoded(data)
    pixels = integrity.bind(rgb, data)
    check = integrity.check(apply_flip(rgb, 1), _jpeg(_image(seed=1)), pixels, rgb.shape[:2])
    assert check.state == "transformed" and check.flip == 1 and np.array_equal(check.rgb, rgb)


def test_zeroed_scan_bytes_are_damage_and_refused():
    """Part of the image decodes as encoded and part is destroyed: refused, not a re-save."""
    data = _jpeg(_image(240, 320))
    rgb = _decoded(data)
    pixels = integrity.bind(rgb, data)
    sos = data.index(b"\xff\xda")
    at = sos + (len(data) - sos) // 2
    broken = data[:at] + bytes(64) + data[at + 64 :]
    check = integrity.check(_decoded(broken), broken, pixels, rgb.shape[:2])
    assert check.state == "foreign" and check.distance.damaged, check.distance
    assert "damaged" in check.summary
    resaved = _jpeg(rgb, 20)
    assert integrity.check(_decoded(resaved), resaved, pixels, rgb.shape[:2]).state == "changed"
