"""The ``invisp`` command line: parse, call one function, print with rich, map errors to exit codes."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .errors import InvispError
from .progress import console
from .video import cli as video_cli  # RAW video: hooks in encode, decode, train

out = Console()  # results go to stdout; progress and messages to stderr (progress.console)


def _errors(fn):
    """Turn an InvispError (or an unexpected failure) into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvispError as e:
            click.echo(f"invisp: error: {e}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException:  # usage errors raised in a command body: click reports them
            raise
        except KeyboardInterrupt:
            click.echo("invisp: interrupted; no output written", err=True)
            sys.exit(130)
        except Exception as e:  # a bug, not bad input: still one line, and nothing half-written
            if "--debug" in sys.argv or __import__("os").environ.get("INVISP_DEBUG"):
                raise
            click.echo(f"invisp: internal error: {type(e).__name__}: {e} (set INVISP_DEBUG=1 for a traceback)",
                       err=True)
            sys.exit(70)

    return wrapper


def _knee(text: str) -> float | None:
    """``--highlight-knee``: a number in (0, 1), or "none" for no roll-off (the v1 front end)."""
    if text.strip().lower() == "none":
        return None
    try:
        knee = float(text)
    except ValueError:
        knee = -1.0
    if not 0.0 < knee < 1.0:
        raise click.BadParameter(f"{text!r}: expected a number in (0, 1) or 'none'", param_hint="--highlight-knee")
    return knee


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="invisp")
def main() -> None:
    """invisp: render camera RAW into an ordinary JPEG, and recover the RAW from that JPEG."""


@main.command()
@click.argument("src", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "dst", required=True, type=click.Path(path_type=Path),
              help="output .jpg (.mp4: RAW frames or a folder of them → video)")
@click.option("--model", "model_id", default=None, help="model ID (default: chosen from the camera make)")
@click.option("-q", "--quality", default=90, show_default=True, type=click.IntRange(1, 100))
@click.option("--subsampling", default="4:4:4", show_default=True, type=click.Choice(["4:4:4", "4:2:2", "4:2:0"]),
              help="JPEG chroma subsampling")
@click.option("--tile", default=1024, show_default=True, type=click.IntRange(64, 8192), help="tile size (px)")
@click.option("--exact", is_flag=True, help="add a residual layer: decode then recovers the RAW bit-exactly")
@click.option("--max-error", type=click.IntRange(0, 65535), default=None, metavar="N",
              help="add a residual layer: decode then recovers every raw value within ±N (0 = --exact)")
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output")
@video_cli.video_encode_options
@_errors
def encode(src: Path, dst: Path, model_id: str | None, quality: int, subsampling: str, tile: int, exact: bool,
           max_error: int | None, force: bool, **video) -> None:
    """Render a RAW file (DNG, CR2, NEF, … any LibRaw Bayer format) into an invisp JPEG, or RAW frames (files or a
    folder) into an invisp MP4."""
    if video_cli.is_video_encode(src, dst):  # RAW frames → MP4 (invisp_cli/video)
        if exact or max_error is not None:
            raise click.UsageError("--exact/--max-error are for JPEG output; MP4 has no residual layer")
        return video_cli.encode(src, dst, model_id=model_id, tile=tile, force=force, **video)
    (src,) = src
    from .codec import encode_file

    if exact and max_error:
        raise click.UsageError("--exact and --max-error N > 0 contradict each other")
    r = encode_file(src, dst, model_id=model_id, quality=quality, subsampling=subsampling, force=force,
                    tile=tile, max_error=0 if exact else max_error)
    layer = f", {r.layer}" if r.layer else ""
    console.print(f"{src} → {r.output}  [{r.model_id}, {r.bytes / 1e6:.2f} MB{layer}, {r.seconds:.1f} s]", markup=False)


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", "dst", required=True, type=click.Path(path_type=Path),
              help="output .dng (a folder for an MP4)")
@click.option("--tile", default=1024, show_default=True, type=click.IntRange(64, 8192), help="tile size (px)")
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output")
@_errors
def decode(src: Path, dst: Path, tile: int, force: bool) -> None:
    """Recover the RAW from an invisp JPEG and write it as a DNG (from an invisp MP4: a folder of DNGs)."""
    if video_cli.is_video_decode(src):  # MP4 → one DNG per frame (invisp_cli/video)
        return video_cli.decode(src, dst, tile=tile, force=force)
    from .codec import decode_file

    r = decode_file(src, dst, force=force, tile=tile)
    layer = f", {r.layer}" if r.layer else ""
    console.print(f"{src} → {r.output}  [{r.model_id}{layer}, {r.bytes / 1e6:.2f} MB, {r.seconds:.1f} s]", markup=False)


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", "dst", default=None, type=click.Path(path_type=Path),
              help="output .jpg (default: rewrite SRC in place, which needs --force)")
