"""The benchmark's data: the configuration, one record per method × file × quality, per-file facts, error maps,
the whole result, and the definition of every reported quantity. Imported by the loop (``run``), the tables
(``report``) and the figures (``plot``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..settings import DEFAULT_SUBSAMPLING, DEFAULT_TILE
from .sizes import Sizes

DEFINITIONS = {
    "raw_psnr_lin": "10·log10(1/mean((n̂−n)²)) over all CFA sites; n = clip((v−black)/(white−black), 0, 1) "
                    "(metrics.normalise_mosaic), v the original and n̂ from the recovered mosaic",
    "raw_psnr_gamma": "the same on n^(1/2.2) and n̂^(1/2.2)",
    "raw_psnr_paper": "the InvISP paper's protocol (its authors' evaluation code), to compare with its tables only: "
                      "n and n̂ bilinear-demosaiced, × wb / max(wb), clipped, ^(1/2.2), decimated [::2, ::2], PSNR "
                      "over 3 channels (metrics.raw_psnr_paper)",
    "raw_psnr_*_hl / *_sh": "restricted to highlight / shadow sites: LibRaw's render max over RGB ≥ 250 / ≤ 10, "
                            "mask turned back to sensor orientation with rawio.undo_flip; hl_frac / sh_frac: "
                            "fraction of sites in the mask",
    "rgb_psnr": "decoded JPEG vs LibRaw's 8-bit render postprocess(use_camera_wb=True, no_auto_bright=True), "
                "upright, peak 255",
    "ssim": "SSIM averaged over the R, G, B channels (11×11 Gaussian window, σ 1.5), decoded JPEG vs LibRaw's render",
    "delta_e_cam": "ΔE cam: ΔE2000 vs the camera's own JPEG, the preview embedded in the RAW (METRICS.md \"Look\", "
                   "metrics.delta_e_camera; look.read_preview): the decoded JPEG cropped to the preview's framing "
                   "(metrics.align_framing, found once per file on LibRaw's render) and area-downscaled to its size; "
                   "n/a without a usable preview or with --crop",
    "bpp": "JPEG (or codestream) bytes × 8 / visible RAW pixels",
    "ratio_file": "original RAW file bytes / JPEG bytes (n/a with --crop)",
    "ratio_bmp": "paper's B_BMP = 54 + H·W·bits/8 (metrics.b_bmp, the RAW's bit depth) / JPEG bytes",
    "ratio_dng": "the DNG invisp decode writes (rawio.write_dng: lossless-JPEG tiles, metadata, preview) / JPEG bytes",
    "ratio_dng_lossless": "lossless-JPEG DNG (estimated: rawio.write_dng's tags + 256×256 LJ92-style 2-component "
                          "lossless JPEG tiles, see bench/sizes.py) / JPEG bytes",
    "ratio_jxl": "JPEG XL lossless of the mosaic (smaller of mosaic / 4 CFA planes layouts, effort 7) / JPEG bytes",
    "encode_s": "seconds from the RAW file on disk to JPEG bytes: invisp = read_raw + render + JPEG encode; "
                "analytic/upi = LibRaw's postprocess (reads the file itself) + JPEG encode; miniraw = its encode",
    "decode_s": "seconds from JPEG bytes to the recovered uint16 mosaic (Pillow decode + inverse)",
    "*_peak_rss_mb": "peak resident memory of the whole process during the stage (sampled from /proc/self/statm "
                     "every 5 ms; falls back to getrusage ru_maxrss, the process peak so far, where /proc is absent)",
    "means": "plain averages over files of the per-file values (dB averaged in dB), NaN entries skipped",
}


@dataclass
class BenchConfig:
    """What to benchmark (mirrors ``invisp bench``'s options)."""

    inputs: list[Path] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    auto: bool = False
    qualities: list[int] = field(default_factory=lambda: [90])
    subsampling: str = DEFAULT_SUBSAMPLING
    baselines: list[str] | None = None  # None: every available one
    limit: int | None = None
    crop: int | None = None
    out: Path = Path("bench_out")
    plots: bool = True
    tile: int = DEFAULT_TILE
    looks: bool = False  # also each model with the camera look (encode's default), as "<model>+look"


@dataclass
class Record:
    """One method on one file at one quality (``quality`` None for quality-free codecs)."""

    file: str
    method: str
    kind: str  # "invisp" | "baseline"
    quality: int | None
    subsampling: str | None
    bytes: int
    bpp: float
    ratio_file: float | None = None
    ratio_bmp: float | None = None
    ratio_dng: float | None = None
    ratio_dng_lossless: float | None = None
    ratio_jxl: float | None = None
    raw_psnr_lin: float = math.nan
    raw_psnr_gamma: float = math.nan
    raw_psnr_paper: float = math.nan
    raw_psnr_lin_hl: float = math.nan
    raw_psnr_gamma_hl: float = math.nan
    raw_psnr_lin_sh: float = math.nan
    raw_psnr_gamma_sh: float = math.nan
    hl_frac: float = math.nan
    sh_frac: float = math.nan
    rgb_psnr: float = math.nan
    ssim: float = math.nan
    delta_e_cam: float = math.nan
    encode_s: float = math.nan
    decode_s: float = math.nan
    encode_peak_rss_mb: float = math.nan
    decode_peak_rss_mb: float = math.nan
    n_files: int = 1
    note: str = ""


NUMERIC_FIELDS = [f.name for f in fields(Record) if f.name not in
                  ("file", "method", "kind", "quality", "subsampling", "note", "n_files")]


@dataclass
class FileInfo:
    """Per-file facts: sizes, geometry, and why anything was skipped."""

    name: str
    path: str
    shape: tuple[int, int]
    bits: int
    cfa: str
    flip: int
    crop_window: tuple[int, int, int, int] | None  # (top, left, height, width) in sensor orientation
    sizes: Sizes
    read_s: float
    reference_s: float
    notes: list[str] = field(default_factory=list)


@dataclass
class ErrorMaps:
    """Downsampled, upright RMS |n̂ − n| maps (one per method, at the highest quality) and a thumbnail."""

    thumbnail: np.ndarray | None
    maps: dict[str, tuple[np.ndarray, int | None]] = field(default_factory=dict)


@dataclass
class BenchResult:
    config: BenchConfig
    files: list[FileInfo]
    records: list[Record]
    means: list[Record]
    error_maps: dict[str, ErrorMaps]
    skipped: list[tuple[str, str]]
    warnings: list[str]
    baselines: list[str]
    models: list[str]
    rss_method: str
    bd: dict = field(default_factory=dict)  # bd_rates(records): BD-rate / BD-PSNR of each method vs BD_REFERENCE


# --------------------------------------------------------------------------------------------- memory
