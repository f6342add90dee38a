"""The long fuzz run: many mutated RAW files (synthetic and the real ones in ../shared/data/raw) and invisp JPEGs,
each checked by ``tests/fuzzing.py`` (documented exit code, one error line, input untouched, no temporary or
partial file). Prints a JSON summary (cases, failures, exit codes).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/fuzz.py --cases 400 [--real]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzzing import check, jpeg_cases, raw_cases, summary  # noqa: E402
from synthraw import write_synthetic_dng  # noqa: E402

from invisp_cli.codec import encode_file  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=400, help="total number of cases (half RAW, half JPEG)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real", action="store_true", help="also mutate the real RAW files of ../shared/data/raw")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seeds = [tmp / "synthetic.dng"]
        write_synthetic_dng(seeds[0], h=64, w=96)
        real = ROOT.parent / "shared" / "data" / "raw"
        if args.real and real.is_dir():
            seeds += sorted(p for p in real.iterdir() if p.is_file() and p.stat().st_size < 8_000_000)
        plain, exact = tmp / "plain.jpg", tmp / "exact.jpg"
        encode_file(seeds[0], plain)
        encode_file(seeds[0], exact, max_error=0)
        per_seed = max(1, args.cases // 2 // len(seeds))
        cases = [c for s in seeds for c in raw_cases(s.read_bytes(), rng, per_seed)]
        cases += jpeg_cases(plain.read_bytes(), exact.read_bytes(), rng, args.cases - len(cases), tmp)
        results = []
        for i, case in enumerate(cases):
            results.append((case, *check(case, tmp / f"c{i}")))
            for p in (tmp / f"c{i}").iterdir():
                p.unlink()
            if (i + 1) % 50 == 0:
                print(f"{i + 1}/{len(cases)} cases, {sum(1 for r in results if r[2])} failures", file=sys.stderr)
    print(json.dumps(summary(results), indent=2))
    sys.exit(1 if summary(results)["failures"] else 0)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
