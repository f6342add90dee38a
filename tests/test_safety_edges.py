"""Hangs and internal errors of the safety review (issue 18, items 5–9): one test per case, each run as a user
would type the command; every case ends with one ``invisp: error:`` line and its documented exit code."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import assert_fails, run
from synthraw import write_synthetic_dng

from invisp_cli.errors import InputError


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".part" in p.name)


@pytest.fixture
def dng(tmp_path) -> Path:
    path = tmp_path / "x.dng"
    write_synthetic_dng(path, h=48, w=64)
    return path


# ------------------------------------------------------------------------------ 5: FIFOs and other non-files


@contextlib.contextmanager
def watched_fifo(path: Path) -> Iterator[list[bool]]:
    """A FIFO at ``path`` whose readers are released at once (a writer opens and closes it: they read EOF), so a
    command that opens it fails the test instead of hanging it; yields [True] once any reader opened it."""
    os.mkfifo(path)
    opened: list[bool] = []
    stop = threading.Event()

    def release() -> None:
        while not stop.wait(0.02):
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # succeeds only while a reader waits
                opened.append(True)
            except OSError:
                pass

    t = threading.Thread(target=release, daemon=True)
    t.start()
    try:
        yield opened
    finally:
        stop.set()
        t.join()


@pytest.mark.parametrize("name,command", [
    ("in.dng", ["encode", "{src}", "-o", "{dir}/o.jpg"]), ("in.dng", ["compare", "{src}", "{dng}"]),
    ("in.dng", ["compare", "{dng}", "{src}"]), ("in.jpg", ["decode", "{src}", "-o", "{dir}/o.dng"]),
    ("in.jpg", ["info", "{src}"]), ("in.jpg", ["verify", "{src}"]), ("in.jpg", ["develop", "{src}", "-o",
                                                                               "{dir}/d.jpg"]),
    ("in.jpg", ["strip", "{src}", "-o", "{dir}/s.jpg"]), ("in.dng", ["info", "{src}"]),
])
def test_a_fifo_input_is_refused_at_once(tmp_path, dng, test_registry, name, command):
    """A FIFO is never opened (that would block until a writer comes): refused as what it is."""
    fifo = tmp_path / name
    with watched_fifo(fifo) as opened:
        r = run(*[a.format(src=fifo, dir=tmp_path, dng=dng) for a in command])
    assert not opened  # never opened, so never blocked
    assert_fails(r, InputError, str(fifo), "is a FIFO (named pipe), not a regular file")
    assert leftovers(tmp_path) == [] and not any(tmp_path.glob("o.*"))


def test_a_device_input_says_what_it_is(tmp_path):
    assert_fails(run("encode", os.devnull, "-o", tmp_path / "o.jpg"), InputError, "is a character device")
    assert_fails(run("info", tmp_path), InputError, "is a folder")
    assert_fails(run("decode", tmp_path / "missing.jpg", "-o", tmp_path / "o.dng"), InputError, "no such file")


# ------------------------------------------------------------------------------ 8: SIGTERM as the temp file appears


SIGTERM_AT_CREATION = """
import os, signal, sys
from invisp_cli import cli
real_open = os.open
def open_then_sigterm(path, flags, *args, **kwargs):
    fd = real_open(path, flags, *args, **kwargs)
    if ".part" in os.fsdecode(path):  # the signal arrives the moment the temporary file exists
        os.kill(os.getpid(), signal.SIGTERM)
    return fd
os.open = open_then_sigterm
sys.argv = ["invisp", *sys.argv[1:]]
cli.main()
"""


@pytest.mark.parametrize("command", ["encode", "decode"])
def test_sigterm_the_moment_the_temp_file_appears_leaves_nothing(tmp_path, dng, command):
    """With the shipped front-end model (no torch: a quick subprocess)."""
    src, out = dng, tmp_path / "out.jpg"
    if command == "decode":
        src, out = tmp_path / "x.jpg", tmp_path / "out.dng"
        assert run("encode", dng, "-o", src).exit_code == 0
    r = subprocess.run([sys.executable, "-c", SIGTERM_AT_CREATION, command, str(src), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 130 and "interrupted" in r.stderr, r.stderr
    assert not out.exists() and leftovers(tmp_path) == []


SIGTERM_UNHANDLED = """
import os, signal, sys
from invisp_cli import fileio
assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # a batch worker or a library caller
with fileio.atomic_output(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGTERM)
    raise SystemExit("SIGTERM did not end the process")
"""


def test_sigterm_where_nobody_handles_it_removes_the_temp_file(tmp_path):
    out = tmp_path / "out.jpg"
    r = subprocess.run([sys.executable, "-c", SIGTERM_UNHANDLED, str(out)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == -signal.SIGTERM, r.stderr  # still ends as SIGTERM does
    assert not out.exists() and leftovers(tmp_path) == []
