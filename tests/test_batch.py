"""Batch mode (invisp_cli/batch.py): folders to OUTDIR, a bad file among good ones, resume, workers, Dask, and the
command-line conventions (--json, --quiet, usage errors)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run
from PIL import Image
from synthraw import write_synthetic_dng

from invisp_cli import batch, rawio
from invisp_cli.errors import SomeFilesFailed


def raws(folder: Path, names: list[str]) -> list[Path]:
    """Tiny synthetic DNGs at ``folder/name`` (sub-folders made as needed)."""
    paths = []
    for i, name in enumerate(names):
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        write_synthetic_dng(p, h=40, w=56, seed=i)
        paths.append(p)
    return paths


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / batch.MANIFEST_NAME).read_text().splitlines()]


def summary(result) -> dict:
    assert result.stdout.lstrip().startswith("{"), result.output
    return json.loads(result.stdout)


def test_folder_with_a_corrupt_file(tmp_path, test_registry):
    src, out = tmp_path / "raws", tmp_path / "out"
    raws(src, ["a.dng", "b.DNG", "c.dng"])
    (src / "bad.dng").write_bytes(b"not a raw file" * 20)
    (src / "notes.txt").write_text("not a RAW suffix: not taken")
    r = run("encode", src, "-d", out, "--jobs", "1", "--json")
    assert r.exit_code == SomeFilesFailed.exit_code, r.output
    s = summary(r)
    assert (s["files"], s["ok"], s["failed"], s["skipped"]) == (4, 3, 1, 0)
    assert s["failures"][0]["input"].endswith("bad.dng")
    assert s["megapixels"] == pytest.approx(3 * 40 * 56 / 1e6, abs=3e-3)
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.jpg", "c.jpg", batch.MANIFEST_NAME]
    recs = {Path(rec["input"]).name: rec for rec in manifest(out)}
    assert recs["bad.dng"]["status"] == "error" and "bad.dng" in recs["bad.dng"]["error"]
    assert "\n" not in recs["bad.dng"]["error"]
    ok = recs["a.dng"]
    assert ok["status"] == "ok" and ok["model"] == test_registry.id and ok["error"] is None
    assert ok["output_bytes"] == (out / "a.jpg").stat().st_size
    assert ok["megapixels"] == pytest.approx(40 * 56 / 1e6, abs=1e-3)
    assert "FAILED" in r.stderr and "1 of 4 files failed" in r.stderr


def test_resume_skips_done_files(tmp_path, test_registry):
    src, out = tmp_path / "raws", tmp_path / "out"
    raws(src, ["a.dng", "b.dng", "c.dng"])
    assert run("encode", src, "-d", out, "--jobs", "1").exit_code == 0
    (out / "b.jpg").unlink()  # lost: done again
    c_bytes = (out / "c.jpg").read_bytes()
    s = summary(run("encode", src, "-d", out, "--jobs", "1", "--json"))
    assert (s["ok"], s["skipped"], s["failed"]) == (1, 2, 0)
    assert (out / "b.jpg").is_file() and (out / "c.jpg").read_bytes() == c_bytes
    s = summary(run("encode", src, "-d", out, "--jobs", "1", "--json", "--quality", "80"))  # other settings: redo
    assert (s["ok"], s["skipped"]) == (3, 0)
    (out / batch.MANIFEST_NAME).unlink()  # outputs without records: kept when they are valid invisp JPEGs
    s = summary(run("encode", src, "-d", out, "--jobs", "1", "--json", "--quality", "80"))
    assert (s["ok"], s["skipped"]) == (0, 3)
    assert {rec["status"] for rec in manifest(out)} == {"skipped"}
    s = summary(run("encode", src, "-d", out, "--jobs", "1", "--json", "--quality", "80"))  # now from the records
    assert s["skipped"] == 3 and len(manifest(out)) == 3


def test_two_jobs_then_decode_batch(tmp_path, test_registry):
    src, jpgs, dngs = tmp_path / "raws", tmp_path / "jpgs", tmp_path / "dngs"
    originals = raws(src, ["a.dng", "b.dng", "c.dng"])
    s = summary(run("encode", src, "-d", jpgs, "--jobs", "2", "--json"))
    assert (s["ok"], s["jobs"], s["failed"]) == (3, 2, 0)
    s = summary(run("decode", *sorted(jpgs.glob("*.jpg")), "-d", dngs, "--jobs", "1", "--json"))
    assert (s["ok"], s["failed"]) == (3, 0)
    for orig in originals:
        back, first = rawio.read_raw(dngs / f"{orig.stem}.dng"), rawio.read_raw(orig)
        assert back.mosaic.shape == first.mosaic.shape and back.cfa == first.cfa
    assert {rec["op"] for rec in manifest(dngs)} == {"decode"}
    (dngs / batch.MANIFEST_NAME).unlink()  # outputs without records: invisp's DNGs are kept, another file refused
    (dngs / "c.dng").write_bytes(b"somebody else's file")
    r = run("decode", jpgs, "-d", dngs, "--jobs", "1", "--json")
    s = summary(r)
    assert (s["skipped"], s["failed"], r.exit_code) == (2, 1, SomeFilesFailed.exit_code)
    assert "exists" in s["failures"][0]["error"] and (dngs / "c.dng").read_bytes() == b"somebody else's file"


def test_recursive_mirrors_sub_folders(tmp_path, test_registry):
    src, out = tmp_path / "card", tmp_path / "out"
    raws(src, ["top.dng", "day1/x.dng", "day1/deeper/y.dng", "day2/x.dng"])
    s = summary(run("encode", src, "-d", out, "--jobs", "1", "--json"))  # without -r: the top folder only
    assert s["ok"] == 1 and not (out / "day1").exists()
    s = summary(run("encode", src, "-r", "-d", out, "--jobs", "1", "--json", "--quiet"))
    assert (s["ok"], s["skipped"]) == (3, 1)
    assert {p.relative_to(out).as_posix() for p in out.rglob("*.jpg")} == {
        "top.jpg", "day1/x.jpg", "day1/deeper/y.jpg", "day2/x.jpg"}
    assert Image.open(out / "day1" / "deeper" / "y.jpg").size == (56, 40)
    # OUTDIR inside the input folder: its files are never taken as inputs
    s = summary(run("decode", out, "-r", "-d", out / "dng", "--jobs", "1", "--json"))
    assert s["ok"] == 4 and (out / "dng" / "day1" / "deeper" / "y.dng").is_file()
    s = summary(run("decode", out, "-r", "-d", out / "dng", "--jobs", "1", "--json"))
    assert (s["files"], s["skipped"]) == (4, 4)


def test_colliding_outputs_are_refused(tmp_path, test_registry):
    a, b = raws(tmp_path, ["one/x.dng", "two/x.dng"])
    (c,) = raws(tmp_path, ["one/y.dng"])
    out = tmp_path / "out"
    r = run("encode", a, b, c, "-d", out, "--jobs", "2", "--json")  # one runnable file: no pool started
    assert r.exit_code == SomeFilesFailed.exit_code
    s = summary(r)
    assert (s["ok"], s["failed"]) == (1, 2) and not (out / "x.jpg").exists()
    assert all("would also be written" in f["error"] for f in s["failures"])


def test_usage_errors_point_to_out_dir(tmp_path, test_registry):
    a, b = raws(tmp_path, ["a.dng", "b.dng"])
    r = run("encode", a, b, "-o", tmp_path / "x.jpg")
    assert r.exit_code == 2 and "-d OUTDIR" in r.output
    r = run("encode", tmp_path, "-o", tmp_path / "x.jpg")
    assert r.exit_code == 2 and "-d OUTDIR" in r.output
    r = run("encode", a, "-o", tmp_path / "x.jpg", "-d", tmp_path / "out")
    assert r.exit_code == 2 and "exclude each other" in r.output
    r = run("encode", a)
    assert r.exit_code == 2 and "-d OUTDIR" in r.output
    r = run("encode", a, "-o", tmp_path / "x.jpg", "--jobs", "2")
    assert r.exit_code == 2 and "--jobs" in r.output
    r = run("decode", a, b, "-o", tmp_path / "x.dng")
    assert r.exit_code == 2 and "-d OUTDIR" in r.output


def test_json_and_quiet_on_single_files(tmp_path, test_registry):
    (src,) = raws(tmp_path, ["a.dng"])
    jpg, dng = tmp_path / "a.jpg", tmp_path / "a.dng.out.dng"
    r = run("encode", src, "-o", jpg, "--json", "--quiet")
    assert r.exit_code == 0 and r.stderr == ""
    assert json.loads(r.stdout)["output_bytes"] == jpg.stat().st_size
    r = run("decode", jpg, "-o", dng, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["model"] == test_registry.id and dng.stem in r.stderr
    info = json.loads(run("info", jpg, "--json").stdout)
    assert info["schema"] == "invisp/1" and "RGGB" in info["raw"] and "white_balance" in info
    record = info["record"]  # the same, machine-readable
    assert record["model"]["id"] == test_registry.id and record["raw"]["cfa"] == "RGGB"
    assert record["render"]["quality"] == 90 and "exif" not in record["camera"]
    raw_record = json.loads(run("info", src, "--json").stdout)["record"]
    assert raw_record["raw"]["visible_size"] == record["raw"]["visible_size"]
    metrics = json.loads(run("compare", src, dng, "--json").stdout)
    assert metrics["raw_psnr_gamma_db"] > 30 and "raw_psnr_lin_db" in metrics and metrics["same_levels"] is True
    (entry,) = [e for e in json.loads(run("models", "--json").stdout) if e["id"] == test_registry.id]
    assert entry["sha256"] == test_registry.sha256 and entry["size_bytes"] > 0


def crash_on_some(task: batch.Task) -> dict:
    """A worker that dies on files named crash* (as a crash inside a decoder library would), else the real task."""
    if Path(task.src).name.startswith("crash"):
        os._exit(1)
    return batch.run_task(task)


def test_a_worker_crash_fails_only_its_file(tmp_path, test_registry):
    src = tmp_path / "raws"
    raws(src, ["a.dng", "b.dng", "c.dng", "crash.dng"])
    tasks = batch.build_tasks("encode", [src], tmp_path / "out", threads=1)
    recs = {Path(t.src).name: rec for t, rec in batch.local_pool(tasks, 1, crash_on_some)}
    assert recs["crash.dng"]["status"] == "error" and "died" in recs["crash.dng"]["error"]
    assert [recs[n]["status"] for n in ("a.dng", "b.dng", "c.dng")] == ["ok"] * 3


def test_dask_cluster(tmp_path, test_registry):
    distributed = pytest.importorskip("distributed")
    src, out = tmp_path / "raws", tmp_path / "out"
    raws(src, ["a.dng", "b.dng", "c.dng"])
    (src / "bad.dng").write_bytes(b"\0" * 100)
    # a real scheduler on TCP with two workers; in-process workers keep the test fast (same task function)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        r = run("encode", src, "-d", out, "--scheduler", cluster.scheduler_address, "--json")
    assert r.exit_code == SomeFilesFailed.exit_code, r.output
    s = summary(r)
    assert (s["ok"], s["failed"], s["scheduler"]) == (3, 1, cluster.scheduler_address)
    assert sorted(p.name for p in out.glob("*.jpg")) == ["a.jpg", "b.jpg", "c.jpg"]


def test_scheduler_unreachable(tmp_path, test_registry):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    (src,) = raws(tmp_path, ["a.dng"])
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        r = run("encode", src, "-d", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9")
    assert r.exit_code == 1 and "Dask scheduler" in r.stderr
