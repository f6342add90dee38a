"""invisp_cli.rawio: reading RAW files, DNG round trips, orientation, errors."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest
import rawpy
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from synthraw import make_raw, write_synthetic_dng

from invisp_cli import rawio
from invisp_cli.errors import InputError, OutputError, UnsupportedSensorError
from invisp_cli.fileio import atomic_output

DATA = (Path(__file__).parents[1] / ".." / "shared" / "data").resolve()
SLOW = os.environ.get("INVISP_SLOW") == "1"


def _real_files() -> list[Path]:
    files = sorted((DATA / "raw").glob("*")) + sorted((DATA / "raw-gpl").glob("*"))
    return [f for f in files if f.suffix.lower() in (".dng", ".crw", ".kdc", ".qtk")]


REAL = _real_files()


def _real_params() -> list:
    if not REAL:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"real RAW data not found under {DATA}"))]
    return [pytest.param(f, id=f.name, marks=pytest.mark.realdata) for f in REAL]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def _assert_same_raw(a: rawio.RawImage, b: rawio.RawImage, *, exif: bool = True) -> None:
    assert b.mosaic.dtype == np.uint16 and b.mosaic.shape == a.mosaic.shape
    assert np.array_equal(a.mosaic, b.mosaic)
    assert b.cfa == a.cfa
    assert b.black.shape == (2, 2) and np.array_equal(a.black, b.black)
    assert b.white == a.white and b.bits == a.bits
    assert b.flip == a.flip
    np.testing.assert_allclose(b.wb, a.wb, rtol=1e-6)
    np.testing.assert_allclose(b.rgb_cam, a.rgb_cam, atol=1e-5)
    np.testing.assert_allclose(b.rgb_cam.sum(axis=1), 1.0, atol=1e-5)
    if exif:
        for k, v in a.exif.items():
            if k in ("exif", "xmp", "iptc", "dng"):
                continue  # packed metadata: tests/test_metadata.py
            assert k in b.exif, k
            if isinstance(v, float):
                assert b.exif[k] == pytest.approx(v, rel=1e-6), k
            else:
                assert b.exif[k] == v, k


# ------------------------------------------------------------------------------------- synthetic DNG


@pytest.mark.parametrize("bits", [8, 10, 12, 14])
@pytest.mark.parametrize("cfa", rawio.BAYER_LAYOUTS)
def test_synthetic_dng_round_trip(tmp_path: Path, cfa: str, bits: int) -> None:
    scale = 1 << (bits - 8)
    black = np.array([[16, 17], [18, 20]]) * scale // 4  # non-uniform per CFA position
    raw = write_synthetic_dng(tmp_path / "x.dng", h=37, w=53, cfa=cfa, bits=bits, black=black, seed=bits,
                              wb=[2.2, 1.0, 1.45])
    back = rawio.read_raw(tmp_path / "x.dng")
    _assert_same_raw(raw, back)
    assert back.wb_source == "camera"
    assert back.raw_size == (37, 53) and back.margins == (0, 0)
    np.testing.assert_allclose(back.xyz_to_cam, raw.xyz_to_cam, atol=1e-5)
    with rawpy.imread(str(tmp_path / "x.dng")) as r:
        # what LibRaw itself sees: per-colour-index black mapped through the CFA
        blc = r.black_level_per_channel
        assert [[blc[c] for c in row] for row in r.raw_pattern.tolist()] == black.tolist()
        assert r.raw_pattern.tolist() == rawio.cfa_indices(cfa).tolist()
        assert r.white_level == (1 << bits) - 1


def test_synthetic_float_black_and_16_bit(tmp_path: Path) -> None:
    raw = write_synthetic_dng(tmp_path / "x.dng", h=40, w=48, bits=16, black=0)
    _assert_same_raw(raw, rawio.read_raw(tmp_path / "x.dng"))


def test_write_dng_minimal_exif_and_metadata(tmp_path: Path) -> None:
    raw = make_raw(32, 48, exif={})
    rawio.write_dng(tmp_path / "x.dng", raw)
    back = rawio.read_raw(tmp_path / "x.dng")
    assert set(back.exif) <= {"make", "model", "exif", "dng"}  # + the packed EXIF tree and DNG tags
    page = tifffile.TiffFile(tmp_path / "x.dng").pages[0]
    tags = {t.code: t.value for t in page.tags}
    assert tags[262] == 32803 and tags[258] == raw.bits and tags[259] == 7  # lossless JPEG
    assert tuple(tags[50706]) == (1, 4, 0, 0)
    assert tags[50778] == 21 and tags[305] == "invisp"


def test_write_dng_bad_output(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(OutputError, match="no-such-dir"):
        with atomic_output(tmp_path / "no-such-dir" / "x.dng") as tmp:
            rawio.write_dng(tmp, make_raw(32, 32))

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)  # a failed write names the target, never the temporary file
    with pytest.raises(OutputError, match=r"x\.dng: cannot write output \(No space left"):
        with atomic_output(tmp_path / "x.dng") as tmp:
            rawio.write_dng(tmp, make_raw(32, 32))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cfa", rawio.BAYER_LAYOUTS)
def test_auto_wb_matches_libraw(tmp_path: Path, cfa: str) -> None:
    raw = write_synthetic_dng(tmp_path / "x.dng", h=61, w=83, cfa=cfa, bits=12,
                              black=np.array([[200, 210], [190, 205]]))
    with rawpy.imread(str(tmp_path / "x.dng")) as r:
        r.postprocess(use_auto_wb=True, no_auto_bright=True)
        pm = np.array(r.auto_whitebalance)
    ours = rawio.libraw_auto_wb(raw.mosaic, raw.cfa, raw.black, raw.white)
    np.testing.assert_allclose(ours, pm[:3] / pm[1], rtol=1e-6)


def test_colour_matrix_helpers() -> None:
    xyz = make_raw(8, 8).xyz_to_cam
    rgb_cam, pre_mul = rawio.cam_xyz_coeff(xyz)
    np.testing.assert_allclose(rgb_cam.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(rawio.xyz_to_cam_from_rgb_cam(rgb_cam, pre_mul), xyz, atol=1e-12)


# ---------------------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matches_libraw(tmp_path: Path, orientation: int) -> None:
    flip = rawio.exif_to_flip(orientation)
    assert rawio.flip_to_exif(flip) == orientation
    raw = write_synthetic_dng(tmp_path / "x.dng", h=40, w=64, flip=flip, seed=orientation)
    assert tifffile.TiffFile(tmp_path / "x.dng").pages[0].tags[274].value == orientation
    assert rawio.read_raw(tmp_path / "x.dng").flip == flip
    kw = dict(use_camera_wb=True, no_auto_bright=True, output_bps=8)
    with rawpy.imread(str(tmp_path / "x.dng")) as r:
        assert r.sizes.flip == flip
        upright = r.postprocess(**kw)
    with rawpy.imread(str(tmp_path / "x.dng")) as r:
        sensor = r.postprocess(user_flip=0, **kw)
    assert sensor.shape[:2] == raw.mosaic.shape
    assert np.array_equal(rawio.apply_flip(sensor, flip), upright)
    assert np.array_equal(rawio.undo_flip(upright, flip), sensor)
    assert np.array_equal(rawio.render_reference(tmp_path / "x.dng"), upright)


def test_orientation_is_exif_semantics() -> None:
    """apply_flip(img, exif_to_flip(o)) displays like any EXIF viewer: Pillow's exif_transpose."""
    img = np.arange(3 * 5, dtype=np.uint8).reshape(3, 5) * 10
    for o in range(1, 9):
        im = Image.fromarray(img)
        im.getexif()[0x0112] = o
        want = np.asarray(ImageOps.exif_transpose(im))
        assert np.array_equal(rawio.apply_flip(img, rawio.exif_to_flip(o)), want), o
    with pytest.raises(ValueError):
        rawio.exif_to_flip(0)
    with pytest.raises(ValueError):
        rawio.flip_to_exif(8)


