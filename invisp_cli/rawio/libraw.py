"""LibRaw below rawpy: its C API (the ``rgb_cam`` postprocess uses, through ctypes) and silencing its C-level stderr."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np


@functools.lru_cache(maxsize=1)
def _libraw_capi() -> Any:
    """The LibRaw shared library rawpy itself uses, through ctypes; None where it cannot be found."""
    try:
        import rawpy

        if tuple(rawpy.libraw_version) < (0, 20):  # libraw_iparams_t layout used below
            return None
        d = os.path.dirname(rawpy.__file__)
        cands = sorted(glob.glob(os.path.join(d, "libraw_r*.so*")) + glob.glob(os.path.join(d, "libraw_r*.dylib"))
                       + glob.glob(os.path.join(d, "libraw*.dll")) + glob.glob(os.path.join(d, "*.libs", "libraw*")))
        if not cands:
            return None
        lib = ctypes.CDLL(cands[0])
        lib.libraw_init.restype = ctypes.c_void_p
        lib.libraw_init.argtypes = [ctypes.c_uint]
        lib.libraw_open_file.restype = ctypes.c_int
        lib.libraw_open_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.libraw_get_rgb_cam.restype = ctypes.c_float
        lib.libraw_get_rgb_cam.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.libraw_get_iparams.restype = ctypes.c_void_p
        lib.libraw_get_iparams.argtypes = [ctypes.c_void_p]
        lib.libraw_close.restype = None
        lib.libraw_close.argtypes = [ctypes.c_void_p]
        return lib
    except Exception:  # noqa: BLE001 - optional acceleration of metadata only
        return None


def libraw_identify(path: str, num_colors: int, color_desc: bytes) -> dict:
    """LibRaw's make, model and rgb_cam for ``path`` (identify only, no decoding); {} if unavailable.

    The iparams layout is checked against what rawpy reports (colors, cdesc) before it is trusted."""
    lib = _libraw_capi()
    if lib is None:
        return {}
    handle = lib.libraw_init(0)
    if not handle:
        return {}
    try:
        if lib.libraw_open_file(handle, os.fsencode(path)) != 0:
            return {}
        buf = ctypes.string_at(lib.libraw_get_iparams(handle), 426)
        colors = int.from_bytes(buf[340:344], "little", signed=True)
        cdesc = buf[420:425].split(b"\0")[0]
        if colors != num_colors or cdesc != color_desc.split(b"\0")[0]:
            return {}
        out: dict = {"rgb_cam": np.array([[lib.libraw_get_rgb_cam(handle, i, j) for j in range(3)]
                                          for i in range(3)], dtype=np.float64)}
        for key, (a, b) in (("make", (4, 68)), ("model", (68, 132))):
            s = buf[a:b].split(b"\0")[0].decode("utf-8", "replace").strip()
            if s:
                out[key] = s
        return out
    finally:
        lib.libraw_close(handle)



_QUIET_LOCK = threading.Lock()
_QUIET_STATE = {"depth": 0, "saved": -1}


@contextlib.contextmanager
def quiet_libraw() -> Iterator[None]:
    """Silence LibRaw's C-level stderr chatter ("…: Unexpected end of file") while it parses: the
    caller turns failures into one-line errors. Reference-counted, so concurrent threads restore fd 2
    correctly; does nothing where fd 2 cannot be swapped."""
    with _QUIET_LOCK:
        if _QUIET_STATE["depth"] == 0:
            _QUIET_STATE["saved"] = -1
            try:
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
            try:
                saved = os.dup(2)
            except OSError:
                saved = -1
            if saved >= 0:
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    try:
                        os.dup2(devnull, 2)
                    finally:
                        os.close(devnull)
                    _QUIET_STATE["saved"] = saved
                except OSError:
                    os.close(saved)
        _QUIET_STATE["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_STATE["depth"] -= 1
            if _QUIET_STATE["depth"] == 0 and _QUIET_STATE["saved"] >= 0:
                os.dup2(_QUIET_STATE["saved"], 2)
                os.close(_QUIET_STATE["saved"])
                _QUIET_STATE["saved"] = -1
