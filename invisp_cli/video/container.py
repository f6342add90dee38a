"""MP4 container for invisp video: H.264/H.265 through PyAV, exact YUV conversion, invisp metadata tags.

Pixels. Frames are upright sRGB in [0, 1] (float, never quantised to 8-bit RGB), converted here, not by swscale
(whose full-range path is biased by ≈ −0.5 code values on a round trip), with BT.709 full-range (H.273):

    Y = 0.2126 R + 0.7152 G + 0.0722 B,   Cb = (B − Y) / 1.8556,   Cr = (R − Y) / 1.5748
    D_Y = round((2ⁿ − 1)·Y),   D_C = round((2ⁿ − 1)·C + 2ⁿ⁻¹)        (n = 8 or 10 bits)

4:2:0 chroma is the 2×2 box mean, upsampled on decode bilinearly with half-pixel centres (what the simulator's
DiffJPEG does: ``upsample_bilinear``); the conversions run on numpy in float64. The stream is tagged BT.709
primaries/matrix/transfer, full range, so players show it right. Odd frame sizes are padded to even by edge
replication and cropped back on decode.

Metadata (MP4 ``udta``/``mdta`` keys, written with ``movflags=use_metadata_tags``; ffprobe and PyAV list them):

    invisp_model   "<model id> sha256 <hex>"       human-readable
    invisp_frames  number of frames
    invisp_params  base64(zlib(JSON document)):
        {"schema": "invisp-video/1", "model": {"id", "sha256"},
         "video": {"codec", "encoder", "crf", "pix_fmt", "fps": "num/den", "frames", "width", "height", "window"},
         "frames": [{"name": source file name, "pts": i, "time": seconds, "params": ReconstructionParams JSON}, …],
         "checksum": sha256 of the canonical JSON of everything above}

Each frame's ``ReconstructionParams`` (WB, levels, CFA, sizes, orientation, camera EXIF, exposure gain) keeps its
own checksum, so decode validates them exactly as it validates a JPEG's."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .. import __version__
from ..errors import InputError, MetadataError
from ..fileio import check_input
from ..params import ReconstructionParams
from ..settings import CODECS, PIX_FMTS

SCHEMA = "invisp-video/1"
KR, KB = 0.2126, 0.0722
RGB2YCC = np.array([[KR, 1 - KR - KB, KB],
                    [-KR / (2 - 2 * KB), -(1 - KR - KB) / (2 - 2 * KB), 0.5],
                    [0.5, -(1 - KR - KB) / (2 - 2 * KR), -KB / (2 - 2 * KR)]])
YCC2RGB = np.linalg.inv(RGB2YCC)
_TAGS = {"color_primaries": 1, "color_trc": 1, "colorspace": 1, "color_range": 2}  # BT.709, full ("JPEG") range


def _mix(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The 3×3 matrix m applied to planar (3, H, W) x:  y = m·x  per pixel."""
    return (m @ x.reshape(3, -1)).reshape(x.shape)


def upsample_bilinear(x: np.ndarray, s: int) -> np.ndarray:
    """Bilinear upsampling of (…, H, W) by s with half-pixel centres and edge clamping (torch's ``F.interpolate``,
    ``align_corners=False``): along each axis, output o reads input u = max((o + ½)/s − ½, 0) as
    (1 − λ)·x[⌊u⌋] + λ·x[min(⌊u⌋ + 1, n − 1)],  λ = u − ⌊u⌋; rows, then columns."""
    for axis in (-2, -1):
        n = x.shape[axis]
        u = np.maximum((np.arange(n * s) + 0.5) / s - 0.5, 0.0)
        i = u.astype(np.intp)
        lam = (u - i).reshape((-1,) + (1,) * (-1 - axis))
        lo, hi = np.take(x, i, axis), np.take(x, np.minimum(i + 1, n - 1), axis)
        lo *= 1.0 - lam
        hi *= lam
        lo += hi
        x = lo
    return x


def rgb_to_planes(rgb: np.ndarray, pix_fmt: str) -> list[np.ndarray]:
    """Upright float RGB (H, W, 3) in [0, 1], H and W even → quantised Y, Cb, Cr planes of ``pix_fmt``
    (subsampled chroma: the mean of each s×s box)."""
    bits, sub = PIX_FMTS[pix_fmt]
    peak = float(2**bits - 1)
    ycc = _mix(np.ascontiguousarray(rgb.transpose(2, 0, 1), np.float64), RGB2YCC)
    y, cc = ycc[0], ycc[1:]
    if sub > 1:
        cc = sum(cc[:, i::sub, j::sub] for i in range(sub) for j in range(sub)) / sub**2
    dtype = np.uint16 if bits > 8 else np.uint8
    y = (y * peak).round().clip(0, peak).astype(dtype)
    cc = (cc * peak + 2 ** (bits - 1)).round().clip(0, peak).astype(dtype)
    return [y, cc[0], cc[1]]


