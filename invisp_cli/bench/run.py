"""The benchmark loop: every RAW file × every method × every JPEG quality → one ``Record``.

For an invisp model (one per registry entry, ``--model`` or camera-matched with ``--auto``):

    encode:  read_raw → codec.encode_bytes (pipeline.render, containers.jpeg.encode_jpeg) → bytes
    decode:  codec.decode_bytes (Pillow, containers.jpeg.read_params, pipeline.recover) → mosaic

The baselines (``baselines.py``) start from LibRaw's render of the same file; the storage sizes
(``sizes.py``) are measured once per file. Everything runs in this process, on the same (possibly cropped)
mosaic, and is scored with ``invisp_cli.metrics`` (see ``records.DEFINITIONS``). Models render LibRaw's look (the
papers' protocol); with ``looks`` each also as "<model>+look", with the camera look encode chooses by default
(``look.resolve``, fitted to the file's preview: its time counts in the encode). Every decoded JPEG of a file with a
usable preview is scored against it (ΔE cam)."""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import os
import resource
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .. import codec, metrics, rawio, zoo
from .. import look as looks
from ..errors import InputError, InvispError
from ..flows import is_video
from ..params import ReconstructionParams
from ..progress import progress_bar
from ..rawfiles import raw_files
from ..rawio import RawImage
from ..settings import JPEG, FrontEnd, Look, render_record
from ..steps import libraw_gain
from . import baselines
from .records import NUMERIC_FIELDS, BenchConfig, BenchResult, ErrorMaps, FileInfo, Record
from .sizes import Sizes, measure_sizes

EXAMPLES_DIR = Path(str(importlib.resources.files("invisp_cli.examples")))  # the top-level examples/
RECOVERY_BASELINES = ("analytic", "upi")
SIZE_BASELINES = ("dng", "jxl")
OPTIONAL_BASELINES = ("miniraw",)
ALL_BASELINES = RECOVERY_BASELINES + SIZE_BASELINES + OPTIONAL_BASELINES
ERROR_MAP_SIDE = 512  # longest side of the stored error maps / thumbnails, in pixels

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_now() -> int | None:
    """Current resident set size in bytes from /proc/self/statm; None where unavailable."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def _ru_maxrss() -> int:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r) if os.uname().sysname == "Darwin" else int(r) * 1024


RSS_METHOD = "sampled /proc/self/statm" if _rss_now() is not None else "getrusage ru_maxrss (process peak so far)"


class Stage:
    """Context manager measuring wall seconds and the process's peak RSS (MB) while the block runs."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.seconds = math.nan
        self.peak_mb = math.nan
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        v = _rss_now()
        if v is not None:
            self._peak = max(self._peak, v)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Stage:
        self._sample()
        if _rss_now() is not None:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        self.peak_mb = (self._peak if self._peak else _ru_maxrss()) / 2**20


# ---------------------------------------------------------------------------------------------- files


def collect_files(inputs: list[Path], limit: int | None = None) -> list[Path]:
    """RAW files named, or found (non-recursively, by suffix) in the folders named; default ``examples/``."""
    default = not inputs
    paths = raw_files(list(inputs) or [EXAMPLES_DIR])
    if not paths:
        where = f"the bundled examples folder {EXAMPLES_DIR}" if default else ", ".join(str(p) for p in inputs)
        raise InputError(f"no RAW files in {where}; pass RAW files or a folder (e.g. invisp bench ~/raws/)")
    unique: dict[Path, Path] = {}
    for p in paths:
        unique.setdefault(p.resolve(), p)
    files = list(unique.values())
    return files[:limit] if limit else files


