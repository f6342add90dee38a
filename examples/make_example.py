"""Regenerate the bundled example RAW, ``astronaut_synthetic_canon.dng``.

The photo is scikit-image's ``astronaut`` (Eileen Collins, NASA; public domain), "unprocessed" into a 14-bit
RGGB Bayer mosaic (Brooks et al. 2019: inverse sRGB curve, LibRaw's Canon EOS 5D Mark II colour matrix, inverse
white balance, base-ISO shot/read noise; a 1 px Gaussian blur first stands in for the lens) by
``invisp_cli.synth.unprocess`` and written with ``invisp_cli.rawio.write_dng``.
Needs scikit-image (``pip install scikit-image``); run from the project root:

    .venv/bin/python examples/make_example.py
"""

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from invisp_cli.rawio import write_dng
from invisp_cli.synth import bundled_photos, unprocess
from invisp_cli.train import BLUR_PX, SHOT_RANGE

# LibRaw's adobe_coeff entry for the Canon EOS 5D Mark II (XYZ → camera, ×1/10000)
CANON_5D2_XYZ_TO_CAM = np.array([[4716, 603, -830], [-7798, 15474, 2480], [-1496, 1937, 6651]]) / 10000


def main() -> None:
    photo = Image.fromarray(dict(bundled_photos())["astronaut"]).filter(ImageFilter.GaussianBlur(radius=BLUR_PX))
    raw = unprocess(np.asarray(photo), CANON_5D2_XYZ_TO_CAM, cfa="RGGB", white=15000, black=1024,
                    rng=np.random.default_rng(2021), wb=np.array([2.1, 1.0, 1.55]), exposure=1.3,
                    shot_range=SHOT_RANGE)
    raw.exif = {"make": "invisp-synthetic", "model": "astronaut (Canon 5D Mark II colour matrix)",
                "datetime": "2021:06:19 12:00:00", "iso": 100, "exposure_time": 0.01, "f_number": 5.6}
    out = Path(__file__).with_name("astronaut_synthetic_canon.dng")
    write_dng(out, raw)
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
