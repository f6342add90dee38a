"""A seeded mutator of invisp's inputs and the checks every hostile case must pass.

Used by ``tests/test_fuzz.py`` (a bounded number of cases in the default run) and ``benchmarks/fuzz.py`` (as many
as asked). Each case runs the CLI in-process, as a user would type it, on one mutated file, and must end with:
exit 0, or one ``invisp: error:`` line with a documented exit code (2 input, 3 sensor, 4 metadata, 5 model,
6 output); no traceback, no ``internal error``; the input unchanged (SHA-256 before/after); no temporary file
left; no output file unless the command succeeded."""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from invisp_cli.cli import main
from invisp_cli.containers import jpeg

DOCUMENTED_EXIT_CODES = {0, 2, 3, 4, 5, 6}


@dataclass
class Case:
    name: str
    data: bytes
    command: str  # "encode" (a RAW input) or "decode"/"verify"/"info" (an invisp JPEG input)


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


def jpeg_cases(plain: bytes, exact: bytes, rng: random.Random, n: int, tmp: Path) -> list[Case]:
    makers: list[tuple[str, Callable[[], bytes]]] = [
        ("truncated", lambda: truncate(rng.choice([plain, exact]), rng)),
        ("metadata bits", lambda: flip_bits(plain, rng, n=rng.randrange(1, 8), head=plain.index(b"\xff\xda"))),
        ("record edit", lambda: edit_record(plain, rng, tmp)),
        ("layer damage", lambda: flip_bits(exact, rng, n=rng.randrange(1, 8))),
    ]
    cases = []
    for i in range(n):
        name, make = makers[i % len(makers)]
        command = rng.choice(["decode", "decode", "verify", "info"])
        cases.append(Case(f"jpeg {name} #{i} ({command})", make(), command))
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
    return r.exit_code, "; ".join(problems)


def summary(results: list[tuple[Case, int, str]]) -> dict:
    """Cases, failures (with what failed) and how many cases ended with each exit code."""
    codes: dict[str, int] = {}
    for _, code, _ in results:
        codes[str(code)] = codes.get(str(code), 0) + 1
    failed = [[c.name, p] for c, _, p in results if p]
    return {"cases": len(results), "failures": len(failed), "exit_codes": dict(sorted(codes.items())),
            "failed": failed}
