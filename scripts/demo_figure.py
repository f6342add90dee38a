"""The side-by-side picture of one round trip (the last step of ``make demo``; numpy, rawpy and Pillow only, no torch):

    .venv/bin/python scripts/demo_figure.py ORIGINAL_RAW INVISP_JPEG RECOVERED_DNG -o FIGURE.png|.jpg [--width 480]

Panels, left to right: the original RAW rendered by LibRaw (``rawio.render_reference``, as RGB-PSNR takes it) | the
invisp JPEG | the recovered DNG rendered the same way | the error map of the recovered mosaic, |n̂^(1/2.2) −
n^(1/2.2)| per CFA site (n the normalised mosaic, ``metrics.normalise_mosaic``), black = 0, white ≥ 0.05, upright;
each panel titled, the error map with the RAW-PSNR-γ of the whole mosaic."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from invisp_cli import metrics, rawio

ERROR_FULL_SCALE = 0.05  # γ-domain error shown as white
_TITLE = 18  # pixels of the title strip above each panel


def _panel(rgb: np.ndarray, width: int, title: str) -> Image.Image:
    """``rgb`` (H, W, 3 uint8) scaled to ``width`` with ``title`` above it."""
    img = Image.fromarray(rgb)
    img = img.resize((width, max(1, round(img.height * width / img.width))), Image.Resampling.BOX)
    out = Image.new("RGB", (width, img.height + _TITLE), "white")
    out.paste(img, (0, _TITLE))
    ImageDraw.Draw(out).text((4, 3), title, fill="black")
    return out


def error_map(original: rawio.RawImage, recovered: rawio.RawImage) -> tuple[np.ndarray, float]:
    """(upright uint8 RGB error map, RAW-PSNR-γ) of ``recovered``'s mosaic against ``original``'s."""
    n = metrics.normalise_mosaic(original.mosaic, original.black, original.white)
    n_hat = metrics.normalise_mosaic(recovered.mosaic, original.black, original.white)
    err = np.abs(n_hat ** (1 / 2.2) - n ** (1 / 2.2)) / ERROR_FULL_SCALE
    grey = (np.clip(err, 0, 1) * 255 + 0.5).astype(np.uint8)
    return np.repeat(rawio.apply_flip(grey, original.flip)[..., None], 3, axis=2), metrics.raw_psnr_gamma(n_hat, n)


def figure(original: Path, jpeg: Path, dng: Path, width: int) -> Image.Image:
    """The four panels side by side."""
    raw, back = rawio.read_raw(original), rawio.read_raw(dng)
    err, psnr = error_map(raw, back)
    panels = [_panel(rawio.render_reference(original), width, "original RAW (LibRaw render)"),
              _panel(np.asarray(Image.open(jpeg).convert("RGB")), width, "invisp JPEG"),
              _panel(rawio.render_reference(dng), width, "recovered RAW (LibRaw render)"),
              _panel(err, width, f"RAW error x{1 / ERROR_FULL_SCALE:.0f}: RAW-PSNR-gamma {psnr:.1f} dB")]
    out = Image.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), max(p.height for p in panels)),
                    "white")
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + 4
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("original", type=Path)
    ap.add_argument("jpeg", type=Path)
    ap.add_argument("dng", type=Path)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--width", type=int, default=480, help="width of each panel (px)")
    a = ap.parse_args()
    jpeg = a.output.suffix.lower() in (".jpg", ".jpeg")  # a .jpg for documentation pages: a tenth of the PNG
    figure(a.original, a.jpeg, a.dng, a.width).save(a.output, **({"quality": 85} if jpeg else {"optimize": True}))
    print(f"side-by-side picture: {a.output}")


if __name__ == "__main__":
    main()
