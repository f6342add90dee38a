"""A seeded mutator of invisp's inputs and the checks every hostile case must pass.

Used by ``tests/test_fuzz.py`` (a bounded number of cases in the default run) and ``benchmarks/fuzz.py`` (as many
as asked). Each case runs the CLI in-process, as a user would type it, on one mutated file, and must end with:
exit 0, or one ``invisp: error:`` line with a documented exit code (2 input, 3 sensor, 4 metadata, 5 model,
6 output, 8 verify: pixels changed); no traceback, no ``internal error``; the input unchanged (SHA-256
before/after); no temporary file left; no output file unless the command succeeded; and a JPEG whose pixels
were altered after encode never decodes in silence (a warning or a note, or a refusal)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from PIL import Image

from invisp_cli.cli import main
from invisp_cli.containers import integrity, jpeg
from invisp_cli.rawio.image import apply_flip

DOCUMENTED_EXIT_CODES = {0, 2, 3, 4, 5, 6, 8}


@dataclass
class Case:
    name: str
    data: bytes
    command: str  # "encode" (a RAW input) or "decode"/"verify"/"info" (an invisp JPEG input)
    altered: bool = False  # the pixels were changed after encode: decode must not be silent about it


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, len(data))]


def flip_bits(data: bytes, rng: random.Random, n: int = 8, head: int | None = None) -> bytes:
    out = bytearray(data)
    for _ in range(n):
        i = rng.randrange(0, min(len(out), head or len(out)))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def mutate_tiff_field(data: bytes, rng: random.Random) -> bytes:
    """Set the value/offset field of a random entry of the first TIFF IFD to an extreme or random number."""
    if data[:2] not in (b"II", b"MM"):
        return flip_bits(data, rng)
    e = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(e + "I", data, 4)
    if ifd + 2 > len(data):
        return flip_bits(data, rng)
    (count,) = struct.unpack_from(e + "H", data, ifd)
    if not count or ifd + 2 + 12 * count > len(data):
        return flip_bits(data, rng)
    entry = ifd + 2 + 12 * rng.randrange(count)
    out = bytearray(data)
    value = rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF, rng.randrange(1 << 32)])
    field = rng.choice(["count", "value", "type"])
    if field == "type":
        struct.pack_into(e + "H", out, entry + 2, rng.choice([0, 13, 0xFFFF, rng.randrange(1, 13)]))
    else:
        struct.pack_into(e + "I", out, entry + (4 if field == "count" else 8), value)
    return bytes(out)


def edit_record(jpg: bytes, rng: random.Random, tmp: Path) -> bytes:
    """An invisp JPEG whose reconstruction record has one value replaced and a valid checksum: only validation can
    tell it is wrong."""
    src = tmp / "record-src.jpg"
    src.write_bytes(jpg)
    rgb, params = jpeg.read_jpeg(src)
    where = rng.choice(["raw", "render"])
    record = getattr(params, where)
    key = rng.choice(sorted(record))
    record[key] = rng.choice([float("1e-300"), 1e300, -1, 0, 2**40, "x", None, [], [[0]], True])
    try:
        return jpeg.encode_jpeg(rgb, params)
    except Exception:  # noqa: BLE001 - a value that cannot even be serialised: damage the bytes instead
        return flip_bits(jpg, rng)


def raw_cases(dng: bytes, rng: random.Random, n: int) -> list[Case]:
    makers: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("truncated", lambda d: truncate(d, rng)),
        ("header bits", lambda d: flip_bits(d, rng, n=rng.randrange(1, 16), head=4096)),
        ("bits anywhere", lambda d: flip_bits(d, rng, n=rng.randrange(1, 64))),
        ("tiff field", lambda d: mutate_tiff_field(d, rng)),
    ]
    cases = []
    for i in range(n):
        name, make = makers[i % len(makers)]
        cases.append(Case(f"raw {name} #{i}", make(dng), "encode"))
    return cases


def turned(jpg: bytes, rng: random.Random) -> bytes:
    """The decoded image turned by a random dihedral transform (not the identity) and re-saved at a random
    quality with the file's metadata: what an editor's "rotate" does."""
    with Image.open(io.BytesIO(jpg)) as img:
        info = dict(img.info)
        rgb = apply_flip(np.asarray(img.convert("RGB")), rng.randrange(1, 8))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=rng.choice([50, 90, 100]), exif=info.get("exif", b""),
                              xmp=info.get("xmp", b""))
    return buf.getvalue()


def scan_damage(jpg: bytes, rng: random.Random) -> bytes:
    """Bytes of the entropy-coded data zeroed or flipped (not its last bytes: the EOI stays)."""
    start = jpg.index(b"\xff\xda") + 20
    at = rng.randrange(start, len(jpg) - 80)
    out = bytearray(jpg)
    for i in range(at, at + rng.choice([1, 8, 64])):
        out[i] = 0 if rng.random() < 0.5 else out[i] ^ 0x5A
    return bytes(out)


def table_edit(jpg: bytes, rng: random.Random) -> bytes:
    """One quantisation-table entry changed (the image data untouched)."""
    at = jpg.index(b"\xff\xdb") + 5 + rng.randrange(64)
    out = bytearray(jpg)
    out[at] = max(1, min(255, out[at] * 2 if out[at] < 128 else out[at] // 2))
    return bytes(out)


def pixels_differ(original: bytes, mutated: bytes) -> bool:
    """Whether ``mutated`` decodes to pixels that are none of the 8 turns of ``original``'s (a table entry that
    only scales coefficients the image does not use changes nothing; undecodable counts as changed)."""
    def decoded(data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))

    try:
        a, b = decoded(original), decoded(mutated)
    except (OSError, SyntaxError, ValueError):
        return True
    return not any(np.array_equal(apply_flip(a, f), b) for f in range(8) if apply_flip(a, f).shape == b.shape)


def segment_surgery(jpg: bytes, other: bytes, rng: random.Random) -> bytes:
    """The XMP record segment duplicated, removed, or another file's inserted after it."""
    def xmp_segment(data: bytes) -> tuple[int, int]:
        at = data.index(integrity.XMP_HEADER) - 4
        return at, at + 2 + int.from_bytes(data[at + 2 : at + 4], "big")

    a, b = xmp_segment(jpg)
    kind = rng.choice(["duplicate", "remove", "foreign"])
    if kind == "remove":
        return jpg[:a] + jpg[b:]
    c, d = xmp_segment(other)
    return jpg[:b] + (jpg[a:b] if kind == "duplicate" else other[c:d]) + jpg[b:]