def crop_window(h: int, w: int, n: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the centre n×n crop with even top/left (so the CFA phase is kept)."""
    ch, cw = min(n, h), min(n, w)
    return ((h - ch) // 2) & ~1, ((w - cw) // 2) & ~1, ch, cw


@dataclass
class Case:
    """One RAW file ready to benchmark."""

    name: str
    path: Path
    raw: RawImage
    n: np.ndarray  # normalised original mosaic, float64
    gain: float  # exposure gain of the whole file (steps.libraw_gain)
    ref: np.ndarray | None  # LibRaw's render, upright, matching the (cropped) mosaic; None if it cannot
    hl: np.ndarray | None  # sensor-orientation highlight / shadow masks
    sh: np.ndarray | None
    read_s: float
    read_peak_mb: float
    ref_s: float
    ref_peak_mb: float
    window: tuple[int, int, int, int] | None
    notes: list[str]
    preview: np.ndarray | None = None  # the camera's JPEG embedded in the file (look.read_preview); None with --crop
    framing: tuple[int, int, int, int, int] | None = None  # its framing in LibRaw's render (metrics.align_framing)


def load_case(path: Path, crop: int | None) -> Case:
    """Read the RAW, LibRaw's reference render, crop both (sensor orientation), build the masks."""
    with Stage() as st_read:
        raw = rawio.read_raw(path)
    with Stage() as st_ref:
        ref_up = rawio.render_reference(path)
    notes: list[str] = []
    ref_sensor: np.ndarray | None = rawio.undo_flip(ref_up, raw.flip)
    if ref_sensor.shape[:2] != raw.mosaic.shape:
        notes.append(f"LibRaw renders {ref_up.shape[1]}×{ref_up.shape[0]} for a {raw.mosaic.shape[1]}×"
                     f"{raw.mosaic.shape[0]} mosaic (non-square pixels?): no RGB metrics, masks or analytic/upi")
        ref_sensor = None
    gain = libraw_gain(raw)  # of the whole file, as LibRaw's render
    window = None
    if crop:
        window = crop_window(*raw.mosaic.shape, crop)
        y0, x0, ch, cw = window
        raw.mosaic = np.ascontiguousarray(raw.mosaic[y0 : y0 + ch, x0 : x0 + cw])
        raw.margins = (raw.margins[0] + y0, raw.margins[1] + x0)
        if ref_sensor is not None:
            ref_sensor = ref_sensor[y0 : y0 + ch, x0 : x0 + cw]
    hl = sh = ref = None
    if ref_sensor is not None:
        hl, sh = metrics.highlight_mask(ref_sensor), metrics.shadow_mask(ref_sensor)
        ref = rawio.apply_flip(ref_sensor, raw.flip)
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    preview = None if crop else looks.read_preview(path)
    framing = None if preview is None or ref is None else metrics.align_framing(ref, preview)
    if crop:
        notes.append("ΔE cam n/a: a crop has not the preview's framing")
    return Case(path.name, path, raw, n, gain, ref, hl, sh, st_read.seconds, st_read.peak_mb, st_ref.seconds,
                st_ref.peak_mb, window, notes, preview, framing)


# -------------------------------------------------------------------------------------------- scoring


def _error_map(err: np.ndarray, flip: int) -> np.ndarray:
    """RMS of |n̂ − n| over f×f blocks (f even, so whole CFA tiles), longest side ≤ ERROR_MAP_SIDE, upright."""
    h, w = err.shape
    f = max(2, 2 * math.ceil(max(h, w) / ERROR_MAP_SIDE / 2))
    hh, ww = max(1, h // f), max(1, w // f)
    if h < f or w < f:
        return rawio.apply_flip(np.abs(err).astype(np.float32), flip)
    e2 = (err[: hh * f, : ww * f] ** 2).reshape(hh, f, ww, f).mean(axis=(1, 3))
    return rawio.apply_flip(np.sqrt(e2).astype(np.float32), flip)


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """uint8 upright image shrunk so that its longest side is ≤ ERROR_MAP_SIDE."""
    img = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    img.thumbnail((ERROR_MAP_SIDE, ERROR_MAP_SIDE))
    return np.asarray(img)


def score(case: Case, mosaic: np.ndarray, rgb: np.ndarray | None, rec: Record, keep_map: ErrorMaps | None) -> None:
    """Fill ``rec``'s quality metrics from the recovered mosaic and (if any) the decoded upright RGB."""
    nh = metrics.normalise_mosaic(mosaic, case.raw.black, case.raw.white)
    rec.raw_psnr_lin = metrics.raw_psnr_lin(nh, case.n)
    rec.raw_psnr_gamma = metrics.raw_psnr_gamma(nh, case.n)
    rec.raw_psnr_paper = metrics.raw_psnr_paper(nh, case.n, case.raw.cfa, case.raw.wb)
    if case.hl is not None and case.sh is not None:
        rec.raw_psnr_lin_hl = metrics.raw_psnr_lin(nh, case.n, mask=case.hl)
        rec.raw_psnr_gamma_hl = metrics.raw_psnr_gamma(nh, case.n, mask=case.hl)
        rec.raw_psnr_lin_sh = metrics.raw_psnr_lin(nh, case.n, mask=case.sh)
        rec.raw_psnr_gamma_sh = metrics.raw_psnr_gamma(nh, case.n, mask=case.sh)
        rec.hl_frac, rec.sh_frac = float(case.hl.mean()), float(case.sh.mean())
    if rgb is not None and case.ref is not None and rgb.shape == case.ref.shape:
        rec.rgb_psnr = metrics.rgb_psnr(rgb, case.ref)
        if min(rgb.shape[:2]) >= 11:
            rec.ssim = metrics.ssim(rgb, case.ref)
    if rgb is not None and case.preview is not None:
        rec.delta_e_cam = metrics.delta_e_camera(rgb, case.preview, case.framing)
    if keep_map is not None:
        keep_map.maps[rec.method] = (_error_map(nh - case.n, case.raw.flip), rec.quality)


def _ratios(rec: Record, s: Sizes, cropped: bool) -> None:
    b = rec.bytes
    rec.ratio_file = None if cropped or not s.file else metrics.compression_ratio(s.file, b)
    rec.ratio_bmp = metrics.compression_ratio(s.b_bmp, b)
    rec.ratio_dng = None if s.dng is None else metrics.compression_ratio(s.dng, b)
    rec.ratio_dng_lossless = None if s.dng_lossless is None else metrics.compression_ratio(s.dng_lossless, b)
    rec.ratio_jxl = None if s.jxl is None else metrics.compression_ratio(s.jxl, b)


# ------------------------------------------------------------------------------------------- methods


def _invisp(case: Case, entry: zoo.ModelEntry, model: torch.nn.Module, q: int, cfg: BenchConfig,
            look: Look | None = None) -> tuple:
    raw = case.raw
    with Stage() as enc:
        front = dataclasses.replace(FrontEnd.of(entry.isp, case.gain), look=look)
        settings = render_record(JPEG(q, cfg.subsampling), front)
        data = codec.encode_bytes(raw, model, ReconstructionParams.from_raw(raw, entry.id, entry.sha256, settings),
                                  cfg.tile)
    with Stage() as dec:
        decoded, _, recovered = codec.decode_bytes(data, model, cfg.tile, case.name)
        mosaic = recovered.mosaic
    enc_s, enc_mb = case.read_s + enc.seconds, max(case.read_peak_mb, enc.peak_mb)
    return data, decoded, mosaic, enc_s, enc_mb, dec.seconds, dec.peak_mb


def _libraw_baseline(case: Case, method: str, q: int, cfg: BenchConfig) -> tuple:
    assert case.ref is not None
    with Stage() as enc:
        data = baselines.encode_libraw_jpeg(case.ref, case.raw, q, cfg.subsampling,
                                            gain=case.gain if method == "analytic" else None)
    with Stage() as dec:
        decoded = baselines.decode_jpeg(data)
        rgb = baselines.recovery_rgb(data, decoded)
        if method == "analytic":
            mosaic = baselines.analytic_recover(rgb, case.raw, case.gain, cfg.tile)
        else:
            mosaic = baselines.upi_recover(rgb, case.raw, tile=cfg.tile)
    return (data, decoded, mosaic, case.ref_s + enc.seconds, max(case.ref_peak_mb, enc.peak_mb), dec.seconds,
            dec.peak_mb)


def _miniraw(case: Case) -> tuple:
    with Stage() as enc:
        data = baselines.miniraw_encode(case.raw)
    with Stage() as dec:
        mosaic = baselines.miniraw_decode(data)
    return data, None, mosaic, enc.seconds, enc.peak_mb, dec.seconds, dec.peak_mb


# ---------------------------------------------------------------------------------------------- main


def _q(q: int | None) -> str:
    return "" if q is None else f" q{q}"


def resolve_baselines(requested: list[str] | None, warnings: list[str]) -> list[str]:
    """The baselines to run: ``requested`` (validated), or every available one."""
    if requested is None:
        return [b for b in ALL_BASELINES if b != "miniraw" or baselines.miniraw_available()]
    unknown = [b for b in requested if b not in ALL_BASELINES]
    if unknown:
        raise InputError(f"unknown baseline(s) {', '.join(unknown)} (known: {', '.join(ALL_BASELINES)})")
    out = list(dict.fromkeys(requested))
    if "miniraw" in out and not baselines.miniraw_available():
        warnings.append("miniraw is not installed (pip install miniraw): skipped")
        out.remove("miniraw")
    return out


def _models_for(cfg: BenchConfig, make: str, warnings: list[str]) -> list[zoo.ModelEntry]:
    entries = [zoo.find_model(m) for m in cfg.models]
    if cfg.auto:
        try:
            entries.append(zoo.select_model(make))
        except InvispError as e:
            warnings.append(f"--auto: {e}")
    elif not cfg.models:  # every image model (video flows need neighbouring frames: benchmarks/video.py)
        entries = [e for e in zoo.list_models() if not is_video(e.arch)]
    return list({e.id: e for e in entries}.values())


def mean_records(records: list[Record]) -> list[Record]:
    """One record per (method, quality): the mean over files of every numeric field (NaN/None skipped).

    Only files that every recovery method scored are averaged (e.g. the baselines cannot run on a file whose
    LibRaw render has another size), so that the means of different methods compare the same images."""
    scored: dict[str, set[str]] = {}
    for r in records:
        if r.quality is not None and not math.isnan(r.raw_psnr_gamma):
            scored.setdefault(r.method, set()).add(r.file)
    common = set.intersection(*scored.values()) if scored else set()
    groups: dict[tuple[str, int | None], list[Record]] = {}
    for r in records:
        if r.file in common or r.quality is None:
            groups.setdefault((r.method, r.quality), []).append(r)
    means = []
    for (method, q), rs in groups.items():
        m = Record(file="MEAN", method=method, kind=rs[0].kind, quality=q, subsampling=rs[0].subsampling,
                   bytes=int(round(np.mean([r.bytes for r in rs]))), bpp=math.nan, n_files=len(rs))
        for name in NUMERIC_FIELDS:
            if name == "bytes":
                continue
            vals = [getattr(r, name) for r in rs]
            vals = [float(v) for v in vals if v is not None and not math.isnan(float(v))]
            setattr(m, name, float(np.mean(vals)) if vals else (None if name.startswith("ratio") else math.nan))
        means.append(m)
    return means


BD_REFERENCE = "invisp-frontend-v1"  # the analytic front end with no learned stage: the baseline to beat


def bd_rates(records: list, reference: str = BD_REFERENCE, metric: str = "raw_psnr_gamma") -> dict:
    """Bjøntegaard deltas of every method with a quality axis against ``reference``, per file, on the curve
    ``metric`` (RAW-PSNR-γ) vs bpp over all benchmarked qualities (``metrics.bd_rate`` / ``bd_psnr``, piecewise
    cubic; the cubic fit where there are ≥ 4 qualities is reported beside it), and their means over the files
    where both curves exist. ``records``: ``Record``s or their dicts (report.json). Empty if ``reference`` did
    not run."""
    curves: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in records:
        r = r if isinstance(r, dict) else r.__dict__
        v, b = r.get(metric), r.get("bpp")
        if r.get("quality") is None or v is None or b is None or not (math.isfinite(v) and math.isfinite(b)):
            continue
        curves.setdefault((r["method"], r["file"]), []).append((b, v))
    methods = list(dict.fromkeys(m for m, _ in curves))
    if reference not in methods:
        return {}
    out: dict = {"reference": reference, "metric": metric, "rate": "bpp", "methods": {}}
    for m in methods:
        if m == reference:
            continue
        per_file = {}
        for (mm, f), pts in curves.items():
            ref = curves.get((reference, f))
            if mm != m or not ref or len(pts) < 2 or len(ref) < 2:
                continue
            (r1, p1), (r2, p2) = zip(*ref, strict=True), zip(*pts, strict=True)
            per_file[f] = {"bd_rate": metrics.bd_rate(r1, p1, r2, p2), "bd_psnr": metrics.bd_psnr(r1, p1, r2, p2),
                           "bd_rate_cubic": metrics.bd_rate(r1, p1, r2, p2, "cubic")}
        means = {}
        for k in ("bd_rate", "bd_psnr", "bd_rate_cubic"):
            vals = [d[k] for d in per_file.values() if math.isfinite(d[k])]
            means[k] = float(np.mean(vals)) if vals else math.nan
            means[k.replace("bd_", "n_")] = len(vals)
        out["methods"][m] = {"mean": means, "per_file": per_file}
    return out


def run_bench(cfg: BenchConfig) -> BenchResult:
    """Benchmark every file; return records, per-(method, quality) means, sizes and error maps."""
    warnings: list[str] = []
    files = collect_files(cfg.inputs, cfg.limit)
    chosen = resolve_baselines(cfg.baselines, warnings)
    for m in cfg.models:  # fail early on an unknown --model
        zoo.find_model(m)
    qualities = sorted(dict.fromkeys(int(q) for q in cfg.qualities))
    q_map = max(qualities)
    infos: list[FileInfo] = []
    records: list[Record] = []
    maps: dict[str, ErrorMaps] = {}
    skipped: list[tuple[str, str]] = []
    model_ids: list[str] = []
    if not cfg.models and not cfg.auto and not zoo.list_models():
        warnings.append("no invisp models in the registry (weights/, $INVISP_WEIGHTS): running baselines only")

    n_rec = len([b for b in chosen if b in RECOVERY_BASELINES])
    with progress_bar("benchmarking", total=len(files)) as advance:
        for path in files:
            try:
                case = load_case(path, cfg.crop)
            except InvispError as e:
                skipped.append((path.name, str(e)))
                warnings.append(f"skipped {e}")
                advance(1)
                continue
            raw = case.raw
            sizes = measure_sizes(raw, None if cfg.crop else path.stat().st_size,
                                  dng="dng" in chosen, jxl="jxl" in chosen)
            info = FileInfo(case.name, str(path), tuple(raw.mosaic.shape), int(raw.bits), raw.cfa, int(raw.flip),
                            case.window, sizes, case.read_s, case.ref_s, list(case.notes))
            infos.append(info)
            em = ErrorMaps(thumbnail(case.ref) if case.ref is not None else None)
            maps[case.name] = em
            entries = _models_for(cfg, str(raw.exif.get("make", "")), warnings)
            model_ids += [e.id for e in entries if e.id not in model_ids]
            jobs: list[tuple[str, str, int | None, object]] = []
            for e in entries:
                jobs += [(e.id, "invisp", q, e) for q in qualities]
            fitted: dict[str, tuple[Look | None, float]] = {}  # the camera look of each "<model>+look", fit seconds
            if cfg.looks and not cfg.crop:
                for e in entries:
                    with Stage() as st_look:
                        camera = looks.resolve("camera", path, raw, FrontEnd.of(e.isp, case.gain))
                    fitted[e.id + "+look"] = (camera, st_look.seconds)
                    jobs += [(e.id + "+look", "invisp", q, e) for q in qualities]
            if case.ref is not None:
                jobs += [(b, "baseline", q, None) for b in chosen if b in RECOVERY_BASELINES for q in qualities]
            elif n_rec:
                info.notes.append("analytic/upi skipped: no LibRaw render of the mosaic's size")
            if "miniraw" in chosen:
                if raw.mosaic.shape[0] % 2 or raw.mosaic.shape[1] % 2:
                    info.notes.append("miniraw skipped: odd-sized mosaic")
                else:
                    jobs.append(("miniraw", "baseline", None, None))
            for method, kind, q, entry in jobs:
                try:
                    if kind == "invisp":
                        assert isinstance(entry, zoo.ModelEntry)
                        look, fit_s = fitted.get(method, (None, 0.0))
                        out = _invisp(case, entry, zoo.load_model(entry), int(q), cfg, look)
                        out = (*out[:3], out[3] + fit_s, *out[4:])
                    elif method == "miniraw":
                        out = _miniraw(case)
                    else:
                        out = _libraw_baseline(case, method, int(q), cfg)
                except InvispError as e:
                    warnings.append(f"{case.name}: {method}{_q(q)}: {e}")
                    continue
                except Exception as e:  # a failing method must not sink the others' results
                    if os.environ.get("INVISP_DEBUG"):
                        raise
                    warnings.append(f"{case.name}: {method}{_q(q)}: internal error {type(e).__name__}: {e}")
                    continue
                data, decoded, mosaic, enc_s, enc_mb, dec_s, dec_mb = out
                rec = Record(file=case.name, method=method, kind=kind, quality=q,
                             subsampling=cfg.subsampling if q is not None else None, bytes=len(data),
                             bpp=metrics.bpp(len(data), raw.mosaic.size), encode_s=enc_s, decode_s=dec_s,
                             encode_peak_rss_mb=enc_mb, decode_peak_rss_mb=dec_mb)
                _ratios(rec, sizes, cropped=cfg.crop is not None)
                score(case, mosaic, decoded, rec, em if q in (None, q_map) else None)
                if method == "upi":
                    rec.note = "no file metadata (camera priors)"
                records.append(rec)
            for note in info.notes:
                warnings.append(f"{case.name}: {note}")
            del case
            advance(1)
    if not infos:
        raise InputError("no RAW file could be benchmarked: " + "; ".join(f"{n}: {why}" for n, why in skipped))
    return BenchResult(cfg, infos, records, mean_records(records), maps, skipped, warnings, chosen, model_ids,
                       RSS_METHOD, bd_rates(records))


def write_outputs(result: BenchResult, out: Path, plots: bool = True) -> list[Path]:
    """report.json, report.csv and (unless ``plots`` is False) rd_curve.png and errors_<file>.png in ``out``."""
    from . import plot, report

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create the report folder ({e.strerror or e})") from None
    written = [report.write_json(result, out / "report.json"), report.write_csv(result, out / "report.csv")]
    if plots:
        written += plot.write_plots(result, out)
    return written
