"""Figures (matplotlib, Agg backend): the rate–distortion curve and per-image error maps.

``rd_curve.png``: RAW-PSNR-γ against bpp, one point per JPEG quality averaged over files, one line per
method (invisp models solid, baselines dashed; quality-free codecs such as miniraw as single markers);
the lossless storage baselines (DNG lossless, JPEG XL lossless; RAW-PSNR ∞) as vertical lines at their mean bpp.

``errors_<file>.png``: LibRaw's sRGB render (thumbnail) next to one map per method at the highest quality:
RMS of |n̂ − n| (normalised mosaic) over even-sized blocks, in dB re full scale (20·log10), upright, with a
colour bar."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..errors import InvispError
from .records import BenchResult

DB_FLOOR = -90.0  # colour-scale floor of the error maps (a 14-bit LSB is −84 dB)


def _plt():
    try:
        import matplotlib
    except ImportError:
        raise InvispError("bench plots need matplotlib: pip install 'invisp[bench]' (or use --no-plots)") from None

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def safe_name(name: str) -> str:
    """A file-name-safe version of ``name`` (its stem)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem) or "file"


def rd_curve(result: BenchResult, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5), dpi=120)
    methods: dict[str, list] = {}
    for m in result.means:
        methods.setdefault(m.method, []).append(m)
    for method, rs in methods.items():
        rs = sorted((r for r in rs if not math.isnan(r.bpp) and not math.isnan(r.raw_psnr_gamma)),
                    key=lambda r: r.quality or 0)
        if not rs:
            continue
        x, y = [r.bpp for r in rs], [min(r.raw_psnr_gamma, 99.0) for r in rs]
        invisp = rs[0].kind == "invisp"
        if rs[0].quality is None:
            ax.plot(x, y, "D", ms=7, label=f"{method} (RAW codec)")
            continue
        ax.plot(x, y, "-o" if invisp else "--s", lw=2 if invisp else 1.3, ms=5, label=method)
        for r, xi, yi in zip(rs, x, y, strict=True):
            ax.annotate(f"q{r.quality}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7)
    for key, label, style in (("dng_lossless", "DNG lossless (LJ92, est.)", ":"), ("jxl", "JPEG XL lossless", "-.")):
        vals = [getattr(f.sizes, key) for f in result.files]
        vals = [8 * v / f.sizes.pixels for v, f in zip(vals, result.files, strict=True) if v]
        if vals:
            ax.axvline(float(np.mean(vals)), color="grey", ls=style, lw=1, label=f"{label}: {np.mean(vals):.2f} bpp")
    ax.set_xlabel("bits per pixel (JPEG bytes × 8 / RAW pixels)")
    ax.set_ylabel("RAW-PSNR-γ (dB)")
    n = max((m.n_files for m in result.means if m.quality is not None), default=len(result.files))
    ax.set_title(f"RAW recovered from the JPEG, mean over the {n} file(s) every method scored")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def error_figure(name: str, maps, path: Path) -> Path:
    plt = _plt()
    panels = [(m, e, q) for m, (e, q) in maps.maps.items()]
    n = 1 + len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 0.8, 3.6), dpi=110, squeeze=False)
    axes = axes[0]
    if maps.thumbnail is not None:
        axes[0].imshow(maps.thumbnail)
        axes[0].set_title("LibRaw sRGB render", fontsize=9)
    else:
        axes[0].text(0.5, 0.5, "no LibRaw render\nof this size", ha="center", va="center")
    axes[0].axis("off")
    im = None
    for ax, (method, err, q) in zip(axes[1:], panels, strict=True):
        db = 20.0 * np.log10(np.maximum(err.astype(np.float64), 10 ** (DB_FLOOR / 20)))
        im = ax.imshow(db, cmap="magma", vmin=DB_FLOOR, vmax=0.0, interpolation="nearest")
        rms = float(np.sqrt(np.mean(err.astype(np.float64) ** 2)))
        ax.set_title(f"{method}{'' if q is None else f' q{q}'}\nRMS {20 * np.log10(max(rms, 1e-12)):.1f} dB",
                     fontsize=9)
        ax.axis("off")
    if im is not None:
        cb = fig.colorbar(im, ax=list(axes[1:]), fraction=0.03, pad=0.02)
        cb.set_label("|n̂ − n| block RMS (dB re full scale)")
    fig.suptitle(name, fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def write_plots(result: BenchResult, out: Path) -> list[Path]:
    """rd_curve.png and one errors_<file>.png per file in ``out``; returns the paths written."""
    paths = [rd_curve(result, out / "rd_curve.png")]
    used: set[str] = set()
    for name, maps in result.error_maps.items():
        stem = safe_name(name)
        while stem in used:
            stem += "_"
        used.add(stem)
        paths.append(error_figure(name, maps, out / f"errors_{stem}.png"))
    return paths