def planes_to_rgb(planes: list[np.ndarray], pix_fmt: str) -> np.ndarray:
    """Y, Cb, Cr planes of ``pix_fmt`` → float32 RGB (H, W, 3) clipped to [0, 1] (a view of planar memory)."""
    bits, sub = PIX_FMTS[pix_fmt]
    peak = float(2**bits - 1)
    cc = (np.stack(planes[1:]).astype(np.float64) - 2 ** (bits - 1)) / peak
    if sub > 1:
        cc = upsample_bilinear(cc, sub)
    rgb = _mix(np.concatenate([planes[0][None] / peak, cc]), YCC2RGB).clip(0.0, 1.0)
    return rgb.astype(np.float32).transpose(1, 2, 0)


def _plane_views(frame: av.VideoFrame, bits: int) -> list[np.ndarray]:
    """Writable (height, width) numpy views of a frame's planes (skipping each line's padding)."""
    dtype = np.dtype(np.uint16 if bits > 8 else np.uint8)
    return [np.frombuffer(p, dtype).reshape(p.height, p.line_size // dtype.itemsize)[:, : p.width]
            for p in frame.planes]


def pad_even(rgb: np.ndarray) -> np.ndarray:
    """Edge-replicate the bottom row / right column where H or W is odd (chroma-subsampled codecs need even)."""
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge") if h % 2 or w % 2 else rgb


class Mp4Writer:
    """Encode upright float RGB frames into an MP4 at ``path``; ``close(tags)`` adds the metadata.

    PyAV hands the container metadata to the muxer with the header, i.e. at the first packet, but the per-frame
    parameters are known only after the last frame. So the stream is encoded into a temporary MP4 beside ``path``
    and ``close`` remuxes it (packet copy, no re-encode) into ``path`` with the tags and ``faststart``."""

    def __init__(self, path: str | os.PathLike, codec: str, crf: int, pix_fmt: str, fps: Fraction, width: int,
                 height: int, preset: str = "medium"):
        if codec not in CODECS:
            raise InputError(f"unknown codec {codec!r} (use {' or '.join(CODECS)})")
        encoder = CODECS[codec]
        try:
            supported = {f.name for f in av.codec.Codec(encoder, "w").video_formats or []}
        except av.codec.codec.UnknownCodecError:
            raise InputError(f"this PyAV build has no {encoder} encoder") from None
        if pix_fmt not in PIX_FMTS or pix_fmt not in supported:
            raise InputError(f"{codec} cannot encode pixel format {pix_fmt!r} here "
                             f"(use one of {', '.join(f for f in PIX_FMTS if f in supported)})")
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.stream.mp4")
        self.bits = PIX_FMTS[pix_fmt][0]
        self.pix_fmt, self.fps, self.count = pix_fmt, fps, 0
        self.width, self.height = width + width % 2, height + height % 2
        self.container = av.open(str(self.tmp), "w", format="mp4")
        self.stream = self.container.add_stream(encoder, rate=fps)
        self.stream.width, self.stream.height, self.stream.pix_fmt = self.width, self.height, pix_fmt
        self.stream.options = {"crf": str(crf), "preset": preset,
                               **({"x265-params": "log-level=error"} if encoder == "libx265" else {})}
        for k, v in _TAGS.items():
            setattr(self.stream.codec_context, k, v)

    def write(self, rgb: np.ndarray) -> None:
        """Append one upright float RGB frame (H, W, 3) in [0, 1] of the size given at construction."""
        rgb = pad_even(rgb)
        if rgb.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {rgb.shape[1]}×{rgb.shape[0]}, stream is {self.width}×{self.height}")
        frame = av.VideoFrame(self.width, self.height, self.pix_fmt)
        for view, plane in zip(_plane_views(frame, self.bits), rgb_to_planes(rgb, self.pix_fmt), strict=True):
            view[...] = plane
        for k, v in _TAGS.items():
            setattr(frame, k, v)
        frame.pts, frame.time_base = self.count, 1 / self.fps
        self.count += 1
        self.container.mux(self.stream.encode(frame))

    def close(self, tags: dict[str, str]) -> None:
        """Flush the encoder and remux the stream into ``path`` with ``tags`` as container metadata."""
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
            options = {"movflags": "use_metadata_tags+faststart"}
            with av.open(str(self.tmp)) as src, av.open(str(self.path), "w", format="mp4", options=options) as dst:
                dst.metadata.update(tags)
                s_in = src.streams.video[0]
                s_out = dst.add_stream_from_template(s_in)
                for packet in src.demux(s_in):
                    if packet.dts is not None:
                        packet.stream = s_out
                        dst.mux(packet)
        finally:
            self.tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Give up: close the encoder and remove the temporary stream."""
        try:
            self.container.close()
        finally:
            self.tmp.unlink(missing_ok=True)


@dataclass
class FrameInfo:
    name: str
    params: ReconstructionParams


@dataclass
class VideoDoc:
    """The invisp document of a video: model, stream settings and every frame's reconstruction parameters."""

    model_id: str
    model_sha256: str
    video: dict
    frames: list[FrameInfo]

    def _body(self) -> dict:
        fps = Fraction(self.video["fps"])
        frames = [{"name": f.name, "pts": i, "time": round(float(i / fps), 6), "params": json.loads(f.params.to_json())}
                  for i, f in enumerate(self.frames)]
        return {"schema": SCHEMA, "model": {"id": self.model_id, "sha256": self.model_sha256},
                "video": self.video, "frames": frames}

    def to_tags(self) -> dict[str, str]:
        body = self._body()
        body["checksum"] = _checksum(body)
        blob = zlib.compress(json.dumps(body, separators=(",", ":"), sort_keys=True).encode(), 9)
        return {"invisp_model": f"{self.model_id} sha256 {self.model_sha256}",
                "invisp_frames": str(len(self.frames)),
                "invisp_params": base64.b64encode(blob).decode("ascii"),
                "comment": f"invisp {__version__} model {self.model_id}"}

    @classmethod
    def from_tags(cls, tags: dict[str, str], name: str) -> VideoDoc:
        blob = tags.get("invisp_params")
        if not blob:
            raise MetadataError(f"{name}: no invisp metadata (not written by invisp encode)")
        try:
            body = json.loads(zlib.decompress(base64.b64decode(blob, validate=True)))
        except (binascii.Error, zlib.error, ValueError) as e:
            raise MetadataError(f"{name}: invisp metadata is damaged ({e})") from None
        if not isinstance(body, dict) or body.get("schema") != SCHEMA:
            raise MetadataError(f"{name}: unsupported invisp video schema {body.get('schema')!r} (reads {SCHEMA})")
        if body.pop("checksum", None) != _checksum(body):
            raise MetadataError(f"{name}: invisp metadata checksum mismatch: the stored parameters were modified")
        try:
            frames = [FrameInfo(str(f["name"]), ReconstructionParams.from_json(json.dumps(f["params"])))
                      for f in body["frames"]]
            doc = cls(body["model"]["id"], body["model"]["sha256"], body["video"], frames)
            sane = Fraction(doc.video["fps"]) > 0 and int(doc.video["width"]) > 0 and int(doc.video["height"]) > 0
        except MetadataError as e:
            raise MetadataError(f"{name}: {e}") from None
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as e:
            raise MetadataError(f"{name}: invisp metadata field invalid or missing: {e}") from None
        if not sane or not frames or doc.video.get("pix_fmt") not in PIX_FMTS:
            raise MetadataError(f"{name}: invisp metadata holds no frames, a bad size or rate, or an unknown format")
        return doc


def _checksum(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, separators=(",", ":"), sort_keys=True).encode()).hexdigest()


