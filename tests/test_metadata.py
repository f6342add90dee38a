"""Metadata: the record's own XMP place (and the legacy UserComment one), the original's EXIF/GPS/XMP/DNG tags
carried RAW → JPEG → DNG, edits made after encode reaching the DNG, exiftool validation, the LJ92 DNG."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import piexif
import pytest
import rawpy
import tifffile
from conftest import real_raw, run
from PIL import Image
from synthraw import make_raw, write_synthetic_dng

from invisp_cli import metadata as md
from invisp_cli import rawio
from invisp_cli.containers import jpeg, layer
from invisp_cli.params import ReconstructionParams

EXIFTOOL = shutil.which("exiftool")
needs_exiftool = pytest.mark.skipif(EXIFTOOL is None, reason="exiftool not installed")


def ok(*args: object) -> None:
    r = run(*args)
    assert r.exit_code == 0, r.output


def _segment(data: bytes, prefix: bytes) -> tuple[int, int]:
    """(start, end) of the first APP1 segment whose payload starts with ``prefix``."""
    segs, _ = layer._segments(data, "x")
    return next((s, e) for m, s, e in segs if m == 0xE1 and data[s + 4 : s + 4 + len(prefix)] == prefix)


def _replace_segment(data: bytes, prefix: bytes, payload: bytes | None) -> bytes:
    s, e = _segment(data, prefix)
    new = b"" if payload is None else b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    return data[:s] + new + data[e:]


def _tree(path: Path) -> md.Tree:
    with Image.open(path) as im:
        return md.read_tree(im.info["exif"][6:])[0]


def _gps_tree() -> md.Tree:
    return {"0th": {33432: md.ascii_entry("(c) Original Owner")},
            "Exif": {34850: md.num_entry(md.SHORT, [2]), 37385: md.num_entry(md.SHORT, [16])},
            "GPS": {0: md.Entry(md.BYTE, 4, bytes([2, 2, 0, 0])), 1: md.ascii_entry("N"),
                    2: md.num_entry(md.RATIONAL, [33, 1, 7, 1, 36, 1])}}


@pytest.fixture
def gps_jpeg(tmp_path, test_registry) -> tuple[Path, Path]:
    """A synthetic DNG whose EXIF has GPS, copyright, ExposureProgram and Flash, and its invisp JPEG."""
    src = tmp_path / "in.dng"
    raw = make_raw(64, 96, seed=3)
    raw.exif["exif"] = md.pack_tree(_gps_tree())
    rawio.write_dng(src, raw)
    jpg = tmp_path / "x.jpg"
    ok("encode", src, "-o", jpg)
    return src, jpg


# ------------------------------------------------------------------------------------------- the record


def test_record_lives_in_xmp_and_editing_user_comment_keeps_decode(gps_jpeg, tmp_path):
    _, jpg = gps_jpeg
    with Image.open(jpg) as im:
        assert md.xmp_record(im.info["xmp"]).startswith('{"camera"')
        assert md.USER_COMMENT not in _tree(jpg)["Exif"]
    data = jpg.read_bytes()
    tree = _tree(jpg)
    tree["Exif"][md.USER_COMMENT] = md.Entry(md.UNDEFINED, 13, b"ASCII\0\0\0hello")
    edited = tmp_path / "edited.jpg"
    edited.write_bytes(_replace_segment(data, b"Exif\0\0", b"Exif\0\0" + md.write_tiff(md.tree_node(tree))))
    ok("decode", jpg, "-o", tmp_path / "a.dng")
    ok("decode", edited, "-o", tmp_path / "b.dng")
    assert np.array_equal(rawio.read_raw(tmp_path / "a.dng").mosaic, rawio.read_raw(tmp_path / "b.dng").mosaic)


def test_legacy_user_comment_record_still_decodes(gps_jpeg, tmp_path):
    """Files written before the record moved to XMP (EXIF UserComment, piexif layout) decode the same."""
    _, jpg = gps_jpeg
    data = jpg.read_bytes()
    with Image.open(jpg) as im:
        record = md.xmp_record(im.info["xmp"])
    legacy = piexif.dump({"0th": {piexif.ImageIFD.Make: "Invisp", piexif.ImageIFD.Orientation: 1},
                          "Exif": {piexif.ExifIFD.UserComment: jpeg._ASCII + record.encode()}})
    old = _replace_segment(_replace_segment(data, b"http://ns.adobe.com/xap/1.0/\0", None), b"Exif\0\0", legacy)
    (tmp_path / "old.jpg").write_bytes(old)
    ok("decode", jpg, "-o", tmp_path / "new.dng")
    ok("decode", tmp_path / "old.jpg", "-o", tmp_path / "old.dng")
    a, b = rawio.read_raw(tmp_path / "new.dng"), rawio.read_raw(tmp_path / "old.dng")
    assert np.array_equal(a.mosaic, b.mosaic)
    assert md.USER_COMMENT not in md.unpack_tree(b.exif["exif"])["Exif"]  # the old record is not copied on


def test_exif_limit_drops_maker_notes_never_the_record():
    raw = make_raw(16, 16)
    tree = _gps_tree()
    tree["Exif"][md.MAKER_NOTE] = md.Entry(md.UNDEFINED, 70000, bytes(70000))
    raw.exif["exif"] = md.pack_tree(tree)
    params = ReconstructionParams.from_raw(raw, "m", "0" * 64, {"exposure_gain": 1.0})
    blob = jpeg.build_exif(params, 16, 16)
    assert len(blob) <= jpeg.EXIF_LIMIT
    kept = md.read_tree(blob[6:])[0]
    assert md.MAKER_NOTE not in kept["Exif"] and kept["GPS"] and 33432 in kept["0th"]
    assert md.xmp_record(jpeg.build_xmp(params)) == jpeg.record_params(params).to_json()
    # a DNG profile table too big for the record's segment is left out; the rest of the DNG tags stay
    rng = np.random.default_rng(0)
    raw.exif["dng"] = md.pack_ifd({50938: md.Entry(md.FLOAT, 60000, rng.bytes(240000)),
                                   50730: md.num_entry(md.SRATIONAL, [1, 2])})
    params = ReconstructionParams.from_raw(raw, "m", "0" * 64, {"exposure_gain": 1.0})
    kept = md.unpack_ifd(json.loads(md.xmp_record(jpeg.build_xmp(params)))["camera"]["dng"])
    assert set(kept) == {50730}


def test_non_ascii_make_and_model_encode(tmp_path, test_registry):
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=32, w=48, exif={"make": "Caméra", "model": "Modèle\ufffd X"})
    raw = rawio.read_raw(src)
    raw.exif.update(make="Caméra", model="Modèle\ufffd X")
    rawio.write_dng(src, raw)
    ok("encode", src, "-o", tmp_path / "x.jpg")
    assert _tree(tmp_path / "x.jpg")["0th"][271].text() == "Caméra"
    ok("decode", tmp_path / "x.jpg", "-o", tmp_path / "x.dng")


# ----------------------------------------------------------------------------------------- round trips


def test_gps_and_exif_reach_jpeg_and_dng(gps_jpeg, tmp_path):
    _, jpg = gps_jpeg
    t = _tree(jpg)
    assert t["GPS"][1].text() == "N" and t["GPS"][2].values() == (33, 1, 7, 1, 36, 1)
    assert t["0th"][33432].text() == "(c) Original Owner" and t["Exif"][34850].values() == (2,)
    assert t["Exif"][40961].values() == (1,)  # ColorSpace sRGB
    with Image.open(jpg) as im:
        assert im.info["icc_profile"] == jpeg.srgb_icc()
    ok("decode", jpg, "-o", tmp_path / "x.dng")
    d = md.unpack_tree(rawio.read_raw(tmp_path / "x.dng").exif["exif"])
    assert d["GPS"][2].values() == (33, 1, 7, 1, 36, 1) and d["Exif"][37385].values() == (16,)
    assert 40961 not in d["Exif"]  # the JPEG's own encoding tags stay out of the DNG


def test_edit_after_encode_reaches_dng(gps_jpeg, tmp_path):
    """Copyright, GPS, keywords and a rating set on the JPEG after encode end up in the decoded DNG."""
    _, jpg = gps_jpeg
    tree = _tree(jpg)
    tree["0th"][33432] = md.ascii_entry("(c) New Owner")
    tree["GPS"][2] = md.num_entry(md.RATIONAL, [48, 1, 51, 1, 24, 1])
    data = _replace_segment(jpg.read_bytes(), b"Exif\0\0", b"Exif\0\0" + md.write_tiff(md.tree_node(tree)))
    with Image.open(jpg) as im:
        xmp = im.info["xmp"]
    xmp = xmp.replace(b"</rdf:RDF>", b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
                                     b'xmp:Rating="4"/></rdf:RDF>')
    data = _replace_segment(data, b"http://ns.adobe.com/xap/1.0/\0", b"http://ns.adobe.com/xap/1.0/\0" + xmp)
    (tmp_path / "e.jpg").write_bytes(data)
    ok("decode", tmp_path / "e.jpg", "-o", tmp_path / "e.dng")
    back = rawio.read_raw(tmp_path / "e.dng")
    d = md.unpack_tree(back.exif["exif"])
    assert d["0th"][33432].text() == "(c) New Owner" and d["GPS"][2].values() == (48, 1, 51, 1, 24, 1)
    assert 'xmp:Rating="4"' in back.exif["xmp"] and "invisp:Record" not in back.exif["xmp"]


@needs_exiftool
def test_exiftool_edits_reach_dng(gps_jpeg, tmp_path):
    """As a photo manager would: exiftool writes copyright, keywords, rating and GPS into the JPEG."""
    _, jpg = gps_jpeg
    subprocess.run([EXIFTOOL, "-q", "-overwrite_original", "-Copyright=(c) Someone", "-XMP-dc:Subject=harbour",
                    "-XMP-dc:Subject=boats", "-XMP:Rating=5", "-GPSLatitude=48.85", "-GPSLatitudeRef=N",
                    "-UserComment=edited", str(jpg)], check=True)
    ok("decode", jpg, "-o", tmp_path / "x.dng")
    r = subprocess.run([EXIFTOOL, "-j", "-Copyright", "-Subject", "-Rating", "-GPSLatitude#", "-UserComment",
                        str(tmp_path / "x.dng")], capture_output=True, text=True, check=True)
    tags = json.loads(r.stdout)[0]
    assert tags["Copyright"] == "(c) Someone" and tags["Subject"] == ["harbour", "boats"] and tags["Rating"] == 5
    assert tags["GPSLatitude"] == pytest.approx(48.85) and tags["UserComment"] == "edited"
    assert "Record" not in rawio.read_raw(tmp_path / "x.dng").exif["xmp"]  # exiftool rewrote it; still left out


def test_a_rewritten_record_never_travels_on():
    """However a tool rewrote the record (prefix, attribute form), it is stripped before a new one is added."""
    old = (b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>"
           b"<rdf:Description rdf:about='' xmlns:inv='http://ns.invisp.dev/1.0/'><inv:Record>{&quot;a&quot;:1}"
           b"</inv:Record></rdf:Description><rdf:Description rdf:about='' xmlns:xmp='http://ns.adobe.com/xap/1.0/' "
           b"xmp:Rating='5' xmlns:i2='http://ns.invisp.dev/1.0/' i2:Record='{&quot;b&quot;:2}'/></rdf:RDF></x:xmpmeta>")
    assert md.xmp_record(old) == '{"a":1}'
    new = md.xmp_with_record('{"c":3}', old)
    assert md.xmp_record(new) == '{"c":3}' and b"{&quot;" not in new and b"xmp:Rating='5'" in new
    assert md.xmp_record(md.xmp_without_record(old)) is None
    assert md.xmp_without_record(md.xmp_with_record('{"c":3}')) == b""


@needs_exiftool
def test_exiftool_validate_has_no_warnings(gps_jpeg, tmp_path):
    _, jpg = gps_jpeg
    ok("decode", jpg, "-o", tmp_path / "x.dng")
    for f in (jpg, tmp_path / "x.dng"):
        r = subprocess.run([EXIFTOOL, "-validate", "-warning", "-a", "-s", str(f)], capture_output=True, text=True)
        assert "Warning" not in r.stdout, r.stdout


@needs_exiftool
@pytest.mark.realdata
@pytest.mark.parametrize("name", ["canon-powershot-s40_box_CRW_0119.CRW", "canon-eos-550d_colorchart.dng"])
def test_exiftool_validate_real(tmp_path, test_registry, name):
    src = real_raw(name)
    jpg, dng = tmp_path / "x.jpg", tmp_path / "x.dng"
    ok("encode", src, "-o", jpg)
    ok("decode", jpg, "-o", dng)
    for f in (jpg, dng):
        r = subprocess.run([EXIFTOOL, "-validate", "-warning", "-a", "-s", str(f)], capture_output=True, text=True)
        assert "Warning" not in r.stdout, (f.name, r.stdout)


# --------------------------------------------------------------------------------------------------- DNG


@pytest.mark.realdata
def test_dng_carries_the_originals_dng_tags(tmp_path):
    """Opcode lists, both colour matrices with their illuminants, noise profile, crops: written back verbatim."""
    src = real_raw("gopro-hero7_mural_GOPR9231.dng")
    raw = rawio.read_raw(src)
    rawio.write_dng(tmp_path / "x.dng", raw)
    with tifffile.TiffFile(src) as a, tifffile.TiffFile(tmp_path / "x.dng") as b:
        ta, tb = a.pages[0].tags, b.pages[0].tags
        for code in (50721, 50722, 50778, 50779, 51009, 51041, 50719, 50720, 50730, 50735):
            assert code in tb, code
            assert np.array_equal(np.asarray(ta[code].value), np.asarray(tb[code].value)), code
        assert tb[259].value == 7 and tb[34853].value  # LJ92; GPS IFD
    with rawpy.imread(str(src)) as a, rawpy.imread(str(tmp_path / "x.dng")) as b:
        assert np.array_equal(a.raw_image_visible, b.raw_image_visible)
        np.testing.assert_allclose(b.rgb_xyz_matrix, a.rgb_xyz_matrix, atol=1e-6)
    assert (tmp_path / "x.dng").stat().st_size <= 1.15 * src.stat().st_size


def test_dng_is_lossless_jpeg_with_a_preview(tmp_path):
    raw = make_raw(300, 520, bits=12, flip=5, seed=2)
    rawio.write_dng(tmp_path / "x.dng", raw)
    with tifffile.TiffFile(tmp_path / "x.dng") as t:
        main, preview = t.pages[0], t.pages[0].pages[0]
        assert main.compression == 7 and main.tilewidth == 256
        assert preview.tags[254].value == 1 and preview.shape[2] == 3 and max(preview.shape[:2]) <= 256
    with rawpy.imread(str(tmp_path / "x.dng")) as r:
        assert np.array_equal(r.raw_image_visible, raw.mosaic)


@pytest.mark.parametrize("source", ["camera", "auto", "daylight"])
def test_dng_as_shot_neutral_only_where_the_original_had_one(tmp_path, source):
    """A RAW without an as-shot white balance (LibRaw's auto WB stands in for it) gives a DNG without
    AsShotNeutral, so every converter falls back to its own default for both files (dcraw: daylight, LibRaw:
    auto WB, recomputed from the same mosaic); a camera's (or LibRaw's daylight fallback) is written."""
    raw = make_raw(64, 96, seed=4, wb=[1.3, 1.0, 1.7], wb_source=source)
    rawio.write_dng(tmp_path / "x.dng", raw)
    with tifffile.TiffFile(tmp_path / "x.dng") as t:
        assert (50728 in t.pages[0].tags) == (source != "auto")
    back = rawio.read_raw(tmp_path / "x.dng")
    if source == "auto":
        assert back.wb_source == "auto"
        np.testing.assert_allclose(back.wb, rawio.libraw_auto_wb(raw.mosaic, raw.cfa, raw.black, raw.white))
    else:
        assert back.wb_source == "camera"
        np.testing.assert_allclose(back.wb, raw.wb, rtol=1e-6)


@pytest.mark.parametrize("h,w,bits,kind", [(300, 520, 16, "extremes"), (37, 53, 12, "noise"), (64, 96, 8, "flat"),
                                           (260, 300, 14, "skewed")])
def test_lj92_tiles_decode_bit_exact(tmp_path, h, w, bits, kind):
    """Differences that wrap modulo 2**16, odd widths (one component), one-symbol and very skewed tables."""
    rng = np.random.default_rng(h)
    top = (1 << bits) - 1
    if kind == "extremes":
        mosaic = np.where(rng.random((h, w)) < 0.5, 0, top)
    elif kind == "noise":
        mosaic = rng.integers(0, top + 1, (h, w))
    elif kind == "flat":
        mosaic = np.full((h, w), 77)
    else:
        mosaic = np.where(rng.random((h, w)) < 1e-4, rng.integers(0, top + 1, (h, w)), 1000)
    raw = make_raw(h, w, bits=bits, black=0)
    raw.mosaic = mosaic.astype(np.uint16)
    rawio.write_dng(tmp_path / "x.dng", raw)
    with rawpy.imread(str(tmp_path / "x.dng")) as r:
        assert np.array_equal(r.raw_image_visible, raw.mosaic)


# ---------------------------------------------------------------------------------------------- converters


def _converters():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import converters

    return converters


@pytest.mark.realdata
@pytest.mark.parametrize("converter", ["dcraw", "rawtherapee", "darktable"])
@pytest.mark.parametrize("name", ["nikon-d750_rose_768x512.dng", "canon-powershot-s40_box_CRW_0119.CRW",
                                  "kodak-dc120_colorchecker_P003908.KDC"])
def test_converters_render_the_dng_like_the_original(tmp_path, converter, name):
    """Each RAW converter renders ``write_dng(read_raw(original))`` like the original: the DNG's tags (colour
    matrices, levels, WB, orientation, crops) mean to it what the original's mean. Skipped where absent.
    The DC120 has no as-shot white balance (dcraw falls back to daylight, RawTherapee to its own choice):
    31.5 / 36.6 dB while its DNG stated LibRaw's auto WB as AsShotNeutral."""
    cv = _converters()
    if converter not in cv.available():
        pytest.skip(f"{converter} not installed")
    if converter == "darktable" and name.endswith(".KDC"):
        pytest.skip("darktable has no decoder for the DC120 (test_darktable_opens_a_dng_of_a_camera_it_cannot_read)")
    if converter == "darktable" and name.endswith(".CRW") and os.environ.get("INVISP_SLOW") != "1":
        pytest.skip("darktable on a 4 MP file: INVISP_SLOW=1")
    src = real_raw(name)
    dng = tmp_path / "x.dng"
    rawio.write_dng(dng, rawio.read_raw(src))
    render = cv.CONVERTERS[converter][1]
    psnr, resized = cv.compare(render(src, tmp_path), render(dng, tmp_path))
    assert not resized and psnr >= 45.0, psnr


