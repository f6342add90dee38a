"""The highlight roll-off's trade-off: RAW recovered against closeness to LibRaw's render, per knee.

    .venv/bin/python benchmarks/highlights.py [FILES…] [--knees none,0.9,0.8,0.7,0.6]

The analytic front end alone (no flow: no training involved) renders each RAW with the given knee
(``none`` = no roll-off, v1's front end; ``clip`` = LibRaw's hard clip at 1 after white balance, not invertible,
for reference), Pillow JPEG q90 4:4:4, inverted with the same chain. Reports RAW-PSNR-γ / -lin, RAW-PSNR-lin on
LibRaw's highlight sites (render ≥ 250) and RGB-PSNR against LibRaw's render. Default files: the walkway (sky
clipped by LibRaw), the mural, the rose (saturated reds) and the G2 chart. Prints a markdown table."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from invisp_cli import metrics, rawio
from invisp_cli.bench import baselines
from invisp_cli.settings import FrontEnd
from invisp_cli.steps import Chain, Step, front_end, libraw_gain
from invisp_cli.tiling import run_tiled

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "raw"
FILES = ["gopro-hero6_walkway_GOPR0024.dng", "gopro-hero7_mural_GOPR9231.dng", "nikon-d750_rose_768x512.dng",
         "canon-powershot-g2_colorchecker_CRW_0304.CRW"]


class HardClip(Step):
    """LibRaw's clip to 1 after white balance (reference only: its inverse is the identity, not an inverse)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(max=1.0)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y


def chain_for(raw: rawio.RawImage, gain: float, knee: str) -> Chain:
    if knee == "clip":
        steps = front_end(raw, FrontEnd(gain))
        steps.insert(3, HardClip())  # after Levels, Exposure, WhiteBalance: where LibRaw clips
        return Chain(steps)
    return Chain(front_end(raw, FrontEnd(gain, highlight_knee=None if knee == "none" else float(knee))))


def row(path: Path, knee: str) -> str:
    raw = rawio.read_raw(path)
    ref = rawio.render_reference(path)
    gain = libraw_gain(raw)
    chain = chain_for(raw, gain, knee)
    h, w = raw.mosaic.shape
    out = np.empty((1, 3, h, w), np.uint8)
    with torch.inference_mode():
        run_tiled(chain.forward, torch.from_numpy(raw.mosaic.astype(np.float32)).view(1, 1, h, w), out,
                  halo=chain.receptive_field, align=chain.align,
                  post=lambda t: (t.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy())
    rgb = baselines.decode_jpeg(baselines.encode_plain_jpeg(rawio.apply_flip(out[0].transpose(1, 2, 0), raw.flip),
                                                            90, "4:4:4"))
    back = baselines.invert_chain(rgb, chain, int(raw.white), raw.flip)
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    nh = metrics.normalise_mosaic(back, raw.black, raw.white)
    sensor_ref = rawio.undo_flip(ref, raw.flip)
    same = sensor_ref.shape[:2] == n.shape
    hl = metrics.raw_psnr_lin(nh, n, metrics.highlight_mask(sensor_ref)) if same else float("nan")
    rgb_psnr = metrics.rgb_psnr(rgb, ref) if rgb.shape == ref.shape else float("nan")
    return (f"| {path.name} | {knee} | {metrics.raw_psnr_gamma(nh, n):.2f} | {metrics.raw_psnr_lin(nh, n):.2f} | "
            f"{hl:.2f} | {rgb_psnr:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--knees", default="none,clip,0.9,0.8,0.7")
    a = ap.parse_args()
    print("| file | knee | RAW-PSNR-γ | RAW-PSNR-lin | lin, highlights | RGB-PSNR |")
    print("|---|---|---|---|---|---|")
    for f in a.files or [DATA / name for name in FILES]:
        for knee in a.knees.split(","):
            print(row(f, knee), flush=True)


if __name__ == "__main__":
    main()
