"""Synthetic Bayer RAW frames for tests: a smooth random scene plus sensor-like noise, as a ``RawImage``.

    from synthraw import make_raw, write_synthetic_dng   # tests/ is on sys.path under pytest
    raw = make_raw(64, 96, cfa="GRBG", bits=12, flip=6)
    raw = write_synthetic_dng(tmp_path / "x.dng", h=37, w=53)
"""

from __future__ import annotations

import os

import numpy as np

from invisp_cli.rawio import RawImage, cam_xyz_coeff, write_dng

# LibRaw's XYZ→camera matrix for the Nikon D750 (adobe_coeff table), a realistic default.
D750_XYZ_TO_CAM = np.array([[0.9020, -0.2890, -0.0715],
                            [-0.4535, 1.2436, 0.2348],
                            [-0.0934, 0.1919, 0.7086]])

DEFAULT_EXIF = {
    "make": "Invisp",
    "model": "Synthetic Bayer",
    "datetime": "2024:05:06 07:08:09",
    "exposure_time": 0.008,
    "f_number": 2.8,
    "iso": 200,
    "focal_length": 35.0,
    "lens": "Synthetic 35mm f/2.8",
}


def _smooth_field(rng: np.random.Generator, h: int, w: int, n: int = 4) -> np.ndarray:
    """A smooth random field in [0, 1]: a few low-frequency cosines plus a gradient."""
    y = np.linspace(0.0, 1.0, h)[:, None]
    x = np.linspace(0.0, 1.0, w)[None, :]
    f = rng.uniform(-0.5, 0.5) * y + rng.uniform(-0.5, 0.5) * x
    for _ in range(n):
        fy, fx = rng.uniform(0.3, 3.0, size=2)
        py, px = rng.uniform(0, 2 * np.pi, size=2)
        f = f + rng.uniform(0.2, 1.0) * np.cos(2 * np.pi * fy * y + py) * np.cos(2 * np.pi * fx * x + px)
    f = f - f.min()
    return f / max(float(f.max()), 1e-9)


def make_raw(h: int = 64, w: int = 96, cfa: str = "RGGB", bits: int = 14, flip: int = 0, seed: int = 0,
             black: float | np.ndarray | None = None, wb: np.ndarray | list[float] | None = None,
             xyz_to_cam: np.ndarray | None = None, exif: dict | None = None,
             wb_source: str = "camera") -> RawImage:
    """A plausible random RawImage: smooth scene × white balance, black offset, shot + read noise.

    black: scalar or (2, 2) per CFA position (default white/16, rounded); wb: R, G, B multipliers with
    G = 1 (default (2.0, 1.0, 1.6)); white = 2**bits - 1."""
    rng = np.random.default_rng(seed)
    white = (1 << bits) - 1
    if black is None:
        black = float(round(white / 16))
    black_arr = np.broadcast_to(np.asarray(black, dtype=np.float64), (2, 2)).copy()
    wb_arr = np.array([2.0, 1.0, 1.6] if wb is None else wb, dtype=np.float64)
    wb_arr = wb_arr / wb_arr[1]
    xyz = np.array(D750_XYZ_TO_CAM if xyz_to_cam is None else xyz_to_cam, dtype=np.float64)
    rgb_cam = cam_xyz_coeff(xyz)[0]

    scene = np.stack([_smooth_field(rng, h, w) for _ in range(3)], axis=-1)  # white-balanced camera RGB
    scene = 0.02 + 0.9 * (0.6 * scene + 0.4 * scene.mean(axis=-1, keepdims=True))
    span = white - black_arr.max()
    cam = scene / wb_arr * span  # raw signal above black, per channel

    ch = {"R": 0, "G": 1, "B": 2}
    mosaic = np.empty((h, w), dtype=np.float64)
    for i in range(2):
        for j in range(2):
            sig = cam[i::2, j::2, ch[cfa[2 * i + j]]]
            noise = rng.normal(0.0, 1.0, sig.shape) * np.sqrt(0.05 * sig + (span / 2000.0) ** 2 + 0.25)
            mosaic[i::2, j::2] = black_arr[i, j] + sig + noise
    mosaic = np.clip(np.round(mosaic), 0, white).astype(np.uint16)

    return RawImage(
        mosaic=mosaic,
        cfa=cfa,
        black=black_arr,
        white=white,
        wb=wb_arr,
        wb_source=wb_source,
        rgb_cam=rgb_cam,
        xyz_to_cam=xyz,
        flip=flip,
        bits=bits,
        raw_size=(h, w),
        margins=(0, 0),
        exif=dict(DEFAULT_EXIF if exif is None else exif),
    )


def write_synthetic_dng(path: str | os.PathLike, **kw) -> RawImage:
    """``make_raw(**kw)`` written as a DNG at ``path``; returns the RawImage written."""
    raw = make_raw(**kw)
    write_dng(path, raw)
    return raw
