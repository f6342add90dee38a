"""The benchmark's outputs as text: rich tables (``fit``: names cut to a terminal's width; else printed in full, for
logs), ``report.json`` and ``report.csv``.

JSON holds the settings, metric definitions, per-file sizes and notes, every record and the means; NaN and
missing values are ``null``, an exact (infinite) PSNR is the string ``"inf"``. The CSV has one row per
record followed by the mean rows (``file`` = ``MEAN``)."""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
from dataclasses import asdict, fields
from pathlib import Path

from rich import box
from rich.table import Table

from .. import __version__
from .records import DEFINITIONS, BenchResult, Record


def _clean(v: object) -> object:
    """JSON-safe value: NaN → None, ±inf → "inf"/"-inf", tuples → lists, recursively."""
    if isinstance(v, float):
        if math.isnan(v):
            return None
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return v
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy scalar
        return _clean(v.item())
    return v


def to_json(result: BenchResult) -> dict:
    """The whole report as a JSON-serialisable dict."""
    cfg = result.config
    return _clean({
        "invisp_version": __version__,
        "created": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "settings": {"inputs": [str(p) for p in cfg.inputs], "models": result.models, "auto": cfg.auto,
                     "qualities": cfg.qualities, "subsampling": cfg.subsampling, "baselines": result.baselines,
                     "limit": cfg.limit, "crop": cfg.crop, "tile": cfg.tile},
        "definitions": DEFINITIONS,
        "memory_measurement": result.rss_method,
        "files": [{**asdict(f), "sizes": f.sizes.to_json()} for f in result.files],
        "records": [asdict(r) for r in result.records],
        "means": [asdict(r) for r in result.means],
        "bd_rate": result.bd,
        "skipped": [{"file": n, "reason": why} for n, why in result.skipped],
        "warnings": result.warnings,
    })


