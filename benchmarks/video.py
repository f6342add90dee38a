"""RAW video benchmark: RAW frames → MP4 (H.264/H.265) → DNG frames, image flow per frame vs the video flow.

    .venv/bin/python benchmarks/video.py [--frames 8] [--crop 512] [--crf 23] [--threads 2] [--pix-fmt yuv420p]
    .venv/bin/python benchmarks/video.py --calibrate        # simulator PSNR vs libx264 PSNR per CRF

Held-out sequences are cut from real RAW files the video model was not trained on (it was trained on slides of
gopro-hero7_mural): a crop window of --crop² sliding 2 px down and 4 px right per frame across the centre of
gopro-hero6_walkway (its centre, and a part of its sky that LibRaw's render clips) and canon-eos-550d_colorchart,
written as DNGs into --cache (outside the repository). Each
method runs the real pipeline (``encode_video`` → MP4 → ``decode_video``) and is scored with ``metrics``:
RAW-PSNR-γ / RAW-PSNR-lin of the decoded DNGs, RGB-PSNR of the decoded 8-bit frames against LibRaw's render of
each frame DNG, flicker of the RGB frames (8-bit units) and of the recovered normalised mosaics (×10³), bpp.
Speed: encode and decode frames per second of 1920×1080 crops sliding across gopro-hero6_walkway, with --threads
torch threads (a warm-up clip first, so one-off start-up costs are not counted). Prints markdown tables."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / ".." / "shared" / "data" / "raw"
#: (label, file, first crop's top-left in sensor coordinates or None for centred)
HELD_OUT = [("walkway centre", "gopro-hero6_walkway_GOPR0024.dng", None),
            ("walkway sky (highlights)", "gopro-hero6_walkway_GOPR0024.dng", (600, 1600)),
            ("550d colorchart", "canon-eos-550d_colorchart.dng", None)]
TRAINING = "gopro-hero7_mural_GOPR9231.dng"
STEP = (2, 4)


def sequences(cache: Path, frames: int, crop: int) -> list[tuple[str, list[Path]]]:
    from invisp_cli import rawio
    from invisp_cli.video.frames import slide_sequence

    out = []
    for label, name, start in HELD_OUT:
        folder = cache / f"{Path(name).stem}-{start}-{crop}-{frames}".replace(" ", "")
        paths = sorted(folder.glob("frame_*.dng"))
        if len(paths) != frames:
            paths = slide_sequence(rawio.read_raw(RAW / name), folder, frames, (crop, crop), STEP, start)
        out.append((label, paths))
    return out


def methods() -> list[tuple[str, tuple]]:
    """(label, (ModelEntry, model)): the analytic front end alone (the parameter-free ``frontend`` model: numpy, no
    learned stage) without and with the highlight roll-off, the zoo's image flow run per frame and the zoo's video
    flow, where installed."""
    from invisp_cli import zoo
    from invisp_cli.flows import build
    from invisp_cli.settings import ANALYTIC_ARCH, DEFAULT_KNEE

    out = []
    fronts = (("no highlight roll-off", {}), (f"roll-off knee {DEFAULT_KNEE}", {"highlight_knee": DEFAULT_KNEE}))
    for label, isp in fronts:
        entry = zoo.ModelEntry(id="invisp-frontend", file="", sha256="0" * 64, arch=ANALYTIC_ARCH, hparams={},
                               cameras=[], isp=isp)
        out.append((f"analytic front end, {label}", (entry, build(ANALYTIC_ARCH))))
    for video, label in ((False, "image flow per frame"), (True, "video flow")):
        generic = [e for e in zoo.list_models() if "*" in e.cameras and not e.superseded_by
                   and e.arch != ANALYTIC_ARCH and zoo.is_video_arch(e.arch) == video]
        if generic:
            out.append((f"{label} ({generic[0].id})", (generic[0], zoo.load_model(generic[0]))))
    return out


def quality(args: argparse.Namespace) -> list[dict]:
    from invisp_cli import rawio
    from invisp_cli.video.train import evaluate_sequence

    seqs = sequences(args.cache, args.frames, args.crop)
    refs = {name: [rawio.render_reference(f) for f in frames] for name, frames in seqs}
    rows = []
    with tempfile.TemporaryDirectory(prefix="invisp-video-bench-") as tmp:
        for label, loaded in methods():
            for codec in ("h264", "h265"):
                per = []
                for name, frames in seqs:
                    r = evaluate_sequence(frames, loaded, Path(tmp) / f"{codec}-{name}", codec=codec, crf=args.crf,
                                          pix_fmt=args.pix_fmt, refs=refs[name])
                    per.append({"sequence": name} | r["mean"])
                    print(f"  {label} {codec} {name}: {json.dumps(r['mean'])}", file=sys.stderr)
                mean = {k: float(np.mean([p[k] for p in per])) for k in per[0] if k != "sequence"}
                rows.append({"method": label, "codec": codec, "crf": args.crf, "mean": mean, "sequences": per})
    return rows


def speed(args: argparse.Namespace) -> list[dict]:
    from invisp_cli import rawio
    from invisp_cli.video.codec import decode_video, encode_video
    from invisp_cli.video.frames import slide_sequence

    folder = args.cache / f"walkway-1080p-{args.speed_frames}"
    frames = sorted(folder.glob("frame_*.dng"))
    if len(frames) != args.speed_frames:
        frames = slide_sequence(rawio.read_raw(RAW / HELD_OUT[0][1]), folder, args.speed_frames, (1080, 1920), STEP)
    rows = []
    with tempfile.TemporaryDirectory(prefix="invisp-video-speed-") as tmp:
        for label, loaded in methods():
            encode_video(frames[:1], Path(tmp) / "warm.mp4", force=True, loaded=loaded)  # start-up costs
            t0 = time.perf_counter()
            enc = encode_video(frames, Path(tmp) / "clip.mp4", force=True, loaded=loaded)
            t_enc = time.perf_counter() - t0
            t0 = time.perf_counter()
            decode_video(Path(tmp) / "clip.mp4", Path(tmp) / "out", force=True, model=loaded[1])
            t_dec = time.perf_counter() - t0
            rows.append({"method": label, "frames": enc.frames, "encode_fps": enc.frames / t_enc,
                         "decode_fps": enc.frames / t_dec})
    return rows


def calibrate(args: argparse.Namespace) -> list[dict]:
    """PSNR of libx264 (medium, 4:2:0) and of the simulator (hard rounding) on crops of LibRaw's render of the
    training file, per CRF: the data behind ``simulator.CRF23_SCALE`` and ``CRF_DOUBLING``."""
    import av

    from invisp_cli import rawio
    from invisp_cli.metrics import psnr
    from invisp_cli.video import container
    from invisp_cli.video.simulator import VideoCodecSim, crf_to_quality

    ref = rawio.render_reference(RAW / TRAINING)
    clips = [[ref[y + 2 * i : y + 2 * i + 192, x + 4 * i : x + 4 * i + 256].astype(np.float32) / 255
              for i in range(8)] for y, x in ((1200, 1500), (400, 2800), (2200, 600))]
    sim = VideoCodecSim(rounding="hard")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        mp4 = Path(tmp) / "c.mp4"
        for crf in (13, 18, 23, 28, 33, 38):
            real, simulated = [], {"intra": [], "inter": []}
            for clip in clips:
                w = container.Mp4Writer(mp4, "h264", crf, "yuv420p", Fraction(24), 256, 192)
                for f in clip:
                    w.write(f)
                w.close({})
                with av.open(str(mp4)) as c:
                    dec = [container.planes_to_rgb([v.copy() for v in container._plane_views(fr, 8)], "yuv420p")
                           for fr in c.decode(video=0)]
                real += [psnr(d, f) for d, f in zip(dec, clip, strict=True)]
                y = torch.from_numpy(np.stack(clip)).permute(0, 3, 1, 2)
                with torch.no_grad():
                    for mode in simulated:
                        o = sim(y, crf, mode=mode).permute(0, 2, 3, 1).numpy()
                        simulated[mode] += [psnr(a, b) for a, b in zip(o, clip, strict=True)]
            rows.append({"crf": crf, "quality": round(float(crf_to_quality(crf)), 1), "x264": np.mean(real),
                         "sim_intra": np.mean(simulated["intra"]), "sim_inter": np.mean(simulated["inter"])})
    return rows


def quality_tables(args: argparse.Namespace, rows: list[dict]) -> None:
    print(f"\nHeld-out sequences: {', '.join(h[0] for h in HELD_OUT)}; {args.frames} frames of {args.crop}×{args.crop} "
          f"sliding {STEP[0]}/{STEP[1]} px per frame; CRF {args.crf}, {args.pix_fmt}, preset medium. "
          "Mean over sequences:\n")
    print("| method | codec | RAW-PSNR-γ | RAW-PSNR-lin | RGB-PSNR | flicker RGB | flicker RAW ×10³ | bpp |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r["mean"]
        print(f"| {r['method']} | {r['codec']} | {m['raw_psnr_gamma']:.2f} | {m['raw_psnr_lin']:.2f} | "
              f"{m['rgb_psnr']:.2f} | {m['flicker_rgb']:.3f} | {m['flicker_raw_e3']:.3f} | {m['bpp']:.3f} |")
    print("\nPer sequence (RAW-PSNR-γ / RGB-PSNR):\n")
    labels = [h[0] for h in HELD_OUT]
    print("| method | codec | " + " | ".join(labels) + " |\n|---|---|" + "---|" * len(labels))
    for r in rows:
        cells = [f"{p['raw_psnr_gamma']:.2f} / {p['rgb_psnr']:.2f}" for p in r["sequences"]]
        print(f"| {r['method']} | {r['codec']} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--crop", type=int, default=512)
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--speed-frames", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pix-fmt", default="yuv420p", help="pixel format of the quality runs (e.g. yuv444p)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "invisp-video-bench")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.calibrate:
        rows = calibrate(args)
        print("| CRF | JPEG quality | libx264 PSNR | simulator intra | simulator inter |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['crf']} | {r['quality']} | {r['x264']:.2f} | {r['sim_intra']:.2f} | {r['sim_inter']:.2f} |")
        return
    result = {"quality": [] if args.no_quality else quality(args)}
    if result["quality"]:
        quality_tables(args, result["quality"])
    if not args.no_speed:
        result["speed"] = speed(args)
        print(f"\nSpeed, 1920×1080, H.264 CRF 23, {args.threads} torch threads:\n")
        print("| method | frames | encode fps | decode fps |\n|---|---|---|---|")
        for r in result["speed"]:
            print(f"| {r['method']} | {r['frames']} | {r['encode_fps']:.2f} | {r['decode_fps']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