def jpeg_cases(plain: bytes, exact: bytes, rng: random.Random, n: int, tmp: Path,
               other: bytes | None = None) -> list[Case]:
    """``n`` hostile invisp JPEGs from ``plain`` and ``exact`` (the same image with a bit-exact layer);
    ``other``: a second invisp JPEG of another image, for foreign records."""
    makers: list[tuple[str, Callable[[], bytes], bool]] = [
        ("truncated", lambda: truncate(rng.choice([plain, exact]), rng), False),
        ("metadata bits", lambda: flip_bits(plain, rng, n=rng.randrange(1, 8), head=plain.index(b"\xff\xda")), False),
        ("record edit", lambda: edit_record(plain, rng, tmp), False),
        ("layer damage", lambda: flip_bits(exact, rng, n=rng.randrange(1, 8)), False),
        ("turned and re-saved", lambda: turned(rng.choice([plain, exact]), rng), True),
        ("scan damage", lambda: scan_damage(plain, rng), True),
        ("table edit", lambda: table_edit(rng.choice([plain, exact]), rng), True),
        ("segment surgery", lambda: segment_surgery(plain, other or plain, rng), False),
    ]
    cases = []
    for i in range(n):
        name, make, altered = makers[i % len(makers)]
        command = rng.choice(["decode", "decode", "verify", "info"])
        data = make()  # plain and exact hold the same image data: plain's pixels are both files'
        cases.append(Case(f"jpeg {name} #{i} ({command})", data, command, altered and pixels_differ(plain, data)))
    return cases


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def check(case: Case, folder: Path) -> tuple[int, str]:
    """Run one case in its own empty ``folder``; return (exit code, "" if every guarantee held, else what failed)."""
    folder.mkdir(parents=True, exist_ok=True)
    src = folder / ("in.dng" if case.command == "encode" else "in.jpg")
    src.write_bytes(case.data)
    before = sha(src)
    out = folder / ("out.jpg" if case.command == "encode" else "out.dng")
    args = {"encode": ["encode", src, "-o", out], "decode": ["decode", src, "-o", out],
            "verify": ["verify", src], "info": ["info", src]}[case.command]
    r = CliRunner().invoke(main, [str(a) for a in args])
    stderr = r.stderr.strip().splitlines()
    problems = []
    if r.exit_code not in DOCUMENTED_EXIT_CODES:
        problems.append(f"exit code {r.exit_code}")
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        problems.append(f"uncaught {type(r.exception).__name__}: {r.exception}")
    if r.exit_code != 0 and not (len(stderr) == 1 and stderr[0].startswith("invisp: error:")):
        problems.append(f"stderr not one error line: {r.stderr[:300]!r}")
    if "Traceback" in r.output or "internal error" in r.output:
        problems.append("traceback/internal error")
    if sha(src) != before:
        problems.append("input changed")
    left = [p.name for p in folder.iterdir() if ".part" in p.name]
    if left:
        problems.append(f"temporary files left: {left}")
    if r.exit_code != 0 and out.exists():
        problems.append("output written by a failed command")
    verified = "SHA-256 verified" in r.output  # a residual layer's RAW, checked against encode's hash: not wrong
    if case.altered and case.command == "decode" and r.exit_code == 0 and not (
            "warning" in r.stderr or "note" in r.stderr or verified):
        problems.append("altered pixels decoded in silence")
    if case.altered and case.command == "verify" and r.exit_code == 0 and not verified:
        problems.append("verify passed altered pixels")
    return r.exit_code, "; ".join(problems)