def write_json(result: BenchResult, path: Path) -> Path:
    path.write_text(json.dumps(to_json(result), indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def write_csv(result: BenchResult, path: Path) -> Path:
    names = [f.name for f in fields(Record)]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for r in [*result.records, *result.means]:
            row = {}
            for k, v in asdict(r).items():
                row[k] = "" if v is None or (isinstance(v, float) and math.isnan(v)) else v
            w.writerow(row)
    return path


# ---------------------------------------------------------------------------------------------- tables


def _f(v: float | None, fmt: str = "{:.2f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return fmt.format(v)


def _peak(r: Record) -> float:
    vals = [v for v in (r.encode_peak_rss_mb, r.decode_peak_rss_mb) if not math.isnan(v)]
    return max(vals) if vals else math.nan


def _cell(b: float | None, pixels: int) -> str:
    return "n/a" if b is None else f"{b / 1e6:.2f} ({8 * b / pixels:.2f})"


def _name_column(t: Table, header: str, max_width: int, fit: bool) -> None:
    """A file or method column: cut with an ellipsis at ``max_width`` on a terminal (``fit``), in full otherwise (and
    the table then at least as wide as its title, so that the title is one line of the log too)."""
    if fit:
        t.add_column(header, overflow="ellipsis", min_width=8, max_width=max_width)
    else:
        t.add_column(header, no_wrap=True)
        t.min_width = max(t.min_width or 0, len(str(t.title or "")))


def sizes_table(result: BenchResult, fit: bool = True) -> Table:
    """Per-file storage baselines: bytes (MB) and bpp."""
    t = Table(title="RAW storage baselines: MB (bpp); DNG-LL: lossless-JPEG DNG (estimated); JXL: JPEG XL lossless",
              box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    _name_column(t, "file", 28, fit)
    for col in ("pixels", "bits", "RAW file", "B_BMP", "DNG", "DNG-LL", "JXL"):
        t.add_column(col, justify="right", no_wrap=not fit)
    for f in result.files:
        s = f.sizes
        jxl = _cell(s.jxl, s.pixels) + (f" [{s.jxl_layout}]" if s.jxl_layout else "")
        t.add_row(f.name, f"{f.shape[1]}×{f.shape[0]}", str(f.bits),
                  _cell(s.file, s.pixels) if s.file else "n/a (crop)", _cell(s.b_bmp, s.pixels),
                  _cell(s.dng, s.pixels), _cell(s.dng_lossless, s.pixels), jxl)
    return t


def _rows(result: BenchResult) -> list[tuple[Record, bool]]:
    """(record, last-before-means) in display order: per file, then the means over files."""
    rows = sorted(result.records, key=lambda r: (r.file, r.kind != "invisp", r.method, r.quality or 0))
    means = sorted(result.means, key=lambda r: (r.kind != "invisp", r.method, r.quality or 0))
    return [(r, i == len(rows) - 1) for i, r in enumerate([*rows, *means])]


def _table(title: str, cols: tuple[str, ...], fit: bool) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    _name_column(t, "file", 28, fit)
    _name_column(t, "method", 22, fit)
    t.add_column("q", justify="right", no_wrap=True, min_width=2)
    for col in cols:
        t.add_column(col, justify="right", no_wrap=True, min_width=min(len(col), 6))
    return t


def _label(r: Record) -> str:
    return f"MEAN ({r.n_files})" if r.file == "MEAN" else r.file


def _q_label(r: Record) -> str:
    return "–" if r.quality is None else str(r.quality)


def results_table(result: BenchResult, fit: bool = True) -> Table:
    """Quality of the recovered RAW and of the JPEG, per file, method and quality, then the means."""
    t = _table("RAW recovered from the JPEG (dB; hl/sh: RAW-PSNR-lin on highlight/shadow sites; SSIM over RGB; "
               "ΔE cam: ΔE2000 vs the camera's preview)",
               ("bpp", "RAW-γ", "RAW-lin", "hl", "sh", "RGB", "SSIM", "ΔE cam"), fit)
    for r, last in _rows(result):
        t.add_row(_label(r), r.method, _q_label(r), _f(r.bpp, "{:.3f}"), _f(r.raw_psnr_gamma), _f(r.raw_psnr_lin),
                  _f(r.raw_psnr_lin_hl), _f(r.raw_psnr_lin_sh), _f(r.rgb_psnr), _f(r.ssim, "{:.4f}"),
                  _f(r.delta_e_cam), end_section=last)
    return t


def cost_table(result: BenchResult, fit: bool = True) -> Table:
    """Compression ratios against the storage baselines, times and peak memory."""
    t = _table(f"compression ratio (×) and cost (peak MB: process RSS, {result.rss_method})",
               ("×file", "×BMP", "×DNG-LL", "×JXL", "enc s", "dec s", "peak MB"), fit)
    for r, last in _rows(result):
        t.add_row(_label(r), r.method, _q_label(r), _f(r.ratio_file, "{:.1f}"), _f(r.ratio_bmp, "{:.1f}"),
                  _f(r.ratio_dng_lossless, "{:.1f}"), _f(r.ratio_jxl, "{:.1f}"), _f(r.encode_s), _f(r.decode_s),
                  _f(_peak(r), "{:.0f}"), end_section=last)
    return t


def bd_table(result: BenchResult, fit: bool = True) -> Table | None:
    """BD-rate (%) and BD-PSNR (dB) of each method against the front end, RAW-PSNR-γ vs bpp, per file and mean."""
    bd = result.bd
    if not bd or not bd.get("methods"):
        return None
    qs = ",".join(str(q) for q in sorted(result.config.qualities))
    t = Table(title=f"Bjøntegaard deltas vs {bd['reference']}: RAW-PSNR-γ vs bpp over q {qs} (BD-rate %, negative "
                    "= fewer bits for the same RAW fidelity; pchip, cubic fit in brackets; BD-PSNR dB)",
              box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    _name_column(t, "file", 28, fit)
    for m in bd["methods"]:
        t.add_column(m, justify="right", no_wrap=True)
    files = list(dict.fromkeys(f for d in bd["methods"].values() for f in d["per_file"]))

    def cell(d: dict | None) -> str:
        if not d:
            return "n/a"
        return f"{_f(d['bd_rate'], '{:+.1f}')} ({_f(d['bd_rate_cubic'], '{:+.1f}')}) {_f(d['bd_psnr'], '{:+.2f}')}"

    for i, f in enumerate(files):
        t.add_row(f, *[cell(d["per_file"].get(f)) for d in bd["methods"].values()], end_section=i == len(files) - 1)
    t.add_row("MEAN", *[cell(d["mean"]) for d in bd["methods"].values()])
    return t


def tables(result: BenchResult, fit: bool = True) -> list[Table]:
    """The four tables in print order; ``fit=False`` (stdout not a terminal) prints every name and cell in full."""
    bd = bd_table(result, fit)
    return [sizes_table(result, fit), results_table(result, fit), cost_table(result, fit), *([bd] if bd else [])]
