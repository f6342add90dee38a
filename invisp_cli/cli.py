"""The ``invisp`` command line: parse, call one function, print with rich, map errors to exit codes."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import warnings
from pathlib import Path

import click
from rich.table import Table

from . import __version__
from .errors import InvispError
from .progress import console, out
from .settings import (
    DEFAULT_DEMOSAIC,
    DEFAULT_KNEE,
    DEFAULT_LOOK,
    DEFAULT_QUALITY,
    DEFAULT_SUBSAMPLING,
    DEFAULT_TILE,
    DEMOSAIC_NAMES,
    SUBSAMPLINGS,
    TILE_RANGE,
)
from .video import cli as video_cli  # RAW video: hooks in encode, decode, train


def _terminate(_signum: int, _frame: object) -> None:
    """SIGTERM (and SIGHUP) end a run like Ctrl-C: the atomic writers remove their temporary files."""
    raise KeyboardInterrupt


def _quiet_libraries() -> None:
    """Damaged files make the readers invisp uses (tifffile, exifread, Pillow) log or warn on stderr before invisp
    reports the problem itself: keep stderr to invisp's own lines."""
    for name in ("tifffile", "exifread"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")


def _errors(fn):
    """Turn an InvispError (or an unexpected failure) into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _quiet_libraries()
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None and threading.current_thread() is threading.main_thread():
                signal.signal(sig, _terminate)
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
            if "--debug" in sys.argv or os.environ.get("INVISP_DEBUG"):
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


def _max_error(text: str) -> int | str:
    """``--max-error``: N raw units (an int) or Ks, K·σ of the sensor noise (kept as its text, e.g. "0.5s", which
    batch manifests record); otherwise one ``invisp: error:`` line, exit 2 (InputError, as a usage error)."""
    from .errors import InputError
    from .residual import parse_max_error  # numpy only, no torch

    try:
        value = parse_max_error(text)
    except ValueError as e:
        raise InputError(f"--max-error {e}") from None
    return value if isinstance(value, int) else str(value)


def _hparams(text: str) -> dict:
    """``--hparams``: a JSON object of architecture hyper-parameters."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise click.BadParameter(f"{text!r}: expected a JSON object, e.g. '{{\"blocks\": 3}}'", param_hint="--hparams")
    return value


def _range(text: str, lo: int, hi: int, hint: str) -> tuple[int, int]:
    """An integer or a range ``a-b`` within [lo, hi] (``--jpeg-quality 80-95``, ``--crf 18-32``)."""
    a, _, b = text.strip().partition("-")
    try:
        first, last = int(a), int(b or a)
    except ValueError:
        first, last = -1, -1
    if not lo <= first <= last <= hi:
        raise click.BadParameter(f"{text!r}: expected N or LO-HI within {lo}..{hi}", param_hint=hint)
    return first, last


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="invisp")
def main() -> None:
    """invisp: render camera RAW into an ordinary JPEG, and recover the RAW from that JPEG.

    \b
    Examples:
      invisp encode photo.CR2 -o photo.jpg
      invisp encode shoot/ -r -d jpegs/          # batch: one JPEG per RAW file, sub-folders mirrored
      invisp decode photo.jpg -o photo.dng
      invisp COMMAND --help                      # each command's options and an example"""
    console.quiet = False  # --quiet of an earlier command run in this process does not carry over


def _verbosity(fn):
    """``-v/--verbose`` and ``--quiet`` (no progress or messages on stderr; results, errors and exit code stay).
    ``-q`` stays ``--quality`` on encode, as it always was."""

    @click.option("-v", "--verbose", is_flag=True, help="more detail (batch: skipped files, worker set-up)")
    @click.option("--quiet", is_flag=True, help="no progress bars or messages on stderr (errors still are)")
    @functools.wraps(fn)
    def wrapper(*args, quiet: bool, **kwargs):
        console.quiet = quiet
        return fn(*args, **kwargs)

    return wrapper


def _json_option(what: str):
    return click.option("--json", "as_json", is_flag=True, help=f"print {what} as JSON on stdout (keys: docs/cli.md)")


