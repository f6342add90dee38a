"""Decode-side learning, the cheapest form: a fitted linear estimator of each RAW value from the 3 decoded channels
in a (2R+1)² window (the 4:4:4 JPEG holds three values per Bayer site, two of them demosaic interpolations of the
neighbours), replacing the front end's inverse "pick the site's own channel". Per colour, ridge regression in the
γ (x^(1/2.2)) domain on the residual to the own-channel value; leave-one-file-out over ../shared/data/raw
(a centre crop of each), JPEG q90 4:4:4 of the front end. Prints RAW-PSNR-γ of the front end's inverse and of the
filtered one per held-out file, and the mean gain (the floor a learned stage must clear: ≥ +1.0 dB, no file < −0.2).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/decode_filter.py [LAMBDA] [RADIUS]
"""
import io
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from invisp_cli import codec, pipeline, rawio
from invisp_cli.flows import build
from invisp_cli.metrics import normalise_mosaic, raw_psnr_gamma
from invisp_cli.settings import FrontEnd
from invisp_cli.steps import BilinearDemosaic, Chain, cfa_index, front_end

torch.set_num_threads(1)
R = int(sys.argv[2]) if len(sys.argv) > 2 else 2  # window radius
files = sorted((Path(__file__).resolve().parents[2] / "shared" / "data" / "raw").iterdir())
model = build("frontend")
ISP = {"demosaic": "mhc", "highlight_knee": 0.8}


def g(v):
    return np.sign(v) * np.abs(v) ** (1 / 2.2)


def gi(v):
    return np.sign(v) * np.abs(v) ** 2.2


def prep(f, q=90, crop=1024):
    raw = rawio.read_raw(f)
    h, w = raw.mosaic.shape
    ch, cw = min(crop, h) // 4 * 4, min(crop, w) // 4 * 4
    y0, x0 = (h - ch) // 4 * 2, (w - cw) // 4 * 2
    raw = raw.crop(y0, x0, ch, cw)
    s = codec.render_settings(raw, q, "4:4:4", ISP)
    rgb = pipeline.render([raw], model, [s])  # flip 0 after crop
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=q, subsampling=0)
    dec = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).astype(np.float32) / 255
    steps = front_end(raw, FrontEnd.from_json(s))
    k = next(i for i, st in enumerate(steps) if isinstance(st, BilinearDemosaic))
    pre, dem, post = Chain(steps[:k]), steps[k], Chain(steps[k + 1:])
    with torch.no_grad():
        m = torch.from_numpy(raw.mosaic.astype(np.float32))[None, None]
        t = pre.forward(m)[0, 0].numpy()
        z = post.inverse(torch.from_numpy(dec.transpose(2, 0, 1).copy())[None])[0].numpy()
    return raw, t, z, pre, dem

def feats(z):
    gz = g(z)
    H, W = z.shape[1:]
    p = np.pad(gz, ((0, 0), (R, R), (R, R)), mode="reflect")
    F = [p[c, R + dy:R + dy + H, R + dx:R + dx + W]
         for c in range(3) for dy in range(-R, R + 1) for dx in range(-R, R + 1)]
    return np.stack(F, -1)  # H W 75

def own(z, cfa):
    idx = cfa_index(cfa)
    H, W = z.shape[1:]
    o = np.empty((H, W), np.float32)
    for i in range(2):
        for j in range(2):
            o[i::2, j::2] = z[idx[i, j], i::2, j::2]
    return o

data = []
for f in files:
    try:
        raw, t, z, pre, dem = prep(f)
    except Exception as e:  # noqa: BLE001 - a file this prototype cannot use is reported and skipped
        print("skip", f.name, e)
        continue
    data.append((f.name, raw, t, z, pre, dem))
    print("prepped", f.name, raw.mosaic.shape, flush=True)

def xy(raw, t, z, phase, n=None, rng=None):
    F = feats(z)
    i, j = phase
    X = F[i::2, j::2].reshape(-1, F.shape[-1])
    o = g(own(z, raw.cfa))[i::2, j::2].ravel()
    y = g(t)[i::2, j::2].ravel() - o
    if n and len(y) > n:
        sel = rng.choice(len(y), n, replace=False)
        X, y = X[sel], y[sel]
    return X, y

def colour_of(raw, phase):
    return int(cfa_index(raw.cfa)[phase])

def quantised(m, raw):
    """Recovered raw units → the normalised mosaic a DNG would hold."""
    return normalise_mosaic(np.clip(np.round(m), 0, raw.white), raw.black, raw.white)


rng = np.random.default_rng(0)
lam = float(sys.argv[1]) if len(sys.argv) > 1 else 1e-2
gains = []
for hold in range(len(data)):
    name, raw, t, z, pre, dem = data[hold]
    # fit per colour (R, G, B), pooled over training files and phases of that colour
    W = {}
    for c in range(3):
        Xs, ys = [], []
        for d, (_, r2, t2, z2, _, _) in enumerate(data):
            if d == hold:
                continue
            for ph in [(0, 0), (0, 1), (1, 0), (1, 1)]:
                if colour_of(r2, ph) != c:
                    continue
                X, y = xy(r2, t2, z2, ph, 60000, rng)
                Xs.append(X)
                ys.append(y)
        X, y = np.concatenate(Xs), np.concatenate(ys)
        A = X.T @ X + lam * len(y) * np.eye(X.shape[1]) * 1e-3
        W[c] = np.linalg.solve(A, X.T @ y)
    F = feats(z)
    o = g(own(z, raw.cfa))
    corr = np.empty_like(o)
    for ph in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        i, j = ph
        corr[i::2, j::2] = F[i::2, j::2] @ W[colour_of(raw, ph)]
    t_hat = gi(o + corr).astype(np.float32)
    base = gi(o).astype(np.float32)
    with torch.no_grad():
        mh = pre.inverse(torch.from_numpy(t_hat)[None, None])[0, 0].numpy()
        mb = pre.inverse(torch.from_numpy(base)[None, None])[0, 0].numpy()
    n = normalise_mosaic(raw.mosaic, raw.black, raw.white)
    pb, ph_ = raw_psnr_gamma(quantised(mb, raw), n), raw_psnr_gamma(quantised(mh, raw), n)
    gains.append(ph_ - pb)
    print(f"{name:50s} base {pb:.2f}  filtered {ph_:.2f}  gain {ph_ - pb:+.2f}", flush=True)
print("mean gain", np.mean(gains))
