"""The camera look: fitted at encode time to the RAW's own embedded preview, or trained from the previews of many
files for a camera without one (``train_look``), stored in the file's record and inverted exactly on decode.

    fit:  preview (rawpy ``extract_thumb``) ─┐
          RAW ─ front end at low resolution ─┴─ framing aligned ─ blurred pairs ─ least squares on CIELAB ─▶ Look

The look is ``steps.Look`` (tone curves then the colour rendering, after the gamma; ``settings.Look`` holds its
parameters). It is fitted on both images area-downscaled to at most ``FIT_SIDE`` pixels (tone and colour, not
texture: the camera's sharpening, noise reduction and small misalignments average out), on the smoother 75 % of
the pixels, with a robust (soft-L1) loss on the CIELAB difference and a smoothness penalty on the curves."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import metrics, rawio
from .errors import InputError, ModelError
from .rawio import RawImage
from .settings import CFA_LAYOUTS, FrontEnd, Look
from .steps import CURVE_INTERVALS, Chain, ChromaCompress, chroma_reach, curve_table, front_end
from .zoo import WEIGHTS_DIR, sha256_file

#: knots per tone curve, the curves' minimum slope, the colour shoulder's knee (chosen by measurement:
#: docs/look.md)
KNOTS = 9
SLOPE_MIN = 0.3
CHROMA_KNEE = 0.6
#: the fit's resolution (longer side, pixels), how many of its pixels it uses, and the smooth fraction kept
FIT_SIDE = 192
FIT_PIXELS = 2000
SMOOTH_FRACTION = 0.75
#: weights of the curves' smoothness penalty (second differences of θ) and of the colour matrix's pull to I
SMOOTHNESS = 0.5
MATRIX_PRIOR = 2.0
#: least-squares iterations of ``adapt`` (its target is a look, smooth and noise-free: fewer than a fit's)
ADAPT_EVALUATIONS = 10
#: the colour matrix M diagonal (saturation of R − Y and B − Y, no hue rotation) instead of a full 2×2: a hue
#: rotation sends dark colours far out of the cube at their luma (gauge r up to 3.6 on the D30, the reach with it),
#: so the colour shoulder's inverse amplifies their error up to ~100× (docs/look.md, "The colour matrix")
DIAGONAL_CHROMA = True
#: weight of the RAW cost: the log of the error amplification 1/f_c'(x) of the inverse curves where the pixels are
RAW_WEIGHT = 3.0
#: the front end's working render for the fit (longer side, pixels)
WORK_SIDE = 512
#: the framing search's resolution (longer side, pixels)
ALIGN_SIDE = 128
#: a preview smaller than this (shorter side, pixels) is not used
PREVIEW_MIN_SIDE = 96


def read_preview(path: str | os.PathLike, side: int | None = None) -> np.ndarray | None:
    """The camera's JPEG (or bitmap) preview embedded in a RAW file as uint8 (H, W, 3), None if it has none
    usable (absent, unreadable, smaller than ``PREVIEW_MIN_SIDE``, or a DNG invisp wrote). ``side``: a JPEG may be
    decoded at a reduced scale (1/2, 1/4, 1/8: libjpeg's draft mode) keeping at least ``side`` pixels on the longer
    side."""
    import rawpy
    from PIL import Image

    from .rawio.dng import is_invisp_dng

    if is_invisp_dng(path):  # its preview is invisp's own plain render (``write_dng``), not the camera's
        return None
    try:
        with rawpy.imread(str(path)) as r:
            thumb = r.extract_thumb()
        if thumb.format == rawpy.ThumbFormat.JPEG:
            with Image.open(io.BytesIO(thumb.data)) as img:
                if side is not None and min(img.size) >= 2 * PREVIEW_MIN_SIDE:
                    f = max(1.0, max(img.size) / side)
                    img.draft("RGB", (int(img.size[0] / f), int(img.size[1] / f)))
                rgb = np.asarray(img.convert("RGB"))
        else:
            rgb = np.asarray(thumb.data, dtype=np.uint8)
    except Exception:  # noqa: BLE001 - LibRaw and Pillow raise many types for absent or damaged previews
        return None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < PREVIEW_MIN_SIDE:
        return None
    return rgb


def trim_borders(preview: np.ndarray, level: int = 12) -> np.ndarray:
    """The preview without uniform near-black bars at its edges (letterboxed thumbnails): rows and columns at the
    edges whose every value is ≤ ``level`` are cut, as long as at least half of each side remains."""
    dark = preview.max(axis=2) <= level
    rows, cols = np.flatnonzero(~dark.all(axis=1)), np.flatnonzero(~dark.all(axis=0))
    if rows.size == 0 or cols.size == 0:
        return preview
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    h, w = preview.shape[:2]
    if bottom - top < h // 2 or right - left < w // 2:
        return preview
    return preview[top:bottom, left:right]


def working_image(raw: RawImage, front: FrontEnd, side: int) -> np.ndarray:
    """The front end's upright sRGB-gamma render (no look), clamped to [0, 1], (h, w, 3) float64, at about
    ``side`` pixels on the longer side (not below the CFA tile's resolution): each CFA phase area-averaged over
    blocks of tiles, the per-site steps, one RGB pixel per 2×2 tile (G the mean of its two), colour matrix and
    gamma — the area downscale of the full render up to the demosaic's detail. Non-Bayer layouts: the full render,
    area-downscaled."""
    steps = front_end(raw, FrontEnd(front.exposure_gain, front.demosaic, front.highlight_knee))
    if raw.cfa not in CFA_LAYOUTS:
        from .pipeline import render

        full = render([raw], None, [FrontEnd(front.exposure_gain, front.demosaic, front.highlight_knee).to_json()],
                      pixels=np.float32)
        f = side / max(full.shape[:2])
        return full.astype(np.float64) if f >= 1 else metrics.box_resize(
            full, (max(1, round(full.shape[1] * f)), max(1, round(full.shape[0] * f))))
    h, w = (raw.mosaic.shape[0] // 2) * 2, (raw.mosaic.shape[1] // 2) * 2
    block = max(1, int(max(h, w) // 2 // side))
    th, tw = h // 2 // block, w // 2 // block
    phases = np.empty((2 * th, 2 * tw), np.float32)
    for i in range(2):
        for j in range(2):
            p = raw.mosaic[i:2 * th * block:2, j:2 * tw * block:2].astype(np.float32)
            phases[i::2, j::2] = p.reshape(th, block, tw, block).mean(axis=(1, 3))
    demosaic = next(n for n, s in enumerate(steps) if s.receptive_field)  # the first step with context
    sites = Chain(steps[:demosaic]).forward(phases[None, None])[0, 0]
    idx = steps[demosaic].cfa
    rgb = np.zeros((3, th, tw), np.float32)
    for n, c in enumerate(idx):
        rgb[{"R": 0, "G": 1, "B": 2}[c]] += sites[n // 2::2, n % 2::2] * (0.5 if c == "G" else 1.0)
    out = Chain(steps[demosaic + 1:]).forward(rgb[None])[0].transpose(1, 2, 0)
    return rawio.apply_flip(np.clip(out, 0.0, 1.0).astype(np.float64), raw.flip)


def align_fast(image: np.ndarray, preview: np.ndarray) -> tuple[int, int, int, int, int]:
    """``metrics.align_framing``'s search (aspect-matched crops of 94–100 %, 9×9 offsets, both rotations when the
    orientations disagree, gradient correlation) at ``ALIGN_SIDE`` px, with each scale's image downscaled once and
    the crops taken from it: the same framing up to a pixel of that scale, in a fraction of the time."""
    h, w = image.shape[:2]
    best: tuple[float, tuple[int, int, int, int, int]] = (-2.0, (0, 0, h, w, 0))
    for k in ([1, -1] if (h > w) != (preview.shape[0] > preview.shape[1]) else [0]):
        cam = np.rot90(preview, k)
        ph, pw = cam.shape[:2]
        sw, sh = max(8, int(pw * ALIGN_SIDE / max(ph, pw))), max(8, int(ph * ALIGN_SIDE / max(ph, pw)))
        ref = metrics._gradient_signature(metrics.box_resize(cam, (sw, sh)).mean(-1))
        grey = image.mean(-1, keepdims=True)
        for scale in np.linspace(0.94, 1.0, 7):
            cw = min(w, h * pw / ph) * scale
            ch = cw * ph / pw
            f = sw / cw  # image pixels → the crop's 256-px scale
            small = metrics.box_resize(grey, (max(sw, round(w * f)), max(sh, round(h * f))))[..., 0]
            hs, ws = small.shape
            for dy in np.linspace(0, hs - sh, 9).astype(int):
                for dx in np.linspace(0, ws - sw, 9).astype(int):
                    r = float((metrics._gradient_signature(small[dy:dy + sh, dx:dx + sw]) * ref).sum())
                    if r > best[0]:
                        best = (r, (int(dy / f), int(dx / f), int(ch), int(cw), k))
    return best[1]


def training_pairs(image: np.ndarray, preview: np.ndarray, side: int = FIT_SIDE) -> tuple[np.ndarray, np.ndarray]:
    """(the front end's colours, the camera's) of the same places: ``image`` (the front end's working render) and
    the preview, framing aligned, both area-downscaled to ``side`` pixels on the longer side, the smoothest
    ``SMOOTH_FRACTION`` of the pixels (by the preview's gradient), (n, 3) each in [0, 1]."""
    dy, dx, ch, cw, k = align_fast(image, preview)
    cam = np.rot90(preview, k).astype(np.float64) / 255.0
    f = side / max(cam.shape[:2])
    size = (max(4, round(cam.shape[1] * f)), max(4, round(cam.shape[0] * f)))
    a = np.clip(metrics.box_resize(image[dy:dy + ch, dx:dx + cw], size), 0.0, 1.0)
    b = np.clip(metrics.box_resize(cam, size), 0.0, 1.0)
    grey = b.mean(-1)
    grad = np.hypot(*np.gradient(grey))
    keep = grad <= np.quantile(grad, SMOOTH_FRACTION)
    return a[keep], b[keep]


def _unpack(p: np.ndarray, neutral: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(θ (3, K), M (2, 2)) of the fit's parameter vector; ``neutral``: one curve for all channels and M = s·I."""
    if neutral:
        return np.tile(p[:KNOTS], (3, 1)), p[KNOTS] * np.eye(2)
    m = p[3 * KNOTS:]
    return p[: 3 * KNOTS].reshape(3, KNOTS), np.diag(m) if len(m) == 2 else m.reshape(2, 2)


def apply(theta: np.ndarray, matrix: np.ndarray, x: np.ndarray, slope_min: float = SLOPE_MIN,
          knee: float = CHROMA_KNEE, intervals: int = CURVE_INTERVALS) -> np.ndarray:
    """The look with curve log-slopes ``theta`` (3, K) and colour matrix (2, 2) on colours x (n, 3) in [0, 1]
    (``steps.Look``; the fit evaluates its curves on a coarser table of ``intervals`` and the reach on 257 points
    per cube edge, within 1e-4 of it)."""
    m = tuple(float(v) for v in matrix.ravel())
    t = _tone(curve_table(theta, slope_min, intervals), x)
    return ChromaCompress(m, knee, chroma_reach(m, samples=257)).forward(t[None, :, :, None])[0, :, :, 0].T


def apply_look(look: Look, x: np.ndarray) -> np.ndarray:
    """``apply`` with a stored look's own parameters, on colours x (n, 3)."""
    return apply(np.asarray(look.curves), np.asarray(look.chroma).reshape(2, 2), x, look.slope_min, look.knee)


def _tone(table: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The tone curves of ``table`` (3, n + 1) on colours x (n, 3): (3, n)."""
    grid = np.linspace(0.0, 1.0, table.shape[1])
    return np.stack([np.interp(x[:, c], grid, table[c]) for c in range(3)])


def _chroma_cost(t: np.ndarray, matrix: np.ndarray, reach: float) -> np.ndarray:
    """The log error amplification of the colour rendering's inverse at colours t (3, n) after the curves:
    log(1/g'(r)) = 2·log(1 + a·e) of the shoulder where r > k, plus log(1/σ_min(M)) where M shrinks."""
    lum, dr, db = ChromaCompress._luma_chroma(t[:, :, None])
    m = matrix.ravel()
    _, r = ChromaCompress._gauge(lum, m[0] * dr + m[1] * db, m[2] * dr + m[3] * db)
    a = 1.0 / (1.0 - CHROMA_KNEE) - 1.0 / (reach - CHROMA_KNEE) if reach > 1.0 else 0.0
    e = (r[:, 0].clip(None, reach) - CHROMA_KNEE).clip(0.0, None)
    return 2.0 * np.log1p(a * e) + max(0.0, -float(np.log(np.linalg.svd(matrix, compute_uv=False).min())))


def fit(pairs: Sequence[tuple[np.ndarray, np.ndarray]], name: str = "camera", seed: int = 0,
        max_evaluations: int = 20, neutral: bool = False) -> Look:
    """The look that maps the front end's colours to the camera's, over one or more (x, y) pairs of (n, 3)
    colours (several: a trained look): minimises Σ soft-L1(|Lab(look(x)) − Lab(y)|) + smoothness of the curves
    + ``RAW_WEIGHT`` × the inverse's log error amplification at the pixels (curves and colour shoulder) + a pull
    of the colour matrix to I (scipy's trust-region least squares from the identity look), with at most
    ``FIT_PIXELS`` pixels of each pair. ``neutral``: one tone curve for all channels and a plain saturation
    M = s·I (no colour cast: the generic look for cameras without their own)."""
    from scipy.optimize import least_squares

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for x, y in pairs:
        pick = rng.choice(len(x), FIT_PIXELS, replace=False) if len(x) > FIT_PIXELS else slice(None)
        xs.append(x[pick])
        ys.append(y[pick])
    x, target = np.concatenate(xs), metrics.srgb_to_lab(np.concatenate(ys))
    weight = 1.0 / np.sqrt(len(x))
    bins = np.minimum((x * 256).astype(int), 255).T  # each colour's interval of the fit's curve tables

    def residuals(p: np.ndarray) -> np.ndarray:
        theta, m = _unpack(p, neutral)
        if abs(np.linalg.det(m)) < 0.05:  # a step towards a singular matrix: evaluated at a weak, valid one
            m = 0.25 * np.eye(2)
        table = curve_table(theta, SLOPE_MIN, 256)  # the look as ``apply`` evaluates it, each part once
        t, mt = _tone(table, x), tuple(float(v) for v in m.ravel())
        reach = chroma_reach(mt, samples=257)
        lab = metrics.srgb_to_lab(ChromaCompress(mt, CHROMA_KNEE, reach).forward(t[None, :, :, None])[0, :, :, 0].T)
        smooth = SMOOTHNESS * np.diff(theta, 2, axis=1).ravel()
        gauge = theta.mean(axis=1)  # the curves do not change when θ_c shifts: fix the mean
        slope = np.take_along_axis(np.diff(table, axis=1) * 256, bins, 1)
        raw_cost = np.log(1.0 / slope).clip(0.0, None).sum(axis=0) + _chroma_cost(t, m, reach)
        return np.concatenate([(lab - target).ravel() * weight, smooth, gauge, RAW_WEIGHT * weight * raw_cost,
                               MATRIX_PRIOR * weight * 10 * (m - np.eye(2)).ravel()])

    m0 = [1.0] if neutral else [1.0, 1.0] if DIAGONAL_CHROMA else [1.0, 0.0, 0.0, 1.0]
    p0 = np.concatenate([np.zeros(KNOTS if neutral else 3 * KNOTS), m0])
    sol = least_squares(residuals, p0, loss="soft_l1", f_scale=3.0 * weight, max_nfev=max_evaluations,
                        diff_step=1e-3)
    theta, m = _unpack(sol.x, neutral)
    chroma = tuple(float(v) for v in m.ravel())
    if abs(chroma[0] * chroma[3] - chroma[1] * chroma[2]) < 0.05:  # a degenerate fit: colour left unchanged
        chroma = (1.0, 0.0, 0.0, 1.0)
    return Look(name, tuple(tuple(float(v) for v in np.clip(r, -20, 20)) for r in theta), SLOPE_MIN,
                chroma, CHROMA_KNEE, chroma_reach(chroma))  # type: ignore[arg-type]


def camera_look(path: str | os.PathLike, raw: RawImage, front: FrontEnd) -> Look | None:
    """The look fitted to ``path``'s own preview (None without a usable one, or where the fit finds none)."""
    preview = read_preview(path, WORK_SIDE)
    if preview is None:
        return None
    image = working_image(raw, front, WORK_SIDE)
    try:
        return fit([training_pairs(image, trim_borders(preview))])
    except (ValueError, np.linalg.LinAlgError):  # a degenerate preview (blank, tiny): the trained look instead
        return None



# ------------------------------------------------------------------------------------------- trained looks

LOOKS_REGISTRY = "looks.json"


@dataclass
class LookEntry:
    """A trained look: ``file`` (safetensors: "curves" (3, K), "chroma" (4,), "shape" [slope_min, knee, reach])
    in ``folder``, its SHA-256, the cameras it is for ("Make Model" names, or "*": the generic look), and how it
    was trained (command, data, metrics)."""

    id: str
    file: str
    sha256: str
    cameras: list[str]
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    folder: Path = Path()

    def matches(self, camera: str) -> bool:
        """Whether the look is for ``camera`` ("Make Model"; case and a repeated make, as in "Canon Canon
        PowerShot S40", do not matter)."""
        return any(c != "*" and _norm(c) == _norm(camera) for c in self.cameras)

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "folder"}

    def load(self) -> Look:
        """The look, its checkpoint's SHA-256 verified; ModelError if missing, replaced or malformed."""
        from safetensors.numpy import load_file

        path = self.folder / self.file
        if not path.is_file() or sha256_file(path) != self.sha256:
            raise ModelError(f"look {self.id}: {path} is missing or does not match its registered SHA-256")
        try:
            t = load_file(str(path))
            slope_min, knee, reach = (float(v) for v in t["shape"])
            return Look(self.id, tuple(tuple(float(v) for v in r) for r in t["curves"]), slope_min,
                        tuple(float(v) for v in t["chroma"]), knee, reach)  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001 - safetensors and the Look's validation raise several types
            raise ModelError(f"look {self.id}: {path.name} is not a valid look ({type(e).__name__})") from None


def _norm(camera: str) -> str:
    words = camera.lower().split()
    return " ".join(w for i, w in enumerate(words) if i == 0 or w != words[i - 1])


def user_looks_dir() -> Path:
    """Where ``invisp train-look`` saves looks by default and encode finds them: $XDG_DATA_HOME/invisp/looks
    (default ~/.local/share/invisp/looks)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "invisp" / "looks"


def look_dirs() -> list[Path]:
    """The folders searched for trained looks, first match wins: the user's, then the shipped ``weights/``."""
    return [user_looks_dir(), WEIGHTS_DIR]


def read_looks(folder: Path) -> list[LookEntry]:
    f = folder / LOOKS_REGISTRY
    if not f.is_file():
        return []
    try:
        return [LookEntry(**e, folder=folder) for e in json.loads(f.read_text(encoding="utf-8"))["looks"]]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise ModelError(f"{f}: malformed look registry ({type(e).__name__})") from None


def list_looks() -> list[LookEntry]:
    seen: dict[str, LookEntry] = {}
    for folder in look_dirs():
        for e in read_looks(folder):
            seen.setdefault(e.id, e)
    return list(seen.values())


def find_look(look_id: str) -> LookEntry:
    for e in list_looks():
        if e.id == look_id:
            return e
    known = ", ".join(["camera", "libraw", *sorted(e.id for e in list_looks())])
    raise InputError(f"unknown look {look_id!r} (available: {known})")


def camera_name(raw: RawImage) -> str:
    """"Make Model" of a RAW's EXIF (what a trained look's ``cameras`` name)."""
    make, model = str(raw.exif.get("make", "")).strip(), str(raw.exif.get("model", "")).strip()
    return model if model.lower().startswith(make.lower()) else f"{make} {model}".strip()


def trained_look(camera: str) -> LookEntry | None:
    """The trained look for ``camera`` ("Make Model"), else the generic ("*") one, else None."""
    entries = list_looks()
    return next((e for e in entries if e.matches(camera)), None) or next(
        (e for e in entries if "*" in e.cameras), None)


def adapt(look: Look, raw: RawImage, front: FrontEnd, seed: int = 0) -> Look:
    """A trained ``look`` refitted to this file: ``fit`` with the trained look's colours of the file's own working
    render as the target (what the camera would make of it, as far as the trained look knows) and the RAW cost on
    the file's own pixels, so the slope budget goes where this image has its pixels. Keeps the trained look's
    name (the record says where it came from)."""
    image = working_image(raw, front, WORK_SIDE).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    x = image[rng.choice(len(image), min(len(image), FIT_PIXELS), replace=False)]
    target = apply_look(look, x)
    return fit([(x, target)], name=look.name, seed=seed, max_evaluations=ADAPT_EVALUATIONS)


def resolve(name: str, src: str | os.PathLike, raw: RawImage, front: FrontEnd) -> Look | None:
    """The look encode renders ``src`` with: "libraw" → None (LibRaw's look); "camera" → fitted to the file's own
    preview, else the camera's trained look, else the generic one, adapted to the file (``adapt``; never LibRaw's
    dark render by default, unless no look is installed at all); any other name → that trained look as trained
    (InputError if unknown)."""
    if name == "libraw":
        return None
    if name != "camera":
        return find_look(name).load()
    fitted = camera_look(src, raw, front)
    if fitted is not None:
        return fitted
    entry = trained_look(camera_name(raw))
    return None if entry is None else adapt(entry.load(), raw, front)


def save_look(look: Look, folder: Path, cameras: list[str], training: dict, metrics_: dict) -> LookEntry:
    """Write ``look`` as ``<id>-<sha256[:8]>.safetensors`` into ``folder`` and register it in its
    ``looks.json`` (replacing an entry of the same ID)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{look.name}.safetensors.part"
    save_file({"curves": np.asarray(look.curves, np.float64), "chroma": np.asarray(look.chroma, np.float64),
               "shape": np.asarray([look.slope_min, look.knee, look.reach], np.float64)}, str(tmp))
    sha = sha256_file(tmp)
    name = f"{look.name}-{sha[:8]}.safetensors"
    os.replace(tmp, folder / name)
    entry = LookEntry(look.name, name, sha, cameras, training, metrics_, folder)
    entries = [e for e in read_looks(folder) if e.id != look.name] + [entry]
    part = folder / (LOOKS_REGISTRY + ".part")
    part.write_text(json.dumps({"looks": [e.to_json() for e in sorted(entries, key=lambda e: e.id)]}, indent=2)
                    + "\n")
    os.replace(part, folder / LOOKS_REGISTRY)
    return entry


def file_pairs(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray] | None:
    """``training_pairs`` of one RAW file and its own preview (None without a usable preview)."""
    from .pipeline import front_end_settings

    preview = read_preview(path, WORK_SIDE)
    if preview is None:
        return None
    raw = rawio.read_raw(path)
    return training_pairs(working_image(raw, front_end_settings(raw), WORK_SIDE), trim_borders(preview))


def train_look(files: Sequence[str | os.PathLike], look_id: str, neutral: bool = False) -> tuple[Look, list[str]]:
    """A look learned self-supervised from the previews of ``files`` (one fit over all their pixel pairs, each file
    weighted equally; ``neutral`` as in ``fit``): (the look, the files that had a usable preview). InputError if
    none had."""
    pairs, used = [], []
    for f in files:
        p = file_pairs(f)
        if p is not None:
            pairs.append(p)
            used.append(str(f))
    if not pairs:
        raise InputError("no RAW file with a usable embedded preview to learn a look from")
    return fit(pairs, name=look_id, neutral=neutral), used


def preview_delta_e(look: Look | None, path: str | os.PathLike) -> float:
    """ΔE2000 vs the camera (``metrics.delta_e_camera``) of ``look`` applied to the front end's working render of
    ``path`` at twice the preview's size (8-bit, no JPEG): what a look learned from previews scores on one file."""
    from .pipeline import front_end_settings

    preview = read_preview(path)
    if preview is None:
        raise InputError(f"{Path(path).name}: no usable embedded preview")
    raw = rawio.read_raw(path)
    image = working_image(raw, front_end_settings(raw), 2 * max(preview.shape[:2]))
    if look is not None:
        image = apply_look(look, image.reshape(-1, 3)).reshape(image.shape)
    return metrics.delta_e_camera((image * 255 + 0.5).astype(np.uint8), preview)


def train_and_save(files: Sequence[str | os.PathLike], camera: str, look_id: str, folder: Path,
                   command: str) -> LookEntry:
    """``train_look`` on ``files`` for ``camera`` ("Make Model", or "*": any camera — then neutral: colour casts
    belong to a camera, not to every camera), registered in ``folder`` with its training command, data and metrics
    (ΔE2000 vs each training file's preview before and after)."""
    look, used = train_look(files, look_id, neutral=camera == "*")
    before = {Path(f).name: round(preview_delta_e(None, f), 2) for f in used}
    after = {Path(f).name: round(preview_delta_e(look, f), 2) for f in used}
    training = {"command": command, "data": [Path(f).name for f in used],
                "data_summary": f"{len(used)} RAW previews",
                "method": "look.fit over all files' pixel pairs" + (", neutral" if camera == "*" else "")}
    metrics_ = {"delta_e_train_libraw": before, "delta_e_train_look": after,
                "delta_e_train_mean": round(float(np.mean(list(after.values()))), 2),
                "delta_e_train_libraw_mean": round(float(np.mean(list(before.values()))), 2),
                "delta_e_note": "ΔE2000 vs each file's own preview, front-end working render at 2× preview size, "
                                "8-bit, no JPEG (look.preview_delta_e); training files, not held out"}
    return save_look(look, folder, [camera], training, metrics_)
