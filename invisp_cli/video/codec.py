"""Encode a sequence of RAW frames into an MP4 and decode it back into one DNG per frame.

    encode:  frames ─read─▶ window (x_{t−1}, x_t, x_{t+1}) ─analytic ISP─▶ f(x_t ; clip(x_{t±1})) ─▶ YUV ─▶ H.264/5
    decode:  H.264/5 ─▶ RGB window (ŷ_{t−1}, ŷ_t, ŷ_{t+1}) ─▶ f⁻¹(ŷ_t ; ŷ_{t±1}) ─analytic ISP⁻¹─▶ DNG

Both stream: a frame is read, rendered or recovered, and written as soon as its window is complete, so memory holds
W frames (W = 3 for the video flow; an image flow runs per frame, W = 1) whatever the clip's length. Each window's
centre frame is rendered or recovered by ``pipeline`` in tiles, neighbours included, so large frames stay bounded
too. Sequence ends replicate the edge frame. The front end alone (the default model: no learned stage, W = 1) runs
on numpy and never imports torch. Outputs are atomic (``fileio``): the MP4 and each DNG are written to a temporary
file beside the target and renamed at the end; a decode never removes anything it did not write."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from .. import look as looks
from .. import pipeline, rawio
from ..errors import InputError, ModelError
from ..fileio import OutputFolder, atomic_output, check_output
from ..params import ReconstructionParams
from ..progress import progress_bar
from ..rawio import RawImage
from ..settings import CODECS, DEFAULT_TILE, Look, Video, output_container, render_record
from ..zoo import ModelEntry, find_model, load_stage, select_model
from . import frames as fr
from .container import FrameInfo, Mp4Writer, VideoDoc, iter_frames, read_doc

if TYPE_CHECKING:
    from ..flows import InvertibleFlow


def resolve_video_model(model_id: str | None, make: str) -> ModelEntry:
    """The named model, else ``select_model``'s for a video: the default (the front end, frame by frame), else a
    camera-matched or generic video model, else the image model (run per frame)."""
    if model_id:
        return find_model(model_id)
    try:
        return select_model(make, video=True)
    except ModelError:
        return select_model(make)


def _window(model: InvertibleFlow | None) -> int:
    """Frames of the window a model renders or recovers one frame from: its ``window``; 1 for the front end alone."""
    return 1 if model is None else model.window


@dataclass
class VideoResult:
    output: Path
    model_id: str
    frames: int
    seconds: float
    bytes: int


def _read_frames(files: Sequence[Path], first: RawImage, stream: Video, isp: Mapping,
                 look: Look | None = None) -> Iterator[tuple[Path, RawImage, dict]]:
    """Each frame's path, RAW (checked against the first) and render settings (``params.render``: the stream's
    and the frame's front end, with the clip's ``look``), read one at a time."""
    for f in files:
        raw = first if f == files[0] else rawio.read_raw(f)
        fr.check_same_sequence(first, raw, f.name)
        yield f, raw, render_record(stream, dataclasses.replace(pipeline.front_end_settings(raw, isp), look=look))


def encode_video(inputs: Sequence[str | os.PathLike], dst: str | os.PathLike, *, model_id: str | None = None,
                 codec: str = "h264", crf: int = 23, fps: float | Fraction | None = None, pix_fmt: str = "yuv420p",
                 preset: str = "medium", force: bool = False, tile: int = DEFAULT_TILE,
                 loaded: tuple[ModelEntry, InvertibleFlow | None] | None = None) -> VideoResult:
    """RAW frames (files and/or folders) → MP4 at ``dst``, with the chosen (or camera-matched) model.

    ``loaded`` (entry, model) bypasses the zoo lookup (training validation); ``fps`` None: from the frames'
    capture times when they give one (``frames.fps_from_times``), else 24."""
    t0 = time.perf_counter()
    container = output_container(dst, "video")
    try:
        stream = Video(codec, int(crf), pix_fmt)
    except ValueError as e:
        raise InputError(f"invalid video settings: {e} (codecs: {', '.join(CODECS)})") from None
    files = fr.frame_files(inputs)
    check_output(dst, force, inputs=files)
    first = rawio.read_raw(files[0])
    if loaded is None:
        entry = resolve_video_model(model_id, first.exif.get("make", ""))
        loaded = entry, load_stage(entry)
    entry, model = loaded
    # one look for the whole clip (no flicker): the model's default (the camera's for the front end alone)
    look = looks.resolve(entry.default_look, files[0], first, pipeline.front_end_settings(first, entry.isp))
    rate = Fraction(fps).limit_denominator(1001) if fps else fr.fps_from_times([fr.capture_time(f) for f in files])
    rate = rate or fr.DEFAULT_FPS
    h, w = first.mosaic.shape
    height, width = (w, h) if first.flip & 4 else (h, w)
    infos: list[FrameInfo] = []
    with atomic_output(dst, force, inputs=files) as tmp:
        writer = Mp4Writer(tmp, codec, crf, pix_fmt, rate, width, height, preset)
        try:
            with progress_bar("encoding frames", total=len(files)) as advance:
                frames = _read_frames(files, first, stream, entry.isp, look)
                for window in fr.sliding(frames, _window(model)):
                    path, raw, settings = window[len(window) // 2]
                    raws = [r for _, r, _ in window]
                    writer.write(pipeline.render(raws, model, [s for _, _, s in window], tile, container.pixels))
                    params = ReconstructionParams.from_raw(raw, entry.id, entry.sha256, settings)
                    infos.append(FrameInfo(path.name, params))
                    advance(1)
            video = {"codec": codec, "encoder": CODECS[codec], "crf": int(crf), "pix_fmt": pix_fmt,
                     "preset": preset, "fps": f"{rate.numerator}/{rate.denominator}", "frames": len(infos),
                     "width": writer.width, "height": writer.height, "window": _window(model)}
            writer.close(VideoDoc(entry.id, entry.sha256, video, infos).to_tags())
        except BaseException:
            writer.abort()
            raise
    return VideoResult(Path(dst), entry.id, len(infos), time.perf_counter() - t0, Path(dst).stat().st_size)


def decode_video(src: str | os.PathLike, dst: str | os.PathLike, *, force: bool = False,
                 tile: int = DEFAULT_TILE, model: InvertibleFlow | None = None) -> VideoResult:
    """An invisp MP4 → a folder ``dst`` with one DNG per frame, recovered with exactly the model the file names
    (or ``model``, for training validation)."""
    t0 = time.perf_counter()
    if Path(dst).suffix.lower() == ".dng":
        raise InputError(f"{dst}: decoding a video writes a folder of DNGs; give a folder name")
    doc = read_doc(src)
    if model is None:
        model = load_stage(find_model(doc.model_id), expected_sha256=doc.model_sha256)
    names = fr.output_names([f.name for f in doc.frames])
    folder = OutputFolder(dst, force, inputs=[src])
    folder.check(names, rawio.is_invisp_dng)
    try:
        with progress_bar("decoding frames", total=len(doc.frames)) as advance:
            for i, window in enumerate(fr.sliding(iter_frames(src, doc), _window(model))):
                with folder.file(names[i]) as tmp:
                    rawio.write_dng(tmp, pipeline.recover(window, doc.frames[i].params, model, tile))
                advance(1)
    except BaseException:
        folder.abort()
        raise
    size = sum(p.stat().st_size for p in folder.written)
    return VideoResult(Path(dst), doc.model_id, len(doc.frames), time.perf_counter() - t0, size)


def verify_video(src: str | os.PathLike, tile: int = DEFAULT_TILE) -> str:
    """``codec.verify_file`` for an invisp MP4: document checksum, model hash, and every frame decoded in
    memory (nothing written)."""
    doc = read_doc(src)
    model = load_stage(find_model(doc.model_id), expected_sha256=doc.model_sha256)
    with progress_bar("verifying frames", total=len(doc.frames)) as advance:
        for i, window in enumerate(fr.sliding(iter_frames(src, doc), _window(model))):
            pipeline.recover(window, doc.frames[i].params, model, tile)
            advance(1)
    return f"{doc.model_id}, {len(doc.frames)} frames (approximate RAW)"