@click.option("-f", "--force", is_flag=True, help="overwrite OUT, or allow rewriting SRC in place")
@_errors
def strip(src: Path, dst: Path | None, force: bool) -> None:
    """Remove the residual layer of `encode --exact/--max-error`, leaving the plain invisp JPEG."""
    from .residual import strip_file

    written, removed = strip_file(src, dst, force)
    if not removed and dst is None:
        console.print(f"{src}: no residual layer; nothing to do", markup=False)
    else:
        left = written.stat().st_size / 1e6
        console.print(f"{src} → {written}  [removed {removed / 1e6:.2f} MB, {left:.2f} MB left]", markup=False)


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@_errors
def info(path: Path) -> None:
    """Show what a file carries: an invisp JPEG's model, camera and sizes, or a RAW file's parameters."""
    from .inspect import describe

    table = Table(show_header=False, box=None)
    for key, value in describe(path):
        table.add_row(f"[bold]{key}[/]", str(value))
    out.print(table)


@main.command()
@_errors
def models() -> None:
    """List the installed models: ID, cameras, architecture, size, training data, measured metrics."""
    from .zoo import list_models

    table = Table(title="invisp models")
    table.add_column("ID", no_wrap=True)
    for col in ("cameras", "arch", "kMAC/px", "size", "trained on", "held-out γ / lin / RGB dB"):
        table.add_column(col)
    for e in list_models():
        size = f"{e.path.stat().st_size / 1e3:.0f} kB" if e.path.is_file() else "missing"
        m = e.metrics
        scores = " / ".join(str(m.get(f"val_{k}", "–")) for k in ("raw_psnr_gamma", "raw_psnr_lin", "rgb_psnr"))
        cameras = ",".join(e.cameras) + (f" (decode only: superseded by {e.superseded_by})" if e.superseded_by else "")
        table.add_row(e.id, cameras, e.arch, str(e.training.get("kmac_per_px", "")), size,
                      str(e.training.get("data_summary", "")), scores)
    out.print(table)


@main.command()
@click.option("--camera", required=True, help="camera name the model is for (matched against the RAW's Make), "
              "or 'generic' for any Bayer camera")
@click.option("--data", multiple=True, required=True, type=click.Path(), help="folder or file of RAWs (repeatable)")
@click.option("--val", multiple=True, type=click.Path(), help="held-out RAW files/folders for validation")
@click.option("--out", required=True, type=click.Path(), help="output folder (checkpoint + registry.json)")
@click.option("--arch", default="squeeze", show_default=True)
@click.option("--hparams", default="{}", help='architecture hyper-parameters as JSON, e.g. \'{"blocks": 3}\'')
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1))
@click.option("--patch", default=96, show_default=True, type=click.IntRange(16))
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--jpeg-quality", default="80-95", show_default=True, help="quality or range lo-hi simulated")
@click.option("--subsampling", default="4:4:4", show_default=True, type=click.Choice(["4:4:4", "4:2:2", "4:2:0"]))
@click.option("--lam", "lam", default=1.0, show_default=True, type=float, help="λ of eq. 8 (RAW loss weight)")
@click.option("--synthetic", default=0, show_default=True, type=click.IntRange(0),
              help="unprocessed copies of each bundled photo to add (needs scikit-image)")
@click.option("--synthetic-template", multiple=True, type=click.Path(),
              help="RAW file whose colour matrix, CFA and levels (not pixels) shape the synthetic data "
              "(repeatable; default: the training files)")
@click.option("--every", default=250, show_default=True, type=click.IntRange(1), help="checkpoint/validate every N")
@click.option("--id", "model_id", default="", help="model ID (default CAMERA-ARCH)")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--resume", is_flag=True, help="continue from OUT/train_state.pt")
@click.option("--init", default="", type=click.Path(), help="start from this .safetensors checkpoint (fine-tuning)")
@click.option("--hard-fraction", default=0.2, show_default=True, type=click.FloatRange(0, 1),
              help="share of crops picked for out-of-range (clipped) content")
@click.option("--demosaic", default="mhc", show_default=True, type=click.Choice(["mhc", "bilinear"]),
              help="demosaic of the analytic front-end the flow learns behind")
@click.option("--highlight-knee", default="0.8", show_default=True,  # = steps.DEFAULT_KNEE (kept torch-free)
              help="highlight roll-off knee in (0, 1) of the front-end, or 'none' (no roll-off)")
@click.option("--clip-aware/--no-clip-aware", default=True, show_default=True,
              help="where LibRaw's render clips a channel, penalise only output below the highlight shoulder")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, …")
