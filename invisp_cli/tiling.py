"""Run any spatial function tile by tile with a halo, so memory stays bounded at any resolution.

For a function whose output pixel depends only on inputs within ``halo`` pixels (its receptive field),
computing each core tile from the tile grown by the halo gives exactly the untiled result. Tile origins are
kept on multiples of ``align`` (2 for the Bayer grid, the squeeze factor for flows) so every tile sees the
same CFA phase and squeeze grid as the full image. Tiles are independent, so they run in parallel threads
(torch releases the GIL in its kernels)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .progress import progress_bar


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def run_tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, out: np.ndarray, *,
              tile: int = 1024, halo: int = 0, align: int = 2,
              post: Callable[[torch.Tensor], np.ndarray] | None = None, description: str = "",
              workers: int | None = None) -> np.ndarray:
    """Compute ``out[..., y0:y1, x0:x1] = post(fn(x_window))[core]`` over a grid of tiles.

    x:   (N, C, H, W) input tensor; out: preallocated (N, C', H, W) array receiving the results.
    post converts a float output tile to ``out``'s dtype (e.g. quantisation), default ``.numpy()``.
    workers: tiles computed at once, each in a thread with an equal share of torch's threads (default: torch's
    thread count, so a process told to use one thread, e.g. a batch worker, stays serial). Tiles write disjoint
    parts of ``out``, so the result is the same whatever the number of workers; the caller's inference and grad
    modes hold in every worker."""
    h, w = x.shape[-2:]
    tile = max(align, _round_up(tile, align))
    halo = _round_up(halo, align)
    post = post or (lambda t: t.numpy())
    tiles = [(y0, x0) for y0 in range(0, h, tile) for x0 in range(0, w, tile)]
    threads = torch.get_num_threads()
    workers = max(1, min(len(tiles), threads if workers is None else workers))
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    with progress_bar(description, total=h * w, enabled=len(tiles) > 1 and bool(description)) as advance:
        def one(y0: int, x0: int) -> None:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            wy0, wx0 = max(0, y0 - halo), max(0, x0 - halo)
            wy1, wx1 = min(h, y1 + halo), min(w, x1 + halo)
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                res = fn(x[..., wy0:wy1, wx0:wx1])
                out[..., y0:y1, x0:x1] = post(res[..., y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0])
            advance((y1 - y0) * (x1 - x0))

        if workers == 1:
            for y0, x0 in tiles:
                one(y0, x0)
            return out
        torch.set_num_threads(max(1, threads // workers))
        try:
            with ThreadPoolExecutor(workers) as pool:
                for done in [pool.submit(one, y0, x0) for y0, x0 in tiles]:
                    done.result()
        finally:
            torch.set_num_threads(threads)
    return out