@settings(max_examples=60, deadline=None, database=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), c=st.sampled_from([0, 1, 3]), flip=st.integers(0, 7))
def test_flip_round_trip(h: int, w: int, c: int, flip: int) -> None:
    shape = (h, w) if c == 0 else (h, w, c)
    img = np.arange(int(np.prod(shape))).reshape(shape)
    up = rawio.apply_flip(img, flip)
    assert up.shape[:2] == ((w, h) if flip & 4 else (h, w))
    assert np.array_equal(rawio.undo_flip(up, flip), img)


# ------------------------------------------------------------------------------------------ real files


@pytest.mark.parametrize("path", _real_params())
def test_real_file_reads_and_round_trips(tmp_path: Path, path: Path) -> None:
    is_gopro = path.name.startswith("gopro")
    raw = rawio.read_raw(path)
    h, w = raw.mosaic.shape
    assert raw.cfa in rawio.BAYER_LAYOUTS and raw.wb_source in ("camera", "auto")
    assert raw.wb[1] == 1.0 and np.all(raw.wb > 0)
    np.testing.assert_allclose(raw.rgb_cam.sum(axis=1), 1.0, atol=1e-4)
    assert raw.bits == int(np.ceil(np.log2(raw.white + 1)))
    assert raw.exif.get("make") and raw.exif.get("model")

    out = tmp_path / "x.dng"
    t0 = time.process_time()  # CPU seconds (all threads): wall time says little on a loaded machine
    rawio.write_dng(out, raw)
    t_write = time.process_time() - t0
    assert t_write < (2.0 if h * w > 4e6 else 1.0)

    with rawpy.imread(str(path)) as a, rawpy.imread(str(out)) as b:
        assert np.array_equal(a.raw_image_visible, b.raw_image_visible)
        assert a.raw_pattern.tolist() == b.raw_pattern.tolist()
        assert a.black_level_per_channel == b.black_level_per_channel
        assert a.white_level == b.white_level
        assert a.sizes.flip == b.sizes.flip
        cam_a, cam_b = np.array(a.camera_whitebalance[:3]), np.array(b.camera_whitebalance[:3])
        if cam_a[0] > 0 and cam_a[2] > 0:
            np.testing.assert_allclose(cam_b / cam_b[1], cam_a / cam_a[1], rtol=1e-6)
    back = rawio.read_raw(out)
    _assert_same_raw(raw, back)
    # no as-shot WB in the original (auto) → none in the DNG either: LibRaw recomputes the same auto WB
    assert back.wb_source == raw.wb_source
    assert back.raw_size == (h, w) and back.margins == (0, 0)

    if is_gopro and not SLOW:
        return  # 12 MP renders: INVISP_SLOW=1
    ref, dng = rawio.render_reference(path), rawio.render_reference(out)
    assert ref.dtype == np.uint8 and ref.ndim == 3 and ref.shape[2] == 3
    with rawpy.imread(str(path)) as a, rawpy.imread(str(out)) as b:
        assert b.sizes.pixel_aspect == pytest.approx(a.sizes.pixel_aspect, rel=1e-4)  # DNG DefaultScale (DC120)
    assert dng.shape == ref.shape  # LibRaw stretches non-square pixels alike
    # the only differences left are float32 rounding (as-shot multipliers; DC120's DefaultScale), which AHD
    # amplifies at a few pixels; an auto WB is recomputed by LibRaw from the same mosaic (DC120: 60 dB)
    assert _psnr(ref, dng) > (55.0 if raw.wb_source == "auto" else 70.0)


