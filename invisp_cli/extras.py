"""Optional parts (``pyproject.toml`` extras): a missing package is one line naming the extra to install, never a
traceback, and every command checks the ones it will need before it starts any work (``check_*`` below, called
first thing by cli.py). The analytic front end (the default model) needs none of them; torch comes with
``[learned]``."""

from __future__ import annotations

import importlib

from .errors import InvispError


def require(module: str, extra: str, what: str, error: type[InvispError] = InvispError) -> None:
    """Raise ``error`` ("WHAT needs MODULE: pip install 'invisp[EXTRA]'") if ``module`` cannot be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise error(f"{what} needs {module}: pip install 'invisp[{extra}]'") from None


def check_batch(scheduler: str | None) -> None:
    """``--scheduler`` of a batch needs Dask's ``distributed`` (``[dask]``)."""
    if scheduler:
        require("distributed", "dask", "--scheduler")


def check_bench(plots: bool, tiers: bool = False) -> None:
    """``invisp bench``: torch for the shipped models, matplotlib for its figures (``[bench]``); ``--tiers``:
    imagecodecs built with JPEG XL (its lossless and lossy baselines)."""
    require("torch", "bench", "invisp bench")
    if plots:
        require("matplotlib", "bench", "invisp bench (its figures; --no-plots skips them)")
    if tiers:
        import imagecodecs

        if not imagecodecs.JPEGXL.available:
            raise InvispError("invisp bench --tiers needs imagecodecs built with JPEG XL: pip install -U imagecodecs")


def check_train(synthetic: int, video: bool) -> None:
    """``invisp train``: torch; scikit-image for ``--synthetic`` (the bundled photos), both ``[train]``; PyAV for
    ``--video`` (``[video]``)."""
    require("torch", "train", "invisp train")
    if synthetic:
        require("skimage.data", "train", "invisp train --synthetic")
    if video:
        require("av", "video", "invisp train --video")