_BATCH_OPTIONS = [
    click.option("-d", "--out-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                 help="batch: write one output per input file into this folder (folders' sub-folders mirrored)"),
    click.option("-r", "--recursive", is_flag=True, help="batch: also take the files in sub-folders of folders"),
    click.option("-j", "--jobs", type=click.IntRange(1), default=None,
                 help="batch: worker processes  [default: all cores; torch threads are split between them]"),
    click.option("--scheduler", metavar="tcp://HOST:PORT", default=None,
                 help="batch: run the files on this Dask distributed cluster instead of local workers"),
    click.option("--manifest", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="batch: JSON Lines record of every file  [default: OUTDIR/invisp-manifest.jsonl]"),
]


def _batch_options(fn):
    """``-d OUTDIR`` and the other options of batch mode (``invisp_cli/batch.py``), for encode and decode."""
    for option in reversed(_BATCH_OPTIONS):
        fn = option(fn)
    return fn


def _mode(srcs: tuple[Path, ...], dst: Path | None, out_dir: Path | None, batch_only: dict) -> bool:
    """Whether this encode/decode is a batch (``-d``); refuses contradictory or missing outputs."""
    if dst is not None and out_dir is not None:
        raise click.UsageError("-o and -d exclude each other: -o names one output file, -d a folder for many")
    if dst is None and out_dir is None:
        raise click.UsageError("missing -o OUTPUT (one file) or -d OUTDIR (batch: many files or folders)")
    if out_dir is None and any(batch_only.values()):
        given = ", ".join(f"--{k.replace('_', '-')}" for k, v in batch_only.items() if v)
        raise click.UsageError(f"{given}: batch options, for use with -d OUTDIR")
    if batch_only.get("jobs") and batch_only.get("scheduler"):
        raise click.UsageError("--jobs runs local workers, --scheduler a Dask cluster's: give one of them")
    return out_dir is not None


def _run_batch(op: str, srcs: tuple[Path, ...], out_dir: Path, options: dict, *, recursive: bool, jobs: int | None,
               scheduler: str | None, manifest: Path | None, force: bool, as_json: bool, verbose: bool) -> None:
    """Batch encode/decode (``invisp_cli/batch.py``): summary on stderr (``--json``: on stdout), exit code 8 when
    any file failed, 130 when interrupted (what finished is kept and recorded)."""
    from . import batch
    from .errors import SomeFilesFailed

    if scheduler:
        batch.check_scheduler(scheduler)
    jobs, threads = (1, 1) if scheduler else batch.split_threads(jobs)
    tasks = batch.build_tasks(op, srcs, out_dir, recursive=recursive, options=options, threads=threads, force=force)
    manifest = manifest or out_dir / batch.MANIFEST_NAME
    batch.check_out_dir(out_dir)
    batch.check_manifest(manifest, tasks)
    with batch.output_folder(out_dir):  # one batch at a time into OUTDIR
        summary = batch.run_batch(tasks, manifest, jobs=jobs, scheduler=scheduler, verbose=verbose)
    if as_json:
        click.echo(batch.dumps(summary.to_json(), indent=2))
    console.print(summary.line(), markup=False, highlight=False, soft_wrap=True)
    if summary.interrupted:
        click.echo("invisp: interrupted; finished files are kept: run the same command again to resume", err=True)
        sys.exit(130)
    if summary.failed:
        raise SomeFilesFailed(f"{summary.failed} of {summary.files} files failed (see {summary.manifest})")


def _json_key(label: str) -> str:
    """A table label as a stable JSON key: "RAW-PSNR-γ (dB)" → "raw_psnr_gamma_db", "white balance" →
    "white_balance"."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower().replace("γ", "gamma")).strip("_")


def _jsonable(value: object) -> object:
    """Numbers and booleans stay so (numpy scalars too; NaN, e.g. an undefined RGB-PSNR, becomes null); anything
    else its text."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if isinstance(value, int | bool) or value is None else str(value)


def _result_json(op: str, src: Path, r) -> None:
    """``--json`` of a single-file encode/decode: the keys of a manifest record that apply."""
    click.echo(json.dumps({"op": op, "input": str(src), "output": str(r.output), "status": "ok", "model": r.model_id,
                           "output_bytes": r.bytes, "seconds": round(r.seconds, 3), "layer": r.layer or None,
                           "warning": getattr(r, "warning", "") or None}, ensure_ascii=False))


@main.command()
@click.argument("src", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "dst", default=None, type=click.Path(path_type=Path),
              help="output .jpg of one RAW file (.mp4: RAW frames, files or a folder, → video)")
@_batch_options
@click.option("--model", "model_id", default=None, help="model ID (default: chosen from the camera make)")
@click.option("--look", default=None, metavar="LOOK",
              help=f"{DEFAULT_LOOK} (default: the camera's own rendering, fitted to the RAW's embedded preview, else "
                   "the camera's trained look), libraw (LibRaw's render, as files before looks; the default with a "
                   "learned --model), or a trained look's ID (invisp train-look); JPEG output")
@click.option("-q", "--quality", default=DEFAULT_QUALITY, show_default=True, type=click.IntRange(1, 100),
              help="JPEG quality (-q is --quality; --quiet has no short form)")
@click.option("--subsampling", default=DEFAULT_SUBSAMPLING, show_default=True, type=click.Choice(SUBSAMPLINGS),
              help="JPEG chroma subsampling")
@click.option("--tile", default=DEFAULT_TILE, show_default=True, type=click.IntRange(*TILE_RANGE),
              help="tile size (px)")
@click.option("--exact", is_flag=True, help="add a residual layer: decode then recovers the RAW bit-exactly")
@click.option("--max-error", default=None, metavar="N|Ks",
              help="add a residual layer: decode then recovers every raw value within ±N (0 = --exact), or within "
                   "K·σ of the sensor's noise at its level with Ks (e.g. 0.5s; without -q, the JPEG quality "
                   "that minimises JPEG + layer is chosen)")
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output (batch: redo every file)")
@video_cli.video_encode_options
@_json_option("the result (batch: the summary)")
@_verbosity
@_errors
def encode(src: tuple[Path, ...], dst: Path | None, out_dir: Path | None, recursive: bool, jobs: int | None,
           scheduler: str | None, manifest: Path | None, model_id: str | None, quality: int, subsampling: str,
           tile: int, exact: bool, max_error: int | str | None, force: bool, as_json: bool, verbose: bool,
           look: str | None, **video) -> None:
    """Render a RAW file (DNG, CR2, NEF, … any LibRaw Bayer format) into an invisp JPEG; many RAW files or folders
    into one JPEG each (-d); or RAW frames (files or a folder) into an invisp MP4 (-o CLIP.mp4).

    \b
    Examples:
      invisp encode photo.CR2 -o photo.jpg --quality 95
      invisp encode card/DCIM/ -r -d jpegs/ --jobs 4       # batch; rerun to resume
      invisp encode frames/ -o clip.mp4 --crf 20           # video"""
    max_error = None if max_error is None else _max_error(max_error)
    if exact and max_error:
        raise click.UsageError("--exact and --max-error N > 0 contradict each other")
    if isinstance(max_error, str) and click.get_current_context().get_parameter_source("quality") in (
            click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP):
        quality = None  # --max-error Ks without -q: the quality that minimises JPEG + layer
    options = {"model_id": model_id, "quality": quality, "subsampling": subsampling, "tile": tile,
               "max_error": 0 if exact else max_error, "look": look}
    from .extras import check_batch
    from .zoo import check_model

    check_model(model_id)
    check_batch(scheduler)
    batch_only = {"recursive": recursive, "jobs": jobs, "scheduler": scheduler, "manifest": manifest}
    if _mode(src, dst, out_dir, batch_only):
        return _run_batch("encode", src, out_dir, options, **batch_only, force=force, as_json=as_json,
                          verbose=verbose)
    if video_cli.is_video_encode(dst):  # RAW frames → MP4 (invisp_cli/video)
        if exact or max_error is not None or as_json or look is not None:
            raise click.UsageError("--exact/--max-error/--json/--look are for JPEG output; MP4 has no residual "
                                   "layer and renders one look for the clip (the camera's trained or the generic one)")
        return video_cli.encode(src, dst, model_id=model_id, tile=tile, force=force, **video)
    if len(src) > 1 or os.path.isdir(src[0]):  # False, not OSError, for a path past PATH_MAX
        raise click.UsageError("several RAW files or a folder: use -d OUTDIR for one JPEG each (batch), "
                               "or -o CLIP.mp4 for a video of them")
    (src,) = src
    from .codec import encode_file

    r = encode_file(src, dst, force=force, **options)
    if as_json:
        _result_json("encode", src, r)
    layer = f", {r.layer}" if r.layer else ""
    console.print(f"{src} → {r.output}  [{r.model_id}, {r.bytes / 1e6:.2f} MB{layer}, {r.seconds:.1f} s]", markup=False)


@main.command()
@click.argument("src", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "dst", default=None, type=click.Path(path_type=Path),
              help="output .dng of one JPEG (a folder for an MP4)")
@_batch_options
@click.option("--tile", default=DEFAULT_TILE, show_default=True, type=click.IntRange(*TILE_RANGE),
              help="tile size (px)")
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output (batch: redo every file)")
@_json_option("the result (batch: the summary)")
@_verbosity
@_errors
def decode(src: tuple[Path, ...], dst: Path | None, out_dir: Path | None, recursive: bool, jobs: int | None,
           scheduler: str | None, manifest: Path | None, tile: int, force: bool, as_json: bool, verbose: bool) -> None:
    """Recover the RAW from an invisp JPEG and write it as a DNG; many JPEGs or folders into one DNG each (-d);
    an invisp MP4 into a folder of DNGs.

    \b
    Examples:
      invisp decode photo.jpg -o photo.dng
      invisp decode jpegs/ -r -d raws/ --jobs 4            # batch; rerun to resume
      invisp decode clip.mp4 -o frames/                    # video"""
    from .extras import check_batch

    check_batch(scheduler)
    batch_only = {"recursive": recursive, "jobs": jobs, "scheduler": scheduler, "manifest": manifest}
    if _mode(src, dst, out_dir, batch_only):
        return _run_batch("decode", src, out_dir, {"tile": tile}, **batch_only, force=force, as_json=as_json,
                          verbose=verbose)
    if len(src) > 1 or os.path.isdir(src[0]):  # False, not OSError, for a path past PATH_MAX
        raise click.UsageError("several JPEGs or a folder: use -d OUTDIR for one DNG each (batch)")
    (src,) = src
    if video_cli.is_video_decode(src):  # MP4 → one DNG per frame (invisp_cli/video)
        if as_json:
            raise click.UsageError("--json is for JPEG → DNG and batch decoding")
        return video_cli.decode(src, dst, tile=tile, force=force)
    from .codec import decode_file

    r = decode_file(src, dst, force=force, tile=tile)
    if as_json:
        _result_json("decode", src, r)
    if r.warning:
        click.echo(f"invisp: warning: {r.warning}", err=True)
    if r.note:
        click.echo(f"invisp: note: {src}: {r.note}", err=True)
    layer = f", {r.layer}" if r.layer else ""
    console.print(f"{src} → {r.output}  [{r.model_id}{layer}, {r.bytes / 1e6:.2f} MB, {r.seconds:.1f} s]", markup=False)


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", "dst", default=None, type=click.Path(path_type=Path),
              help="output .jpg (default: rewrite SRC in place, which needs --force)")
@click.option("-f", "--force", is_flag=True, help="overwrite OUT, or allow rewriting SRC in place")
@_errors
def strip(src: Path, dst: Path | None, force: bool) -> None:
    """Remove the residual layer of `encode --exact/--max-error`, leaving the plain invisp JPEG.

    \b
    Example:
      invisp strip photo.jpg -o photo-small.jpg"""
    from .residual import strip_file

    written, removed = strip_file(src, dst, force)
    if not removed and dst is None:
        console.print(f"{src}: no residual layer; nothing to do", markup=False)
    else:
        left = written.stat().st_size / 1e6
        console.print(f"{src} → {written}  [removed {removed / 1e6:.2f} MB, {left:.2f} MB left]", markup=False)


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@_json_option("the fields")
@_errors
def info(path: Path, as_json: bool) -> None:
    """Show what a file carries: an invisp JPEG's model, camera and sizes, or a RAW file's parameters.

    \b
    Example:
      invisp info photo.jpg --json"""
    from .inspect import inspect_file

    found = inspect_file(path)
    fields = found.rows
    if as_json:
        doc = {_json_key(k): _jsonable(v) for k, v in fields} | {"record": found.record}
        click.echo(json.dumps(doc, ensure_ascii=False, default=str))
        return
    table = Table(show_header=False, box=None)
    for key, value in fields:
        table.add_row(f"[bold]{key}[/]", str(value))
    out.print(table)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tile", default=DEFAULT_TILE, show_default=True, type=click.IntRange(*TILE_RANGE),
              help="tile size (px)")
