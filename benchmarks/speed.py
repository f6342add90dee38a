"""Speed and memory of `invisp encode` / `invisp decode` at full resolution, and the architecture trade-off.

    .venv/bin/python benchmarks/speed.py fullres [--mp 24] [--model ID] [--runs 3]   # CLI wall time + peak RSS
    .venv/bin/python benchmarks/speed.py archs                             # MAC/px and s/MP per architecture

`fullres` builds a synthetic 14-bit RGGB DNG of the requested size by tiling the mosaic of a real GoPro file
from ../shared/data (real sensor statistics, no extra data in the repo), then runs the installed CLI on it as a
user would, in a fresh process each, and reports wall-clock seconds and each child's peak RSS (wait4), the median
of ``--runs`` runs; in the same loop (each round: LibRaw, encode, decode) it times LibRaw's own render of the same
DNG (rawpy ``postprocess`` with the camera white balance + Pillow JPEG q90, in a fresh Python process too) as the
yardstick, since this machine is shared and absolute seconds drift with the load."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / ".." / "shared" / "data" / "raw" / "gopro-hero7_mural_GOPR9231.dng"


def make_dng(path: Path, megapixels: float) -> tuple[int, int]:
    from invisp_cli import rawio

    src = rawio.read_raw(SOURCE)
    h = int(round(np.sqrt(megapixels * 1e6 * 2 / 3) / 2)) * 2
    w = int(round(h * 1.5 / 2)) * 2
    reps = (-(-h // src.mosaic.shape[0]), -(-w // src.mosaic.shape[1]))
    src.mosaic = np.ascontiguousarray(np.tile(src.mosaic, reps)[:h, :w])
    src.raw_size, src.flip = (h, w), 0
    rawio.write_dng(path, src)
    return h, w


def makedng(args: argparse.Namespace) -> None:
    h, w = make_dng(args.path, args.mp)
    args.path.with_suffix(".size").write_text(f"{h} {w}")


def timed(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (its own rusage, from wait4)."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.read().decode()[-2000:]}")
    p.stderr.close()
    return dt, usage.ru_maxrss / 1024


LIBRAW = ("import sys, rawpy; from PIL import Image; "
          "rgb = rawpy.imread(sys.argv[1]).postprocess(use_camera_wb=True); "
          "Image.fromarray(rgb).save(sys.argv[2], quality=90, subsampling=0)")


def fullres(args: argparse.Namespace) -> dict:
    invisp = str(Path(sys.executable).with_name("invisp"))
    with tempfile.TemporaryDirectory() as t:
        dng, jpg, out, ref = (Path(t) / n for n in ("big.dng", "big.jpg", "back.dng", "libraw.jpg"))
        # in a child, so that this process stays small: a forked child's peak RSS counts the parent's pages
        subprocess.run([sys.executable, __file__, "makedng", str(dng), "--mp", str(args.mp)], check=True)
        h, w = (int(v) for v in dng.with_suffix(".size").read_text().split())
        model = ["--model", args.model] if args.model else []
        runs: dict[str, list[tuple[float, float]]] = {"libraw": [], "encode": [], "decode": []}
        for _ in range(args.runs):
            runs["libraw"].append(timed([sys.executable, "-c", LIBRAW, str(dng), str(ref)]))
            runs["encode"].append(timed([invisp, "encode", str(dng), "-o", str(jpg), "--force", *model]))
            runs["decode"].append(timed([invisp, "decode", str(jpg), "-o", str(out), "--force"]))
        med = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
        res = {"size": f"{w}x{h}", "megapixels": round(h * w / 1e6, 1), "runs": args.runs,
               "encode_s": round(med["encode"], 2), "decode_s": round(med["decode"], 2),
               "libraw_render_s": round(med["libraw"], 2),
               "encode_vs_libraw": round(med["encode"] / med["libraw"], 2),
               "decode_vs_libraw": round(med["decode"] / med["libraw"], 2),
               "each_s": {k: [round(s, 2) for s, _ in v] for k, v in runs.items()},
               "peak_rss_mb": {k: round(max(mb for _, mb in v)) for k, v in runs.items()},
               "jpeg_mb": round(jpg.stat().st_size / 1e6, 2), "omp_threads": os.environ.get("OMP_NUM_THREADS"),
               "load_avg_1min": round(os.getloadavg()[0], 2)}
    print(json.dumps(res))
    return res


def archs(args: argparse.Namespace) -> None:
    import torch

    from invisp_cli.flows import build
    from invisp_cli.metrics import mac_per_pixel

    torch.set_grad_enabled(False)
    configs = [("paper", {}), ("squeeze", {}), ("squeeze", {"blocks": 2}), ("squeeze", {"blocks": 4, "width": 64})]
    x = torch.rand(1, 3, 1024, 1024)
    for arch, hp in configs:
        m = build(arch, **hp).eval()
        macs = mac_per_pixel(m, (1, 3, 64, 64))
        side = 256 if arch == "paper" else 1024  # the paper net is slow: time 1/16 MP and scale
        xi = x[..., :side, :side]
        m(xi[..., :64, :64])
        t0 = time.perf_counter()
        y = m(xi)
        fwd = (time.perf_counter() - t0) * 1e6 / (side * side)
        t0 = time.perf_counter()
        m.inverse(y)
        inv = (time.perf_counter() - t0) * 1e6 / (side * side)
        print(json.dumps({"arch": arch, "hparams": hp, "kmac_per_px": round(macs / 1e3, 1),
                          "forward_s_per_mp": round(fwd, 2), "inverse_s_per_mp": round(inv, 2)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fullres")
    f.add_argument("--mp", type=float, default=24)
    f.add_argument("--model", default=None)
    f.add_argument("--runs", type=int, default=3, help="rounds of LibRaw, encode, decode; medians reported")
    sub.add_parser("archs")
    m = sub.add_parser("makedng")
    m.add_argument("path", type=Path)
    m.add_argument("--mp", type=float, default=24)
    a = ap.parse_args()
    {"fullres": fullres, "archs": archs, "makedng": makedng}[a.cmd](a)


if __name__ == "__main__":
    main()
