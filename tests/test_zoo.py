"""The model zoo: camera matching, superseded models, and the shipped registry's integrity."""

from __future__ import annotations

import torch

from invisp_cli import zoo
from invisp_cli.flows import build


def _entry(folder, model_id: str, cameras: list[str], **kw) -> zoo.ModelEntry:
    file, sha = zoo.save_checkpoint(build("squeeze", blocks=1, width=8), folder, model_id)
    return zoo.ModelEntry(id=model_id, file=file, sha256=sha, arch="squeeze", hparams={"blocks": 1, "width": 8},
                          cameras=cameras, folder=folder, **kw)


def test_superseded_models_decode_but_are_not_selected(tmp_path, monkeypatch):
    torch.manual_seed(0)
    entries = [_entry(tmp_path, "a-generic-v1", ["*"], superseded_by="a-generic-v2"),
               _entry(tmp_path, "a-canon-v1", ["canon"], superseded_by="a-canon-v2"),
               _entry(tmp_path, "a-canon-v2", ["canon"]),
               _entry(tmp_path, "a-generic-v2", ["*"])]
    zoo.write_registry(tmp_path, entries)
    monkeypatch.setenv("INVISP_WEIGHTS", str(tmp_path))
    assert zoo.select_model("Canon Inc.").id == "a-canon-v2"
    assert zoo.select_model("Leica Camera AG").id == "a-generic-v2"
    old = zoo.find_model("a-canon-v1")  # still there for the files it wrote
    zoo.load_model(old, expected_sha256=old.sha256)


def test_shipped_registry_is_complete_and_verified():
    shipped = zoo.read_registry(zoo.WEIGHTS_DIR)
    ids = {e.id for e in shipped}
    for e in shipped:
        assert zoo.sha256_file(e.path) == e.sha256, e.id
        assert not e.superseded_by or e.superseded_by in ids, e.id
        assert e.training.get("command") or e.training.get("config"), e.id  # provenance recorded
    current = [e for e in shipped if not e.superseded_by]
    assert {"*"} <= {c for e in current for c in e.cameras}  # a generic model for any Bayer camera
    assert any("canon" in e.cameras for e in current) and any("nikon" in e.cameras for e in current)
