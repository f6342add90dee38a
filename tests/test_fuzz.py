"""A bounded fuzz run in the default tests: mutated RAW headers and invisp JPEGs (truncation, bit flips, TIFF
field mutations, checksummed record edits, residual-layer damage), each checked by ``fuzzing.check``. The long
run is ``benchmarks/fuzz.py``."""

from __future__ import annotations

import random

from conftest import run
from fuzzing import batch_cases, check, check_batch, jpeg_cases, raw_cases, summary
from synthraw import write_synthetic_dng

CASES_PER_KIND = 24


def test_fuzz_raw_inputs(tmp_path, test_registry):
    dng = tmp_path / "seed.dng"
    write_synthetic_dng(dng, h=40, w=56)
    rng = random.Random(1)
    results = [(case, *check(case, tmp_path / f"c{i}"))
               for i, case in enumerate(raw_cases(dng.read_bytes(), rng, CASES_PER_KIND))]
    assert summary(results)["failures"] == 0, summary(results)["failed"]
    assert len({code for _, code, _ in results} - {0}) >= 1  # the mutations do reach the error paths


def test_fuzz_invisp_jpegs(tmp_path, test_registry):
    dng = tmp_path / "seed.dng"
    write_synthetic_dng(dng, h=40, w=56)
    other_dng = tmp_path / "other.dng"
    write_synthetic_dng(other_dng, h=40, w=56, seed=3)
    plain, exact, other = tmp_path / "plain.jpg", tmp_path / "exact.jpg", tmp_path / "other.jpg"
    assert run("encode", dng, "-o", plain).exit_code == 0
    assert run("encode", dng, "-o", exact, "--exact").exit_code == 0
    assert run("encode", other_dng, "-o", other).exit_code == 0
    rng = random.Random(2)
    cases = jpeg_cases(plain.read_bytes(), exact.read_bytes(), rng, 2 * CASES_PER_KIND, tmp_path,
                       other.read_bytes())
    results = [(case, *check(case, tmp_path / f"c{i}")) for i, case in enumerate(cases)]
    assert summary(results)["failures"] == 0, summary(results)["failed"]
    assert {2, 4} <= {code for _, code, _ in results}  # unreadable files and refused metadata both occur


def test_fuzz_batch_folders(tmp_path):
    """Batch folders of RAWs, damaged RAWs and things that are not files, under odd names, into a folder whose
    manifest holds lines that are not records (``fuzzing.check_batch``; the shipped front-end model)."""
    dng = tmp_path / "seed.dng"
    write_synthetic_dng(dng, h=40, w=56)
    rng = random.Random(3)
    results = [(case, *check_batch(case, dng.read_bytes(), tmp_path / f"b{i}"))
               for i, case in enumerate(batch_cases(rng, 6))]
    assert summary(results)["failures"] == 0, summary(results)["failed"]
    assert {0, 8} <= {code for _, code, _ in results}  # clean batches and batches with a failed file both occur
