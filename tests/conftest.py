"""Shared fixtures: a temporary model registry (so tests never depend on the shipped weights changing)
and the location of the real RAW files in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result

from invisp_cli import zoo
from invisp_cli.cli import main
from invisp_cli.flows import build

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


def run(*args: object) -> Result:
    """Invoke the ``invisp`` CLI in-process, as a user would type it."""
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_fails(result: Result, exc: type, *fragments: str) -> None:
    """The command failed with ``exc``'s exit code and one ``invisp: error:`` line naming ``fragments``."""
    assert result.exit_code == exc.exit_code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("invisp: error:"), result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def real_raw(name: str) -> Path:
    p = SHARED_DATA / "raw" / name
    if not p.is_file():
        pytest.skip(f"real RAW file {name} not available")
    return p


@pytest.fixture(autouse=True)
def _no_user_looks(tmp_path_factory, monkeypatch) -> None:
    """Trained looks from the shipped weights/ only, never from the user's own looks folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture
def test_registry(tmp_path_factory, monkeypatch) -> zoo.ModelEntry:
    """A registry with one small, perturbed (non-identity) squeeze flow for any camera ('*')."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    hp = {"blocks": 1, "width": 8}
    model = build("squeeze", **hp)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    file, sha = zoo.save_checkpoint(model, folder, "test-generic")
    entry = zoo.ModelEntry(id="test-generic", file=file, sha256=sha, arch="squeeze", hparams=hp, cameras=["*"],
                           folder=folder)
    zoo.write_registry(folder, [entry])
    monkeypatch.setenv("INVISP_WEIGHTS", str(folder))
    zoo._load.cache_clear()
    return entry


def leftovers(folder: Path) -> list[str]:
    """Temporary files (``*.part*``) anywhere under ``folder``: none may survive a command."""
    return sorted(p.name for p in folder.rglob("*") if ".part" in p.name)


@pytest.fixture
def dng(tmp_path) -> Path:
    """A small synthetic DNG (48 × 64)."""
    from synthraw import write_synthetic_dng

    path = tmp_path / "x.dng"
    write_synthetic_dng(path, h=48, w=64)
    return path
