"""Command-line glue for video, hooked into ``invisp encode``, ``decode`` and ``train`` (see cli.py):

    invisp encode FRAMES… -o clip.mp4 [--codec h264|h265] [--crf 23] [--fps R] [--pix-fmt yuv420p|…]
    invisp decode clip.mp4 -o frames_dir/
    invisp train --video --data RAWS… --out DIR [--crf 18-32]"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import click

from ..progress import console
from ..settings import CODECS, CONTAINERS, PIX_FMTS, kind_of
from .formats import require_av

_OPTIONS = [
    click.option("--codec", type=click.Choice(list(CODECS)), default="h264", show_default=True,
                 help="video: codec of the MP4"),
    click.option("--crf", type=click.IntRange(0, 51), default=23, show_default=True,
                 help="video: constant rate factor (lower = better)"),
    click.option("--fps", type=click.FloatRange(0.01, 1000), default=None,
                 help="video: frame rate (default: from the frames' capture times, else 24)"),
    click.option("--pix-fmt", type=click.Choice(list(PIX_FMTS)), default="yuv420p", show_default=True,
                 help="video: chroma subsampling and bit depth"),
    click.option("--preset", default="medium", show_default=True, help="video: x264/x265 speed preset",
                 type=click.Choice(["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                                    "veryslow"])),
]


def video_encode_options(fn: Callable) -> Callable:
    """Add the video options (--codec, --crf, --fps, --pix-fmt, --preset) to ``invisp encode``."""
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


def is_video_encode(dst: Path | None) -> bool:
    """An encode makes a video when its output (``-o``) is .mp4; several inputs or a folder without it are a batch
    (``-d OUTDIR``, invisp_cli/batch.py) or a usage error."""
    return dst is not None and dst.suffix.lower() in CONTAINERS["video"].outputs


def is_video_decode(src: Path) -> bool:
    return kind_of(src) == "video"


def encode(srcs: Sequence[Path], dst: Path, *, model_id: str | None, tile: int, force: bool, codec: str, crf: int,
           fps: float | None, pix_fmt: str, preset: str) -> None:
    require_av()
    from .codec import encode_video

    r = encode_video(srcs, dst, model_id=model_id, codec=codec, crf=crf, fps=fps, pix_fmt=pix_fmt, preset=preset,
                     force=force, tile=tile)
    console.print(f"{r.frames} frames → {r.output}  [{r.model_id}, {codec} CRF {crf} {pix_fmt}, "
                  f"{r.bytes / 1e6:.2f} MB, {r.seconds:.1f} s, {r.frames / r.seconds:.2f} fps]", markup=False)


def decode(src: Path, dst: Path, *, tile: int, force: bool) -> None:
    require_av()
    from .codec import decode_video

    r = decode_video(src, dst, force=force, tile=tile)
    console.print(f"{src} → {r.output}/  [{r.frames} DNGs, {r.model_id}, {r.bytes / 1e6:.2f} MB, "
                  f"{r.seconds:.1f} s]", markup=False)