@pytest.mark.parametrize("path", _real_params())
def test_real_wb_and_colour_match_libraw_render(path: Path) -> None:
    if path.name.startswith("gopro") and not SLOW:
        pytest.skip("12 MP render: INVISP_SLOW=1")
    raw = rawio.read_raw(path)
    with rawpy.imread(str(path)) as r:
        r.postprocess(use_camera_wb=True, no_auto_bright=True, half_size=True)
        pm = np.array(r.auto_whitebalance)
        camera_wb = np.array(r.camera_whitebalance)
    np.testing.assert_allclose(raw.wb, pm[:3] / pm[1], rtol=1e-5)
    if raw.wb_source == "auto":  # only where the file has no camera WB (LibRaw: absent, or −1 as the D30's CRW)
        assert path.suffix.lower() in (".kdc", ".qtk") or camera_wb[0] <= 0


def test_real_exif() -> None:
    gopro = DATA / "raw" / "gopro-hero7_mural_GOPR9231.dng"
    crw = DATA / "raw" / "canon-powershot-s40_box_CRW_0119.CRW"
    ml = DATA / "raw" / "canon-eos-550d_colorchart.dng"
    if not (gopro.exists() and crw.exists() and ml.exists()):
        pytest.skip("real RAW data not found")
    e = rawio.read_raw(gopro).exif
    assert e["make"] == "GoPro" and e["model"] == "HERO7 Black" and e["iso"] == 252
    assert e["datetime"] == "2018:09:26 08:25:27" and e["exposure_time"] == pytest.approx(1 / 576)
    assert e["f_number"] == pytest.approx(2.8) and e["focal_length"] == pytest.approx(3.0)
    assert rawio.read_raw(gopro).flip == 1
    e = rawio.read_raw(crw).exif  # CIFF: its MakeModel record, the rest from LibRaw's own parse
    assert e["make"] == "Canon" and e["model"] == "Canon PowerShot S40" and e["iso"] == 50  # as the camera wrote it
    e = rawio.read_raw(ml).exif  # zero-valued EXIF fields mean "unknown" and are left out
    assert {k: v for k, v in e.items() if k not in ("exif", "dng")} == {"make": "Canon", "model": "Canon EOS Kiss X4"}


# ---------------------------------------------------------------------------------------------- errors


def _dng_tags(h: int, w: int) -> list:
    cm = [v for x in (9020, -2890, -715, -4535, 12436, 2348, -934, 1919, 7086) for v in (x, 10000)]
    return [(254, 4, 1, 0, True), (271, "s", 0, "Test", True), (272, "s", 0, "Cam", True),
            (50706, 1, 4, (1, 4, 0, 0), True), (50707, 1, 4, (1, 1, 0, 0), True),
            (50708, "s", 0, "Test Cam", True), (50717, 4, 1, 4095, True), (50721, 10, 9, cm, True),
            (50778, 3, 1, 21, True)]


