"""Editing headroom: how much better an edit of an invisp JPEG's recovered RAW is than the same edit of its pixels.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/headroom.py [FILES…] [--quality 90] [--out docs]

For each RAW file (default: every file of ../shared/data/raw) an invisp JPEG is made exactly as ``invisp encode``
makes it by default (``codec.encode_file``, quality 90 unless ``--quality``), then for each edit of ``EDITS``
(highlights −1 only on files with clipping: ≥ ``CLIPPED_SHARE`` of the sites at the clip level):

* truth    = ``invisp develop`` of the original RAW with the edit (16-bit sRGB);
* invisp   = ``invisp develop`` of the invisp JPEG (its RAW recovered in memory) with the same edit;
* baseline = the same edit on that JPEG's 8-bit pixels in linear light: its look and gamma undone, white balance
  as the 3×3 map rgb_cam·diag(m_new/m_old)·rgb_cam⁻¹, × 2^EV, the same tone functions (``develop.pipeline``),
  clip, gamma and look again (``develop.pipeline.display``; no highlight roll-off: the pixels have no headroom);
* matched  = the baseline applied to a q-JPEG of develop's own no-edit render of the original RAW (the same look
  since develop starts from the render's), i.e. what 8 bits alone cost.

PSNR (peak 1, on display sRGB values) and mean CIEDE2000 (``metrics.mean_ciede2000``) of each against truth.
Writes ``OUT/headroom.md`` (tables) and ``OUT/headroom.png`` (means per edit), and prints the tables."""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from invisp_cli import codec, metrics
from invisp_cli.develop import Edit, Source, develop, load_source
from invisp_cli.develop.pipeline import CLIP_LEVEL, display, tone, white_balance
from invisp_cli.steps import Gamma, Look

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
EDITS: list[tuple[str, Edit]] = [
    ("no edit", Edit()),
    ("+2 EV", Edit(exposure=2.0)),
    ("+1 EV", Edit(exposure=1.0)),
    ("−1.5 EV", Edit(exposure=-1.5)),
    ("WB 3200 K", Edit(temperature=3200.0)),
    ("WB 7500 K", Edit(temperature=7500.0)),
    ("highlights −1", Edit(highlights=-1.0)),
]
CLIPPED_SHARE = 1e-4  # a file "has clipping" where at least this share of its sites reach the clip level
METHODS = ("invisp", "baseline", "matched")