@_errors
def verify(paths: tuple[Path, ...], tile: int) -> None:
    """Check that invisp JPEGs/MP4s still give back their RAW, writing nothing: metadata checksum, model hash,
    residual-layer SHA-256, a full decode in memory. One line per file; exit 0 if all are intact.

    Example: invisp verify archive/*.jpg"""
    from .errors import SomeFilesFailed
    from .verify import verify_file

    failed: list[InvispError] = []
    for p in paths:
        try:
            out.print(f"ok      {p}: {verify_file(p, tile)}", markup=False, highlight=False, soft_wrap=True)
        except InvispError as e:
            failed.append(e)
            out.print(f"FAILED  {p}: {e}", markup=False, highlight=False, soft_wrap=True)
    if len(failed) == 1 and len(paths) == 1:
        raise failed[0]
    if failed:
        raise SomeFilesFailed(f"{len(failed)} of {len(paths)} files failed verification")


@main.command()
@_json_option("the registry entries")
@_errors
def models(as_json: bool) -> None:
    """List the installed models: ID, cameras, architecture, size, training data, measured metrics.

    \b
    Example:
      invisp models --json          # shipped models, those invisp train wrote, and $INVISP_WEIGHTS folders"""
    from .zoo import list_models

    if as_json:
        entries = [{**e.to_json(), "path": str(e.path),
                    "size_bytes": e.path.stat().st_size if e.path.is_file() else None} for e in list_models()]
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    table = Table(title="invisp models")
    table.add_column("ID", no_wrap=True)
    for col in ("cameras", "arch", "kMAC/px", "size", "trained on", "held-out γ / lin / RGB dB"):
        table.add_column(col)
    for e in list_models():
        size = f"{e.path.stat().st_size / 1e3:.0f} kB" if e.path.is_file() else "missing"
        m = e.metrics
        scores = " / ".join(str(m.get(f"val_{k}", "–")) for k in ("raw_psnr_gamma", "raw_psnr_lin", "rgb_psnr"))
        cameras = ",".join(e.cameras) + (" (default)" if e.default else "") + (
            f" (decode only: superseded by {e.superseded_by})" if e.superseded_by else "")
        table.add_row(e.id, cameras, e.arch, str(e.training.get("kmac_per_px", "")), size,
                      str(e.training.get("data_summary", "")), scores)
    out.print(table)
    from .look import list_looks

    looks = Table(title="invisp looks (encode --look; camera: each file's own preview first)")
    for col in ("ID", "cameras", "trained on", "ΔE2000 vs previews", "folder"):
        looks.add_column(col)
    for lk in list_looks():
        looks.add_row(lk.id, ",".join(lk.cameras), str(lk.training.get("data_summary", "")),
                      str(lk.metrics.get("delta_e_train_mean", "–")), str(lk.folder))
    out.print(looks)


