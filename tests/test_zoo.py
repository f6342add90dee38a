"""The model zoo: camera matching, superseded models, and the shipped registry's integrity."""

from __future__ import annotations

import pytest
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
    assert zoo.select_model("Canon Inc.", video=True).id == "invisp-frontend-v1"  # none here: the shipped default
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
    assert zoo.select_model("Canon", video=True).id == "invisp-frontend-v1"  # a video too, frame by frame
    entry = zoo.find_model("invisp-frontend-v1")
    model = zoo.load_model(entry)  # the one verified loader: empty checkpoint
    assert model.identity and not list(model.parameters())
    assert zoo.load_stage(entry) is None  # encode/decode: no learned stage, no torch


def test_front_end_render_and_recover_equal_the_chain_run_step_by_step():
    """render/recover of the front end alone (numpy, no torch; gamma + 8-bit rounding by table, inverse gamma by
    table, parallel tiles) give exactly the values of running the chain's steps one by one on the whole image;
    the identity module and no model (``zoo.load_stage``) render the same; odd sizes and orientations included."""
    import numpy as np
    from synthraw import make_raw

    from invisp_cli import codec, pipeline, rawio
    from invisp_cli.params import ReconstructionParams
    from invisp_cli.settings import FrontEnd
    from invisp_cli.steps import Chain, front_end

    for h, w, cfa, flip in ((64, 96, "RGGB", 0), (67, 93, "GBRG", 5), (50, 70, "BGGR", 3)):
        raw = make_raw(h, w, cfa=cfa, flip=flip, seed=h)
        settings = codec.render_settings(raw, 90, "4:4:4", {"demosaic": "mhc", "highlight_knee": 0.8})
        fast = pipeline.render([raw], None, [settings], tile=32)
        assert np.array_equal(fast, pipeline.render([raw], build("frontend"), [settings], tile=32))
        chain = Chain(front_end(raw, FrontEnd.from_json(settings)))
        y = chain.steps[-1].forward_unit(Chain(chain.steps[:-1]).forward(raw.mosaic.astype(np.float32)[None, None]))
        slow = rawio.apply_flip((y * 255 + 0.5).astype(np.uint8)[0].transpose(1, 2, 0), raw.flip)
        assert np.array_equal(fast, slow), (h, w, cfa, flip)
        params = ReconstructionParams.from_raw(raw, "t", "0" * 64, settings)
        back = pipeline.recover([fast], params, None, tile=32).mosaic
        sensor = rawio.undo_flip(fast, raw.flip).transpose(2, 0, 1)[None].astype(np.float32) / 255
        back_slow = np.rint(chain.inverse(sensor)).clip(0, raw.white).astype(np.uint16)[0, 0]
        assert np.array_equal(back, back_slow), (h, w, cfa, flip)


def test_front_end_encode_and_decode_never_import_torch(tmp_path):
    """The default model runs on numpy: a whole encode and decode in a fresh process leaves torch unloaded (torch's
    start-up alone is 1.5–2 s of a 24 MP encode)."""
    import subprocess
    import sys

    from synthraw import write_synthetic_dng

    write_synthetic_dng(tmp_path / "a.dng", h=64, w=96)
    code = ("import sys; from invisp_cli import codec; "
            "codec.encode_file(sys.argv[1] + '/a.dng', sys.argv[1] + '/a.jpg'); "
            "codec.decode_file(sys.argv[1] + '/a.jpg', sys.argv[1] + '/b.dng'); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {k: v for k, v in __import__("os").environ.items() if k != "INVISP_WEIGHTS"}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "b.dng").stat().st_size > 0


def test_trained_folders_are_remembered_once_and_forgotten_when_gone(tmp_path, monkeypatch):
    """``invisp train`` remembers its --out folder; a folder moved away is skipped, not an error."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("INVISP_WEIGHTS", raising=False)
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        zoo.write_registry(folder, [])
        zoo.remember_trained(folder)
    zoo.remember_trained(a)
    assert zoo.trained_dirs() == [a.resolve(), b.resolve()]
    assert zoo.registry_dirs()[:2] == [b.resolve(), a.resolve()]  # the newest first, then the shipped weights
    (a / "registry.json").unlink()
    assert zoo.trained_dirs() == [b.resolve()]
    with pytest.raises(zoo.ModelError, match="INVISP_WEIGHTS"):
        zoo.find_model("no-such-model")
