"""``make demo`` ends with the side-by-side picture of the round trip (scripts/demo_figure.py), torch-free."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
from conftest import run
from synthraw import write_synthetic_dng

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("demo_figure", ROOT / "scripts" / "demo_figure.py")
demo_figure = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_figure)


def _panels(img: np.ndarray, n: int = 4, gap: int = 4) -> list[np.ndarray]:
    width = (img.shape[1] - gap * (n - 1)) // n
    return [img[demo_figure._TITLE:, k * (width + gap):k * (width + gap) + width] for k in range(n)]


def test_side_by_side_of_a_round_trip(tmp_path) -> None:
    src = tmp_path / "a.dng"
    write_synthetic_dng(src, h=64, w=96, flip=6)
    for args in (("encode", src, "-o", tmp_path / "a.jpg"), ("decode", tmp_path / "a.jpg", "-o", tmp_path / "b.dng")):
        assert run(*args).exit_code == 0
    fig = np.asarray(demo_figure.figure(src, tmp_path / "a.jpg", tmp_path / "b.dng", width=60))
    original, jpeg, recovered, error = _panels(fig)
    assert fig.shape[1] == 4 * 60 + 12 and original.shape[0] == 90  # upright: the 96×64 sensor turned
    assert np.abs(original.astype(int) - recovered).mean() < 8 and 0 < error.mean() < 128
    same = np.asarray(demo_figure.figure(src, tmp_path / "a.jpg", src, width=60))
    assert _panels(same)[3].max() == 0  # the original against itself: no error anywhere


def test_make_demo_ends_with_the_picture() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^demo:.*?\n((?:\t.*\n)+)", makefile, re.M).group(1).strip().splitlines()
    assert "scripts/demo_figure.py" in recipe[-1] and "$(OUT)/example.dng" in recipe[-1]
    assert any("invisp decode" in line and "$(OUT)/example.dng" in line for line in recipe[:-1])
