"""``invisp info``: what an invisp JPEG or a RAW/DNG file carries, as (key, value) rows."""

from __future__ import annotations

from pathlib import Path

from . import rawio, residual
from .containers import jpeg
from .errors import InputError


def describe(path: Path) -> list[tuple[str, object]]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img, name = jpeg.open_jpeg(path)
        p = jpeg.read_params(img, name)
        r = p.raw
        return [
            ("file", f"{path} (invisp JPEG, {path.stat().st_size / 1e6:.2f} MB, {img.width}×{img.height})"),
            ("schema", "invisp/1"),
            ("model", f"{p.model_id} (sha256 {p.model_sha256[:16]}…)"),
            ("camera", " ".join(str(p.camera.get(k, "")) for k in ("make", "model")).strip() or "unknown"),
            ("raw", f"{r['visible_size'][1]}×{r['visible_size'][0]} visible of "
                    f"{r['raw_size'][1]}×{r['raw_size'][0]}, {r['cfa']}, {r['bits']}-bit"),
            ("levels", f"black {r['black']}, white {r['white']}"),
            ("white balance", f"{[round(v, 4) for v in r['wb']]} ({r['wb_source']})"),
            ("orientation", f"flip {r['flip']}"),
            ("jpeg", f"quality {p.render['quality']}, {p.render['subsampling']}"),
            ("exif", ", ".join(f"{k}={v}" for k, v in p.camera.items()) or "none"),
            ("raw layer", residual.describe_layer(path.read_bytes(), name)),  # residual layer (issue 6)
        ]
    raw = rawio.read_raw(path)
    h, w = raw.mosaic.shape
    return [
        ("file", f"{path} (RAW, {path.stat().st_size / 1e6:.2f} MB)"),
        ("camera", " ".join(str(raw.exif.get(k, "")) for k in ("make", "model")).strip() or "unknown"),
        ("raw", f"{w}×{h} visible of {raw.raw_size[1]}×{raw.raw_size[0]}, {raw.cfa}, {raw.bits}-bit"),
        ("levels", f"black {raw.black.tolist()}, white {raw.white}"),
        ("white balance", f"{[round(float(v), 4) for v in raw.wb]} ({raw.wb_source})"),
        ("orientation", f"flip {raw.flip}"),
        ("exif", ", ".join(f"{k}={v}" for k, v in raw.exif.items()) or "none"),
    ]