@pytest.mark.realdata
def test_darktable_opens_a_dng_of_a_camera_it_cannot_read(tmp_path):
    """darktable (rawspeed) has no decoder for the Kodak DC120 but renders invisp's DNG of it (no as-shot WB)."""
    cv = _converters()
    if "darktable" not in cv.available():
        pytest.skip("darktable not installed")
    src = real_raw("kodak-dc120_colorchecker_P003908.KDC")
    dng = tmp_path / "x.dng"
    rawio.write_dng(dng, rawio.read_raw(src))
    img = cv.darktable_render(dng, tmp_path)
    h, w = img.shape[:2]  # DefaultScale stretches 848 → 1301 columns (darktable drops a row)
    assert abs(h - 976) <= 2 and abs(w - 1301) <= 2 and img.mean() > 20


@needs_exiftool
def test_iptc_keywords_reach_the_dng_and_back(gps_jpeg, tmp_path, test_registry):
    """IPTC (what ``exiftool -Keywords`` and many photo managers write): JPEG → DNG (IPTC-NAA) → JPEG (APP13)."""
    _, jpg = gps_jpeg
    subprocess.run([EXIFTOOL, "-q", "-overwrite_original", "-IPTC:Keywords=rose", "-IPTC:Keywords=garden",
                    "-IPTC:By-line=Me", str(jpg)], check=True)
    ok("decode", jpg, "-o", tmp_path / "x.dng")
    ok("encode", tmp_path / "x.dng", "-o", tmp_path / "again.jpg")
    for f in (tmp_path / "x.dng", tmp_path / "again.jpg"):
        r = subprocess.run([EXIFTOOL, "-j", "-IPTC:all", str(f)], capture_output=True, text=True, check=True)
        tags = json.loads(r.stdout)[0]
        assert tags["Keywords"] == ["rose", "garden"] and tags["By-line"] == "Me", f.name
        r = subprocess.run([EXIFTOOL, "-validate", "-warning", "-a", "-s", str(f)], capture_output=True, text=True)
        assert "Warning" not in r.stdout, r.stdout


