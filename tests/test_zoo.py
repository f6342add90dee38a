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


def test_front_end_is_the_default_for_every_camera(monkeypatch):
    monkeypatch.delenv("INVISP_WEIGHTS", raising=False)
    for make in ("Canon", "NIKON CORPORATION", "GoPro", ""):
        e = zoo.select_model(make)
        assert e.id == "invisp-frontend-v1" and e.arch == "frontend" and e.default, make
    assert zoo.select_model("Canon", video=True).arch != "frontend"  # video keeps its own flow
    model = zoo.load_model(zoo.find_model("invisp-frontend-v1"))  # the one verified loader: empty checkpoint
    assert model.identity and not list(model.parameters())


def test_front_end_fast_path_equals_the_generic_chain(monkeypatch):
    """render/recover of the front end alone (gamma + 8-bit rounding by table, inverse gamma by table) give the
    same values as running the chain's steps one by one; odd sizes and every orientation included."""
    import numpy as np
    from synthraw import make_raw

    from invisp_cli import codec
    from invisp_cli.params import ReconstructionParams

    model = build("frontend")
    for h, w, cfa, flip in ((64, 96, "RGGB", 0), (67, 93, "GBRG", 5), (50, 70, "BGGR", 3)):
        raw = make_raw(h, w, cfa=cfa, flip=flip, seed=h)
        settings = codec.render_settings(raw, 90, "4:4:4", {"demosaic": "mhc", "highlight_knee": 0.8})
        fast = codec.render(raw, model, settings, tile=32)
        params = ReconstructionParams.from_raw(raw, "t", "0" * 64, settings)
        back = codec.recover(fast, params, model, tile=32).mosaic
        with monkeypatch.context() as m:
            m.setattr(codec, "Gamma", type("NotGamma", (), {}))  # the generic per-step path
            slow = codec.render(raw, model, settings, tile=32)
            back_slow = codec.recover(fast, params, model, tile=32).mosaic
        assert np.array_equal(fast, slow) and np.array_equal(back, back_slow), (h, w, cfa, flip)
