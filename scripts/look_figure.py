"""The camera look side by side: the camera's own JPEG (the preview embedded in the RAW) | the invisp JPEG with the
default look (``--look camera``) | LibRaw's look (``--look libraw``), one row per RAW file, with ΔE2000 vs the
camera's JPEG (``metrics.delta_e_camera``, METRICS.md "Look") in the captions.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/look_figure.py [RAW…] [--out docs/img/look_side_by_side.jpg]

Each invisp JPEG is written by ``codec.encode_file`` (q90 4:4:4, as ``invisp encode`` writes it) into a temporary
folder; its panel shows the crop of it that ``metrics.align_framing`` finds for the preview (the framing ΔE is
measured on), area-downscaled to the preview's size, so the three panels of a row show the same picture. Default
files: the S40 box, the EOS D30 and the G2 of ``../shared/data/raw`` (the S40 box was tuned on, the others held out:
docs/look.md)."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from invisp_cli import codec, metrics
from invisp_cli import look as looks

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
FILES = ("canon-powershot-s40_box_CRW_0119.CRW", "canon-eos-d30_christmas-tree.CRW",
         "canon-powershot-g2_colorchecker_CRW_0304.CRW")
PANEL_HEIGHT = 300  # pixels per row
CAPTION = 22  # caption strip height, pixels
GAP = 6


def row(path: Path, workdir: Path) -> list[tuple[np.ndarray, str]]:
    """The three panels of one file (uint8, the preview's size and orientation) with their captions."""
    preview = looks.read_preview(path)
    if preview is None:
        raise SystemExit(f"{path.name}: no usable embedded preview")
    panels = [(preview, f"{path.name.split('_')[0]}: camera JPEG")]
    framing = None
    for look in ("camera", "libraw"):
        out = workdir / f"{path.stem}-{look}.jpg"
        codec.encode_file(path, out, look=look, force=True)
        img = np.asarray(Image.open(out).convert("RGB"))
        framing = framing or metrics.align_framing(img, preview)  # one geometry for both renders
        de = metrics.delta_e_camera(img, preview, framing)
        dy, dx, ch, cw, k = framing
        cam = np.rot90(preview, k)
        crop = metrics.box_resize(img[dy:dy + ch, dx:dx + cw], (cam.shape[1], cam.shape[0]))
        shown = np.rot90(np.clip(crop + 0.5, 0, 255).astype(np.uint8), -k)
        name = "invisp, default look" if look == "camera" else "invisp --look libraw"
        panels.append((shown, f"{name}: ΔE {de:.1f}"))
        print(f"{path.name}: --look {look}: ΔE2000 vs camera {de:.2f}", flush=True)
    return panels


def compose(rows: list[list[tuple[np.ndarray, str]]]) -> Image.Image:
    """Rows of panels scaled to ``PANEL_HEIGHT``, each with its caption below, on white."""
    from matplotlib import font_manager  # its bundled DejaVu Sans has "Δ" (Pillow's default font has not)

    font = ImageFont.truetype(font_manager.findfont("DejaVu Sans"), 15)
    scaled = [[(Image.fromarray(p).resize((round(p.shape[1] * PANEL_HEIGHT / p.shape[0]), PANEL_HEIGHT),
                                          Image.LANCZOS), c) for p, c in r] for r in rows]
    width = max(sum(im.width for im, _ in r) + GAP * (len(r) - 1) for r in scaled)
    sheet = Image.new("RGB", (width, len(rows) * (PANEL_HEIGHT + CAPTION + GAP) - GAP), "white")
    draw = ImageDraw.Draw(sheet)
    for i, r in enumerate(scaled):
        x, y = 0, i * (PANEL_HEIGHT + CAPTION + GAP)
        for im, caption in r:
            sheet.paste(im, (x, y))
            draw.text((x + 4, y + PANEL_HEIGHT + 3), caption, fill="black", font=font)
            x += im.width + GAP
    return sheet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path, help="RAW files with a preview (default: three of ../shared)")
    ap.add_argument("--out", type=Path, default=Path("docs/img/look_side_by_side.jpg"))
    a = ap.parse_args()
    files = a.files or [DATA / f for f in FILES]
    with tempfile.TemporaryDirectory() as tmp:
        sheet = compose([row(f, Path(tmp)) for f in files])
    a.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.out, quality=90)
    print(f"wrote {a.out} ({sheet.width}×{sheet.height})")


if __name__ == "__main__":
    main()