def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.dng"
    with pytest.raises(InputError, match="nope.dng"):
        rawio.read_raw(p)
    with pytest.raises(InputError, match="nope.dng"):
        rawio.render_reference(p)
    with pytest.raises(InputError):
        rawio.read_raw(tmp_path)


def test_text_file_renamed_cr2(tmp_path: Path) -> None:
    p = tmp_path / "notes.CR2"
    p.write_text("this is not a raw file\n" * 20)
    with pytest.raises(InputError, match="notes.CR2") as ei:
        rawio.read_raw(p)
    assert "\n" not in str(ei.value)
    (tmp_path / "empty.dng").write_bytes(b"")
    with pytest.raises(InputError, match="empty.dng"):
        rawio.read_raw(tmp_path / "empty.dng")


@pytest.mark.parametrize("frac", [0.02, 0.5, 0.99])
def test_truncated_dng(tmp_path: Path, frac: float, capfd: pytest.CaptureFixture[str]) -> None:
    src = DATA / "raw" / "nikon-d750_rose_768x512.dng"
    if src.exists():
        data = src.read_bytes()
    else:  # no real data: truncate a synthetic DNG instead
        write_synthetic_dng(tmp_path / "full.dng", h=256, w=384)
        data = (tmp_path / "full.dng").read_bytes()
    p = tmp_path / "cut.dng"
    p.write_bytes(data[: int(len(data) * frac)])
    with pytest.raises(InputError, match="cut.dng") as ei:
        rawio.read_raw(p)
    assert "\n" not in str(ei.value)
    assert "Unexpected end of file" not in capfd.readouterr().err  # LibRaw's own chatter is silenced


def test_linear_dng_reads_as_three_samples(tmp_path: Path) -> None:
    p = tmp_path / "linear.dng"
    data = np.random.default_rng(0).integers(0, 4000, (40, 60, 3), dtype=np.uint16)
    with tifffile.TiffWriter(p) as tw:
        tw.write(data, photometric=34892, planarconfig="contig", rowsperstrip=40, metadata=None,
                 extratags=_dng_tags(40, 60))
    raw = rawio.read_raw(p)
    assert raw.cfa == "linear" and raw.black.shape == (3,) and np.array_equal(raw.mosaic, data)


def test_monochrome_dng_is_unsupported(tmp_path: Path) -> None:
    p = tmp_path / "mono.dng"
    data = np.random.default_rng(0).integers(0, 4000, (40, 60), dtype=np.uint16)
    with tifffile.TiffWriter(p) as tw:  # tifffile refuses 1-sample LinearRaw: write, then patch tag 262
        tw.write(data, photometric="minisblack", rowsperstrip=40, metadata=None, extratags=_dng_tags(40, 60))
    off = tifffile.TiffFile(p).pages[0].tags[262].valueoffset
    b = bytearray(p.read_bytes())
    b[off:off + 2] = (34892).to_bytes(2, "little")
    p.write_bytes(bytes(b))
    with pytest.raises(UnsupportedSensorError, match="mono.dng: not supported: monochrome"):
        rawio.read_raw(p)


@pytest.mark.parametrize("planes,pattern,what", [((3, 4, 5, 1), (0, 1, 2, 3), "colour filters"),
                                                 ((0, 1, 2), (0, 1, 1, 0), "not a Bayer pattern")])
def test_non_bayer_cfa_is_unsupported(tmp_path: Path, planes: tuple, pattern: tuple, what: str) -> None:
    p = tmp_path / "cfa.dng"
    data = np.random.default_rng(0).integers(0, 4000, (40, 60), dtype=np.uint16)
    tags = _dng_tags(40, 60) + [(33421, 3, 2, (2, 2), True), (33422, 1, 4, pattern, True),
                                (50710, 1, len(planes), planes, True), (50711, 3, 1, 1, True)]
    with tifffile.TiffWriter(p) as tw:
        tw.write(data, photometric=32803, rowsperstrip=40, metadata=None, extratags=tags)
    with pytest.raises(UnsupportedSensorError, match=what):
        rawio.read_raw(p)


@pytest.mark.parametrize("h", [40, 300])
def test_dng_reads_back_exactly_at_every_tile_geometry(tmp_path: Path, h: int) -> None:
    """Widths around one, two and three DNG tiles (LibRaw misread images exactly two tiles wide)."""
    t = rawio.dng.DNG_TILE
    for w in sorted({t - 2, t, t + 2, 2 * t - 2, 2 * t, 2 * t + 2, 3 * t, 3 * t + 6}):
        raw = make_raw(h, w, seed=w)
        rawio.write_dng(tmp_path / "x.dng", raw)
        assert np.array_equal(rawio.read_raw(tmp_path / "x.dng").mosaic, raw.mosaic), (h, w)