def test_big_endian_tiff_is_read_into_little_endian_entries():
    entries = [(271, md.ASCII, 6, b"Canon\0"), (33421, md.SHORT, 2, struct.pack(">HH", 2, 3)),
               (282, md.RATIONAL, 1, struct.pack(">II", 72, 1)), (37500, md.UNDEFINED, 6, b"\x00\x01\x02\x03\x04\x05")]
    body, data, off = struct.pack(">H", len(entries)), b"", 8 + 2 + 12 * len(entries) + 4
    for tag, typ, count, val in entries:
        if len(val) <= 4:
            body += struct.pack(">HHI", tag, typ, count) + val.ljust(4, b"\0")
        else:
            body += struct.pack(">HHII", tag, typ, count, off + len(data))
            data += val
    _, ifd0 = md.read_tree(b"MM\0*" + struct.pack(">I", 8) + body + bytes(4) + data)
    assert ifd0[271].text() == "Canon" and ifd0[33421].values() == (2, 3) and ifd0[282].values() == (72, 1)
    assert ifd0[37500].data == b"\x00\x01\x02\x03\x04\x05"  # maker notes stay as they are


@pytest.mark.parametrize("flip", [0, 5])
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_set_after_encode_turns_the_dng(tmp_path, test_registry, flip, orientation):
    """A JPEG turned by its Orientation tag (as photo managers do) gives a DNG that displays turned alike."""
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=40, w=64, flip=flip)
    jpg = tmp_path / "x.jpg"
    ok("encode", src, "-o", jpg)
    tree = _tree(jpg)
    tree["0th"][274] = md.num_entry(md.SHORT, [orientation])
    jpg.write_bytes(_replace_segment(jpg.read_bytes(), b"Exif\0\0", b"Exif\0\0" + md.write_tiff(md.tree_node(tree))))
    ok("decode", jpg, "-o", tmp_path / "x.dng")
    back = rawio.read_raw(tmp_path / "x.dng")
    probe = np.arange(40 * 64).reshape(40, 64)
    with Image.open(jpg) as im:  # what a viewer shows: the upright pixels turned by the tag
        shown = rawio.apply_flip(rawio.apply_flip(probe, flip), rawio.exif_to_flip(im.getexif()[274]))
    assert np.array_equal(rawio.apply_flip(probe, back.flip), shown)


@needs_exiftool
def test_exiftool_validate_with_the_residual_layer(tmp_path, test_registry):
    src, jpg = tmp_path / "x.dng", tmp_path / "x.jpg"
    write_synthetic_dng(src, h=64, w=96)
    ok("encode", src, "-o", jpg, "--exact")
    r = subprocess.run([EXIFTOOL, "-validate", "-warning", "-a", "-s", str(jpg)], capture_output=True, text=True)
    assert "Warning" not in r.stdout, r.stdout