def summary(results: list[tuple[Case, int, str]]) -> dict:
    """Cases, failures (with what failed) and how many cases ended with each exit code."""
    codes: dict[str, int] = {}
    for _, code, _ in results:
        codes[str(code)] = codes.get(str(code), 0) + 1
    failed = [[c.name, p] for c, _, p in results if p]
    return {"cases": len(results), "failures": len(failed), "exit_codes": dict(sorted(codes.items())),
            "failed": failed}


# ------------------------------------------------------------------------------------------------ batches


#: what a folder given to a batch may hold (issue 18, items 5–6): a RAW, a file that is none, and things that are not
#: files (never taken, never blocking), under names that are not UTF-8, have spaces, controls or 240 bytes
BATCH_ENTRIES = ("raw", "not raw", "fifo", "folder", "dangling link", "link to fifo")
BATCH_NAMES = (b"\xff\xfe", b"sp ace", "\u00e9t\u00e9".encode(), b"\x01ctl", b"n" * 236, b"plain")
#: manifest lines that are not records: never the end of a batch
MANIFEST_JUNK = (b"[" * 100_000, b'{"op": "encode", "output": "\xff\xfe"}', b"[1]", b'"x"', b'{"output": [1]}',
                 b'{"op": "enc')


@dataclass
class BatchCase:
    name: str
    entries: list[tuple[bytes, str]]  # (file name, one of BATCH_ENTRIES)
    junk: list[bytes]  # lines appended to an existing manifest


def batch_cases(rng: random.Random, n: int) -> list[BatchCase]:
    cases = []
    for i in range(n):
        names = rng.sample(BATCH_NAMES, rng.randrange(2, 5))
        entries = [(stem + rng.choice([b".dng", b".DNG"]), rng.choice(BATCH_ENTRIES)) for stem in names]
        cases.append(BatchCase(f"batch #{i}", entries, rng.sample(MANIFEST_JUNK, rng.randrange(0, 4))))
    return cases


def check_batch(case: BatchCase, dng: bytes, folder: Path) -> tuple[int, str]:
    """``encode IN -d OUT -j 1 --json`` over the case's folder, OUT holding a manifest with junk lines; return
    (exit code, "" if every guarantee held): exit 0 or 8, the JSON summary printed and counting exactly the RAW
    entries that are files (the others are never taken), each RAW ok and each non-RAW failed, no traceback or
    internal error, the inputs unchanged, no temporary file, a UTF-8 manifest line per file."""
    src, out = folder / "in", folder / "out"
    src.mkdir(parents=True)
    out.mkdir()
    regular = {}
    for name, kind in case.entries:
        path = os.path.join(os.fsencode(src), name)
        if kind in ("raw", "not raw"):
            data = dng if kind == "raw" else b"not a raw file" * 20
            with open(path, "wb") as f:
                f.write(data)
            regular[path] = sha_bytes(data)
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "folder":
            os.mkdir(path)
        elif kind == "dangling link":
            os.symlink(b"/nonexistent/" + name, path)
        else:
            os.mkfifo(path + b".fifo")
            os.symlink(path + b".fifo", path)
    (out / "invisp-manifest.jsonl").write_bytes(b"".join(j + b"\n" for j in [b'{"op": "encode"}', *case.junk]))
    r = CliRunner().invoke(main, ["encode", str(src), "-d", str(out), "-j", "1", "--json"])
    problems = []
    want = (sum(k == "raw" for _, k in case.entries), sum(k == "not raw" for _, k in case.entries))
    if "Traceback" in r.output or "internal error" in r.output:
        problems.append("traceback/internal error")
    if not sum(want):  # nothing to take: one error line, exit 2
        if r.exit_code != 2 or r.stderr.strip().splitlines()[-1:] != [f"invisp: error: nothing to encode in {src}"]:
            problems.append(f"exit code {r.exit_code} without files: {r.stderr[-300:]!r}")
        return r.exit_code, "; ".join(problems)
    if r.exit_code not in (0, 8):
        problems.append(f"exit code {r.exit_code}: {r.stderr[-300:]!r}")
    try:
        s = json.loads(r.stdout)
        if (s["ok"], s["failed"], s["files"]) != (*want, sum(want)):
            problems.append(f"summary {s['ok']} ok {s['failed']} failed of {s['files']}, expected {want}")
    except (ValueError, KeyError) as e:
        problems.append(f"no JSON summary ({e}): {r.stdout[:200]!r}")
    for path, digest in regular.items():
        with open(path, "rb") as f:
            if sha_bytes(f.read()) != digest:
                problems.append(f"input changed: {path!r}")
    if any(b".part" in p for p in os.listdir(os.fsencode(out))):
        problems.append("temporary files left")
    lines = (out / "invisp-manifest.jsonl").read_bytes().splitlines()[1 + len(case.junk):]
    try:
        if len([json.loads(line.decode("utf-8")) for line in lines]) != len(regular):
            problems.append(f"{len(lines)} manifest lines for {len(regular)} files")
    except ValueError as e:
        problems.append(f"manifest line not UTF-8 JSON: {e}")
    return r.exit_code, "; ".join(problems)


def sha_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
