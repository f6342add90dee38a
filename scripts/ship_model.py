"""Copy a trained model from an `invisp train --out` folder into weights/ (checkpoint, training log and its
registry entry, merged into weights/registry.json), verifying the checkpoint's SHA-256 on the way.

    .venv/bin/python scripts/ship_model.py runs/generic [--id invisp-generic-v2] [--supersedes invisp-generic-v1]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from invisp_cli.zoo import WEIGHTS_DIR, read_registry, sha256_file, write_registry


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--id", default=None, help="ship only this model ID (default: all in the run's registry)")
    ap.add_argument("--supersedes", action="append", default=[],
                    help="shipped model ID the new one replaces for encoding (kept for decoding its files)")
    a = ap.parse_args()
    shipped = read_registry(WEIGHTS_DIR)
    for e in read_registry(a.run):
        if a.id and e.id != a.id:
            continue
        if sha256_file(e.path) != e.sha256:
            raise SystemExit(f"{e.path}: sha256 does not match its registry entry")
        shutil.copy2(e.path, WEIGHTS_DIR / e.file)
        if (a.run / "log.jsonl").is_file():
            shutil.copy2(a.run / "log.jsonl", WEIGHTS_DIR / f"{e.id}.log.jsonl")
        for old in [s for s in shipped if s.id == e.id and s.file != e.file]:
            (WEIGHTS_DIR / old.file).unlink(missing_ok=True)
        shipped = [s for s in shipped if s.id != e.id] + [e]
        for s in shipped:
            if s.id in a.supersedes:
                s.superseded_by = e.id
        print(f"shipped {e.id} ({e.file})")
    write_registry(WEIGHTS_DIR, shipped)


if __name__ == "__main__":
    main()
