"""Why darktable renders a decoded DNG darker than some originals: the white level it assumes for each.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/darktable_white.py [FILES…]

For each RAW file (default: the Canon files of ../shared/data/raw) the table gives LibRaw's white level (what
``rawio.read_raw`` takes and the DNG's WhiteLevel states), the saturation point darktable's rawspeed takes for the
original from its camera database (``/usr/share/darktable/rawspeed/cameras.xml``, ``<Sensor white=…>``), and
darktable's mean 8-bit level of three renders: the original; a DNG of the original's own mosaic
(``rawio.write_dng(rawio.read_raw(x))``, no codec: what the levels alone do); the same DNG with WhiteLevel set to
darktable's database value. Where the two white levels agree the first two match; where they differ, the DNG's
render is darker by about ((w_db − b)/(w − b))^(1/2.2) and the third render restores the original's brightness —
at the price of LibRaw (rawpy, RawTherapee's dcraw-derived decoders) then reading a different white level from the
DNG than from the original. The last column is the Canon EOS 30D's case on this file's data: darktable's render of
the DNG with WhiteLevel moved as far below LibRaw's as the 30D's database value is (3398 of 4095, black 127),
relative to the DNG of its mosaic; and whether a DNG tag darktable alone would read could make up for it: the
DNG of the mosaic with BaselineExposure = log2(3968 / 3271) (+0.28 EV, the 30D's ratio) added."""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from converters import darktable_render  # noqa: E402

from invisp_cli import metadata as md  # noqa: E402
from invisp_cli import rawio  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw"
CAMERAS = Path("/usr/share/darktable/rawspeed/cameras.xml")
EOS_30D = (127, 3398, 4095)  # black, darktable's database white, LibRaw's white of a Canon EOS 30D CR2


def database_white(make: str, model: str) -> int | None:
    """rawspeed's ``<Sensor white>`` for this camera (its default mode), None where it lists none."""
    text = CAMERAS.read_text(encoding="utf-8", errors="replace")
    for block in re.findall(r"<Camera [^>]*>.*?</Camera>", text, re.S):
        head = block.split(">", 1)[0]
        if f'model="{model}"' in head and make.lower() in head.lower() and "mode=" not in head:
            found = re.search(r'<Sensor [^>]*white="(\d+)"', block)
            return int(found.group(1)) if found else None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    a = ap.parse_args()
    files = a.files or sorted(p for p in DATA.iterdir() if p.name.lower().startswith("canon"))
    print("| file | LibRaw black / white | darktable's database white | dt mean: original | DNG of its mosaic "
          "| DNG, WhiteLevel = database | predicted DNG / original | the 30D's case: DNG / DNG with the 30D's white "
          "| DNG + BaselineExposure +0.28 EV |")
    print("|---|---|---|---|---|---|---|---|---|")
    b30, db30, w30 = EOS_30D
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for f in files:
            raw = rawio.read_raw(f)
            make, model = raw.exif.get("make", ""), raw.exif.get("model", "")
            model = model if model.lower().startswith(make.lower()) else f"{make} {model}"
            w_db = database_white(make, model)
            black = float(np.mean(raw.black))
            means = [float(darktable_render(f, work).mean())]
            for white in (raw.white, w_db, round(black + (db30 - b30) / (w30 - b30) * (raw.white - black))):
                if white is None:
                    means.append(float("nan"))
                    continue
                dng = work / "x.dng"
                rawio.write_dng(dng, replace(raw, white=int(white)))
                means.append(float(darktable_render(dng, work).mean()))
            dng_tags = dict(md.unpack_ifd(raw.exif["dng"])) if raw.exif.get("dng") else {}
            dng_tags[50730] = md.num_entry(md.SRATIONAL, [round(100 * math.log2((w30 - b30) / (db30 - b30))), 100])
            rawio.write_dng(work / "x.dng", replace(raw, exif={**raw.exif, "dng": md.pack_ifd(dng_tags)}))
            means.append(float(darktable_render(work / "x.dng", work).mean()))
            ratio = ((w_db - black) / (raw.white - black)) ** (1 / 2.2) if w_db else float("nan")
            print(f"| {f.name} | {black:.0f} / {raw.white} | {w_db if w_db else 'n/a (DNG tags)'} | {means[0]:.1f} "
                  f"| {means[1]:.1f} | {means[2]:.1f} | {ratio:.3f} | {means[1] / means[3]:.3f} | {means[4]:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
