"""Shared fixtures: a temporary model registry (so tests never depend on the shipped weights changing)
and the location of the real RAW files in ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from invisp_cli import zoo
from invisp_cli.flows import build

SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()


def real_raw(name: str) -> Path:
    p = SHARED_DATA / "raw" / name
    if not p.is_file():
        pytest.skip(f"real RAW file {name} not available")
    return p


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
