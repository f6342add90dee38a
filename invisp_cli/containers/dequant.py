"""Biased dequantisation: float RGB of a JPEG from its DCT coefficients, closer to the encoded image than an
ordinary 8-bit decode.

A baseline decoder (libjpeg, Pillow) reconstructs every coefficient at the centre of its quantisation bin,
x̂ = k·Q, then rounds the integer IDCT and the YCbCr → RGB conversion to 8 bits. Here:

1. AC coefficients are Laplacian, p(x) ∝ exp(−λ|x|), so the conditional mean of a bin lies nearer zero than its
   centre. With θ = λQ fitted per component and frequency by maximum likelihood on the file's own indices k
   (no side information)

       P(k = 0) = 1 − e^(−θ/2),   P(|k| = m ≥ 1) = e^(−θ(m − ½)) (1 − e^(−θ)),

   the bin |k| = m is reconstructed at its centroid  |x̂| = Q·(m − ½ + 1/θ − 1/(e^θ − 1))  (→ m·Q as θ → 0,
   → the bin's inner edge as θ → ∞); the DC and the zero bin stay where they are.
2. **Chroma from luma** (4:4:4 only): the chroma coefficients quantised to zero are not all zero. Where a
   block's colour is locally uniform its chroma detail follows its luma detail (a demosaic makes it so), so each
   zero AC chroma coefficient is predicted as c_f = α·y_f from the decoded luma coefficient y_f, with one
   α = Σ c·y / (Σ y² + 1) per block over its AC coefficients (each block on its own, so a lossless turn of the
   file turns the result with it), clipped into the zero bin [−Q_f/2, Q_f/2] (the JPEG's own indices are kept)
   and shrunk by ``SHRINK`` towards the bin's centre (where a plain decoder puts it: a colour that does not
   follow its luma loses little); the nonzero bins keep their centroids. Measured in docs/decode.md.
3. The IDCT is the orthonormal float one (the JPEG DCT is orthonormal), the samples are clamped to [0, 255] as
   libjpeg's range limit does (the encoded samples were in it: a projection that cannot move them away), and
   YCbCr → RGB (JFIF, BT.601 full range) is computed in float, clamped to [0, 255], not rounded.

Only 8-bit, 3-component YCbCr JPEGs of 4:4:4, 4:2:2 or 4:2:0 sampling are handled (subsampled chroma upsampled
as libjpeg does, ``upsample``); anything else (an RGB JPEG, 4:1:1) — and a missing, failing or warning
``jpeglib`` — gives None, and the caller uses the ordinary decode.

``recovery_pixels`` is what the approximate decode (no residual layer) recovers the RAW from: these pixels,
turned as ``integrity.check`` turned Pillow's, 255 where Pillow's are, where the JPEG's pixels are the ones
encode wrote (or a file of an older release); Pillow's 8-bit pixels otherwise. The integrity binding and the
residual layers keep using Pillow's pixels, on both sides."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..threads import thread_count
from . import integrity

#: JFIF YCbCr → RGB: rgb = M · (Y, Cb − 128, Cr − 128)
_YCC_TO_RGB = np.array([[1.0, 0.0, 1.402], [1.0, -0.344136286, -0.714136286], [1.0, 1.772, 0.0]])
#: θ grid of the maximum-likelihood fit (θ = λQ, the Laplacian's rate in quantisation steps)
_THETA = np.geomspace(1e-3, 30.0, 2000)
#: the states of ``integrity.Check`` whose pixels are encode's (turned or not), or an older release's file
STATES = ("intact", "recoded", "transformed", "unbound")
#: the float decode is used only if its mean |difference| from Pillow's pixels is below this (8-bit levels; it
#: moves them by about a level on average, or less): anything else is not the same image
AGREE = 4.0


def available() -> bool:
    """Whether the coefficient reader (``jpeglib``) is installed."""
    try:
        import jpeglib  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _dct_matrix() -> np.ndarray:
    """The orthonormal 8-point DCT-II matrix C[u, x] = c(u)·cos((2x + 1)uπ/16); a block is Cᵀ·F·C."""
    u, x = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    c = np.where(u == 0, np.sqrt(1 / 8), np.sqrt(2 / 8))
    return c * np.cos((2 * x + 1) * u * np.pi / 16)


#: luma sampling factors (vertical, horizontal) read, the chroma's being (1, 1): 4:4:4, 4:2:2, 4:2:0
SAMPLINGS = ((1, 1), (1, 2), (2, 2))


@contextlib.contextmanager
def _stderr_to(log: Path) -> Iterator[Path]:
    """File descriptor 2 sent to ``log`` for the block: libjpeg (inside jpeglib) prints its warnings there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "wb") as f:
        os.dup2(f.fileno(), 2)
    try:
        yield log
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def read_coefficients(data: bytes) -> tuple[list[np.ndarray], list[np.ndarray], tuple[int, int],
                                             tuple[int, int]] | None:
    """(quantised coefficients of Y, Cb, Cr: int (by, bx, 8, 8) each, their quantisation tables (8, 8), image
    (height, width), the luma's sampling factors (v, h): the chroma planes are 1/v × 1/h of it) of the JPEG
    ``data``; None where it is not a YCbCr JPEG of one of ``SAMPLINGS``, ``jpeglib`` is missing, fails on it or
    libjpeg warns about it (e.g. "Premature end of JPEG file": the warning goes to a file, not to the user)."""
    try:
        import jpeglib
    except ImportError:
        return None
    with tempfile.TemporaryDirectory(prefix="invisp-dequant-") as tmp, _stderr_to(Path(tmp) / "libjpeg.txt") as log:
        path = Path(tmp) / "image.jpg"
        path.write_bytes(data)
        try:  # a file libjpeg refuses here decodes from Pillow's pixels instead
            jpg = jpeglib.read_dct(str(path))
            factors = np.asarray(jpg.samp_factor).tolist()
            if (jpg.content != data or not jpg.has_chrominance or "YCbCr" not in str(jpg.jpeg_color_space)
                    or len(factors) != 3 or tuple(factors[0]) not in SAMPLINGS or factors[1:] != [[1, 1]] * 2):
                return None  # e.g. an RGB JPEG (Adobe transform 0), 4:1:1
            planes = [np.asarray(jpg.Y), np.asarray(jpg.Cb), np.asarray(jpg.Cr)]
            tables = [np.asarray(jpg.qt[int(i)], np.float64) for i in jpg.quant_tbl_no]
            size = (int(jpg.height), int(jpg.width))
        except (OSError, RuntimeError, ValueError, TypeError, IndexError):
            return None
        if log.stat().st_size:  # libjpeg warned: a damaged or truncated file
            return None
    v, hh = factors[0]
    luma = (-(-size[0] // 8), -(-size[1] // 8))  # blocks that hold image samples
    chroma = (-(-size[0] // (8 * v)), -(-size[1] // (8 * hh)))
    if (len(tables) != 3 or planes[1].shape != planes[2].shape
            or any(n < m for n, m in zip(planes[0].shape[:2] + planes[1].shape[:2], luma + chroma, strict=True))):
        return None
    return planes, tables, size, (v, hh)


def upsample(plane: np.ndarray, v: int, h: int) -> np.ndarray:
    """A chroma plane (H', W') at v × h its resolution by libjpeg's "fancy" (triangular) upsampling, in float:
    each output sample is ¾ of its input sample + ¼ of the next nearer one (the edge sample repeated), per axis."""
    for axis, f in ((0, v), (1, h)):
        if f == 1:
            continue
        n = plane.shape[axis]
        prev = np.take(plane, np.r_[0, 0 : n - 1], axis)
        nxt = np.take(plane, np.r_[1 : n, n - 1], axis)
        pair = np.stack([0.75 * plane + 0.25 * prev, 0.75 * plane + 0.25 * nxt], axis + 1)
        plane = pair.reshape(plane.shape[:axis] + (2 * n,) + plane.shape[axis + 1 :]).astype(np.float32)
    return plane


def laplace_theta(k: np.ndarray) -> np.ndarray:
    """Maximum-likelihood θ (8, 8) of each frequency's quantised Laplacian from indices ``k`` (…, 8, 8):
    N₀·log(1 − e^(−θ/2)) + N₁·(log(1 − e^(−θ)) − θ/2) − θ·Σ_{k≠0}(|k| − 1), maximised on a grid."""
    flat = k.reshape(-1, 64)
    n1 = np.count_nonzero(flat, axis=0)
    n0, s = flat.shape[0] - n1, np.abs(flat).sum(0, dtype=np.int64) - n1
    t = _THETA[:, None]
    ll = n0 * np.log1p(-np.exp(-t / 2)) + n1 * (np.log1p(-np.exp(-t)) - t / 2) - t * s
    return _THETA[ll.argmax(0)].reshape(8, 8)


def centroid_offset(theta: np.ndarray) -> np.ndarray:
    """The shift of a bin's centroid towards zero, in quantisation steps: ½ − 1/θ + 1/(e^θ − 1) ∈ [0, ½)."""
    return 0.5 - 1 / theta + 1 / np.expm1(theta)


def centroid_shift(k: np.ndarray, table: np.ndarray) -> np.ndarray:
    """The shift (8, 8) towards zero of each frequency's nonzero indices ``k`` (…, 8, 8), in coefficient units:
    Q·``centroid_offset``(``laplace_theta``(k)); 0 for the DC."""
    shift = centroid_offset(laplace_theta(k)) * table
    shift[0, 0] = 0.0
    return shift.astype(np.float32)


def dequantise(k: np.ndarray, table: np.ndarray, shift: np.ndarray | None = None) -> np.ndarray:
    """Float32 coefficients (…, 8, 8) of indices ``k`` with quantisation ``table``: k·Q − sign(k)·``shift``
    (by default ``centroid_shift`` of ``k`` itself): each nonzero AC index at its bin's Laplacian centroid, the
    DC and zeros at k·Q."""
    out = k.astype(np.float32)
    out *= table.astype(np.float32)
    out -= np.sign(k, dtype=np.float32) * (centroid_shift(k, table) if shift is None else shift)
    return out


def idct_plane(coef: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float32 samples (H, W) of coefficients (by, bx, 8, 8): orthonormal IDCT per block (one product with
    C ⊗ C), + 128, cropped to ``size``, clamped to [0, 255]."""
    c = _dct_matrix()
    by, bx = coef.shape[:2]
    blocks = coef.reshape(-1, 64).astype(np.float32, copy=False) @ np.kron(c, c).astype(np.float32)
    plane = blocks.reshape(by, bx, 8, 8).transpose(0, 2, 1, 3).reshape(by * 8, bx * 8)[: size[0], : size[1]]
    plane += np.float32(128.0)
    return plane.clip(0.0, 255.0, out=plane)


#: chroma from luma: the share of the clipped prediction kept (0: the plain zero bin; chosen on five files,
#: docs/decode.md)
SHRINK = 0.5


def chroma_from_luma(y: np.ndarray, k: np.ndarray, c: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Chroma coefficients ``c`` (…, 8, 8) of indices ``k`` and quantisation ``table`` with each zero AC
    coefficient replaced by ``SHRINK``·clip(α·y_f, ±Q_f/2), y the decoded luma coefficients of the same blocks and
    α = Σ c·y / (Σ y² + 1) per block over its AC coefficients (module docstring, 2)."""
    shape = (*c.shape[:-2], 64)
    y64, c64 = y.reshape(shape)[..., 1:], c.reshape(shape)[..., 1:]
    num = np.einsum("...f,...f->...", c64, y64, dtype=np.float64)
    den = np.einsum("...f,...f->...", y64, y64, dtype=np.float64)
    alpha = (num / (den + 1.0)).astype(np.float32)
    half = (table.reshape(64)[1:] / 2).astype(np.float32)
    pred = np.clip(alpha[..., None] * y64, -half, half)
    pred *= np.float32(SHRINK)
    out = c.reshape(shape).copy()
    out[..., 1:] = np.where(k.reshape(shape)[..., 1:] == 0, pred, c64)
    return out.reshape(c.shape)


#: block rows decoded at a time (the temporaries of a band stay small: 16 MB per band of a 6000-pixel width)
BAND = 16


def decode(data: bytes, from_luma: bool = True) -> np.ndarray | None:
    """Float32 RGB (H, W, 3; planar in memory) in [0, 255] of the JPEG ``data`` (as stored: no EXIF orientation
    applied): biased dequantisation (with ``chroma_from_luma`` on 4:4:4 files if ``from_luma``) and float
    reconstruction, band by band of ``BAND`` block rows (the shifts are the whole image's; the bands write disjoint
    rows, ``thread_count()`` at a time); None where ``read_coefficients`` cannot read it."""
    read = read_coefficients(data)
    if read is None:
        return None
    planes, tables, (h, w), (sv, sh) = read
    shifts = [centroid_shift(p, q) for p, q in zip(planes, tables, strict=True)]
    weights = _YCC_TO_RGB[:, 1:].astype(np.float32)
    planar = np.empty((3, h, w), np.float32)  # returned as its (H, W, 3) view: the layout recover's tiles read
    chroma = None  # subsampled chroma: whole planes, upsampled (a quarter or half of the samples to decode)
    if (sv, sh) != (1, 1):
        size = (-(-h // sv), -(-w // sh))
        chroma = [upsample(idct_plane(dequantise(p, q, s), size), sv, sh)[:h, :w] - np.float32(128.0)
                  for p, q, s in zip(planes[1:], tables[1:], shifts[1:], strict=True)]

    def band(b0: int) -> None:
        rows = min(8 * BAND, h - 8 * b0)
        if chroma is None:
            coef = [dequantise(p[b0 : b0 + BAND], q, s) for p, q, s in zip(planes, tables, shifts, strict=True)]
            if from_luma:
                coef[1:] = (chroma_from_luma(coef[0], p[b0 : b0 + BAND], c, q)
                            for p, c, q in zip(planes[1:], coef[1:], tables[1:], strict=True))
            y, cb, cr = (idct_plane(c, (rows, w)) for c in coef)
            cb -= np.float32(128.0)
            cr -= np.float32(128.0)
        else:
            y = idct_plane(dequantise(planes[0][b0 : b0 + BAND], tables[0], shifts[0]), (rows, w))
            cb, cr = (c[8 * b0 : 8 * b0 + rows] for c in chroma)
        for i, (wb, wr) in enumerate(weights):  # the zero weights skipped (R has no Cb, B no Cr): the same values
            v = y + (wb * cb if wb else 0) + (wr * cr if wr else 0)
            np.clip(v, 0.0, 255.0, out=planar[i, 8 * b0 : 8 * b0 + rows])

    with ThreadPoolExecutor(thread_count()) as pool:  # numpy releases the GIL in its kernels
        list(pool.map(band, range(0, planes[0].shape[0], BAND)))
    return planar.transpose(1, 2, 0)


def _mean_difference(a: np.ndarray, b: np.ndarray, rows: int = 64, every: int = 4) -> float:
    """mean |a − b| of two (H, W, 3) images over one band of ``rows`` rows in ``every`` (enough to tell another
    image from this one's decode, at a fraction of the cost)."""
    bands = [(a[r : r + rows], b[r : r + rows]) for r in range(0, a.shape[0], rows * every)]
    total = sum(float(np.abs(x - y).sum(dtype=np.float64)) for x, y in bands)
    return total / max(sum(x.size for x, _ in bands), 1)


def keep_white(rgb: np.ndarray, pillow: np.ndarray) -> np.ndarray:
    """``rgb`` (float, 0–255, Pillow's layout) set to 255 where Pillow's pixels are 255, in place: there the render
    mostly clipped at white (a point mass of the encoded values), which the bin centres' overshoot, clamped,
    reaches and the centroids pull below."""
    np.copyto(rgb, np.float32(255), where=pillow == 255)
    return rgb


def recovery_pixels(data: bytes, check: integrity.Check) -> np.ndarray:
    """The pixels the approximate decode recovers the RAW from: float32 RGB in [0, 1] (``decode``/255, upright:
    the lossless turn ``check.flip`` undone as on ``check.rgb``, with its ``check.imcu``) where
    ``check.state`` is one of ``STATES`` and ``decode`` reads the file; else Pillow's uint8 ``check.rgb``.

    Where Pillow decodes 255 the value stays 1 (``keep_white``)."""
    pillow = check.rgb
    rgb = decode(data) if check.state in STATES else None
    if rgb is None:
        return pillow
    out = rgb if check.flip == 0 else integrity.undo(rgb, check.flip, check.imcu)
    if out.shape != pillow.shape or _mean_difference(out, pillow) > AGREE:
        return pillow
    keep_white(out, pillow)
    out *= np.float32(1 / 255)
    return out