@click.option("--video", is_flag=True, help="train the video flow (windows of frames, video codec simulator)")
@click.option("--crf", default="18-32", show_default=True, help="with --video: CRF or range lo-hi simulated")
@_errors
def train(camera, data, val, out, arch, hparams, steps, batch, patch, lr, jpeg_quality, subsampling, lam, synthetic,
          synthetic_template, every, model_id, seed, resume, init, hard_fraction, demosaic, highlight_knee,
          clip_aware, device, video, crf) -> None:
    """Train a per-camera flow on a folder of RAW files (runs under torchrun for DDP)."""
    from .train import TrainConfig
    from .train import train as run

    lo, _, hi = jpeg_quality.partition("-")
    cfg = TrainConfig(camera=camera, data=list(data), val=list(val), out=out, arch=arch, hparams=json.loads(hparams),
                      steps=steps, batch=batch, patch=patch, lr=lr, quality=(int(lo), int(hi or lo)),
                      subsampling=subsampling, lam=lam, synthetic=synthetic,
                      synthetic_templates=list(synthetic_template), every=every, model_id=model_id,
                      seed=seed, resume=resume, init=init, demosaic=demosaic,
                      highlight_knee=_knee(highlight_knee), clip_aware=clip_aware, hard_fraction=hard_fraction)
    if video:  # the video flow (invisp_cli/video/train.py)
        from .video.train import train_video

        entry = train_video(cfg, crf, device=device)
    else:
        entry = run(cfg, device=device)
    if entry is not None:
        console.print(f"saved {entry.id} → {entry.path} (sha256 {entry.sha256[:12]}…); metrics {entry.metrics}")
        console.print(f"use it with: INVISP_WEIGHTS={out} invisp encode … --model {entry.id}")


@main.command()
@click.argument("original", type=click.Path(path_type=Path))
@click.argument("recovered", type=click.Path(path_type=Path))
@click.option("--jpeg", type=click.Path(path_type=Path), default=None, help="the invisp JPEG, for bpp/RGB metrics")
@_errors
def compare(original: Path, recovered: Path, jpeg: Path | None) -> None:
    """Measure a recovered RAW (and its JPEG) against the original RAW file."""
    from .compare import compare_files

    table = Table(title=f"{recovered.name} vs {original.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in compare_files(original, recovered, jpeg).items():
        table.add_row(k, f"{v:.2f}" if isinstance(v, float) else str(v))
    out.print(table)


def _int_list(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    try:
        vals = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not vals or any(not 1 <= v <= 100 for v in vals):
        raise click.BadParameter(f"JPEG qualities must be in 1..100, got {value!r}")
    return vals


@main.command()
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--model", "models", multiple=True, help="model ID to benchmark (repeatable; default: every "
              "registered model, or the camera-matched one with --auto)")
@click.option("--auto", is_flag=True, help="benchmark the model chosen from each file's camera make")
@click.option("-q", "--quality", "qualities", default="90", show_default=True, callback=_int_list,
              help="JPEG qualities, comma-separated (e.g. 70,90)")
@click.option("--subsampling", default="4:4:4", show_default=True, type=click.Choice(["4:4:4", "4:2:2", "4:2:0"]))
@click.option("--baselines", default=None, help="comma-separated subset of analytic,upi,dng,jxl,miniraw "
              "(default: all available)")
@click.option("--limit", type=click.IntRange(1), default=None, help="benchmark at most N files")
@click.option("--crop", type=click.IntRange(16), default=None, help="centre N×N crop of each RAW (even-aligned)")
@click.option("--out", "out_dir", default="bench_out", show_default=True, type=click.Path(path_type=Path),
              help="report folder")
@click.option("--no-plots", is_flag=True, help="skip the PNG figures")
@_errors
def bench(inputs: tuple[Path, ...], models: tuple[str, ...], auto: bool, qualities: list[int], subsampling: str,
          baselines: str | None, limit: int | None, crop: int | None, out_dir: Path, no_plots: bool) -> None:
    """Benchmark RAW → JPEG → RAW on RAW files or folders (default: examples/) against baselines."""
    from .bench import BenchConfig, run_bench, write_outputs
    from .bench.report import tables

    cfg = BenchConfig(inputs=list(inputs), models=list(models), auto=auto, qualities=qualities,
                      subsampling=subsampling,
                      baselines=None if baselines is None else [b.strip() for b in baselines.split(",") if b.strip()],
                      limit=limit, crop=crop, out=out_dir, plots=not no_plots)
    result = run_bench(cfg)
    for w in result.warnings:
        console.print(f"warning: {w}", markup=False, highlight=False)
    for table in tables(result):
        out.print(table)
    written = write_outputs(result, out_dir, plots=not no_plots)
    console.print(f"wrote {', '.join(str(p) for p in written)}")
