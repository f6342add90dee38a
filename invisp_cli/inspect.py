"""``invisp info``: what an invisp JPEG or a RAW/DNG file carries, as (key, value) rows for people and as the
machine-readable record for scripts (``record``)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from . import metadata, rawio, residual
from .containers import jpeg
from .fileio import check_input
from .params import ReconstructionParams
from .settings import CFA_LAYOUTS, FrontEnd, cfa_rows, kind_of
from .video.formats import require_av

CARRIED = ("exif", "xmp", "iptc", "dng")  # packed metadata in RawImage.exif / params.camera


def _front_end(front: FrontEnd) -> str:
    knee = front.highlight_knee
    return (f"{front.demosaic} demosaic, exposure ×{float(front.exposure_gain):.4g}, "
            + (f"highlight roll-off from {knee}" if knee is not None else "no highlight roll-off")
            + f", look: {_look(front)}")


def _look(front: FrontEnd) -> str:
    """The look a file was rendered with: LibRaw's, fitted to the camera's preview, or a trained one."""
    look = front.look
    if look is None:
        return "libraw (LibRaw's render)"
    what = "fitted to the camera's preview" if look.name == "camera" else "trained"
    m = look.chroma
    return (f"{look.name} ({what}: {len(look.curves[0])}-knot tone curves, min slope {look.slope_min:g}, "
            f"colour matrix [{m[0]:.3f} {m[1]:.3f}; {m[2]:.3f} {m[3]:.3f}])")


def _basics(exif: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in exif.items() if k not in CARRIED) or "none"


def _carried(exif: dict) -> str:
    """What the file carries beyond the basics: EXIF tags (GPS?), XMP, DNG tags for the decoded DNG."""
    parts = []
    if exif.get("exif"):
        tree = metadata.unpack_tree(exif["exif"])
        parts.append(f"EXIF {sum(len(v) for v in tree.values())} tags" + (" incl. GPS" if tree["GPS"] else ""))
    if exif.get("xmp"):
        parts.append(f"XMP {len(exif['xmp'])} bytes")
    if exif.get("iptc"):
        parts.append("IPTC")
    if exif.get("dng"):
        parts.append(f"{len(metadata.unpack_ifd(exif['dng']))} DNG tags (colour, opcodes, noise, crops)")
    return ", ".join(parts) or "none"


@dataclass
class Inspection:
    """What ``invisp info`` shows: (key, value) rows for people and the same machine-readable (``record``: the
    packed metadata blobs — EXIF, XMP, IPTC, DNG tags — left out; the ``metadata`` row counts them)."""

    rows: list[tuple[str, object]]
    record: dict


def _black_text(cfa: str, black: list) -> str:
    """Black levels as stated: per 2×2 site for Bayer, per channel for linear; per colour for any other CFA (its
    p×q sites hold one level per colour in practice; the record keeps all p·q)."""
    rows = cfa_rows(cfa)
    if cfa in CFA_LAYOUTS or not rows:
        return str(black)
    per = {c: sorted({float(v) for r, vs in zip(rows, black, strict=True) for ch, v in zip(r, vs, strict=True)
                      if ch == c}) for c in "RGB"}
    return (", ".join(f"{c} {'/'.join(f'{v:g}' for v in vs)}" for c, vs in per.items())
            + f" (per colour; {len(rows)}×{len(rows[0])} sites)")


def _params_record(p: ReconstructionParams) -> dict:
    """An invisp file's validated reconstruction record: schema, model, RAW geometry and levels, render settings,
    camera basics."""
    camera = {k: v for k, v in p.camera.items() if k not in CARRIED}
    return {"schema": "invisp/1", "model": {"id": p.model_id, "sha256": p.model_sha256}, "raw": p.raw,
            "render": p.render, "camera": camera}


def _noise_record(data: bytes, name: str) -> dict:
    """{"noise": the sensor noise model σ²(n) = a·n + b per CFA position of a ``--max-error Ks`` layer}, or {}."""
    model = residual.layer_noise(data, name)
    return {} if model is None else {"noise": model}


def inspect_video(path: Path) -> Inspection:
    """An invisp MP4: stream settings, model and the per-frame parameters it carries (first frame shown)."""
    from .video.container import SCHEMA, read_doc

    require_av()
    doc = read_doc(path)
    v, first = doc.video, doc.frames[0].params
    fps = Fraction(v["fps"])
    rate = f"{fps.numerator}" if fps.denominator == 1 else f"{fps} ({float(fps):.3f})"
    r = first.raw
    return Inspection([
        ("file", f"{path} (invisp MP4, {path.stat().st_size / 1e6:.2f} MB, {v['width']}×{v['height']})"),
        ("schema", SCHEMA),
        ("model", f"{doc.model_id} (sha256 {doc.model_sha256[:16]}…), window {v.get('window', 1)}"),
        ("video", f"{v['frames']} frames at {rate} fps, {v['encoder']} CRF {v['crf']}, {v['pix_fmt']}, "
                  f"preset {v.get('preset', '?')}"),
        ("frames", ", ".join(f.name for f in doc.frames[:3]) + (", …" if len(doc.frames) > 3 else "")),
        ("camera", " ".join(str(first.camera.get(k, "")) for k in ("make", "model")).strip() or "unknown"),
        ("raw", f"{r['visible_size'][1]}×{r['visible_size'][0]} visible of "
                f"{r['raw_size'][1]}×{r['raw_size'][0]}, {r['cfa']}, {r['bits']}-bit"),
        ("levels", f"black {r['black']}, white {r['white']}"),
        ("white balance", f"{[round(v, 4) for v in r['wb']]} ({r['wb_source']}; first frame)"),
        ("front end", _front_end(first.front_end) + " (first frame)"),
    ], {"video": doc.video, "frames": len(doc.frames), "first_frame": _params_record(first)})


def inspect_file(path: Path) -> Inspection:
    """What an invisp JPEG or MP4, or a RAW/DNG file, carries; each file read once."""
    check_input(path)  # missing, a folder, a FIFO or a device: said as such
    kind = kind_of(path)
    if kind == "video":
        return inspect_video(path)
    if kind == "jpeg":
        data = path.read_bytes()
        img, name = jpeg.open_jpeg(path, data)
        p = jpeg.read_params(img, name, data)
        state, pixels = jpeg.describe_pixels(path)
        r = p.raw
        return Inspection([
            ("file", f"{path} (invisp JPEG, {path.stat().st_size / 1e6:.2f} MB, {img.width}×{img.height})"),
            ("schema", "invisp/1"),
            ("model", f"{p.model_id} (sha256 {p.model_sha256[:16]}…)"),
            ("camera", " ".join(str(p.camera.get(k, "")) for k in ("make", "model")).strip() or "unknown"),
            ("raw", f"{r['visible_size'][1]}×{r['visible_size'][0]} visible of "
                    f"{r['raw_size'][1]}×{r['raw_size'][0]}, {r['cfa']}, {r['bits']}-bit"),
            ("levels", f"black {_black_text(r['cfa'], r['black'])}, white {r['white']}"),
            ("white balance", f"{[round(v, 4) for v in r['wb']]} ({r['wb_source']})"),
            ("orientation", f"flip {r['flip']}"),
            ("jpeg", f"quality {p.output.quality}, {p.output.subsampling}"),
            ("front end", _front_end(p.front_end)),
            ("exif", _basics(p.camera)),
            ("metadata", _carried({**p.camera, **jpeg.current_metadata(img)})),
            ("pixels", pixels),
            ("raw layer", residual.describe_layer(data, name)),
        ], _params_record(p) | _noise_record(data, name) | {"pixels": {"state": state, "summary": pixels}})
    raw = rawio.read_raw(path)
    h, w = raw.mosaic.shape[:2]
    above = int((raw.mosaic > raw.white).sum())  # decode clips these to the white level, unless --exact
    clipped = [("above white", f"{above} samples above the white level {raw.white}: a decode without --exact "
                               f"clips them to {raw.white}")] if above else []
    return Inspection([
        ("file", f"{path} (RAW, {path.stat().st_size / 1e6:.2f} MB)"),
        ("camera", " ".join(str(raw.exif.get(k, "")) for k in ("make", "model")).strip() or "unknown"),
        ("raw", f"{w}×{h} visible of {raw.raw_size[1]}×{raw.raw_size[0]}, {raw.cfa}, {raw.bits}-bit"),
        ("levels", f"black {_black_text(raw.cfa, raw.black.tolist())}, white {raw.white}"),
        *clipped,
        ("white balance", f"{[round(float(v), 4) for v in raw.wb]} ({raw.wb_source})"),
        ("orientation", f"flip {raw.flip}"),
        ("exif", _basics(raw.exif)),
        ("metadata", _carried(raw.exif)),
    ], {"raw": {"cfa": raw.cfa, "black": raw.black.tolist(), "white": int(raw.white),
                **({"above_white": above} if above else {}),
                "bits": int(raw.bits), "visible_size": [h, w], "raw_size": [int(v) for v in raw.raw_size],
                "flip": int(raw.flip), "wb": [float(v) for v in raw.wb], "wb_source": raw.wb_source},
        "camera": {k: v for k, v in raw.exif.items() if k not in CARRIED}})


def describe(path: Path) -> list[tuple[str, object]]:
    """``inspect_file``'s rows."""
    return inspect_file(path).rows