def _open(path: str | os.PathLike) -> av.container.InputContainer:
    p = check_input(path)
    try:
        c = av.open(str(p))
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise InputError(f"{p.name}: not a readable video ({e})") from None
    if not c.streams.video:
        c.close()
        raise InputError(f"{p.name}: has no video stream")
    return c


def read_doc(path: str | os.PathLike) -> VideoDoc:
    """The validated invisp document of a video file, checked against its stream (frame count, size)."""
    name = Path(path).name
    with _open(path) as c:
        doc = VideoDoc.from_tags(dict(c.metadata), name)
        stream = c.streams.video[0]
        n = len(doc.frames)
        if stream.frames and stream.frames != n:
            raise MetadataError(f"{name}: frame count mismatch: the metadata describes {n} frames, "
                                f"the video stream has {stream.frames}")
        if (stream.codec_context.width, stream.codec_context.height) != (doc.video["width"], doc.video["height"]):
            raise MetadataError(f"{name}: the stream is {stream.codec_context.width}×{stream.codec_context.height} "
                                f"but its metadata says {doc.video['width']}×{doc.video['height']}")
    return doc


def iter_frames(path: str | os.PathLike, doc: VideoDoc) -> Iterator[np.ndarray]:
    """Decoded upright float RGB frames (H, W, 3) in [0, 1], one at a time, cropped to each frame's upright size;
    MetadataError when the stream holds more or fewer frames than the document."""
    name = Path(path).name
    pix_fmt = doc.video["pix_fmt"]
    bits = PIX_FMTS[pix_fmt][0]
    count = 0
    with _open(path) as c:
        try:
            for frame in c.decode(video=0):
                if count >= len(doc.frames):
                    raise MetadataError(f"{name}: frame count mismatch: the metadata describes {len(doc.frames)} "
                                        f"frames, the video stream has more")
                if frame.format.name.replace("yuvj", "yuv") != pix_fmt:  # yuvj…: the same planes, full range
                    frame = frame.reformat(format=pix_fmt)
                rgb = planes_to_rgb([v.copy() for v in _plane_views(frame, bits)], pix_fmt)
                raw = doc.frames[count].params.raw
                h, w = raw["visible_size"]
                h, w = (w, h) if int(raw["flip"]) & 4 else (h, w)
                yield rgb[:h, :w]
                count += 1
        except av.error.FFmpegError as e:
            raise InputError(f"{name}: corrupt video stream ({e})") from None
    if count != len(doc.frames):
        raise MetadataError(f"{name}: frame count mismatch: the metadata describes {len(doc.frames)} frames, "
                            f"the video stream has {count}")