@main.command("train-look")
@click.option("--camera", required=True,
              help='camera the look is for, as its RAW files name it ("Make Model", e.g. "Canon PowerShot S40"; '
                   'invisp info RAW shows it), or "*" for any camera without its own look (a neutral look: one tone '
                   'curve for all channels and a plain saturation)')
@click.option("--data", multiple=True, required=True, type=click.Path(),
              help="folder or file of RAWs with embedded previews (repeatable)")
@click.option("--id", "look_id", default="", help="look ID (default: look-CAMERA)")
@click.option("--out", default=None, type=click.Path(path_type=Path),
              help="registry folder (default: your looks folder, which encode searches without any setting)")
@_errors
def train_look(camera: str, data: tuple[str, ...], look_id: str, out: Path | None) -> None:
    """Learn a camera's look from the JPEG previews inside its RAW files (self-supervised: no other data), for
    encoding its files that have no usable preview (converted DNGs, video frames); encode --look camera then finds
    it by the camera's name, and --look ID by its ID.

    \b
    Example:
      invisp train-look --camera "Canon PowerShot S40" --data card/DCIM/"""
    import shlex

    from . import look as looks
    from .rawfiles import raw_files

    look_id = look_id or "look-" + "-".join(camera.lower().replace("*", "generic").split())
    folder = out or looks.user_looks_dir()
    command = "invisp train-look " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    entry = looks.train_and_save(raw_files(list(data)), camera, look_id, folder, command)
    console.print(f"look {entry.id} for {camera}: {entry.training['data_summary']}, ΔE2000 vs their previews "
                  f"{entry.metrics['delta_e_train_mean']} (LibRaw's look: {entry.metrics['delta_e_train_libraw_mean']})"
                  f" → {folder}", markup=False)


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
@click.option("--subsampling", default=DEFAULT_SUBSAMPLING, show_default=True, type=click.Choice(SUBSAMPLINGS))
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
@click.option("--demosaic", default=DEFAULT_DEMOSAIC, show_default=True, type=click.Choice(DEMOSAIC_NAMES),
              help="demosaic of the analytic front-end the flow learns behind")
