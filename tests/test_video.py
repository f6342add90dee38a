"""RAW video: frames → MP4 → frames through the CLI, the video flow, the codec simulator and every bad input."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import rawpy
import torch
from conftest import assert_fails, run
from synthraw import make_raw

from invisp_cli import metrics, pipeline, rawio, zoo
from invisp_cli.errors import InputError, MetadataError, OutputError
from invisp_cli.flows import build
from invisp_cli.inspect import describe
from invisp_cli.params import ReconstructionParams
from invisp_cli.settings import PIX_FMTS
from invisp_cli.video import container
from invisp_cli.video.frames import fps_from_times, slide_sequence, sliding
from invisp_cli.video.simulator import VideoCodecSim, crf_to_quality


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def video_registry(test_registry) -> zoo.ModelEntry:
    """test_registry plus a small perturbed video flow 'test-video' for any camera."""
    torch.manual_seed(1)
    hp = {"blocks": 1, "width": 8, "cond_width": 4}
    model = build("video-squeeze", **hp)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    file, sha = zoo.save_checkpoint(model, test_registry.folder, "test-video")
    entry = zoo.ModelEntry(id="test-video", file=file, sha256=sha, arch="video-squeeze", hparams=hp, cameras=["*"],
                           folder=test_registry.folder)
    zoo.write_registry(test_registry.folder, [test_registry, entry])
    zoo._load.cache_clear()
    return entry


def sequence(folder: Path, frames: int = 5, flip: int = 0, cfa: str = "GBRG", **kw) -> list[Path]:
    """A short synthetic clip: a 64×96 window sliding 2 px down and 4 px right per frame."""
    raw = make_raw(h=64 + 2 * frames, w=96 + 4 * frames, cfa=cfa, bits=12, flip=flip, seed=2, **kw)
    return slide_sequence(raw, folder, frames, (64, 96), (2, 4))


def test_round_trip_through_cli(tmp_path, video_registry):
    frames = sequence(tmp_path / "frames", flip=6)
    mp4, out = tmp_path / "clip.mp4", tmp_path / "decoded"
    r = run("encode", tmp_path / "frames", "-o", mp4)
    assert r.exit_code == 0, r.stderr
    with av.open(str(mp4)) as c:  # the metadata and the stream as PyAV sees them
        tags, stream = dict(c.metadata), c.streams.video[0]
        assert tags["invisp_model"] == f"test-video sha256 {video_registry.sha256}" and tags["invisp_frames"] == "5"
        assert stream.frames == 5 and (stream.codec_context.width, stream.codec_context.height) == (64, 96)
        assert stream.average_rate == 24  # upright: the flip-6 frames are portrait
    if shutil.which("ffprobe"):
        probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json",
                                           str(mp4)], capture_output=True, text=True, check=True).stdout)
        assert probe["format"]["tags"]["invisp_frames"] == "5" and probe["streams"][0]["nb_frames"] == "5"
        assert "test-video" in probe["format"]["tags"]["invisp_model"]
    assert run("info", mp4).exit_code == 0  # what the MP4 carries, as for a JPEG
    record = json.loads(run("info", mp4, "--json").stdout)["record"]
    assert record["frames"] == 5 and record["first_frame"]["model"]["id"] == "test-video"
    rows = dict(describe(mp4))
    assert "invisp MP4" in rows["file"] and rows["video"].startswith("5 frames at 24 fps, libx264 CRF 23")
    assert rows["model"].startswith("test-video") and "GBRG" in rows["raw"]
    assert "no highlight roll-off" in rows["front end"]
    r = run("decode", mp4, "-o", out)
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [f.name for f in frames]
    for f in frames:
        a, b = rawio.read_raw(f), rawio.read_raw(out / f.name)
        assert b.mosaic.shape == a.mosaic.shape and b.cfa == a.cfa == "GBRG" and b.flip == a.flip == 6
        assert np.array_equal(b.black, a.black) and b.white == a.white and np.allclose(b.wb, a.wb)
        with rawpy.imread(str(out / f.name)) as x, rawpy.imread(str(f)) as y:
            assert x.raw_pattern.tolist() == y.raw_pattern.tolist() and x.sizes.flip == y.sizes.flip
        n = metrics.normalise_mosaic(a.mosaic, a.black, a.white)
        assert metrics.raw_psnr_gamma(metrics.normalise_mosaic(b.mosaic, b.black, b.white), n) > 28
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("codec,pix_fmt,model", [("h265", "yuv444p10le", "test-video"),
                                                 ("h264", "yuv420p10le", "test-generic")])
def test_codecs_formats_and_image_model(tmp_path, video_registry, codec, pix_fmt, model):
    frames = sequence(tmp_path / "frames", frames=3, cfa="RGGB")
    mp4 = tmp_path / "clip.mp4"
    r = run("encode", *frames, "-o", mp4, "--codec", codec, "--pix-fmt", pix_fmt, "--crf", "18", "--fps", "25",
            "--model", model)
    assert r.exit_code == 0, r.stderr
    doc = container.read_doc(mp4)
    assert doc.model_id == model and doc.video["codec"] == codec and doc.video["pix_fmt"] == pix_fmt
    assert doc.video["fps"] == "25/1" and doc.video["window"] == (3 if model == "test-video" else 1)
    assert [f.name for f in doc.frames] == [f.name for f in frames]
    assert doc.frames[0].params.camera["make"] == "Invisp" and doc.frames[0].params.render["demosaic"] == "mhc"
    assert run("decode", mp4, "-o", tmp_path / "out").exit_code == 0
    a, b = rawio.read_raw(frames[1]), rawio.read_raw(tmp_path / "out" / frames[1].name)
    n, nh = (metrics.normalise_mosaic(x.mosaic, a.black, a.white) for x in (a, b))
    assert metrics.raw_psnr_gamma(nh, n) > 30


def test_video_flow_is_invertible_given_the_neighbours():
    torch.manual_seed(0)
    flow = build("video-squeeze", blocks=2, width=16)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x, cond = torch.rand(2, 3, 40, 56), torch.rand(2, 6, 40, 56)
    y = flow(x, cond)
    assert (y - x).abs().mean() > 1e-2  # not the identity
    assert (flow.inverse(y, cond) - x).abs().max() < 1e-5
    assert (flow.inverse(y, cond + 0.1) - x).abs().mean() > 1e-4  # the neighbours do matter
    image = build("squeeze", blocks=2, width=16)
    video = build("video-squeeze", blocks=2, width=16)
    video.load_image_state(image.state_dict())  # starts as exactly the image flow
    assert torch.equal(video(x, cond), image(x))


def test_tiled_video_render_and_recover_equal_untiled():
    torch.manual_seed(0)
    flow = build("video-squeeze", blocks=2, width=8, cond_width=4).eval()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.05 * torch.randn_like(p))
    raws = [make_raw(h=150, w=206, cfa="BGGR", bits=12, flip=5, seed=s) for s in range(3)]
    gains = [1.0, 1.1, 0.9]
    settings = [{"exposure_gain": g} for g in gains]
    full, tiled = (pipeline.render(raws, flow, settings, tile=t, pixels=np.float32) for t in (4096, 64))
    assert full.shape == (206, 150, 3) and np.abs(full - tiled).max() < 1e-5
    params = ReconstructionParams.from_raw(raws[1], "m", "0" * 64, {"exposure_gain": 1.1})
    window = [full, full[::-1].copy(), full]
    a, b = (pipeline.recover(window, params, flow, tile=t).mosaic for t in (4096, 64))
    assert np.abs(a.astype(int) - b).max() <= 1


def test_sliding_windows_replicate_the_ends_and_stream():
    assert list(sliding("abcd", 3)) == [("a", "a", "b"), ("a", "b", "c"), ("b", "c", "d"), ("c", "d", "d")]
    assert list(sliding("a", 3)) == [("a", "a", "a")] and list(sliding("ab", 1)) == [("a",), ("b",)]
    consumed = []

    def frames():
        for i in range(100):
            consumed.append(i)
            yield i

    for t, window in enumerate(sliding(frames(), 3)):  # a long clip is read one frame ahead, never all at once
        assert window[1] == t and len(consumed) == min(t + 2, 100)


def test_frame_rate_from_capture_times():
    t0 = dt.datetime(2024, 5, 6, 7, 8, 9)
    assert fps_from_times([t0 + dt.timedelta(seconds=i / 29.97) for i in range(120)]) == Fraction(30000, 1001)
    assert fps_from_times([t0 + dt.timedelta(seconds=i // 25) for i in range(100)]) == 25  # whole-second stamps
    assert fps_from_times([t0] * 10) is None and fps_from_times([t0, None, t0]) is None


def test_bilinear_upsampling_is_torchs_half_pixel_interpolation():
    rng = np.random.default_rng(4)
    for shape, s in (((2, 5, 7), 2), ((2, 1, 1), 2), ((1, 6, 3), 2), ((2, 4, 5), 3)):
        x = rng.random(shape)
        ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], scale_factor=s, mode="bilinear",
                                              align_corners=False)[0].numpy()
        np.testing.assert_allclose(container.upsample_bilinear(x, s), ref, rtol=0, atol=1e-15)


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p", "yuv420p10le"])
def test_yuv_conversion_matches_the_torch_conversion(pix_fmt):
    """The numpy conversions give the planes and frames of the torch ones they replaced (einsum in float64,
    ``avg_pool2d`` for 4:2:0 chroma, ``F.interpolate`` bilinear to upsample it): MP4s decode as before."""
    F = torch.nn.functional
    bits, sub = PIX_FMTS[pix_fmt]
    peak, m = float(2**bits - 1), torch.from_numpy(container.RGB2YCC)
    rng = np.random.default_rng(5)
    rgb = rng.random((30, 44, 3), dtype=np.float32)
    x = torch.einsum("ij,njhw->nihw", m, torch.from_numpy(rgb).permute(2, 0, 1)[None].double())
    y, cc = (x[:, :1] * peak).round(), F.avg_pool2d(x[:, 1:], sub) * peak + 2 ** (bits - 1)
    ref = [p.clamp(0, peak).numpy() for p in (y[0, 0], cc.round()[0, 0], cc.round()[0, 1])]
    planes = container.rgb_to_planes(rgb, pix_fmt)
    for a, b in zip(planes, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    cc = (torch.from_numpy(np.stack(planes[1:]).astype(np.float64))[None] - 2 ** (bits - 1)) / peak
    if sub > 1:
        cc = F.interpolate(cc, scale_factor=sub, mode="bilinear", align_corners=False)
    ycc = torch.cat([torch.from_numpy(planes[0] / peak)[None, None], cc], 1)
    back = torch.einsum("ij,njhw->nihw", torch.linalg.inv(m), ycc).clamp(0, 1)[0].permute(1, 2, 0).float().numpy()
    np.testing.assert_allclose(container.planes_to_rgb(planes, pix_fmt), back, rtol=0, atol=1e-7)


def test_front_end_video_never_imports_torch(tmp_path):
    """The default video model is the front end, frame by frame, on numpy: an encode, verify and decode of a clip
    in a fresh process leave torch unloaded."""
    import os
    import sys

    sequence(tmp_path / "frames", frames=3)
    code = ("import sys; from invisp_cli.cli import main; d = sys.argv[1]; "
            "main(['encode', d + '/frames', '-o', d + '/clip.mp4'], standalone_mode=False); "
            "main(['verify', d + '/clip.mp4'], standalone_mode=False); "
            "main(['decode', d + '/clip.mp4', '-o', d + '/out'], standalone_mode=False); "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    env = {k: v for k, v in os.environ.items() if k != "INVISP_WEIGHTS"}
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert container.read_doc(tmp_path / "clip.mp4").video["window"] == 1
    assert len(list((tmp_path / "out").glob("*.dng"))) == 3


def test_simulator_is_differentiable_and_close_to_libx264(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:96] / 64.0
    base = np.stack([0.5 + 0.3 * np.sin(4 * xx + 2 * yy), 0.5 + 0.3 * np.cos(3 * yy - xx),
                     0.4 + 0.3 * np.sin(5 * xx * yy)], -1)
    frames = [np.clip(np.roll(base, 2 * i, 1) + rng.normal(0, 0.03, base.shape), 0, 1).astype(np.float32)
              for i in range(4)]
    writer = container.Mp4Writer(tmp_path / "c.mp4", "h264", 28, "yuv420p", Fraction(24), 96, 64)
    for f in frames:
        writer.write(f)
    writer.close({})
    with av.open(str(tmp_path / "c.mp4")) as c:
        real = [container.planes_to_rgb([v.copy() for v in container._plane_views(fr, 8)], "yuv420p")
                for fr in c.decode(video=0)]
    y = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).requires_grad_()
    r = torch.from_numpy(np.stack(real)).permute(0, 3, 1, 2)
    torch.manual_seed(0)
    sim = VideoCodecSim()
    for mode in ("intra", "inter", "random"):
        out = sim(y, 28, mode=mode)
        assert out.shape == y.shape and 0 <= out.min() and out.max() <= 1
        (g,) = torch.autograd.grad(out.square().sum(), y)
        assert torch.isfinite(g).all() and g.abs().sum() > 0
        assert (out.detach() - r).square().mean() < 0.8 * (y.detach() - r).square().mean()
    assert 80 < float(crf_to_quality(23)) < 95 and float(crf_to_quality(35)) < float(crf_to_quality(23))


def test_mixed_cameras_and_sizes_are_refused(tmp_path, video_registry):
    frames = sequence(tmp_path / "a", frames=3)
    other = make_raw(h=64, w=96, cfa="GBRG", bits=12, seed=5, exif={"make": "Other", "model": "Cam"})
    rawio.write_dng(tmp_path / "a" / "frame_003.dng", other)
    mp4 = tmp_path / "clip.mp4"
    assert_fails(run("encode", tmp_path / "a", "-o", mp4), InputError, "frame_003.dng", "mixed cameras")
    rawio.write_dng(tmp_path / "a" / "frame_003.dng", make_raw(h=64, w=98, cfa="GBRG", bits=12, seed=5))
    assert_fails(run("encode", *frames, tmp_path / "a" / "frame_003.dng", "-o", mp4), InputError, "mixed frame sizes")
    assert not mp4.exists() and leftovers(tmp_path) == []
    assert_fails(run("encode", tmp_path / "empty-dir-missing", "-o", mp4), InputError, "empty-dir-missing")


def _remux(src: Path, dst: Path, tags: dict[str, str], packets: int | None = None) -> None:
    """Copy an MP4's video stream (its first ``packets`` packets) with new container tags."""
    with av.open(str(src)) as i, av.open(str(dst), "w", format="mp4",
                                         options={"movflags": "use_metadata_tags"}) as o:
        o.metadata.update(tags)
        s = o.add_stream_from_template(i.streams.video[0])
        kept = 0
        for p in i.demux(i.streams.video[0]):
            if p.dts is not None and (packets is None or kept < packets):
                p.stream = s
                o.mux(p)
                kept += 1


