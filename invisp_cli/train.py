"""``invisp train``: fit a flow for one camera (or all cameras) on the user's RAW files.

Per training pair, from a random crop of a RAW file:
    x = Gamma(ColorMatrix(Demosaic(WB(Levels(mosaic)))))     the flow's input (metadata-driven analytic ISP)
    y = LibRaw postprocess(use_camera_wb, no_auto_bright)     the target sRGB, cached once per file
Loss (paper eq. 8, with the differentiable JPEG of sec. 4.3.1 between the passes):
    L = ‖f(x) − y‖₁ + λ ‖f⁻¹(JPEG_q(clip(f(x), 0, 1))) − x‖₁,   q ~ U[q_lo, q_hi]
Runs under ``torchrun`` with DistributedDataParallel (gloo on CPU, nccl on GPU): each rank samples its own
crops (seed + rank), gradients are all-reduced by DDP, rank 0 validates and writes checkpoints."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from PIL import Image, ImageFilter
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import load_file

from . import rawio
from .errors import InputError, ModelError
from .flows import build
from .metrics import mac_per_pixel, normalise_mosaic, raw_psnr_gamma, raw_psnr_lin, rgb_psnr
from .params import ReconstructionParams
from .progress import console
from .rawfiles import raw_files
from .rawio import RawImage
from .settings import FrontEnd
from .simulators.jpeg import DiffJPEG
from .steps import DEFAULT_DEMOSAIC, DEFAULT_KNEE, Chain, Gamma, front_end, libraw_gain
from .zoo import ModelEntry, read_registry, remember_trained, save_checkpoint, write_registry


@dataclass
class TrainConfig:
    camera: str
    data: list[str]
    out: str
    arch: str = "squeeze"
    hparams: dict = field(default_factory=dict)
    steps: int = 2000
    batch: int = 8
    patch: int = 96
    lr: float = 2e-4
    quality: tuple[int, int] = (80, 95)
    subsampling: str = "4:4:4"
    lam: float = 1.0
    seed: int = 0
    val: list[str] = field(default_factory=list)
    val_crop: int = 512
    synthetic: int = 0
    synthetic_templates: list[str] = field(default_factory=list)
    every: int = 250
    model_id: str = ""
    resume: bool = False
    init: str = ""
    demosaic: str = DEFAULT_DEMOSAIC
    highlight_knee: float | None = DEFAULT_KNEE
    clip_aware: bool = True
    hard_fraction: float = 0.2
    cache: str = ""


@dataclass
class Sample:
    """One training image: RAW in sensor orientation and its LibRaw render aligned to it."""

    name: str
    raw: RawImage
    target: np.ndarray  # uint8 (H, W, 3), sensor orientation
    gain: float = 1.0  # steps.libraw_gain of the whole frame


def reference_render(path: Path, raw: RawImage, cache: Path | None) -> np.ndarray:
    """LibRaw's render of ``path`` in sensor orientation, cached as .npy keyed by the file's hash."""
    key = hashlib.sha256(path.read_bytes()).hexdigest()[:20]
    cached = cache / f"{key}.npy" if cache else None
    if cached and cached.is_file():
        return np.load(cached)
    ref = rawio.undo_flip(rawio.render_reference(path), raw.flip)
    if ref.shape[:2] != raw.mosaic.shape:
        raise InputError(f"{path}: LibRaw renders {ref.shape[:2]} but the visible mosaic is {raw.mosaic.shape}")
    if cached:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cached, ref)
    return ref


SHOT_RANGE = (1e-5, 1e-3)  # σ²_shot of the synthetic sensor: base to mid ISO, as the photos were taken
BLUR_PX = 1.0


def synthetic_samples(count: int, templates: list[RawImage], rng: np.random.Generator,
                      workdir: Path) -> list[Sample]:
    """``count`` unprocessed versions of each bundled photo, with the colour matrix, CFA and levels of a
    random template RAW; the target is LibRaw's render of the synthetic DNG, exactly as for real files."""
    from .synth import bundled_photos, unprocess

    out = []
    workdir.mkdir(parents=True, exist_ok=True)
    for name, photo in bundled_photos():
        # the photos are sharp to the pixel; a real lens (and optical low-pass filter) is not: without this
        # blur the Bayer sampling aliases and no demosaic agrees with LibRaw's
        soft = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(radius=BLUR_PX)))
        for i in range(count):
            t = templates[rng.integers(len(templates))]
            raw = unprocess(soft, t.xyz_to_cam, cfa=t.cfa, white=t.white, black=t.black, rng=rng,
                            shot_range=SHOT_RANGE, exposure=rng.uniform(0.7, 1.6))
            dng = workdir / f"synth-{t.exif.get('make', 'cam')}-{name}-{i}.dng".replace(" ", "_")
            rawio.write_dng(dng, raw)
            raw = rawio.read_raw(dng)
            ref = rawio.undo_flip(rawio.render_reference(dng), raw.flip)
            out.append(Sample(f"synthetic:{name}:{i}", raw, ref, libraw_gain(raw)))
    return out