@click.option("--highlight-knee", default=str(DEFAULT_KNEE), show_default=True,
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
    """Train a per-camera flow on a folder of RAW files (runs under torchrun for DDP).

    \b
    Example:
      invisp train --camera nikon --data ~/raws/nikon/ --val ~/raws/holdout/ --out my-nikon"""
    from .extras import check_train

    check_train(synthetic, video)
    from .flows import ARCHITECTURES
    from .train import TrainConfig
    from .train import train as run

    if arch not in ARCHITECTURES:
        raise click.BadParameter(f"{arch!r}: known architectures are {', '.join(sorted(ARCHITECTURES))}",
                                 param_hint="--arch")
    cfg = TrainConfig(camera=camera, data=list(data), val=list(val), out=out, arch=arch, hparams=_hparams(hparams),
                      steps=steps, batch=batch, patch=patch, lr=lr, quality=_range(jpeg_quality, 1, 100,
                                                                                   "--jpeg-quality"),
                      subsampling=subsampling, lam=lam, synthetic=synthetic,
                      synthetic_templates=list(synthetic_template), every=every, model_id=model_id,
                      seed=seed, resume=resume, init=init, demosaic=demosaic,
                      highlight_knee=_knee(highlight_knee), clip_aware=clip_aware, hard_fraction=hard_fraction)
    if video:  # the video flow (invisp_cli/video/train.py)
        from .video.train import train_video

        entry = train_video(cfg, _range(crf, 0, 51, "--crf"), device=device)
    else:
        entry = run(cfg, device=device)
    if entry is not None:
        from .zoo import trained_list

        console.print(f"saved {entry.id} → {entry.path} (sha256 {entry.sha256[:12]}…); metrics {entry.metrics}")
        console.print(f"encode, decode and models find it from now on (listed in {trained_list()}); encode picks it "
                      f"for its cameras ({', '.join(entry.cameras)}), or name it: invisp encode … --model {entry.id}")


@main.command()
@click.argument("original", type=click.Path(path_type=Path))
@click.argument("recovered", type=click.Path(path_type=Path))
@click.option("--jpeg", type=click.Path(path_type=Path), default=None, help="the invisp JPEG, for bpp/RGB metrics")
@_json_option("the metrics")
@_errors
def compare(original: Path, recovered: Path, jpeg: Path | None, as_json: bool) -> None:
    """Measure a recovered RAW (and its JPEG) against the original RAW file.

    \b
    Example:
      invisp compare photo.CR2 photo.dng --jpeg photo.jpg --json"""
    from .compare import compare_files

    metrics = compare_files(original, recovered, jpeg)
    if as_json:
        click.echo(json.dumps({_json_key(k): _jsonable(v) for k, v in metrics.items()}, ensure_ascii=False))
        return
    table = Table(title=f"{recovered.name} vs {original.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
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


def _tier_list(ctx: click.Context, param: click.Parameter, value: str | None) -> list | None:
    if value is None:
        return None
    from .bench.tiers import parse_tiers

    try:
        return parse_tiers(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@main.command()
@click.argument("inputs", nargs=-1, type=click.Path(path_type=Path))
@click.option("--model", "models", multiple=True, help="model ID to benchmark (repeatable; default: every "
              "registered model, or the camera-matched one with --auto)")
@click.option("--auto", is_flag=True, help="benchmark the model chosen from each file's camera make")
@click.option("-q", "--quality", "qualities", default="90", show_default=True, callback=_int_list,
              help="JPEG qualities, comma-separated (e.g. 70,90)")
@click.option("--subsampling", default=DEFAULT_SUBSAMPLING, show_default=True, type=click.Choice(SUBSAMPLINGS))
@click.option("--baselines", default=None, help="comma-separated subset of analytic,upi,dng,jxl,miniraw "
              "(default: all available)")
@click.option("--limit", type=click.IntRange(1), default=None, help="benchmark at most N files")
@click.option("--crop", type=click.IntRange(16), default=None, help="centre N×N crop of each RAW (even-aligned)")
@click.option("--out", "out_dir", default="bench_out", show_default=True, type=click.Path(path_type=Path),
              help="report folder")
@click.option("--no-plots", is_flag=True, help="skip the PNG figures")
@click.option("--looks", is_flag=True, help="also each model with the camera look encode uses by default "
              "(MODEL+look; models alone render LibRaw's look, the papers' protocol); ΔE cam scores every method")
@click.option("--tiers", default=None, metavar="LIST", callback=_tier_list,
              help="instead: the storage tiers, invisp JPEG + layer at each --max-error tier (Ks, N or exact, e.g. "
              "0.25s,0.5s,1s,exact; N/exact at the highest -q) against JPEG XL lossless, JPEG XL lossy d0.2 of the "
              "CFA planes and the LJ92 DNG: bpp, max error in σ, RAW-PSNR (tiers.json, tiers.png)")
@_errors
def bench(inputs: tuple[Path, ...], models: tuple[str, ...], auto: bool, qualities: list[int], subsampling: str,
          baselines: str | None, limit: int | None, crop: int | None, out_dir: Path, no_plots: bool,
          looks: bool, tiers: list | None) -> None:
    """Benchmark RAW → JPEG → RAW on RAW files or folders (default: examples/) against baselines.

    \b
    Example:
      invisp bench ~/raws/ --quality 70,90 --out bench_out
      invisp bench ~/raws/ --tiers 0.25s,0.5s,1s,exact --out tiers_out"""
    from .extras import check_bench

    if tiers is not None and (models or auto or baselines or crop or looks):
        raise click.UsageError("--tiers measures the storage tiers of each whole file: --model, --auto, "
                               "--baselines, --crop and --looks do not apply")
    check_bench(plots=not no_plots, tiers=tiers is not None)
    if tiers is not None:
        from .bench.run import collect_files
        from .bench.tiers import run_tiers, table

        rows, written, warnings = run_tiers(collect_files(list(inputs), limit), tiers, max(qualities), out_dir,
                                            plots=not no_plots)
        for w in warnings:
            console.print(f"warning: {w}", markup=False, highlight=False)
        out.print(table(rows))
        console.print(f"wrote {', '.join(str(p) for p in written)}")
        return
    from .bench import BenchConfig, run_bench, write_outputs
    from .bench.report import tables

    cfg = BenchConfig(inputs=list(inputs), models=list(models), auto=auto, qualities=qualities,
                      subsampling=subsampling,
                      baselines=None if baselines is None else [b.strip() for b in baselines.split(",") if b.strip()],
                      limit=limit, crop=crop, out=out_dir, plots=not no_plots, looks=looks)
    result = run_bench(cfg)
    for w in result.warnings:
        console.print(f"warning: {w}", markup=False, highlight=False)
    for table in tables(result, fit=out.is_terminal):
        out.print(table)
    written = write_outputs(result, out_dir, plots=not no_plots)
    console.print(f"wrote {', '.join(str(p) for p in written)}")


def _wb(ctx: click.Context, param: click.Parameter, value: str) -> tuple:
    from .develop import parse_wb

    try:
        return parse_wb(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", "dst", required=True, type=click.Path(path_type=Path),
              help=".jpg (8-bit sRGB) or .tif (16-bit sRGB; with --linear 16-bit float linear light)")
@click.option("--exposure", default=0.0, show_default=True, type=click.FloatRange(-10, 10), metavar="EV",
              help="linear values × 2^EV")
@click.option("--wb", default="as-shot", show_default=True, callback=_wb, metavar="as-shot|TK|R,G,B",
              help="white balance: a temperature (5200K: multipliers m = c_G/c, c = xyz_to_cam·XYZ(x, y) of the "
              "illuminant at that temperature and the as-shot tint) or R,G,B multipliers")
@click.option("--tint", default=0.0, show_default=True, type=click.FloatRange(-150, 150),
              help="added to the white balance's tint (DNG-SDK scale: (u, v) moved by tint/−3000 along the "
              "isotemperature line); 0 keeps it")
@click.option("--highlights", default=0.0, show_default=True, type=click.FloatRange(-1, 0), metavar="H",
              help="H < 0: clipped channels are rebuilt from the unclipped ones and the render's highlight roll-off "
              "moves its knee to k = k0·(1 + H/2) (k0 = 0.8 for new files, 1 where the render has none): each "
              "site's (k, M] onto (k, 1] by k + d/(1 + a·d), d = x − k, a = 1/(1 − k) − 1/(M − k), M its brightest "
              "value")
@click.option("--shadows", default=0.0, show_default=True, type=click.FloatRange(-1, 1), metavar="S",
              help="luminance gain 1 + S·p²/(Y² + p²), p = 0.1 (S = 1: +1 EV in deep shadows)")
@click.option("--contrast", default=0.0, show_default=True, type=click.FloatRange(-1, 1), metavar="C",
              help="Y' = 0.18·(Y/0.18)^(2^C), applied as a gain Y'/Y to R, G, B")
@click.option("--saturation", default=0.0, show_default=True, type=click.FloatRange(-1, 1), metavar="SIGMA",
              help="RGB' = Y + (1 + SIGMA)(RGB − Y) (−1: greyscale)")
@click.option("--look", default=None, metavar="LOOK",
              help="the look edits start from (default: an invisp JPEG's own, a RAW's as encode chooses it): "
              f"{DEFAULT_LOOK} (fitted to a RAW's preview), libraw, or a trained look's ID")
@click.option("--linear", is_flag=True, help=".tif only: scene-referred linear light (float16, not clipped above "
              "white, no roll-off, no look) with a linear ICC profile")
@click.option("--primaries", default="rec709", show_default=True, type=click.Choice(["rec709", "prophoto"]),
              help="with --linear: Rec.709 (sRGB) or ProPhoto RGB primaries")
@click.option("-q", "--quality", default=DEFAULT_QUALITY, show_default=True, type=click.IntRange(1, 100),
              help="JPEG quality")
@click.option("--subsampling", default=DEFAULT_SUBSAMPLING, show_default=True, type=click.Choice(SUBSAMPLINGS),
              help="JPEG chroma subsampling")
@click.option("--compare", type=click.Path(path_type=Path), default=None,
              help="also write a .png: before | after, and a 100 % crop of each")
@click.option("--tile", default=DEFAULT_TILE, show_default=True, type=click.IntRange(*TILE_RANGE),
              help="tile size (px)")
@click.option("-f", "--force", is_flag=True, help="overwrite existing outputs")
@_errors
def develop(src: Path, dst: Path, exposure: float, wb: tuple, tint: float, highlights: float, shadows: float,
            contrast: float, saturation: float, look: str | None, linear: bool, primaries: str, quality: int,
            subsampling: str, compare: Path | None, tile: int, force: bool) -> None:
    """Edit a photo on its RAW: an invisp JPEG (its RAW recovered in memory, as decode does) or any RAW file,
    developed to a JPEG or 16-bit TIFF.

    \b
    The invisp render's own pipeline (docs/develop.md), so no edit reproduces the invisp JPEG: levels → base
    exposure × 2^EV → white balance → [highlight roll-off] → demosaic → highlight reconstruction → camera matrix
    (→ linear Rec.709) → shadows → contrast → saturation → [clip → gamma → the look].

    \b
    Examples:
      invisp develop photo.jpg -o edit.jpg --exposure +1.5 --highlights -1 --wb 5200K
      invisp develop photo.jpg -o scene.tif --linear
      invisp develop photo.jpg -o edit.jpg --exposure +2 --compare side.png"""
    from .develop import Edit, develop_file

    temperature, multipliers = wb
    if multipliers is not None and tint:
        raise click.UsageError("--tint applies to a temperature white balance, not to R,G,B multipliers")
    edit = Edit(exposure=exposure, temperature=temperature, tint=tint, multipliers=multipliers,
                highlights=highlights, shadows=shadows, contrast=contrast, saturation=saturation)
    r = develop_file(src, dst, edit, quality=quality, subsampling=subsampling, linear=linear, primaries=primaries,
                     compare=compare, force=force, tile=tile, look=look)
    extra = f", compare {r.compare}" if r.compare else ""
    console.print(f"{src} → {r.output}  [{r.origin}{extra}, {r.seconds:.1f} s]", markup=False)
