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
