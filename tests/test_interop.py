"""EXIF that validates: an ExifVersion as new as the tags copied need (BodySerialNumber needs 0230), and maker
notes whose value offsets follow them into the JPEG and the DNG (or that are dropped, saying so).

The inputs are made here by appending tags to a DNG byte by byte (``add_exif``), independently of invisp's own
TIFF writer; ``exiftool -validate`` checks the outputs where it is installed."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run
from PIL import Image
from synthraw import DEFAULT_EXIF, write_synthetic_dng

MAKER_NOTE, SERIAL, EXIF_IFD = 0x927C, 0xA431, 0x8769
CANON_TEXT = (b"Canon EOS 550D\0", b"Firmware Version 1.0.9\0")


def _ifd(entries: list[tuple[int, int, int, bytes]], at: int, tail: int = 0) -> bytes:
    """A little-endian IFD at position ``at`` (entries: tag, type, count, value bytes), its out-of-line values
    right after it, their offsets counted from position 0; ``tail`` bytes before the table (a header)."""
    table, values = b"", b""
    data_at = at + tail + 2 + 12 * len(entries) + 4
    for tag, typ, count, value in sorted(entries):
        if len(value) <= 4:
            table += struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")
        else:
            table += struct.pack("<HHII", tag, typ, count, data_at + len(values))
            values += value + b"\0" * (len(value) % 2)
    return struct.pack("<H", len(entries)) + table + b"\0\0\0\0" + values


def canon_note(at: int) -> bytes:
    """A Canon maker note (offsets from the TIFF header) written at ``at``, with its footer."""
    note = _ifd([(0x6, 2, len(CANON_TEXT[0]), CANON_TEXT[0]), (0x7, 2, len(CANON_TEXT[1]), CANON_TEXT[1]),
                 (0xC, 4, 1, struct.pack("<I", 1234567))], at)
    return note + b"II*\0" + struct.pack("<I", at)


def sony_note(at: int) -> bytes:
    """A Sony DSC maker note: 12-byte header, then an IFD whose offsets count from the TIFF header."""
    return b"SONY DSC \0\0\0" + _ifd([(0x102, 4, 1, struct.pack("<I", 2)), (0x104, 10, 1, struct.pack("<ii", 0, 10)),
                                      (0xB020, 2, 9, b"Standard\0")], at, tail=12)


def add_exif(path: Path, note: Callable[[int], bytes] | None = None, serial: str | None = None) -> None:
    """Append a maker note (built for the position it lands at) and/or a BodySerialNumber to ``path``'s Exif IFD:
    a new copy of that IFD at the end of the file, the pointer of IFD0 moved to it."""
    data = bytearray(path.read_bytes())
    ifd0 = struct.unpack_from("<I", data, 4)[0]
    zeroth = {struct.unpack_from("<H", data, ifd0 + 2 + 12 * k)[0]: ifd0 + 2 + 12 * k
              for k in range(struct.unpack_from("<H", data, ifd0)[0])}
    exif_at = struct.unpack_from("<I", data, zeroth[EXIF_IFD] + 8)[0]
    exif = {struct.unpack_from("<H", data, exif_at + 2 + 12 * k)[0]: bytes(data[exif_at + 2 + 12 * k:][:12])
            for k in range(struct.unpack_from("<H", data, exif_at)[0])}
    for tag, typ, value in ((MAKER_NOTE, 7, note), (SERIAL, 2, serial and serial.encode() + b"\0")):
        if value is None:
            continue
        data += b"\0" * (len(data) % 2)
        blob = value(len(data)) if callable(value) else value
        exif[tag] = struct.pack("<HHII", tag, typ, len(blob), len(data))
        data += blob
    data += b"\0" * (len(data) % 2)
    struct.pack_into("<I", data, zeroth[EXIF_IFD] + 8, len(data))
    data += struct.pack("<H", len(exif)) + b"".join(exif[t] for t in sorted(exif)) + b"\0\0\0\0"
    path.write_bytes(bytes(data))


def tiff_exif(path: Path) -> tuple[bytes, dict[int, tuple[int, int, int]]]:
    """(the TIFF stream of a JPEG's APP1 EXIF or of a DNG, {tag: (type, count, value position)} of its Exif IFD)."""
    tiff = Image.open(path).info["exif"][6:] if path.suffix == ".jpg" else path.read_bytes()
    assert tiff[:4] == b"II*\0"

    def entries(at: int) -> dict[int, tuple[int, int, int]]:
        out = {}
        for k in range(struct.unpack_from("<H", tiff, at)[0]):
            tag, typ, count, value = struct.unpack_from("<HHII", tiff, at + 2 + 12 * k)
            size = count * {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1, 10: 8}.get(typ, 4)
            out[tag] = (typ, count, value if size > 4 else at + 10 + 12 * k)
        return out

    pointer = entries(struct.unpack_from("<I", tiff, 4)[0])[EXIF_IFD][2]
    return tiff, entries(struct.unpack_from("<I", tiff, pointer)[0])


def exiftool_ok(path: Path) -> None:
    """``exiftool -validate -warning -a`` says OK (skipped where exiftool is not installed)."""
    if shutil.which("exiftool"):
        out = subprocess.run(["exiftool", "-validate", "-warning", "-a", str(path)], capture_output=True, text=True,
                             timeout=60).stdout
        assert out.split(":", 1)[-1].strip() == "OK", out


def _round_trip(tmp_path: Path, src: Path) -> list[Path]:
    for args in (("encode", src, "-o", tmp_path / "o.jpg"), ("decode", tmp_path / "o.jpg", "-o", tmp_path / "o.dng")):
        r = run(*args)
        assert r.exit_code == 0, r.output
    return [tmp_path / "o.jpg", tmp_path / "o.dng"]


def test_body_serial_number_gets_a_matching_exif_version(tmp_path) -> None:
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=32, w=48)
    add_exif(src, serial="2831200437")
    data = bytearray(src.read_bytes())  # the original states EXIF 2.21: too old for BodySerialNumber
    tiff, exif = tiff_exif(src)
    data[exif[0x9000][2]:exif[0x9000][2] + 4] = b"0221"
    src.write_bytes(bytes(data))
    for out in _round_trip(tmp_path, src):
        tiff, exif = tiff_exif(out)
        assert tiff[exif[SERIAL][2]:][:11] == b"2831200437\0", out
        assert int(tiff[exif[0x9000][2]:][:4]) >= 230, out
        exiftool_ok(out)


