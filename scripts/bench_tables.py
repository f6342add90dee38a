"""Markdown tables for the README from an `invisp bench` report (numbers copied from report.json).

    .venv/bin/python scripts/bench_tables.py docs/bench/report.json [--quality 90]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from invisp_cli.bench.run import bd_rates


def fmt(v: float | None, nd: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report", type=Path)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--exclude", action="append", default=[], help="method to leave out (repeatable)")
    a = ap.parse_args()
    r = json.loads(a.report.read_text())
    recs = [x for x in r["records"] if x.get("quality") in (a.quality, None) and x["method"] not in a.exclude]
    methods = list(dict.fromkeys(x["method"] for x in recs))
    files = list(dict.fromkeys(x["file"] for x in recs))
    by = {(x["file"], x["method"]): x for x in recs}
    common = [f for f in files if all(by.get((f, m), {}).get("raw_psnr_gamma") is not None for m in methods)]

    print(f"Mean over the {len(common)} files every method ran on, JPEG quality {a.quality} (4:4:4):\n")
    cols = [("raw_psnr_gamma", "RAW-PSNR-γ"), ("raw_psnr_lin", "RAW-PSNR-lin"), ("raw_psnr_lin_hl", "lin, highlights"),
            ("raw_psnr_paper", "RAW-PSNR-paper"),
            ("rgb_psnr", "RGB-PSNR"), ("ssim", "SSIM"), ("bpp", "bpp"), ("ratio_file", "RAW file / JPEG"),
            ("ratio_jxl", "JXL lossless / JPEG"), ("encode_s", "enc s"), ("decode_s", "dec s")]
    print("| method | files | " + " | ".join(c[1] for c in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for m in methods:
        rows = [by[f, m] for f in common]
        out = []
        for key, _ in cols:
            vals = [x.get(key) for x in rows if x.get(key) is not None and not math.isnan(x.get(key))]
            out.append(fmt(sum(vals) / len(vals), 3 if key == "ssim" else 2) if vals else "–")
        print(f"| {m} | {len(rows)} | " + " | ".join(out) + " |")

    print(f"\nRAW-PSNR-γ / RAW-PSNR-lin per file at quality {a.quality}:\n")
    print("| file | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for f in files:
        cells = []
        for m in methods:
            x = by.get((f, m))
            cells.append(f"{fmt(x.get('raw_psnr_gamma'))} / {fmt(x.get('raw_psnr_lin'))}" if x and
                         x.get("raw_psnr_gamma") is not None else "–")
        print(f"| {f} | " + " | ".join(cells) + " |")

    bd = r.get("bd_rate") or bd_rates(r["records"])  # older reports: computed from their records
    if bd:
        qs = ", ".join(str(q) for q in r["settings"]["qualities"])
        ms = [m for m in bd["methods"] if m not in a.exclude]
        print(f"\nBD-rate against {bd['reference']} (RAW-PSNR-γ vs bpp over quality {qs}; negative = fewer bits "
              "for the same RAW-PSNR-γ; piecewise cubic, cubic fit in brackets) and BD-PSNR (dB at equal bpp):\n")
        print("| file | " + " | ".join(ms) + " |")
        print("|---|" + "---|" * len(ms))
        files = list(dict.fromkeys(f for m in ms for f in bd["methods"][m]["per_file"]))

        def cell(d: dict | None) -> str:
            if not d:
                return "–"
            return f"{fmt(d['bd_rate'], 1)} % ({fmt(d['bd_rate_cubic'], 1)} %) / {fmt(d['bd_psnr'])} dB"

        for f in files:
            print(f"| {f} | " + " | ".join(cell(bd["methods"][m]["per_file"].get(f)) for m in ms) + " |")
        print("| **mean** | " + " | ".join(cell(bd["methods"][m]["mean"]) for m in ms) + " |")


if __name__ == "__main__":
    main()
