"""Run any spatial function tile by tile with a halo, so memory stays bounded at any resolution.

For a function whose output pixel depends only on inputs within ``halo`` pixels (its receptive field),
computing each core tile from the tile grown by the halo gives exactly the untiled result. Tile origins are
kept on multiples of ``align`` (2 for the Bayer grid, the squeeze factor for flows) so every tile sees the
same CFA phase and squeeze grid as the full image. Tiles are independent, so they run in parallel threads
(numpy and torch release the GIL in their kernels)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .progress import progress_bar
from .threads import thread_count


def _round_up(v: int, m: int) -> int:
    return -(-v // m) * m


def run_tiled(fn: Callable, x, out: np.ndarray, *, tile: int = 1024, halo: int = 0, align: int = 2,
              post: Callable | None = None, description: str = "", workers: int | None = None) -> np.ndarray:
    """Compute ``out[..., y0:y1, x0:x1] = post(fn(x_window))[core]`` over a grid of tiles.

    x:   (N, C, H, W) numpy array or torch tensor; out: preallocated (N, C', H, W) array receiving the results.
    post converts an output tile to ``out``'s dtype (e.g. quantisation), default: as it is (``.numpy()`` for a
    tensor). workers: tiles computed at once, each in a thread (default ``thread_count()``, so a process told
    to use one thread, e.g. a batch worker, stays serial; numpy and torch release the GIL in their kernels),
    torch's threads shared equally between them. Tiles write disjoint parts of ``out``, so the result is the same
    whatever the number of workers; for tensors the caller's inference and grad modes hold in every worker."""
    h, w = x.shape[-2:]
    tile = max(align, _round_up(tile, align))
    halo = _round_up(halo, align)
    tensor = not isinstance(x, np.ndarray)
    post = post or ((lambda t: t.numpy()) if tensor else (lambda t: t))
    tiles = [(y0, x0) for y0 in range(0, h, tile) for x0 in range(0, w, tile)]
    threads = thread_count()
    workers = max(1, min(len(tiles), threads if workers is None else workers))
    if tensor:
        import torch

        inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

        def modes() -> contextlib.AbstractContextManager:
            stack = contextlib.ExitStack()
            stack.enter_context(torch.inference_mode(inference))
            stack.enter_context(torch.set_grad_enabled(grad))
            return stack
    else:
        modes = contextlib.nullcontext

    with progress_bar(description, total=h * w, enabled=len(tiles) > 1 and bool(description)) as advance:
        def one(y0: int, x0: int) -> None:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            wy0, wx0 = max(0, y0 - halo), max(0, x0 - halo)
            wy1, wx1 = min(h, y1 + halo), min(w, x1 + halo)
            with modes():
                res = fn(x[..., wy0:wy1, wx0:wx1])
                out[..., y0:y1, x0:x1] = post(res[..., y0 - wy0 : y1 - wy0, x0 - wx0 : x1 - wx0])
            advance((y1 - y0) * (x1 - x0))

        if workers == 1:
            for y0, x0 in tiles:
                one(y0, x0)
            return out
        if tensor:
            saved = torch.get_num_threads()
            torch.set_num_threads(max(1, threads // workers))
        try:
            with ThreadPoolExecutor(workers) as pool:
                for done in [pool.submit(one, y0, x0) for y0, x0 in tiles]:
                    done.result()
        finally:
            if tensor:
                torch.set_num_threads(saved)
    return out
