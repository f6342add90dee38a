"""``invisp train`` on a tiny folder of RAW files: CLI, outputs, determinism, resume, torchrun/DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from synthraw import write_synthetic_dng

from invisp_cli import zoo
from invisp_cli.cli import main
from invisp_cli.steps import DEFAULT_KNEE, Gamma
from invisp_cli.train import TrainConfig, rgb_floor, rgb_loss

TINY = ["--steps", "3", "--batch", "2", "--patch", "32", "--every", "3", "--hparams", '{"blocks": 1, "width": 8}']


@pytest.fixture(scope="module")
def raw_folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("raws")
    write_synthetic_dng(d / "a.dng", h=96, w=128, seed=1)
    write_synthetic_dng(d / "b.dng", h=80, w=112, cfa="GRBG", seed=2, flip=6)
    write_synthetic_dng(d / "val.dng", h=64, w=64, seed=3)
    (d / "notes.txt").write_text("ignored")
    return d


def train(tmp: Path, folder: Path, *extra: str):
    args = ["train", "--camera", "testcam", "--data", str(folder / "a.dng"), "--data", str(folder / "b.dng"),
            "--val", str(folder / "val.dng"), "--out", str(tmp), *TINY, *extra]
    return CliRunner().invoke(main, args)


def test_train_writes_checkpoint_and_registry(tmp_path, raw_folder, monkeypatch):
    r = train(tmp_path / "run", raw_folder)
    assert r.exit_code == 0, r.output
    reg = json.loads((tmp_path / "run" / "registry.json").read_text())["models"][0]
    assert reg["id"] == "testcam-squeeze" and reg["cameras"] == ["testcam"]
    assert reg["training"]["files"] == ["a.dng", "b.dng"] and reg["training"]["held_out"] == ["val.dng"]
    assert {"val_raw_psnr_gamma", "val_rgb_psnr"} <= set(reg["metrics"])
    assert reg["isp"] == {"demosaic": "mhc", "highlight_knee": DEFAULT_KNEE}  # the front end it learnt behind
    assert (tmp_path / "run" / reg["file"]).is_file() and reg["file"].startswith("testcam-squeeze-")
    # the new model is usable through the zoo, verified by hash, with no INVISP_WEIGHTS (the trained-models list)
    monkeypatch.delenv("INVISP_WEIGHTS", raising=False)
    entry = zoo.find_model("testcam-squeeze")
    assert zoo.trained_dirs() == [(tmp_path / "run").resolve()]
    assert zoo.select_model("TestCam Corp").id == "testcam-squeeze"
    zoo.load_model(entry)


def test_highlight_knee_option(tmp_path, raw_folder):
    r = train(tmp_path / "none", raw_folder, "--highlight-knee", "none")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "none" / "registry.json").read_text())["models"][0]["isp"] == {"demosaic": "mhc"}
    for bad in ("1.2", "0", "soft"):
        r = train(tmp_path / "bad", raw_folder, "--highlight-knee", bad)
        assert r.exit_code == 2 and "--highlight-knee" in r.output
    assert not (tmp_path / "bad").exists()


def test_train_is_deterministic_and_resumable(tmp_path, raw_folder):
    assert train(tmp_path / "a", raw_folder, "--seed", "5").exit_code == 0
    assert train(tmp_path / "b", raw_folder, "--seed", "5").exit_code == 0
    sha = [json.loads((tmp_path / d / "registry.json").read_text())["models"][0]["sha256"] for d in "ab"]
    assert sha[0] == sha[1]
    r = train(tmp_path / "a", raw_folder, "--seed", "5", "--resume", "--steps", "5")
    assert r.exit_code == 0, r.output
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in log] == [3, 5]  # a restart would have logged step 3 again


def test_train_rejects_empty_data(tmp_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["train", "--camera", "x", "--data", str(tmp_path / "empty"), "--out",
                                  str(tmp_path / "o"), *TINY])
    assert r.exit_code != 0 and "no RAW files" in r.stderr


def test_torchrun_ddp_two_cpu_processes(tmp_path, raw_folder):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "invisp_cli", "train", "--camera", "ddp",
           "--data", str(raw_folder), "--out", str(tmp_path / "ddp"), *TINY]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    reg = json.loads((tmp_path / "ddp" / "registry.json").read_text())["models"][0]
    assert reg["training"]["processes"] == 2


def test_clip_aware_rgb_loss():
    y = torch.tensor([[[[1.0, 0.5]]]])  # LibRaw's render: one clipped value, one ordinary
    y_hat = torch.tensor([[[[0.95, 0.4]]]])
    assert float(rgb_loss(y_hat, y, None)) == pytest.approx((0.05 + 0.1) / 2)
    assert float(rgb_loss(y_hat, y, 0.9)) == pytest.approx((0.0 + 0.1) / 2)  # above the floor: free where clipped
    assert float(rgb_loss(torch.tensor([[[[0.7, 0.5]]]]), y, 0.9)) == pytest.approx(0.2 / 2)  # below it: penalised
    cfg = TrainConfig(camera="c", data=[], out="o")
    assert rgb_floor(cfg) == pytest.approx(float(Gamma().forward(torch.tensor(DEFAULT_KNEE))), abs=1e-6)
    assert rgb_floor(TrainConfig(camera="c", data=[], out="o", clip_aware=False)) is None
