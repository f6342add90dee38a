"""``exiftool -validate -warning -a`` on the JPEG and the decoded DNG of every real RAW file, and of real files given
what held-out cameras carry (a body serial number under an EXIF 2.21 ExifVersion, maker notes at other offsets).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exif_validate.py [FILES…] [--invisp PATH]

Default FILES: every file in ../shared/data/raw, then the made ones: the Canon 550D DNG (ExifVersion 0221) with a
BodySerialNumber and a Canon maker note appended, the GoPro HERO7 DNG with a Canon-style note (a headerless IFD whose
offsets count from the TIFF header), the 550D made a SONY (``exiftool -Make=SONY``) with a Sony DSC note
(``tests/test_interop.add_exif``, byte by byte; ``--made-only``: just these).
Each row: the warnings exiftool reports on the input, the JPEG and the DNG (0 = "Validate: OK")."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_interop import add_exif, canon_note, sony_note  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "raw"
MADE = (("canon-eos-550d_colorchart.dng", "serial+canon-note", canon_note, "2831200437", None),
        ("gopro-hero7_mural_GOPR9231.dng", "canon-note", canon_note, None, None),
        ("canon-eos-550d_colorchart.dng", "sony-note", sony_note, None, "SONY"))


def warnings(path: Path) -> list[str]:
    """exiftool's validation warnings for ``path`` ([] when it says OK)."""
    out = subprocess.run(["exiftool", "-validate", "-warning", "-a", str(path)], capture_output=True, text=True,
                         timeout=120).stdout
    return [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Warning")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--invisp", default=str(ROOT / ".venv" / "bin" / "invisp"))
    ap.add_argument("--made-only", action="store_true", help="only the files made from real ones")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs = list(a.files)
        if not inputs:
            inputs = [] if a.made_only else sorted(p for p in DATA.iterdir()
                                                   if p.is_file() and not p.name.startswith("README"))
            for name, tag, note, serial, make in MADE:
                dst = work / f"{Path(name).stem}+{tag}.dng"
                shutil.copy(DATA / name, dst)
                if make:
                    subprocess.run(["exiftool", "-q", "-overwrite_original", f"-Make={make}", str(dst)], check=True)
                add_exif(dst, note=note, serial=serial)
                inputs.append(dst)
        print("| input | input warnings | JPEG warnings | DNG warnings | what exiftool says (JPEG; DNG) |")
        print("|---|---|---|---|---|")
        for src in inputs:
            jpg, dng = work / "o.jpg", work / "o.dng"
            for args in (["encode", str(src), "-o", str(jpg)], ["decode", str(jpg), "-o", str(dng)]):
                subprocess.run([a.invisp, *args, "--force", "--quiet"], check=True, capture_output=True, timeout=600)
            w = [warnings(p) for p in (src, jpg, dng)]
            said = "; ".join(" / ".join(x) or "OK" for x in w[1:])
            print(f"| {src.name} | {len(w[0])} | {len(w[1])} | {len(w[2])} | {said} |", flush=True)


if __name__ == "__main__":
    main()
