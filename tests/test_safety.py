"""Never lose a file: one test per case of the safety review (inputs as outputs, folders, devices, encode/decode
agreement, crashes under hostile input, signals, messages, re-saved layers, verify)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_fails, leftovers, run
from synthraw import make_raw, write_synthetic_dng

from invisp_cli import fileio, rawio
from invisp_cli.containers import jpeg, layer
from invisp_cli.errors import InputError, MetadataError, ModelError, OutputError, SomeFilesFailed
from invisp_cli.params import ReconstructionParams
from invisp_cli.train import load_train_state


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()




# ------------------------------------------------------------------------------ 1–4: data loss


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_input_is_never_the_output(tmp_path, dng, test_registry, command):
    before = digest(dng)
    assert_fails(run(command, dng, "-o", dng, "--force"), OutputError, "is the input")
    assert digest(dng) == before
    for name, make in (("hard.jpg", os.link), ("soft.jpg", os.symlink)):
        alias = tmp_path / name
        make(dng, alias)
        r = run("encode", dng, "-o", alias, "--force")
        assert r.exit_code == OutputError.exit_code, r.output
        assert digest(dng) == before and (tmp_path / name).exists()


def test_decode_into_the_folder_holding_the_input_removes_nothing(tmp_path, test_registry):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):  # camera frames: the same DNGs with another Software tag than invisp's
        f = frames / f"f{i}.dng"
        write_synthetic_dng(f, h=48, w=64, seed=i)
        f.write_bytes(f.read_bytes().replace(b"invisp\0", b"camera\0"))
        assert not rawio.is_invisp_dng(f)
    clip = frames / "clip.mp4"
    assert run("encode", frames, "-o", clip).exit_code == 0
    kept = {p.name: digest(p) for p in frames.iterdir()}
    r = run("decode", clip, "-o", frames, "--force")  # the decoded names are the source frames' names
    assert_fails(r, OutputError, "not written by invisp")
    assert {p.name: digest(p) for p in frames.iterdir()} == kept
    out = tmp_path / "new"
    umask = os.umask(0o022)
    try:
        assert run("decode", clip, "-o", out).exit_code == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755 and sorted(p.name for p in out.iterdir()) == ["f0.dng", "f1.dng"]
    (out / "notes.txt").write_text("mine")
    assert run("decode", clip, "-o", out, "--force").exit_code == 0  # replaces its own DNGs, keeps the rest
    assert (out / "notes.txt").read_text() == "mine" and leftovers(tmp_path) == []


def test_only_regular_files_are_replaced(tmp_path, dng, test_registry):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    assert_fails(run("encode", dng, "-o", fifo, "--force"), OutputError, "not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    target = tmp_path / "target.jpg"
    target.write_text("keep")
    link = tmp_path / "link.jpg"
    link.symlink_to(target)
    assert_fails(run("encode", dng, "-o", link, "--force"), OutputError, "symbolic link")
    assert link.is_symlink() and target.read_text() == "keep"


@pytest.mark.parametrize("exact", [[], ["--exact"]])
def test_black_not_below_white_is_refused_at_encode(tmp_path, test_registry, exact):
    src = tmp_path / "flat.dng"
    raw = make_raw(h=48, w=64, bits=12)
    raw.black = np.full((2, 2), float(raw.white))
    rawio.write_dng(src, raw)
    out = tmp_path / "out.jpg"
    assert_fails(run("encode", src, "-o", out, *exact), InputError, "black")
    assert not out.exists() and leftovers(tmp_path) == []


# ------------------------------------------------------------------------------ 5–11: crashes


def test_noise_at_high_quality_encodes(tmp_path, test_registry):
    raw = make_raw(h=512, w=768, bits=12)
    raw.mosaic = np.random.default_rng(0).integers(0, raw.white, raw.mosaic.shape, dtype=np.uint16)
    src, out = tmp_path / "noise.dng", tmp_path / "noise.jpg"
    rawio.write_dng(src, raw)
    for q in ("90", "100"):
        r = run("encode", src, "-o", out, "--quality", q, "--force")
        assert r.exit_code == 0, r.output
    assert out.stat().st_size > 512 * 768  # larger than the W·H buffer Pillow would have allocated


def test_non_ascii_camera_name_encodes(tmp_path, dng, test_registry):
    data = dng.read_bytes()
    assert data.count(b"Invisp\0") >= 1
    dng.write_bytes(data.replace(b"Invisp\0", b"Invis\xe9\0"))
    out = tmp_path / "x.jpg"
    r = run("encode", dng, "-o", out)
    assert r.exit_code == 0, r.output
    assert run("decode", out, "-o", tmp_path / "back.dng").exit_code == 0


def test_full_disk_is_an_output_error(tmp_path, dng, test_registry, monkeypatch):
    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "x.jpg"
    assert_fails(run("encode", dng, "-o", out), OutputError, "No space left")
    assert not out.exists() and leftovers(tmp_path) == []


def _edited(params: ReconstructionParams, where: str, key: str, value) -> str:
    """The record with one value replaced and a *valid* checksum (an edit made by someone who knows the format)."""
    body = json.loads(params.to_json())
    body.pop("checksum")
    body[where][key] = value
    canon = json.dumps(body, separators=(",", ":"), sort_keys=True)
    body["checksum"] = hashlib.sha256(canon.encode()).hexdigest()
    return json.dumps(body)


@pytest.mark.parametrize("where,key,value", [
    ("render", "exposure_gain", 1e-300), ("render", "exposure_gain", float("nan")), ("render", "quality", 1000),
    ("render", "subsampling", "9:9:9"), ("render", "highlight_knee", 1e-300), ("raw", "visible_size", [10**9, 10**9]),
    ("raw", "white", 1e300), ("raw", "wb", [1.0, float("inf"), 1.0]), ("raw", "black", [[0, 0], [0, -5]]),
    ("raw", "rgb_cam", [[1e300, 0, 0], [0, 1, 0], [0, 0, 1]]), ("raw", "flip", True), ("render", "layer", -1),
])
def test_checksummed_but_implausible_values_are_refused(where, key, value):
    raw = make_raw(h=32, w=48)
    params = ReconstructionParams.from_raw(raw, "m", "0" * 64, {"codec": "jpeg", "quality": 90,
                                                                 "subsampling": "4:4:4", "exposure_gain": 1.0})
    ReconstructionParams.from_json(params.to_json())  # the unedited record is fine
    with pytest.raises(MetadataError):
        ReconstructionParams.from_json(_edited(params, where, key, value))


def test_edited_record_in_a_file_exits_4(tmp_path, dng, test_registry):
    out = tmp_path / "x.jpg"
    assert run("encode", dng, "-o", out).exit_code == 0
    rgb, params = jpeg.read_jpeg(out)
    params.render["exposure_gain"] = 1e-300  # a consistent checksum: only validation can refuse it
    out.write_bytes(jpeg.encode_jpeg(rgb, params))
    assert_fails(run("decode", out, "-o", tmp_path / "back.dng"), MetadataError, "exposure_gain")
    assert_fails(run("verify", out), MetadataError, "exposure_gain")


def _registry(folder: Path, **entry) -> None:
    """A registry with one entry whose hash matches its file, so only the part under test is wrong."""
    e = {"id": "bad", "file": "bad.safetensors", "arch": "squeeze", "hparams": {}, "cameras": ["*"], **entry}
    e["sha256"] = digest(folder / e["file"])
    (folder / "registry.json").write_text(json.dumps({"models": [e]}))


def test_bad_registries_and_checkpoints_exit_5(tmp_path, dng, test_registry, monkeypatch):
    import torch
    from safetensors.torch import save_file

    weights = tmp_path / "w"
    weights.mkdir()
    good = test_registry.path.read_bytes()
    (weights / "t.safetensors").write_bytes(good[: len(good) // 2])
    (weights / "p.safetensors").write_bytes(pickle.dumps({"a": 1}))
    save_file({}, str(weights / "bad.safetensors"))
    cases = {"non-UTF-8": lambda: (weights / "registry.json").write_bytes(b'{"models": ["\xff"]}'),
             "invalid JSON": lambda: (weights / "registry.json").write_text("{"),
             "unknown arch": lambda: _registry(weights, arch="nope"),
             "absurd hparams": lambda: _registry(weights, hparams={"width": 10**9}),
             "wrong hparams": lambda: _registry(weights, hparams={"no_such_option": 1}),
             "truncated blob": lambda: _registry(weights, file="t.safetensors", hparams=test_registry.hparams),
             "not safetensors": lambda: _registry(weights, file="p.safetensors"),
             "front end, not safetensors": lambda: _registry(weights, arch="frontend", file="p.safetensors"),
             "front end with tensors": lambda: _registry(weights, arch="frontend", file="t1.safetensors")}
    save_file({"w": torch.zeros(3)}, str(weights / "t1.safetensors"))
    monkeypatch.setenv("INVISP_WEIGHTS", str(weights))
    for what, make in cases.items():
        make()
        r = run("encode", dng, "-o", tmp_path / "x.jpg", "--model", "bad")
        assert r.exit_code == ModelError.exit_code and "internal" not in r.stderr, (what, r.output)
        assert_fails(r, ModelError)
    monkeypatch.setenv("INVISP_WEIGHTS", str(tmp_path / "missing"))
    assert_fails(run("encode", dng, "-o", tmp_path / "x.jpg"), ModelError, "not a folder")


def test_malicious_train_state_is_refused_in_one_line(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    state = tmp_path / "train_state.pt"
    state.write_bytes(pickle.dumps({"model": Evil()}, protocol=2))
    with pytest.raises(ModelError) as e:
        load_train_state(state, "cpu")
    assert "weights_only" not in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("args,hint", [(["--hparams", "{bad"], "--hparams"), (["--jpeg-quality", "abc"],
                                       "--jpeg-quality"), (["--arch", "nope"], "--arch"),
                                       (["--jpeg-quality", "95-80"], "--jpeg-quality")])
def test_train_option_errors_are_usage_errors(tmp_path, args, hint):
    r = run("train", "--camera", "x", "--data", tmp_path, "--out", tmp_path / "o", *args)
    assert r.exit_code == 2 and hint in r.output and "Traceback" not in r.output


# ------------------------------------------------------------------------------ 12–15: signals, messages, layers


SIGTERM_RUN = """
import os, signal, sys
from invisp_cli import cli
from invisp_cli.containers import jpeg
def killed(rgb, params):
    os.kill(os.getpid(), signal.SIGTERM)
    raise SystemExit("SIGTERM was not handled")
