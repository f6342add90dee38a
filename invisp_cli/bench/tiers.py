"""``invisp bench --tiers``: the storage tiers of one RAW file — the invisp JPEG + residual layer at ``--max-error``
tiers (Ks, N or exact) against JPEG XL lossless of the mosaic, JPEG XL lossy of the four CFA planes at distance
0.2 (the recipe of Adobe's lossy DNG) and the lossless-JPEG (LJ92) DNG invisp decode writes.

Every invisp file is built in process exactly as ``invisp encode`` builds it (the camera-matched model, the look
``look``; a σ tier without a fixed quality takes ``residual.choose_quality``'s) and its layer decoded back. For
each: bpp (``metrics.bpp``: bytes·8 / sites), max error in σ, max over sites of |m̂ − m| / σ(n(m)) under the
file's noise model (``noise.noise_model``), and RAW-PSNR-lin (``metrics.raw_psnr_lin``, dB). A σ tier's bound
is asserted at every site; exact must give the mosaic back.

Noise model honesty (``patch_sigma``, the independent estimate): on each position plane, 8×8 patches; a patch's
residual variance v = |r|²/61, r the patch minus its least-squares plane a + b·x + c·y (61 = 64 − 3 degrees of
freedom); the patches whose mean lies within an octave of 18 % grey (n ∈ [0.127, 0.255]), with no site at or
above 98 % of white, and whose four neighbouring patches' largest v is among the lowest 10 % of those patches'
(flat areas, chosen by the neighbours' noise, not the patch's own); σ̂ = √median v per position, averaged over
the positions (as ``noise.mid_grey_sigma``), against the median model σ at the same patches. Unlike contrasts of
neighbours it sees noise that is correlated over a few sites (the residual keeps all of it but the plane's three
dimensions): on noise filtered by [1, 4, 1] ⊗ [1, 4, 1] (ρ(1) = 0.44) it finds 0.94–0.96 σ where Immerkær's
Laplacian finds 0.43–0.44 σ (``tests/test_noise.py``); texture can only raise it. ``laplacian_sigma`` is kept
beside it: Immerkær's σ = 1.4826·median|L ∗ x| / 6, L = [[1, −2, 1], [−2, 4, −2], [1, −2, 1]], over the sites
whose 3×3 plane mean lies within that octave and whose Sobel gradient |Gx| + |Gy| is at most the median of those
sites' — right for white noise, blind to correlated noise.

``benchmarks/noise_tier.py`` runs the same ``measure`` (with a JPEG-quality sweep, its markdown tables and the
24 MP timing)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import imagecodecs
import numpy as np
from rich import box
from rich.table import Table

from .. import look as looks
from .. import metrics, noise, pipeline, rawio, residual, zoo
from ..codec import render_settings
from ..containers import jpeg, layer
from ..errors import InputError, InvispError
from ..params import ReconstructionParams
from ..progress import progress_bar
from ..settings import DEFAULT_LOOK, Look
from .report import _clean
from .sizes import cfa_planes, dng_bytes, from_cfa_planes, jxl_lossless

#: the tiers of the issue's table (``invisp bench --tiers`` default in the docs)
DEFAULT_TIERS = "0.25s,0.5s,1s,exact"
LOSSY_DISTANCE = 0.2
LAPLACE = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64)
SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)
MID = (0.18 / 2**0.5, 0.18 * 2**0.5)
PATCH = 8  # sites per side of patch_sigma's patches
FLAT_SHARE = 0.1  # patch_sigma keeps the patches whose neighbours are the flattest tenth
MIN_PATCHES = 50


def parse_tiers(text: str) -> list[residual.Tolerance]:
    """"0.25s,0.5s,exact,4" → [Sigma(0.25), Sigma(0.5), 0, 4] ("exact" = 0); ValueError naming a bad entry."""
    out: list[residual.Tolerance] = []
    for part in (p.strip() for p in text.split(",")):
        if part:
            out.append(0 if part.lower() == "exact" else residual.parse_max_error(part))
    if not out:
        raise ValueError(f"{text!r}: no tiers (e.g. {DEFAULT_TIERS})")
    return list(dict.fromkeys(out))


def tier_name(tol: residual.Tolerance) -> str:
    """"0.5s", "exact" or "N" (raw units)."""
    return str(tol) if isinstance(tol, residual.Sigma) else "exact" if tol == 0 else str(tol)


def _filter3(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid 3×3 correlation of a 2-D array with ``k``."""
    h, w = x.shape
    return sum(k[i, j] * x[i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3))


