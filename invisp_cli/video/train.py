"""``invisp train --video``: fit the video flow on windows of frames cut from the user's RAW files.

A training window is W crops of one RAW file along a random straight path (motion per frame up to ``motion`` px,
even, so every crop keeps the CFA layout): the analytic-ISP inputs x_{t−k…t+k} and their LibRaw renders
y_{t−k…t+k}. With c_fwd = clip(x_{t±}, 0, 1) and c_inv = V(y_{t±}) (ground-truth RGB neighbours through the video
simulator V, as decoded neighbours look), the loss on the centre frame is (TPAMI eq. 9)

    L = ‖f(x_t ; c_fwd) − y_t‖₁ + λ ‖f⁻¹(V_crf(clip(f(x_t ; c_fwd), 0, 1)) ; c_inv) − x_t‖₁,   crf ~ U[lo, hi]

and, with probability ``p_edge``, one neighbour is replaced by the centre frame, as at the ends of a clip.
Samples, the cosine schedule, DDP, logging, checkpoints and the registry entry are those of ``invisp_cli.train``;
validation is the real thing: encode → libx264 → decode of held-out slide sequences (``evaluate_sequence``)."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file

from .. import rawio
from ..errors import InputError
from ..flows import ARCHITECTURES, build, is_video
from ..metrics import flicker, normalise_mosaic, raw_psnr_gamma, raw_psnr_lin, rgb_psnr
from ..rawfiles import raw_files
from ..train import (
    Losses,
    PatchSampler,
    TrainConfig,
    analytic_input,
    dist_setup,
    distributed,
    finish,
    fit,
    isp_of,
    load_samples,
    rgb_floor,
    rgb_loss,
)
from ..zoo import ModelEntry
from .codec import decode_video, encode_video
from .container import iter_frames, read_doc
from .frames import output_names, slide_sequence
from .simulator import VideoCodecSim


@dataclass
class VideoTrainConfig(TrainConfig):
    crf: tuple[int, int] = (18, 32)
    motion: int = 4  # max crop motion per frame in training windows (px, even)
    p_edge: float = 0.1  # probability of a clip-end window (a neighbour replaced by the centre)
    val_frames: int = 6
    val_step: tuple[int, int] = (2, 4)  # held-out sequences: crop motion per frame (dy, dx)
    val_codec: str = "h264"
    val_crf: int = 23


class WindowSampler(PatchSampler):
    """``PatchSampler`` whose crops are windows of W frames moving along a random path, stacked as channels
    (3W, p, p) for x and y, so its hard-example choice and flips/rotations apply to whole windows alike."""

    def __init__(self, samples, patch: int, rng: np.random.Generator, isp: dict, hard_fraction: float,
                 window: int, motion: int):
        super().__init__(samples, patch, rng, isp, hard_fraction)
        self.window, self.motion = window, motion

    @torch.no_grad()
    def _crop(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.samples[self.rng.choice(len(self.samples), p=self.p)]
        p, m, half = self.patch, 2, self.window // 2
        dy, dx = (2 * int(v) for v in self.rng.integers(-(self.motion // 2), self.motion // 2 + 1, 2))
        h, w = s.raw.mosaic.shape
        ry, rx = half * abs(dy), half * abs(dx)
        y0 = ry + 2 * self.rng.integers(0, max(1, (h - p - 2 * m - 2 * ry) // 2))
        x0 = rx + 2 * self.rng.integers(0, max(1, (w - p - 2 * m - 2 * rx) // 2))
        # the analytic ISP once on the window's bounding box (it is local: each frame's crop of it is exact)
        by, bx = y0 - ry, x0 - rx
        box = analytic_input(s.raw.crop(by, bx, p + 2 * m + 2 * ry, p + 2 * m + 2 * rx), s.gain,
                             self.isp)[0]
        xs, ys = [], []
        for k in range(-half, half + 1):
            yk, xk = y0 + k * dy, x0 + k * dx
            xs.append(box[:, yk - by + m : yk - by + m + p, xk - bx + m : xk - bx + m + p])
            ys.append(torch.from_numpy(s.target[yk + m : yk + m + p, xk + m : xk + m + p].transpose(2, 0, 1) / 255.0))
        return torch.cat(xs), torch.cat(ys)


def split(t: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3W, H, W) window → centre (N, 3, H, W) and neighbours (N, 3(W − 1), H, W)."""
    k = 3 * (window // 2)
    return t[:, k : k + 3], torch.cat([t[:, :k], t[:, k + 3 :]], 1)


class VideoRoundTrip(nn.Module):
    """forward on the centre given clipped analytic neighbours → clip → video simulator → inverse given the
    simulated-decoded ground-truth neighbours; one module so DDP sees every parameter use."""

    def __init__(self, flow: nn.Module):
        super().__init__()
        self.flow, self.sim = flow, VideoCodecSim()
        self.sim_neighbours = VideoCodecSim(rounding="hard")  # no gradient needed: exact rounding, cheaper

    def forward(self, xc: torch.Tensor, c_fwd: torch.Tensor, yn: torch.Tensor,
                crf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = xc.shape[0]
        with torch.no_grad():
            flat = yn.reshape(-1, 3, *yn.shape[-2:])
            c_inv = self.sim_neighbours(flat, crf.repeat_interleave(flat.shape[0] // n)).reshape(yn.shape)
        y_hat = self.flow(xc, c_fwd)
        return y_hat, self.flow.inverse(self.sim(y_hat.clamp(0, 1), crf), c_inv)


def _edge_windows(x: torch.Tensor, y: torch.Tensor, window: int, p: float, rng: np.random.Generator) -> None:
    """In place: with probability p per sample, replace the frames on one side of the centre by the centre."""
    half, k = window // 2, 3 * (window // 2)
    for i in np.flatnonzero(rng.random(x.shape[0]) < p):
        side = range(0, half) if rng.random() < 0.5 else range(half + 1, window)
        for j in side:
            x[i, 3 * j : 3 * j + 3] = x[i, k : k + 3]
            y[i, 3 * j : 3 * j + 3] = y[i, k : k + 3]


def evaluate_sequence(frames: list[Path], loaded: tuple[ModelEntry, nn.Module], workdir: Path, *, codec: str = "h264",
                      crf: int = 23, pix_fmt: str = "yuv420p", refs: list[np.ndarray] | None = None) -> dict:
    """Real round trip of a RAW sequence (encode → MP4 → decode) and its metrics: mean per-frame RAW-PSNR-γ/lin
    and RGB-PSNR (decoded 8-bit frames vs LibRaw's render of each frame), flicker of the RGB frames (8-bit units)
    and of the recovered normalised mosaics (×10³), bpp, and encode/decode frames per second."""
    workdir.mkdir(parents=True, exist_ok=True)
    mp4, out = workdir / "clip.mp4", workdir / "decoded"
    enc = encode_video(frames, mp4, codec=codec, crf=crf, pix_fmt=pix_fmt, force=True, loaded=loaded)
    dec = decode_video(mp4, out, force=True, model=loaded[1])
    refs = refs if refs is not None else [rawio.render_reference(f) for f in frames]
    doc = read_doc(mp4)
    rgb = [np.round(f * 255).astype(np.uint8) for f in iter_frames(mp4, doc)]
    rows, n_all, nh_all = [], [], []
    names = output_names([info.name for info in doc.frames])
    for f, name, dec_rgb, ref in zip(frames, names, rgb, refs, strict=True):
        a = rawio.read_raw(f)
        b = rawio.read_raw(out / name)
        n, nh = normalise_mosaic(a.mosaic, a.black, a.white), normalise_mosaic(b.mosaic, a.black, a.white)
        n_all.append(n)
        nh_all.append(nh)
        rows.append({"frame": f.name, "raw_psnr_gamma": raw_psnr_gamma(nh, n), "raw_psnr_lin": raw_psnr_lin(nh, n),
                     "rgb_psnr": rgb_psnr(dec_rgb, ref)})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("raw_psnr_gamma", "raw_psnr_lin", "rgb_psnr")}
    pixels = sum(n.size for n in n_all)
    mean |= {"flicker_rgb": flicker(rgb, refs) if len(rgb) > 1 else 0.0,
             "flicker_raw_e3": 1e3 * flicker(nh_all, n_all) if len(rgb) > 1 else 0.0,
             "bpp": 8 * enc.bytes / pixels, "encode_fps": enc.frames / enc.seconds,
             "decode_fps": dec.frames / dec.seconds}
    return {"mean": mean, "frames": rows}


def _val_sequences(cfg: VideoTrainConfig, files: list[Path], cache: Path) -> list[tuple[str, list[Path]]]:
    """One held-out slide sequence per validation file: val_frames centred crops of val_crop² (smaller where the
    file is) moving val_step per frame."""
    seqs = []
    n, (dy, dx) = cfg.val_frames, cfg.val_step
    for f in files:
        folder = cache / "val-sequences" / f"{f.stem}-{cfg.val_crop}-{n}-{dy}-{dx}"
        paths = sorted(folder.glob("frame_*.dng"))
        if len(paths) != n:
            raw = rawio.read_raw(f)
            h, w = raw.mosaic.shape
            size = min(cfg.val_crop, h - abs(dy) * (n - 1), w - abs(dx) * (n - 1)) // 4 * 4
            if size < 16:
                raise InputError(f"{f.name}: too small for a {n}-frame validation sequence")
            paths = slide_sequence(raw, folder, n, (size, size), (dy, dx))
        seqs.append((f.name, paths))
    return seqs


def _evaluate(flow: nn.Module, cfg: VideoTrainConfig, seqs: list[tuple[str, list[Path]]]) -> dict:
    """Mean over the held-out sequences (model registered as a placeholder ID, not written to any registry)."""
    entry = ModelEntry(id="validation", file="", sha256="0" * 64, arch=cfg.arch, hparams=cfg.hparams, cameras=[],
                       isp=isp_of(cfg))
    rows = []
    with tempfile.TemporaryDirectory(prefix="invisp-video-val-") as tmp:
        for name, frames in seqs:
            r = evaluate_sequence(frames, (entry, flow), Path(tmp) / name, codec=cfg.val_codec, crf=cfg.val_crf)
            rows.append({"file": name} | r["mean"])
    keys = [k for k in rows[0] if k != "file"]
    return {"mean": {k: float(np.mean([r[k] for r in rows])) for k in keys}, "files": rows}


def _build(cfg: VideoTrainConfig) -> nn.Module:
    flow = build(cfg.arch, **cfg.hparams)
    if cfg.init:
        state = load_file(cfg.init)
        if set(state) == set(flow.state_dict()):
            flow.load_state_dict(state, strict=True)
        else:
            try:
                flow.load_image_state(state)
            except ValueError as e:
                raise InputError(f"--init {cfg.init}: {e}") from None
    return flow


def train_video(base: TrainConfig, crf_range: tuple[int, int] = (18, 32), device: str = "cpu") -> ModelEntry | None:
    """Train the video flow with the image training's settings (``base``) plus a simulated CRF range (lo, hi);
    returns the registry entry on rank 0."""
    arch = base.arch if is_video(base.arch) else f"video-{base.arch}"
    if arch not in ARCHITECTURES:
        video_archs = ", ".join(a for a in ARCHITECTURES if is_video(a))
        raise InputError(f"--video needs a video architecture ({video_archs}), not {base.arch!r}")
    if base.synthetic:
        raise InputError("--synthetic is not supported with --video (windows need real RAW frames)")
    known = {f.name for f in fields(TrainConfig)}
    cfg = VideoTrainConfig(**{k: v for k, v in asdict(base).items() if k in known}, crf=crf_range)
    cfg.arch = arch
    if cfg.val_crop == TrainConfig.val_crop:
        cfg.val_crop = 256
    return _train(cfg, device)


def _train(cfg: VideoTrainConfig, device: str) -> ModelEntry | None:
    rank, world = dist_setup()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1000 * rank)
    out = Path(cfg.out)
    cache = Path(cfg.cache) if cfg.cache else out / "cache"
    val_files = raw_files(cfg.val) if cfg.val else []
    train_files = [f for f in raw_files(cfg.data) if f.resolve() not in {v.resolve() for v in val_files}]
    if not train_files:
        raise InputError("no RAW files to train on")
    samples = load_samples(train_files, cache)
    seqs = _val_sequences(cfg, val_files, cache) if rank == 0 else []

    flow = _build(cfg).to(device)
    window = flow.window
    roundtrip = distributed(VideoRoundTrip(flow).to(device), world)
    sampler = WindowSampler(samples, cfg.patch, rng, isp_of(cfg), cfg.hard_fraction, window, cfg.motion)
    floor = rgb_floor(cfg)
    per_rank = max(1, cfg.batch // world)

    def step() -> Losses:
        x, y = sampler.batch(per_rank)
        _edge_windows(x, y, window, cfg.p_edge, rng)
        (xc, xn), (yc, yn) = split(x.to(device), window), split(y.to(device).float(), window)
        crf = torch.from_numpy(rng.uniform(cfg.crf[0], cfg.crf[1], per_rank))
        y_hat, x_hat = roundtrip(xc, xn.clamp(0, 1), yn, crf)
        return Losses(rgb_loss(y_hat, yc, floor), (x_hat - xc).abs().mean(), y_hat, yc, x_hat, xc)

    def validate(done: int) -> dict | None:  # the final validation follows below
        return _evaluate(flow, cfg, seqs)["mean"] if seqs and done != cfg.steps else None

    t_start = fit(flow, cfg, step, validate, "train --video", rank, device)
    return finish(cfg, flow, samples, train_files, val_files, t_start, rank, world,
                  lambda: _evaluate(flow, cfg, seqs) if seqs else {})