def clipped_share(src: Source) -> float:
    """Share of CFA sites at or above develop's clip level (g₀·n ≥ CLIP_LEVEL)."""
    raw = src.raw
    b = np.tile(np.asarray(raw.black).reshape(2, 2), ((raw.mosaic.shape[0] + 1) // 2, (raw.mosaic.shape[1] + 1) // 2))
    n = (raw.mosaic - b[: raw.mosaic.shape[0], : raw.mosaic.shape[1]]) / (raw.white - b[: raw.mosaic.shape[0],
                                                                                         : raw.mosaic.shape[1]])
    return float(np.mean(src.front.exposure_gain * n >= CLIP_LEVEL))


@torch.inference_mode()
def pixel_edit(rgb8: np.ndarray, src: Source, edit: Edit) -> np.ndarray:
    """The baseline: ``edit`` on 8-bit sRGB pixels in linear light, as uint16 display sRGB (H, W, 3)."""
    raw = src.raw
    ratio = white_balance(raw, edit) / np.asarray(raw.wb, dtype=np.float64)
    wb_map = raw.rgb_cam @ np.diag(ratio) @ np.linalg.inv(raw.rgb_cam)
    look = src.front.look
    v = rgb8.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255.0)
    lin = Gamma().inverse(v) if look is None else Look(look).recover_linear(v)
    lin = torch.einsum("ij,njhw->nihw", torch.tensor(wb_map, dtype=torch.float32), torch.from_numpy(lin))
    out = display(look, u8=False)(tone(lin * 2.0**edit.exposure, edit).numpy()) * 65535.0 + 0.5
    return out[0].transpose(1, 2, 0).astype(np.uint16)


def jpeg_roundtrip(rgb8: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(rgb8).save(buf, "JPEG", quality=quality, subsampling=0)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def scores(img: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(PSNR in dB on [0, 1] display values, mean ΔE₀₀) of a uint16 image against the uint16 truth."""
    mse = float(np.mean([np.mean((img[..., c].astype(np.float64) - truth[..., c]) ** 2) for c in range(3)]))
    psnr = float("inf") if mse == 0 else 10 * np.log10(65535.0**2 / mse)
    return psnr, metrics.mean_ciede2000(img, truth)


def run_file(path: Path, quality: int, workdir: Path) -> tuple[list[dict], str, float]:
    jpg = workdir / f"{path.stem}.jpg"
    model = codec.encode_file(path, jpg, quality=quality, force=True).model_id
    truth_src, inv_src = load_source(path), load_source(jpg)
    share = clipped_share(truth_src)
    rgb8 = np.asarray(Image.open(jpg).convert("RGB"))
    matched8 = jpeg_roundtrip(develop(truth_src.raw, truth_src.front, Edit(), "srgb8"), quality)
    rows = []
    for name, edit in EDITS:
        if edit.highlights and share < CLIPPED_SHARE:
            continue
        try:
            truth = develop(truth_src.raw, truth_src.front, edit, "srgb16", description="")
        except Exception as e:  # noqa: BLE001 - e.g. no temperature for a camera without a colour matrix
            print(f"  {path.name} {name}: skipped ({e})", file=sys.stderr)
            continue
        results = {"invisp": develop(inv_src.raw, inv_src.front, edit, "srgb16", description=""),
                   "baseline": pixel_edit(rgb8, truth_src, edit), "matched": pixel_edit(matched8, truth_src, edit)}
        row = {"file": path.name, "edit": name}
        for method, img in results.items():
            row[f"{method}_psnr"], row[f"{method}_de"] = scores(img, truth)
        rows.append(row)
        print(f"  {path.name} {name}: " + ", ".join(f"{m} {row[m + '_psnr']:.2f} dB ΔE {row[m + '_de']:.2f}"
                                                   for m in METHODS), file=sys.stderr, flush=True)
    return rows, model, share


def tables(rows: list[dict]) -> tuple[str, str]:
    names = [n for n, _ in EDITS]
    head = ("| edit | files | PSNR invisp | PSNR baseline | PSNR matched | invisp − baseline | ΔE₀₀ invisp | "
            "ΔE₀₀ baseline | ΔE₀₀ matched |\n|---|---|---|---|---|---|---|---|---|\n")
    summary = head
    for name in names:
        sel = [r for r in rows if r["edit"] == name]
        if not sel:
            continue
        m = {k: float(np.mean([r[k] for r in sel])) for k in sel[0] if k not in ("file", "edit")}
        summary += (f"| {name} | {len(sel)} | {m['invisp_psnr']:.2f} | {m['baseline_psnr']:.2f} | "
                    f"{m['matched_psnr']:.2f} | {m['invisp_psnr'] - m['baseline_psnr']:+.2f} | {m['invisp_de']:.2f} | "
                    f"{m['baseline_de']:.2f} | {m['matched_de']:.2f} |\n")
    per_file = ("| file | edit | PSNR invisp / baseline / matched | ΔE₀₀ invisp / baseline / matched |\n"
                "|---|---|---|---|\n")
    for r in rows:
        per_file += (f"| {r['file']} | {r['edit']} | {r['invisp_psnr']:.2f} / {r['baseline_psnr']:.2f} / "
                     f"{r['matched_psnr']:.2f} | {r['invisp_de']:.2f} / {r['baseline_de']:.2f} / "
                     f"{r['matched_de']:.2f} |\n")
    return summary, per_file


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, _ in EDITS if any(r["edit"] == n for r in rows)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    x = np.arange(len(names))
    for ax, key, label in ((axes[0], "psnr", "PSNR vs truth (dB, higher is better)"),
                           (axes[1], "de", "mean CIEDE2000 vs truth (lower is better)")):
        for i, method in enumerate(METHODS):
            vals = [np.mean([r[f"{method}_{key}"] for r in rows if r["edit"] == n]) for n in names]
            ax.bar(x + (i - 1) * 0.27, vals, 0.27, label=method)
        ax.set_xticks(x, names, rotation=20)
        ax.set_title(label)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend()
    fig.suptitle("Editing headroom: develop of the invisp JPEG's recovered RAW vs the same edit on its pixels")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--out", type=Path, default=Path("docs"))
    a = ap.parse_args()
    files = a.files or sorted(p for p in DATA.iterdir() if p.is_file() and not p.name.startswith("README"))
    rows, notes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            t0 = time.perf_counter()
            file_rows, model, share = run_file(f, a.quality, Path(tmp))
            rows += file_rows
            notes.append(f"| {f.name} | {model} | {100 * share:.3f} % | {time.perf_counter() - t0:.0f} |")
    summary, per_file = tables(rows)
    cmd = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/headroom.py" + "".join(f" {x}" for x in sys.argv[1:])
    text = (f"# Editing headroom\n\n`{cmd}` (JPEG quality {a.quality}, `invisp encode` defaults otherwise).\n\n"
            f"Mean over files, per edit:\n\n{summary}\nPer file:\n\n{per_file}\n"
            "| file | model (encode default) | sites ≥ clip level (g₀·n ≥ 0.9) | seconds |\n|---|---|---|---|\n"
            + "\n".join(notes) + "\n")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "headroom.md").write_text(text)
    plot(rows, a.out / "headroom.png")
    print(text)


if __name__ == "__main__":
    main()