def _patch_variances(x: np.ndarray, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(residual variance after a plane fit, mean, max) of each b×b patch of a 2-D array, as (rows, cols) grids."""
    h, w = x.shape[0] // b, x.shape[1] // b
    f = x[: h * b, : w * b].reshape(h, b, w, b).transpose(0, 2, 1, 3).reshape(h, w, b * b)
    yy, xx = np.mgrid[0:b, 0:b]
    basis = np.linalg.qr(np.stack([np.ones(b * b), xx.ravel() - (b - 1) / 2, yy.ravel() - (b - 1) / 2], 1))[0]
    r = f - (f @ basis) @ basis.T
    return np.einsum("ijk,ijk->ij", r, r) / (b * b - 3), f.mean(-1), f.max(-1)


def patch_sigma(raw: rawio.RawImage, model: noise.NoiseModel, level: float = 0.18) -> tuple[float, float, int]:
    """(patch σ, model σ at the same patches, patches) within an octave of ``level``, normalised; NaN with fewer than
    ``MIN_PATCHES`` patches (module docstring)."""
    p, q = noise.period(raw)
    black = np.asarray(raw.black, np.float64).reshape(p, q)
    m = noise.flat(raw.mosaic)
    lo, hi = level / 2**0.5, level * 2**0.5
    est, model_s, n = [], [], 0
    for pos, (i, j) in enumerate(np.ndindex(p, q)):
        x = (m[i::p, j::q].astype(np.float64) - black[i, j]) / (raw.white - black[i, j])
        v, mean, top = _patch_variances(x, PATCH)
        if min(v.shape) < 3:
            continue
        v = np.where(top < 0.98, v, np.inf)  # a clipped patch is neither measured nor a flat neighbour
        nb = np.maximum.reduce([v[:-2, 1:-1], v[2:, 1:-1], v[1:-1, :-2], v[1:-1, 2:]])
        v, mean = v[1:-1, 1:-1], mean[1:-1, 1:-1]
        sel = (mean >= lo) & (mean <= hi) & np.isfinite(v) & np.isfinite(nb)
        if sel.sum() * FLAT_SHARE >= 1:
            flat = nb[sel] <= np.quantile(nb[sel], FLAT_SHARE)
            est.append(math.sqrt(float(np.median(v[sel][flat]))))
            model_s.append(float(np.median(model.sigma(mean[sel][flat], pos))))
            n += int(flat.sum())
    if n < MIN_PATCHES:
        return math.nan, math.nan, n
    return float(np.mean(est)), float(np.mean(model_s)), n


def laplacian_sigma(raw: rawio.RawImage, model: noise.NoiseModel) -> tuple[float, float, float, int]:
    """(Immerkær σ, model σ at the same level, median level, sites) at mid-grey, normalised (module docstring)."""
    p, q = noise.period(raw)
    black = np.asarray(raw.black, np.float64).reshape(p, q)
    m = noise.flat(raw.mosaic)
    abs_l, levels, model_s = [], [], []
    for pos, (i, j) in enumerate(np.ndindex(p, q)):
        x = (m[i::p, j::q].astype(np.float64) - black[i, j]) / (raw.white - black[i, j])
        if min(x.shape) < 3:
            continue
        mean = _filter3(x, np.full((3, 3), 1 / 9))
        lap = np.abs(_filter3(x, LAPLACE))
        grad = np.abs(_filter3(x, SOBEL)) + np.abs(_filter3(x, SOBEL.T))
        sel = (mean >= MID[0]) & (mean <= MID[1])
        flat = grad[sel] <= np.median(grad[sel]) if sel.any() else sel[sel]
        abs_l.append(lap[sel][flat])
        levels.append(mean[sel][flat])
        model_s.append(model.sigma(mean[sel][flat], pos))
    if not abs_l or sum(v.size for v in abs_l) < 1000:
        return math.nan, math.nan, math.nan, int(sum(v.size for v in abs_l))
    lap, lev, ms = (np.concatenate(v) for v in (abs_l, levels, model_s))
    return 1.4826 * float(np.median(lap)) / 6, float(np.median(ms)), float(np.median(lev)), int(lap.size)


def render(raw: rawio.RawImage, path: Path, look: str = DEFAULT_LOOK) -> tuple[np.ndarray, zoo.ModelEntry, float,
                                                                                  Look | None]:
    """(upright uint8 render, model entry, exposure gain, look) as ``invisp encode --look LOOK`` makes them."""
    entry = zoo.select_model(raw.exif.get("make", ""))
    fitted = looks.resolve(look, path, raw, pipeline.front_end_settings(raw, entry.isp))
    settings = render_settings(raw, 90, isp=entry.isp, look=fitted)
    rgb = pipeline.render([raw], zoo.load_stage(entry), [settings])
    return rgb, entry, float(settings["exposure_gain"]), fitted


def jpeg_bytes(raw: rawio.RawImage, rgb: np.ndarray, entry: zoo.ModelEntry, quality: int,
               tol: residual.Tolerance | None, look: Look | None) -> tuple[bytes, np.ndarray]:
    """The invisp JPEG (no layer yet) of ``rgb`` with the record ``invisp encode`` writes for ``tol``, and its
    decoded pixels (``jpeg.encode_jpeg_pixels``: what the layer is predicted from)."""
    params = ReconstructionParams.from_raw(raw, entry.id, entry.sha256,
                                           render_settings(raw, quality, isp=entry.isp, layer=tol, look=look))
    return jpeg.encode_jpeg_pixels(rgb, params)


def decoded_layer(data: bytes) -> np.ndarray:
    """The mosaic (its coded (H, W) or (H, 3W) array) the layer of an invisp JPEG gives, verified."""
    header, pred, payload = residual.parse_layer(layer.read_layer(data), "bench")
    return residual.reconstruct(header, pred, payload, residual.decode_pixels(data), "bench")


def errors(raw: rawio.RawImage, rec: np.ndarray, sig: np.ndarray) -> tuple[float, float]:
    """(max |m̂ − m| / σ, RAW-PSNR-lin in dB) of a recovered mosaic ``rec`` (any shape of raw.mosaic's size)."""
    rec = rec.reshape(raw.mosaic.shape)
    err = np.abs(rec.astype(np.float64) - raw.mosaic)
    n = metrics.normalise_mosaic(raw.mosaic, raw.black, raw.white)
    return float((err / sig).max()), metrics.raw_psnr_lin(metrics.normalise_mosaic(rec, raw.black, raw.white), n)


def measure(path: Path, tiers: list[residual.Tolerance], quality: int = 90, sweep: tuple[int, ...] = (),
            sigma_quality: int | None = None, look: str = DEFAULT_LOOK) -> dict:
    """One file's row: noise model, the plain JPEG at ``quality``, each tier (σ tiers at ``sigma_quality``, None:
    chosen per file; N and exact at ``quality``), the 0.5σ total at each ``sweep`` quality, JPEG XL lossless,
    JPEG XL lossy d0.2 of the CFA planes (2×2 CFAs) and the LJ92 DNG (module docstring)."""
    raw = rawio.read_raw(path)
    sites = raw.mosaic.size
    bpp = lambda b: metrics.bpp(b, sites)  # noqa: E731
    t0 = time.perf_counter()
    model = noise.noise_model(raw)
    t_model = time.perf_counter() - t0
    sig = noise.sigma_raw(model, raw.mosaic, raw.black, raw.white)
    ind, mod, n_patches = patch_sigma(raw, model)
    lap, lap_mod, lev, n_sites = laplacian_sigma(raw, model)
    rgb, entry, gain, fitted = render(raw, path, look)
    plain, _ = jpeg_bytes(raw, rgb, entry, quality, None, fitted)
    prof = noise.from_noise_profile(raw)
    row = {"file": path.name, "mp": sites / 1e6, "bits": int(raw.bits), "cfa": raw.cfa, "model": entry.id,
           "noise": {**model.to_json(), "sigma_mid": noise.mid_grey_sigma(model), "seconds": t_model},
           "independent": {"sigma": ind, "model_sigma": mod, "patches": n_patches,
                           "ratio": mod / ind if ind == ind else None},
           "laplacian": {"sigma": lap, "model_sigma": lap_mod, "level": lev, "sites": n_sites,
                         "ratio": lap_mod / lap if lap == lap else None},
           "profile_sigma_mid": noise.mid_grey_sigma(prof) if prof else None,
           "jpeg_bpp": bpp(len(plain)), "jpeg_quality": quality, "tiers": {}, "sweep": {}}
    for tol in tiers:
        is_sigma = isinstance(tol, residual.Sigma)
        bins = residual.sigma_bins(raw, tol, model) if is_sigma else None
        q = quality if not is_sigma else sigma_quality or residual.choose_quality(raw, rgb, gain, bins, "4:4:4",
                                                                                  look=fitted)
        data, pixels = jpeg_bytes(raw, rgb, entry, q, tol, fitted)
        data, lb = residual.attach(data, raw, gain, tol, bins, fitted, pixels)
        rec = decoded_layer(data).reshape(raw.mosaic.shape)
        err = np.abs(rec.astype(np.float64) - raw.mosaic)
        bound = tol.k * sig if is_sigma else tol
        assert np.all(err <= bound + 1e-9), (path.name, tier_name(tol))
        mx, psnr = errors(raw, rec, sig)
        row["tiers"][tier_name(tol)] = {"bpp": bpp(len(data)), "layer_bpp": bpp(lb), "max_sigma": mx,
                                        "psnr": psnr, "quality": q}
    half = residual.Sigma(0.5)
    half_bins = residual.sigma_bins(raw, half, model) if sweep else None
    for q in sweep:
        data, pixels = jpeg_bytes(raw, rgb, entry, q, half, fitted)
        data, lb = residual.attach(data, raw, gain, half, half_bins, fitted, pixels)
        row["sweep"][q] = {"bpp": bpp(len(data)), "jpeg_bpp": bpp(len(data) - lb)}
    row["jxl_lossless_bpp"] = bpp(jxl_lossless(noise.flat(raw.mosaic))[0])
    row["lj92_dng_bpp"] = bpp(dng_bytes(raw))  # rawio.write_dng: lossless-JPEG tiles, as invisp decode writes
    if noise.period(raw) == (2, 2) and raw.mosaic.shape[0] % 2 == 0 and raw.mosaic.shape[1] % 2 == 0:
        lossy = bytes(imagecodecs.jpegxl_encode(cfa_planes(raw.mosaic), distance=LOSSY_DISTANCE, effort=7))
        rec = from_cfa_planes(np.asarray(imagecodecs.jpegxl_decode(lossy)).reshape(raw.mosaic.shape))
        mx, psnr = errors(raw, rec, sig)
        row["jxl_lossy"] = {"bpp": bpp(len(lossy)), "max_sigma": mx, "psnr": psnr}
    return row


def _f(v: float | None, d: int = 2) -> str:
    return "n/a" if v is None or v != v else ("∞" if v == math.inf else f"{v:.{d}f}")


def table(rows: list[dict]) -> Table:
    """The size table: per file, bpp (max error in σ, RAW-PSNR-lin dB, JPEG q) of each tier and baseline; means."""
    t = Table(title="Storage tiers: bpp (max error in σ, RAW-PSNR-lin dB)", box=box.SIMPLE_HEAD)
    names = list(dict.fromkeys(k for r in rows for k in r["tiers"]))
    for col in ("file", "σ(0.18) model / indep.", f"JPEG q{rows[0]['jpeg_quality']}", *names, "JXL lossless",
                f"JXL lossy d{LOSSY_DISTANCE:g}", "LJ92 DNG"):
        t.add_column(col, justify="left" if col == "file" else "right")
    for r in rows:
        ind, lossy = r["independent"], r.get("jxl_lossy")
        tiers = [f"{_f(x['bpp'])} ({_f(x['max_sigma'])}σ, {_f(x['psnr'], 1)}, q{x['quality']})" if x else "n/a"
                 for x in (r["tiers"].get(k) for k in names)]
        t.add_row(r["file"], f"{_f(r['noise']['sigma_mid'], 5)} / {_f(ind['sigma'], 5)}", _f(r["jpeg_bpp"]), *tiers,
                  _f(r["jxl_lossless_bpp"]),
                  f"{_f(lossy['bpp'])} ({_f(lossy['max_sigma'])}σ, {_f(lossy['psnr'], 1)})" if lossy else "n/a",
                  _f(r["lj92_dng_bpp"]))
    mean = lambda vals: _f(float(np.mean(vals))) if vals else "n/a"  # noqa: E731
    t.add_row("mean", "", mean([r["jpeg_bpp"] for r in rows]),
              *(mean([r["tiers"][k]["bpp"] for r in rows if k in r["tiers"]]) for k in names),
              mean([r["jxl_lossless_bpp"] for r in rows]),
              mean([r["jxl_lossy"]["bpp"] for r in rows if "jxl_lossy" in r]), mean([r["lj92_dng_bpp"] for r in rows]))
    return t


def plot(rows: list[dict], path: Path) -> Path:
    """bpp against max error in σ (symlog x): each file's invisp tiers (o-), JPEG XL lossy d0.2 (x) and JPEG XL
    lossless (□, at 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, r in enumerate(rows):
        pts = sorted((t["max_sigma"], t["bpp"]) for t in r["tiers"].values())
        line, = ax.plot(*zip(*pts, strict=True), "o-", lw=1, ms=3, label=r["file"][:24], color=plt.cm.tab20(i % 20))
        if "jxl_lossy" in r:
            ax.plot(r["jxl_lossy"]["max_sigma"], r["jxl_lossy"]["bpp"], "x", color=line.get_color())
        ax.plot(0, r["jxl_lossless_bpp"], "s", mfc="none", color=line.get_color(), ms=4)
    ax.set_xscale("symlog", linthresh=0.25)
    ax.set_xlabel("max error over sites (σ of the file's noise model; 0 = exact; log above 0.25)")
    ax.set_ylabel("bpp")
    ax.set_title("invisp JPEG + layer (o-), JPEG XL lossy CFA d=0.2 (x), JPEG XL lossless (□)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_tiers(files: list[Path], tiers: list[residual.Tolerance], quality: int, out: Path, plots: bool = True,
              look: str = DEFAULT_LOOK) -> tuple[list[dict], list[Path], list[str]]:
    """``measure`` of every file (one that cannot be read or coded is skipped with a warning); writes
    ``out``/tiers.json ({"tiers", "quality", "rows"}) and, with ``plots``, ``out``/tiers.png: (rows, written,
    warnings)."""
    rows, warnings = [], []
    with progress_bar("tiers", total=len(files)) as advance:
        for path in files:
            try:
                rows.append(measure(path, tiers, quality, look=look))
            except InvispError as e:
                warnings.append(f"skipped {e}")
            advance(1)
    if not rows:
        raise InputError("no RAW file could be measured: " + "; ".join(warnings))
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create the report folder ({e.strerror or e})") from None
    doc = {"tiers": [tier_name(t) for t in tiers], "quality": quality, "look": look, "rows": rows}
    (out / "tiers.json").write_text(json.dumps(_clean(doc), indent=1, allow_nan=False, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
    written = [out / "tiers.json"] + ([plot(rows, out / "tiers.png")] if plots else [])
    return rows, written, warnings
