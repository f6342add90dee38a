"""How many threads this process may use: one setting for numpy tiles, torch, the DNG and residual coders.

A batch worker is given its share of the cores (``set_threads``); otherwise ``$OMP_NUM_THREADS`` or the cores
the process may run on."""

from __future__ import annotations

import os
import sys

_threads: int | None = None


def cpu_count() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(n: int) -> None:
    """Threads the tiles of this process may use (a batch worker: its share of the cores), torch's included."""
    global _threads
    _threads = max(1, int(n))
    torch = sys.modules.get("torch")  # only if already loaded (None: blocked, as when it is not installed)
    if torch is not None:
        torch.set_num_threads(_threads)


def thread_count() -> int:
    """``set_threads``'s value, else ``$OMP_NUM_THREADS``, else the cores this process may use."""
    if _threads is not None:
        return _threads
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return cpu_count()
