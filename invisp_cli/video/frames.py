"""RAW frame sequences: listing and checking the frames, frame rate from capture times, centred sliding windows,
and short test sequences cut from one real RAW by a moving crop window."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import numpy as np

from .. import rawio
from ..errors import InputError
from ..rawfiles import raw_files
from ..rawio import RawImage

T = TypeVar("T")
DEFAULT_FPS = Fraction(24)
#: frame rates a measured one snaps to (NTSC rates as exact fractions)
STANDARD_FPS = [Fraction(r) for r in (1, 2, 5, 10, 12, 15, 24, 25, 30, 48, 50, 60, 120)] + [
    Fraction(24000, 1001), Fraction(30000, 1001), Fraction(60000, 1001)]


def frame_files(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """The RAW frames named by ``inputs`` (files in the order given; folders' RAW files sorted by name)."""
    files = raw_files([str(p) for p in inputs])
    if not files:
        raise InputError(f"no RAW frames in {', '.join(str(p) for p in inputs)}")
    return files


def check_same_sequence(first: RawImage, raw: RawImage, name: str) -> None:
    """A frame must come from the same camera, with the same size, CFA layout and orientation as the first."""
    cam = (first.exif.get("make", ""), first.exif.get("model", ""))
    other = (raw.exif.get("make", ""), raw.exif.get("model", ""))
    if other != cam:
        raise InputError(f"{name}: mixed cameras in one sequence ({' '.join(other).strip() or 'unknown'} after "
                         f"{' '.join(cam).strip() or 'unknown'})")
    if raw.mosaic.shape != first.mosaic.shape:
        raise InputError(f"{name}: mixed frame sizes in one sequence ({raw.mosaic.shape[1]}×{raw.mosaic.shape[0]} "
                         f"after {first.mosaic.shape[1]}×{first.mosaic.shape[0]})")
    if (raw.cfa, raw.flip) != (first.cfa, first.flip):
        raise InputError(f"{name}: CFA layout or orientation differs from the first frame's "
                         f"({raw.cfa}/{raw.flip} vs {first.cfa}/{first.flip})")


def capture_time(path: Path) -> dt.datetime | None:
    """EXIF DateTimeOriginal (+ SubSecTimeOriginal) of a TIFF-based RAW (DNG, NEF, CR2, ARW, …), else None."""
    import exifread

    logging.getLogger("exifread").setLevel(logging.CRITICAL)
    try:
        with open(path, "rb") as f:
            tags = exifread.process_file(f, details=False, stop_tag="SubSecTimeOriginal")
        stamp = str(tags.get("EXIF DateTimeOriginal") or tags.get("Image DateTime") or "").strip()
        t = dt.datetime.strptime(stamp, "%Y:%m:%d %H:%M:%S")
        sub = str(tags.get("EXIF SubSecTimeOriginal") or "").strip()
        return t + dt.timedelta(seconds=float(f"0.{sub}")) if sub.isdigit() else t
    except Exception:  # noqa: BLE001 - exifread raises many things on odd files; no time is no time
        return None


def fps_from_times(times: Sequence[dt.datetime | None]) -> Fraction | None:
    """The frame rate the capture times imply, snapped to the nearest standard rate; None when a frame has no
    time, times go backwards, or they do not span a second.

    EXIF times are often whole seconds, so the rate is measured between the first and the last frame at which the
    time changes: (i₂ − i₁) / (t[i₂] − t[i₁]) is exact for truncated stamps (and for sub-second ones)."""
    if len(times) < 3 or any(t is None for t in times) or any(b < a for a, b in zip(times, times[1:], strict=False)):
        return None
    changes = [i for i in range(1, len(times)) if times[i] != times[i - 1]]
    if len(changes) < 2 or (span := (times[changes[-1]] - times[changes[0]]).total_seconds()) < 1:
        return None
    measured = (changes[-1] - changes[0]) / span
    return min(STANDARD_FPS, key=lambda r: abs(np.log(float(r) / measured)))


def sliding(items: Iterable[T], window: int) -> Iterator[tuple[T, ...]]:
    """Centred windows of odd size W over a stream, edges replicated, holding only ~W items at a time:
    W = 3 over a, b, c gives (a, a, b), (a, b, c), (b, c, c)."""
    half = window // 2
    it = iter(items)
    ahead = [x for _, x in zip(range(half + 1), it, strict=False)]
    if not ahead:
        return
    past = [ahead[0]] * half
    end = object()
    while ahead:
        future = (ahead[1:] + [ahead[-1]] * half)[:half]
        yield (*past, ahead[0], *future)
        past = (past + [ahead[0]])[-half:] if half else []
        ahead = ahead[1:]
        nxt = next(it, end)
        if nxt is not end:
            ahead.append(nxt)


def output_names(names: Sequence[str]) -> list[str]:
    """DNG names for decoded frames: the source frames' stems when they are unique, else frame_000000.dng, …"""
    stems = [Path(n).stem for n in names]
    ok = all(s and not s.startswith(".") for s in stems) and len({s.lower() for s in stems}) == len(stems)
    return [f"{s}.dng" for s in stems] if ok else [f"frame_{i:06d}.dng" for i in range(len(names))]


def slide_sequence(raw: RawImage, folder: Path, frames: int, size: tuple[int, int], step: tuple[int, int],
                   start: tuple[int, int] | None = None) -> list[Path]:
    """Write ``frames`` DNGs of an (h, w) crop window moving by ``step`` = (dy, dx) px per frame (even values, so
    the CFA layout stays) across ``raw`` (sensor orientation; the crops keep its orientation flag), from ``start``
    (default: centred over the path). Returns their paths."""
    h, w = size
    dy, dx = step
    if (dy | dx | h | w) % 2:
        raise ValueError("crop size and step must be even")
    span_y, span_x = abs(dy) * (frames - 1), abs(dx) * (frames - 1)
    if start is None:
        start = ((raw.mosaic.shape[0] - h - span_y) // 4 * 2 + (span_y if dy < 0 else 0),
                 (raw.mosaic.shape[1] - w - span_x) // 4 * 2 + (span_x if dx < 0 else 0))
    y0, x0 = start
    if y0 % 2 or x0 % 2:
        raise ValueError("start must be even")
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        y, x = y0 + i * dy, x0 + i * dx
        if not (0 <= y and y + h <= raw.mosaic.shape[0] and 0 <= x and x + w <= raw.mosaic.shape[1]):
            raise ValueError(f"frame {i} leaves the {raw.mosaic.shape[1]}×{raw.mosaic.shape[0]} RAW")
        crop = raw.crop(y, x, h, w)
        crop.mosaic = np.ascontiguousarray(crop.mosaic)
        crop.raw_size, crop.margins, crop.flip = (h, w), (0, 0), raw.flip
        path = folder / f"frame_{i:03d}.dng"
        rawio.write_dng(path, crop)
        out.append(path)
    return out