@pytest.mark.parametrize(("make", "note", "texts"), [("Canon", canon_note, CANON_TEXT),
                                                      ("SONY", sony_note, (b"Standard\0",))])
def test_maker_note_offsets_follow_it(tmp_path, make, note, texts) -> None:
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=32, w=48, exif={**DEFAULT_EXIF, "make": make})
    add_exif(src, note=note)
    exiftool_ok(src)
    for out in _round_trip(tmp_path, src):
        tiff, exif = tiff_exif(out)
        _, count, at = exif[MAKER_NOTE]
        assert tiff[at:at + count] == note(at), out  # the note as that camera would have written it there
        for text in texts:
            assert tiff.count(text) == 1
        exiftool_ok(out)


def test_maker_note_pointing_outside_itself_is_dropped(tmp_path, caplog) -> None:
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=32, w=48, exif={**DEFAULT_EXIF, "make": "Canon"})
    add_exif(src, note=lambda at: canon_note(at + 4096))  # offsets 4 kB past their values
    with caplog.at_level("WARNING", logger="invisp"):
        outs = _round_trip(tmp_path, src)
    assert "maker notes not carried" in caplog.text
    for out in outs:
        assert MAKER_NOTE not in tiff_exif(out)[1]


def test_exif_and_gps_versions_follow_the_tags() -> None:
    from invisp_cli import metadata as md

    def v(ifd: dict, interop: bool = False) -> bytes:
        return md.exif_version(ifd, interop).data

    stated = md.Entry(md.UNDEFINED, 4, b"0221")
    assert v({}) == b"0232" and v({36864: stated}) == b"0221" and v({}, interop=True) == b"0232"
    assert v({36864: stated, 0xA434: md.ascii_entry("EF-S 18-55")}) == b"0230"  # LensModel: EXIF 2.3
    assert v({36864: stated, 0x9010: md.ascii_entry("+01:00")}) == b"0231"  # OffsetTime: 2.31
    assert v({36864: md.Entry(md.UNDEFINED, 4, b"0300"), 0xA431: md.ascii_entry("1")}) == b"0300"  # never lowered
    gps22 = md.num_entry(md.BYTE, [2, 2, 0, 0])
    assert md.gps_version({0: gps22, 2: md.num_entry(md.RATIONAL, [1, 1] * 3)}).values() == (2, 2, 0, 0)
    assert md.gps_version({0: gps22, 0x1F: md.num_entry(md.RATIONAL, [5, 1])}).values() == (2, 3, 0, 0)
    assert md.gps_version({2: md.num_entry(md.RATIONAL, [1, 1] * 3)}).values() == (2, 3, 0, 0)


def test_develop_jpeg_exif_validates(tmp_path) -> None:
    src = tmp_path / "in.dng"
    write_synthetic_dng(src, h=32, w=48, exif={**DEFAULT_EXIF, "lens": "EF-S 18-55mm"})
    assert run("develop", src, "-o", tmp_path / "d.jpg", "--exposure", "0.5").exit_code == 0
    tiff, exif = tiff_exif(tmp_path / "d.jpg")
    assert tiff[exif[0xA434][2]:][:13] == b"EF-S 18-55mm\0" and int(tiff[exif[0x9000][2]:][:4]) >= 230
    assert {0xA002, 0xA003, 0x9101} <= exif.keys()  # pixel dimensions, ComponentsConfiguration
    exiftool_ok(tmp_path / "d.jpg")
