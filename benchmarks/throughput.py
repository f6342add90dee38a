"""Batch throughput: files/minute and MP/s of `invisp encode/decode … -d OUTDIR` on a folder of RAW files.

    .venv/bin/python benchmarks/throughput.py ../shared/data/raw [--modes per-file,jobs1,jobs2,dask]
        [--ops encode,decode] [--out docs/throughput.md]

Each mode runs the installed CLI in a fresh process, as a user would, and is timed from the command's start to its
exit (start-up included):

* ``per-file``: one ``invisp encode X -o Y`` process per file (what a shell loop did before batch mode);
* ``jobs1`` / ``jobs2``: one ``invisp encode FOLDER -d OUT --jobs N`` (N worker processes, threads split);
* ``dask``: the same with ``--scheduler`` pointing at a fresh ``distributed.LocalCluster`` of 2 worker processes
  × 1 thread started here for each op (its start-up is not timed; its workers' first imports and model
  load are, as for ``jobs2``).

Decode modes decode the JPEGs the ``jobs2`` encode wrote (that encode is run first if it is not among the modes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INVISP = str(Path(sys.executable).with_name("invisp"))


def run_batch(op: str, src: Path, out: Path, extra: list[str]) -> dict:
    """One batch command; its --json summary with the wall time of the whole process."""
    t0 = time.perf_counter()
    p = subprocess.run([INVISP, op, str(src), "-d", str(out), "--json", "--quiet", *extra], capture_output=True,
                       text=True)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 8):
        raise SystemExit(f"{op} {extra} failed ({p.returncode}): {p.stderr.strip()}")
    summary = json.loads(p.stdout)
    for f in summary["failures"]:
        print(f"  {f['input']}: {f['error']}", flush=True)
    records = [json.loads(line) for line in Path(summary["manifest"]).read_text().splitlines()]
    return {"files": summary["ok"], "failed": summary["failed"], "megapixels": summary["megapixels"], "wall": wall,
            "models": {r["model"] for r in records if r["model"]}}


def run_per_file(op: str, files: list[Path], out: Path) -> dict:
    """One CLI process per file (start-up paid every time)."""
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    ok, mp = 0, 0.0
    t0 = time.perf_counter()
    for f in files:
        dst = out / (f.stem + (".jpg" if op == "encode" else ".dng"))
        p = subprocess.run([INVISP, op, str(f), "-o", str(dst), "--quiet"], capture_output=True, text=True)
        if p.returncode:
            print(f"  {f.name}: exit {p.returncode}: {p.stderr.strip()}", flush=True)
            continue
        ok += 1
        with Image.open(dst if op == "encode" else f) as img:
            mp += img.width * img.height / 1e6
    return {"files": ok, "failed": len(files) - ok, "megapixels": mp, "wall": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--modes", default="per-file,jobs1,jobs2,dask")
    ap.add_argument("--ops", default="encode,decode")
    ap.add_argument("--out", type=Path, default=Path("docs/throughput.md"))
    args = ap.parse_args()
    modes, ops = args.modes.split(","), args.ops.split(",")
    raws = sorted(p for p in args.folder.iterdir() if p.is_file() and not p.name.startswith("."))
    work = Path(tempfile.mkdtemp(prefix="invisp-throughput-"))
    rows: list[tuple[str, str, dict]] = []
    try:
        jpegs = work / "encode-jobs2"
        for op in ops:
            if op == "decode" and not jpegs.is_dir():
                run_batch("encode", args.folder, jpegs, ["--jobs", "2"])
            src = args.folder if op == "encode" else jpegs
            for mode in modes:
                out = work / f"{op}-{mode}"
                if mode == "per-file":
                    r = run_per_file(op, raws if op == "encode" else sorted(jpegs.glob("*.jpg")), out)
                elif mode == "dask":
                    from distributed import LocalCluster

                    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster:  # a fresh cluster: no warm workers
                        r = run_batch(op, src, out, ["--scheduler", cluster.scheduler_address])
                else:
                    r = run_batch(op, src, out, ["--jobs", mode.removeprefix("jobs")])
                rows.append((op, mode, r))
                print(f"{op:6} {mode:8} {r['files']} files ({r['failed']} failed) {r['wall']:.1f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    models = sorted(set().union(*(r.get("models", set()) for *_, r in rows)))
    lines = [f"`{' '.join(['.venv/bin/python', *sys.argv])}` — {len(raws)} files, {cores} cores, "
             f"model(s) {', '.join(models)}", "",
             "| op | mode | files | failed | MP | wall s | files/min | MP/s |", "|---|---|---|---|---|---|---|---|"]
    for op, mode, r in rows:
        lines.append(f"| {op} | {mode} | {r['files']} | {r['failed']} | {r['megapixels']:.1f} | {r['wall']:.1f} | "
                     f"{r['files'] / r['wall'] * 60:.1f} | {r['megapixels'] / r['wall']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
