"""Markdown tables for the README from an `invisp bench` report (numbers copied from report.json).

    .venv/bin/python scripts/bench_tables.py docs/bench/report.json [more reports…] [--quality 90] [--exclude METHOD]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from invisp_cli.bench.run import BD_REFERENCE, bd_rates
from invisp_cli.zoo import WEIGHTS_DIR, read_registry


def fmt(v: float | None, nd: int = 2) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report", type=Path, nargs="+",
                    help="report.json; several: their records merged, a later report's (file, method, quality) first")
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--exclude", action="append", default=[], help="method to leave out (repeatable)")
    a = ap.parse_args()
    reports = [json.loads(p.read_text()) for p in a.report]
    r = reports[-1]
    if len(reports) > 1:
        merged: dict = {}
        for rep in reports:
            for x in rep["records"]:
                merged[(x["file"], x["method"], x.get("quality"))] = x
        r = {**r, "records": list(merged.values()), "bd_rate": None}
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

    held_out_table(r, a.quality, a.exclude)

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
            if d["bd_rate"] is None or not math.isfinite(d["bd_rate"]):  # the RAW-PSNR ranges do not overlap
                return f"no overlap / {fmt(d['bd_psnr'])} dB"
            n = f" ({d['n_rate']} files)" if "n_rate" in d else ""
            return f"{fmt(d['bd_rate'], 1)} % ({fmt(d['bd_rate_cubic'], 1)} %){n} / {fmt(d['bd_psnr'])} dB"

        for f in files:
            print(f"| {f} | " + " | ".join(cell(bd["methods"][m]["per_file"].get(f)) for m in ms) + " |")
        print("| **mean** | " + " | ".join(cell(bd["methods"][m]["mean"]) for m in ms) + " |")


def held_out_table(r: dict, quality: int, exclude: list[str], reference: str = BD_REFERENCE) -> None:
    """Each learned model against the front end on the files none of the benchmarked models trained on (registry
    ``training.files``), at ``quality``: the learned-stage floor of the project (mean RAW-PSNR-γ ≥ front end
    + 1.0 dB, BD-rate ≤ −15 %, no file worse by > 0.2 dB in γ, lin or highlights, mean RGB-PSNR within 0.2 dB)."""
    compared = {x["method"] for x in r["records"]}
    trained = {f for e in read_registry(WEIGHTS_DIR) if e.id in compared for f in e.training.get("files", [])}
    recs = [x for x in r["records"] if x.get("quality") == quality and x["file"] not in trained]
    by = {(x["file"], x["method"]): x for x in recs}
    if not any(m == reference for _, m in by):
        return
    files = sorted({f for f, m in by if m == reference})
    bd = r.get("bd_rate") or bd_rates(r["records"])
    methods = [m for m in dict.fromkeys(x["method"] for x in recs)
               if m != reference and m not in exclude and x_kind(recs, m) == "invisp"]
    print(f"\nLearned stage vs {reference} on the {len(files)} files none of these models trained on, q{quality} "
          "(Δ = model − front end; floor: mean Δγ ≥ +1.0 dB, BD-rate ≤ −15 %, worst Δ ≥ −0.2 dB, "
          "|mean ΔRGB| ≤ 0.2 dB):\n")
    print("| model | mean Δ RAW-PSNR-γ | worst Δγ | worst Δ lin | worst Δ lin, highlights | mean Δ RGB-PSNR | "
          "mean BD-rate (these files) | meets the floor |")
    print("|---|---|---|---|---|---|---|---|")
    for m in methods:
        d = {k: [by[f, m][k] - by[f, reference][k] for f in files if (f, m) in by
                 and by[f, m].get(k) is not None and by[f, reference].get(k) is not None]
             for k in ("raw_psnr_gamma", "raw_psnr_lin", "raw_psnr_lin_hl", "rgb_psnr")}
        rates = [v["bd_rate"] for f, v in bd.get("methods", {}).get(m, {}).get("per_file", {}).items()
                 if f in files and v["bd_rate"] is not None and math.isfinite(v["bd_rate"])]
        mean_bd = sum(rates) / len(rates) if rates else float("nan")
        mg = sum(d["raw_psnr_gamma"]) / len(d["raw_psnr_gamma"])
        mr = sum(d["rgb_psnr"]) / len(d["rgb_psnr"]) if d["rgb_psnr"] else float("nan")
        worst = {k: min(v) if v else float("nan") for k, v in d.items()}
        ok = (mg >= 1.0 and mean_bd <= -15 and min(worst["raw_psnr_gamma"], worst["raw_psnr_lin"],
                                                     worst["raw_psnr_lin_hl"]) >= -0.2 and abs(mr) <= 0.2)
        print(f"| {m} | {mg:+.2f} | {worst['raw_psnr_gamma']:+.2f} | {worst['raw_psnr_lin']:+.2f} | "
              f"{worst['raw_psnr_lin_hl']:+.2f} | {mr:+.2f} | {mean_bd:+.1f} % ({len(rates)} of {len(files)} files; "
              f"the others: no overlap) | {'yes' if ok else 'no'} |")


def x_kind(recs: list[dict], method: str) -> str:
    return next((x["kind"] for x in recs if x["method"] == method), "")


if __name__ == "__main__":
    main()