jpeg.encode_jpeg = killed
sys.argv = ["invisp", "encode", sys.argv[1], "-o", sys.argv[2]]
cli.main()
"""


def test_sigterm_is_handled_like_ctrl_c(tmp_path, dng, test_registry):
    out = tmp_path / "x.jpg"
    r = subprocess.run([sys.executable, "-c", SIGTERM_RUN, str(dng), str(out)], capture_output=True, text=True,
                       env={**os.environ, "INVISP_WEIGHTS": str(test_registry.folder)}, timeout=120)
    assert r.returncode == 130 and "interrupted" in r.stderr, r.stderr
    assert not out.exists() and leftovers(tmp_path) == []


def test_stale_temp_files_of_dead_runs_are_removed(tmp_path, dng, test_registry):
    out = tmp_path / "x.jpg"
    dead = tmp_path / f".x.jpg.invisp-{2**22 + 12345}-abc.part.jpg"  # above Linux's pid_max: never alive
    live = tmp_path / f".x.jpg.invisp-{os.getpid()}-abc.part.jpg"
    dead.write_bytes(b"old")
    live.write_bytes(b"a concurrent run")
    assert run("encode", dng, "-o", out).exit_code == 0
    assert not dead.exists() and live.exists()


def test_messages_say_what_is_wrong(tmp_path, dng, test_registry):
    folder = tmp_path / "folder"
    folder.mkdir()
    assert_fails(run("encode", dng, "-o", folder, "--force"), OutputError, "is a folder")
    assert_fails(run("encode", dng, "-o", tmp_path / "x.png"), InputError, "unsupported output type", ".jpg")
    assert not (tmp_path / "x.png").exists()
    folder_jpg = tmp_path / "f.jpg"
    folder_jpg.mkdir()
    assert_fails(run("encode", dng, "-o", folder_jpg, "--force"), OutputError, "is a folder")
    assert_fails(run("info", folder), InputError, "is a folder")
    tiny = tmp_path / "tiny.dng"
    write_synthetic_dng(tiny, h=4, w=4)
    assert_fails(run("encode", tiny, "-o", tmp_path / "t.jpg"), InputError, "too small")
    r = run("encode", dng, "-o", tmp_path / "y.jpg", "--force")
    assert ".part" not in r.output


def test_resaved_exact_file_says_its_layer_is_gone(tmp_path, dng, test_registry):
    exact = tmp_path / "e.jpg"
    assert run("encode", dng, "-o", exact, "--exact").exit_code == 0
    plain, removed = layer.strip_layer(exact.read_bytes(), "e.jpg")  # what an editor that drops unknown APPn leaves
    assert removed
    resaved = tmp_path / "resaved.jpg"
    resaved.write_bytes(plain)
    r = run("decode", resaved, "-o", tmp_path / "r.dng")
    assert r.exit_code == 0 and "invisp: warning:" in r.stderr and "no longer in the file" in " ".join(r.stderr.split())
    r = run("decode", exact, "-o", tmp_path / "e.dng")
    assert r.exit_code == 0 and "warning" not in r.stderr


def test_verify_reports_each_file_and_writes_nothing(tmp_path, dng, test_registry):
    good, exact, bad = tmp_path / "good.jpg", tmp_path / "exact.jpg", tmp_path / "bad.jpg"
    assert run("encode", dng, "-o", good).exit_code == 0
    assert run("encode", dng, "-o", exact, "--exact").exit_code == 0
    data = bytearray(good.read_bytes())
    data[data.index(b'"white"') + 9] ^= 1  # a flipped bit in the stored record
    bad.write_bytes(bytes(data))
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run("verify", good, exact)
    assert r.exit_code == 0 and r.output.count("ok") == 2 and "bit-exact" in r.output
    r = run("verify", good, bad, exact)
    assert r.exit_code == SomeFilesFailed.exit_code and "FAILED" in r.output and str(bad) in r.output
    assert_fails(run("verify", bad), MetadataError, "checksum")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_same_file_and_check_output_rules(tmp_path):
    a = tmp_path / "a.jpg"
    a.write_text("x")
    assert fileio.same_file(a, tmp_path / "." / "a.jpg") and not fileio.same_file(a, tmp_path / "b.jpg")
    with pytest.raises(OutputError, match="exists"):
        fileio.check_output(a, force=False)
    assert fileio.check_output(a, force=True) == a
