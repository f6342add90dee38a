"""The package ships what it needs: every package of invisp_cli is listed in pyproject.toml, and the shipped
weights and the example are package data (so a non-editable ``pip install .`` can encode and decode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from invisp_cli import zoo

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "invisp_cli").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
    assert {"invisp_cli.weights", "invisp_cli.examples"} <= listed


def test_weights_are_found_as_package_data():
    assert (zoo.WEIGHTS_DIR / "registry.json").is_file()
    assert all(e.path.is_file() for e in zoo.read_registry(zoo.WEIGHTS_DIR))


def test_the_base_install_needs_no_torch(tmp_path):
    """torch is the ``[learned]`` extra: with it missing (blocked in ``sys.modules``) the default model encodes,
    decodes, verifies, compares, describes, develops and batches; a learned model, ``train`` and ``bench`` say in
    one line which extra to install."""
    import os
    import subprocess
    import sys

    from synthraw import write_synthetic_dng

    write_synthetic_dng(tmp_path / "a.dng", h=64, w=96)
    runner = "import sys; sys.modules['torch'] = None; from invisp_cli.cli import main; main(sys.argv[1:])"
    env = {k: v for k, v in os.environ.items() if k != "INVISP_WEIGHTS"}

    def invisp(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", runner, *args], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=120)

    for args in (["encode", "a.dng", "-o", "a.jpg"], ["decode", "a.jpg", "-o", "b.dng"], ["info", "a.jpg"],
                 ["verify", "a.jpg"], ["compare", "a.dng", "b.dng", "--jpeg", "a.jpg"], ["models"],
                 ["encode", "a.dng", "-d", "out"], ["develop", "a.jpg", "-o", "d.jpg", "--exposure", "0.5"]):
        r = invisp(*args)
        assert r.returncode == 0, (args, r.stderr[-1000:])
    learned = invisp("encode", "a.dng", "-o", "c.jpg", "--model", "invisp-canon-v3")
    assert learned.returncode == 5 and "pip install 'invisp[learned]'" in learned.stderr
    assert not (tmp_path / "c.jpg").exists()
    for command, extra in (("train", "train"), ("bench", "bench")):
        args = ["train", "--camera", "x", "--data", ".", "--out", "r"] if command == "train" else ["bench", "a.dng"]
        r = invisp(*args)
        assert r.returncode == 1 and f"pip install 'invisp[{extra}]'" in r.stderr and "Traceback" not in r.stderr