def isp_of(cfg: TrainConfig) -> dict:
    """The analytic front end the flow trains behind, as recorded in its registry entry (``ModelEntry.isp``)."""
    isp: dict = {"demosaic": cfg.demosaic}
    if cfg.highlight_knee is not None:
        isp["highlight_knee"] = cfg.highlight_knee
    return isp


def analytic_input(raw: RawImage, gain: float, isp: Mapping) -> torch.Tensor:
    """(1, 3, H, W) flow input for a RawImage: the metadata-driven front end (``isp``: demosaic, highlight
    knee; ``gain``: exposure) applied to its mosaic."""
    chain = Chain(front_end(raw, FrontEnd.of(isp, gain)))
    m = torch.from_numpy(raw.mosaic.astype(np.float32))[None, None]
    return chain.forward(m)


def clipped(x: torch.Tensor) -> torch.Tensor:
    """Total amount by which values lie outside [0, 1], i.e. what an 8-bit file would clip."""
    return (x.clamp(0, 1) - x).abs().sum()


class PatchSampler:
    """Random (x, y) crops: even-aligned mosaic crop → analytic steps → random flip / 90° rotation."""

    def __init__(self, samples: list[Sample], patch: int, rng: np.random.Generator, isp: Mapping,
                 hard_fraction: float = 0.2, hard: int = 4):
        self.samples, self.patch, self.rng, self.isp = samples, patch, rng, dict(isp)
        self.hard_fraction, self.hard = hard_fraction, hard
        areas = np.array([s.raw.mosaic.size for s in samples], dtype=float)
        self.p = np.sqrt(areas) / np.sqrt(areas).sum()  # favour big files, but not overwhelmingly

    @torch.no_grad()
    def _crop(self) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.samples[self.rng.choice(len(self.samples), p=self.p)]
        p, m = self.patch, 2
        h, w = s.raw.mosaic.shape
        y0 = 2 * self.rng.integers(0, max(1, (h - p - 2 * m) // 2))
        x0 = 2 * self.rng.integers(0, max(1, (w - p - 2 * m) // 2))
        x = analytic_input(s.raw.crop(y0, x0, p + 2 * m, p + 2 * m), s.gain, self.isp)[0, :, m:-m, m:-m]
        y = torch.from_numpy(s.target[y0 + m : y0 + m + p, x0 + m : x0 + m + p].transpose(2, 0, 1) / 255.0)
        return x, y

    def one(self) -> tuple[torch.Tensor, torch.Tensor]:
        """A random crop; with probability ``hard_fraction`` the one of ``hard`` candidates with the most
        out-of-gamut or over-range values (the pixels the JPEG would clip), rare but decisive for highlights."""
        if self.rng.random() >= self.hard_fraction:
            x, y = self._crop()
        else:
            x, y = max((self._crop() for _ in range(self.hard)), key=lambda c: float(clipped(c[0])))
        k = int(self.rng.integers(4))
        x, y = torch.rot90(x, k, (1, 2)), torch.rot90(y.float(), k, (1, 2))
        if self.rng.random() < 0.5:
            x, y = x.flip(2), y.flip(2)
        return x, y

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = zip(*(self.one() for _ in range(n)), strict=True)
        return torch.stack(xs).contiguous(), torch.stack(ys).contiguous()


LIBRAW_CLIPPED = 254 / 255


def rgb_loss(y_hat: torch.Tensor, y: torch.Tensor, floor: float | None) -> torch.Tensor:
    """L1 between the render, clipped to what the 8-bit file can show, and LibRaw's render y.

    With a ``floor`` (clip-aware): where a channel of LibRaw's render is clipped (≥ 254/255) its white is
    information LibRaw threw away, not a target, so only output below the floor counts there (one-sided,
    max(floor − ŷ, 0)); the highlight roll-off's shoulder above it stays free to keep the RAW recoverable."""
    out = y_hat.clamp(0, 1)
    err = (out - y).abs()
    if floor is not None:
        err = torch.where(y >= LIBRAW_CLIPPED, (floor - out).clamp(min=0), err)
    return err.mean()


def rgb_floor(cfg: TrainConfig) -> float | None:
    """The clip-aware floor: the rendered value of the highlight knee, Gamma(k) (None: plain L1)."""
    if not cfg.clip_aware or cfg.highlight_knee is None:
        return None
    return float(Gamma().forward(torch.tensor(cfg.highlight_knee, dtype=torch.float64)))


class RoundTrip(nn.Module):
    """forward → clip → differentiable JPEG → inverse, as one module so DDP sees every parameter use."""

    def __init__(self, flow: nn.Module, subsampling: str):
        super().__init__()
        self.flow, self.jpeg, self.subsampling = flow, DiffJPEG("fourier"), subsampling

    def forward(self, x: torch.Tensor, quality: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y_hat = self.flow(x)
        compressed = self.jpeg(y_hat.clamp(0, 1), quality, self.subsampling)
        return y_hat, self.flow.inverse(compressed)


def evaluate(model: nn.Module, samples: list[Sample], quality: int, subsampling: str, crop: int,
             isp: Mapping) -> dict:
    """Real round trip (render → Pillow JPEG → decode → recover) on a centre crop of each validation file."""
    from .codec import decode_bytes, encode_bytes
    from .settings import JPEG, FrontEnd, render_record

    rows = []
    for s in samples:
        h, w = s.raw.mosaic.shape
        ch, cw = min(crop, h) // 4 * 4, min(crop, w) // 4 * 4
        y0, x0 = (h - ch) // 4 * 2, (w - cw) // 4 * 2
        raw = s.raw.crop(y0, x0, ch, cw)
        settings = render_record(JPEG(quality, subsampling), FrontEnd.of(isp, s.gain))
        data = encode_bytes(raw, model, ReconstructionParams.from_raw(raw, "eval", "0" * 64, settings))
        decoded, _, back = decode_bytes(data, model, name=s.name)
        n = normalise_mosaic(raw.mosaic, raw.black, raw.white)
        n_hat = normalise_mosaic(back.mosaic, raw.black, raw.white)
        rows.append({"file": s.name, "raw_psnr_gamma": raw_psnr_gamma(n_hat, n), "raw_psnr_lin": raw_psnr_lin(n_hat, n),
                     "rgb_psnr": rgb_psnr(decoded, s.target[y0 : y0 + ch, x0 : x0 + cw]),
                     "bpp": 8 * len(data) / n.size})
    mean = {k: float(np.mean([r[k] for r in rows])) for k in ("raw_psnr_gamma", "raw_psnr_lin", "rgb_psnr", "bpp")}
    return {"mean": mean, "files": rows}


def load_samples(files: list[Path], cache: Path | None) -> list[Sample]:
    """Read each RAW and its LibRaw render; files LibRaw renders at another size (non-square pixels, e.g.
    Kodak DC120) cannot give aligned pairs and are skipped with a warning."""
    out = []
    for f in files:
        raw = rawio.read_raw(f)
        try:
            out.append(Sample(f.name, raw, reference_render(f, raw, cache), libraw_gain(raw)))
        except InputError as e:
            console.print(f"[yellow]skipping[/] {e}")
    return out


def dist_setup() -> tuple[int, int]:
    if "RANK" not in os.environ or dist.is_initialized():
        return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def train(cfg: TrainConfig, device: str = "cpu") -> ModelEntry | None:
    """Train, validate and save; returns the registry entry on rank 0 (None on other ranks)."""
    rank, world = dist_setup()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1000 * rank)
    out = Path(cfg.out)
    cache = Path(cfg.cache) if cfg.cache else out / "cache"
    train_files = raw_files(cfg.data)
    val_files = raw_files(cfg.val) if cfg.val else []
    train_files = [f for f in train_files if f.resolve() not in {v.resolve() for v in val_files}]
    if not train_files:
        raise InputError("no RAW files to train on")
    samples = load_samples(train_files, cache)
    if cfg.synthetic:
        synth_rng = np.random.default_rng(cfg.seed + 7)  # same synthetic set on every rank
        # metadata only (colour matrix, CFA, levels) of the template files; default: the training files
        templates = [rawio.read_raw(f) for f in raw_files(cfg.synthetic_templates)] or [s.raw for s in samples]
        samples += synthetic_samples(cfg.synthetic, templates, synth_rng, cache / "synthetic")
    val = load_samples(val_files, cache) if rank == 0 else []

    flow = build(cfg.arch, **cfg.hparams)
    if cfg.init:
        flow.load_state_dict(load_file(cfg.init), strict=True)
    flow = flow.to(device)
    roundtrip = distributed(RoundTrip(flow, cfg.subsampling).to(device), world)
    sampler = PatchSampler(samples, cfg.patch, rng, isp_of(cfg), cfg.hard_fraction)
    floor = rgb_floor(cfg)
    per_rank = max(1, cfg.batch // world)

    def step() -> Losses:
        x, y = (t.to(device) for t in sampler.batch(per_rank))
        q = torch.from_numpy(rng.uniform(cfg.quality[0], cfg.quality[1], per_rank)).float()
        y_hat, x_hat = roundtrip(x, q)
        return Losses(rgb_loss(y_hat, y, floor), (x_hat - x).abs().mean(), y_hat, y, x_hat, x)

    def validate(done: int) -> dict | None:
        return evaluate(flow, val, 90, cfg.subsampling, cfg.val_crop, isp_of(cfg))["mean"] if val else None

    t_start = fit(flow, cfg, step, validate, "train", rank, device)
    return finish(cfg, flow, samples, train_files, val_files, t_start, rank, world,
                  lambda: evaluate(flow, val, 90, cfg.subsampling, cfg.val_crop, isp_of(cfg)) if val else {})


@dataclass
class Losses:
    """One training step's losses and the tensors its progress line reports: L = L_rgb + λ·L_raw."""

    rgb: torch.Tensor
    raw: torch.Tensor
    y_hat: torch.Tensor
    y: torch.Tensor
    x_hat: torch.Tensor
    x: torch.Tensor


def fit(flow: nn.Module, cfg: TrainConfig, step: Callable[[], Losses], validate: Callable[[int], dict | None],
        label: str, rank: int, device) -> float:
    """The one training loop of image and video flows: Adam (the tone curves, which see few out-of-range pixels per
    batch, at 2× the learning rate), cosine schedule, gradient clipping at 1, ``--resume`` from OUT/train_state.pt,
    a progress bar, and every ``cfg.every`` steps a validation (``validate(step)``, None to skip) and a checkpoint.
    ``step()`` draws a batch and runs the round trip. Returns the start time."""
    out = Path(cfg.out)
    curves = [p for n, p in flow.named_parameters() if "curve" in n]
    others = [p for n, p in flow.named_parameters() if "curve" not in n]
    opt = torch.optim.Adam([{"params": others}, {"params": curves, "lr": cfg.lr * 2}], lr=cfg.lr)
    state_file, step0 = out / "train_state.pt", 0
    if cfg.resume and state_file.is_file():
        state = load_train_state(state_file, device)
        flow.load_state_dict(state["model"])
        opt.load_state_dict(state["optim"])
        step0 = int(state["step"])
    sched = cosine_schedule(opt, step0, cfg.steps)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    with training_progress(label, rank) as prog:
        task = prog.add_task("train", total=cfg.steps, completed=step0, status="")
        for done in range(step0 + 1, cfg.steps + 1):
            losses = step()
            loss = losses.rgb + cfg.lam * losses.raw
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), 1.0)
            opt.step()
            sched.step()
            its = (done - step0) / (time.time() - t_start)
            status = (f"loss {loss.item():.4f}  RGB {_psnr(losses.y_hat.clamp(0, 1), losses.y):.1f} dB  "
                      f"RAW {_psnr(losses.x_hat, losses.x):.1f} dB  {its:.2f} it/s")
            prog.update(task, completed=done, status=status)
            if rank == 0 and (done % cfg.every == 0 or done == cfg.steps):
                rec = {"step": done, "loss": loss.item(), "l_rgb": losses.rgb.item(), "l_raw": losses.raw.item(),
                       "seconds": round(time.time() - t_start, 1)}
                flow.eval()
                val = validate(done)
                flow.train()
                if val is not None:
                    rec["val"] = val
                    prog.console.print(f"step {done}: val {val}")
                save_progress(out, rec, flow, opt)
    return t_start


def finish(cfg: TrainConfig, flow: nn.Module, samples: list[Sample], train_files: list[Path], val_files: list[Path],
           t_start: float, rank: int, world: int, final: Callable[[], dict]) -> ModelEntry | None:
    """After ``fit``: every process waits for the others; rank 0 runs the final validation (``final()``) and saves
    and registers the checkpoint (None on the other ranks)."""
    if world > 1:
        dist.barrier()
    if rank != 0:
        return None
    flow.eval()
    return register_model(cfg, flow, samples, train_files, val_files, final(), time.time() - t_start, world)


def distributed(module: nn.Module, world: int) -> nn.Module:
    """``module`` wrapped in DistributedDataParallel when more than one process trains."""
    return nn.parallel.DistributedDataParallel(module) if world > 1 else module


def cosine_schedule(opt: torch.optim.Optimizer, step0: int, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate × ½(1 + cos(π·s/steps)), continuing from ``step0`` on resume."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, (s + step0) / max(1, steps)))))


def training_progress(label: str, rank: int) -> Progress:
    """The rich bar of a training run (step count, status line, elapsed, ETA), shown on rank 0 only."""
    columns = (TextColumn(f"[bold]{label}[/] {{task.completed}}/{{task.total}}"), BarColumn(),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, disable=rank != 0)


def load_train_state(state_file: Path, device) -> dict:
    """OUT/train_state.pt for ``--resume``, loaded safely (tensors and plain containers only, never arbitrary
    pickled objects); anything else is a ModelError naming the file."""
    try:
        state = torch.load(state_file, weights_only=True, map_location=device)
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError/RuntimeError/EOFError/… on foreign files
        raise ModelError(f"{state_file}: not an invisp training state ({type(e).__name__}); refusing to load it "
                         "(delete it to start afresh)") from None
    if not (isinstance(state, dict) and {"model", "optim", "step"} <= state.keys()):
        raise ModelError(f"{state_file}: not an invisp training state (missing model/optim/step)")
    return state


def save_progress(out: Path, rec: dict, flow: nn.Module, opt: torch.optim.Optimizer) -> None:
    """Append ``rec`` to OUT/log.jsonl and atomically replace OUT/train_state.pt (what ``--resume`` reads)."""
    with (out / "log.jsonl").open("a") as f:
        f.write(json.dumps(rec) + "\n")
    state_file = out / "train_state.pt"
    tmp = state_file.with_suffix(".part")
    torch.save({"model": flow.state_dict(), "optim": opt.state_dict(), "step": rec["step"]}, tmp)
    os.replace(tmp, state_file)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.detach() - b) ** 2).mean())
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def register_model(cfg: TrainConfig, flow: nn.Module, samples: list[Sample], train_files: list[Path],
              val_files: list[Path], final: dict, seconds: float, world: int) -> ModelEntry:
    out = Path(cfg.out)
    model_id = cfg.model_id or f"{cfg.camera}-{cfg.arch}"
    for old in out.glob(f"{model_id}-*.safetensors"):
        old.unlink()
    name, sha = save_checkpoint(flow.cpu(), out, model_id)
    n_synth = sum(s.name.startswith("synthetic:") for s in samples)
    cfg_json = {k: v for k, v in asdict(cfg).items() if k not in ("resume",)}
    entry = ModelEntry(
        id=model_id, file=name, sha256=sha, arch=cfg.arch, hparams=cfg.hparams,
        cameras=["*"] if cfg.camera in ("generic", "*") else [cfg.camera],
        training={
            "command": shlex.join(["invisp", *sys.argv[1:]]) if Path(sys.argv[0]).name == "invisp" else "",
            "config": cfg_json,
            "files": [f.name for f in train_files],
            "synthetic_images": n_synth,
            "data_summary": f"{len(train_files)} real RAW + {n_synth} synthetic",
            "held_out": [f.name for f in val_files],
            "seconds": round(seconds, 1), "processes": world,
            "kmac_per_px": round(mac_per_pixel(flow, (1, 3, 64, 64)) / 1e3, 1),
            "torch": torch.__version__,
        },
        metrics={f"val_{k}": round(v, 2) for k, v in final.get("mean", {}).items()} | (
            {"per_file": final["files"]} if final else {}),
        isp=isp_of(cfg),
        folder=out,
    )
    entries = [e for e in read_registry(out) if e.id != model_id] + [entry]
    write_registry(out, entries)
    remember_trained(out)  # encode, decode and models find it from now on, with no INVISP_WEIGHTS
    return entry