def test_bad_videos_are_refused_without_output(tmp_path, video_registry):
    sequence(tmp_path / "frames", frames=4)
    mp4, out = tmp_path / "clip.mp4", tmp_path / "out"
    assert run("encode", tmp_path / "frames", "-o", mp4).exit_code == 0
    plain = tmp_path / "plain.mp4"
    _remux(mp4, plain, {"comment": "just a video"})
    assert_fails(run("decode", plain, "-o", out), MetadataError, "no invisp metadata")
    tags = container.read_doc(mp4).to_tags()
    short = tmp_path / "short.mp4"
    _remux(mp4, short, tags, packets=3)
    assert_fails(run("decode", short, "-o", out), MetadataError, "frame count mismatch", "4 frames")
    doc = container.read_doc(mp4)
    doc.frames.append(doc.frames[-1])
    longer = tmp_path / "longer.mp4"
    _remux(mp4, longer, doc.to_tags())
    assert_fails(run("decode", longer, "-o", out), MetadataError, "frame count mismatch")
    tampered = tmp_path / "tampered.mp4"
    _remux(mp4, tampered, tags | {"invisp_params": tags["invisp_params"][:-8] + "AAAAAAA="})
    assert_fails(run("decode", tampered, "-o", out), MetadataError, "metadata")
    (tmp_path / "notvideo.mp4").write_bytes(b"\0\0\0\x18ftypmp42 not really")
    assert_fails(run("decode", tmp_path / "notvideo.mp4", "-o", out), InputError, "notvideo.mp4")
    assert_fails(run("decode", mp4, "-o", tmp_path / "x.dng"), InputError, "folder")
    assert not out.exists() and leftovers(tmp_path) == []


def test_output_folder_rules_and_failure_mid_decode(tmp_path, video_registry, monkeypatch):
    sequence(tmp_path / "frames", frames=3)
    mp4, out = tmp_path / "clip.mp4", tmp_path / "out"
    assert run("encode", tmp_path / "frames", "-o", mp4).exit_code == 0
    assert_fails(run("encode", tmp_path / "frames", "-o", mp4), OutputError, "exists")
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    assert_fails(run("decode", mp4, "-o", out), OutputError, "not empty", "--force")
    assert (out / "precious.txt").read_text() == "keep"

    calls, write_dng = [], rawio.write_dng

    def flaky(path, raw):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        Path(path).write_bytes(b"DNG")

    monkeypatch.setattr(rawio, "write_dng", flaky)
    r = run("decode", mp4, "-o", out, "--force")
    assert r.exit_code != 0 and "disk full" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"] and leftovers(tmp_path) == []
    monkeypatch.setattr(rawio, "write_dng", write_dng)
    assert run("decode", mp4, "-o", out, "--force").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["frame_000.dng", "frame_001.dng", "frame_002.dng",
                                                      "precious.txt"]  # --force never removes what it did not write
    assert (out / "precious.txt").read_text() == "keep" and leftovers(tmp_path) == []
