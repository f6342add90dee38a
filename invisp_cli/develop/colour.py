"""Colour science of ``invisp develop``: temperature/tint ↔ chromaticity, white-balance multipliers from the
camera's XYZ→camera matrix, output primaries, the sRGB transfer curve and small ICC profiles.

Temperature and tint follow the Adobe DNG SDK (``dng_temperature``): Robertson's table of isotemperature lines
in CIE 1960 (u, v), interpolated in mired (10⁶/T); tint moves the point along the isotemperature line by
tint / −3000 in (u, v), so tint 0 lies on the Planckian locus and a positive tint is a greener illuminant,
whose correction turns the picture towards magenta (as Adobe's Tint slider).

White balance by an illuminant of chromaticity (x, y) (DNG 1.4, "Mapping Camera Color Space to CIE XYZ
Space"): its camera response is  c = xyz_to_cam · (x/y, 1, (1 − x − y)/y)  and the multipliers that make it
neutral are  m_k = c_G / c_k  (G = 1). The as-shot multipliers give back their illuminant exactly by the inverse
of the same linear map, so "the as-shot temperature and tint" reproduce the as-shot white balance."""

from __future__ import annotations

import datetime as _dt
import struct

import numpy as np

from ..steps import array_module

# Robertson (1968) isotemperature lines: mired, u, v, slope dv/du, exactly as the DNG SDK's kTempTable (which keeps
# the printed table's u = 0.24702 at 325 mired, a known misprint of 0.24792), so temperatures match Adobe's.
ROBERTSON = np.array([
    [0, 0.18006, 0.26352, -0.24341], [10, 0.18066, 0.26589, -0.25479], [20, 0.18133, 0.26846, -0.26876],
    [30, 0.18208, 0.27119, -0.28539], [40, 0.18293, 0.27407, -0.30470], [50, 0.18388, 0.27709, -0.32675],
    [60, 0.18494, 0.28021, -0.35156], [70, 0.18611, 0.28342, -0.37915], [80, 0.18740, 0.28668, -0.40955],
    [90, 0.18880, 0.28997, -0.44278], [100, 0.19032, 0.29326, -0.47888], [125, 0.19462, 0.30141, -0.58204],
    [150, 0.19962, 0.30921, -0.70471], [175, 0.20525, 0.31647, -0.84901], [200, 0.21142, 0.32312, -1.0182],
    [225, 0.21807, 0.32909, -1.2168], [250, 0.22511, 0.33439, -1.4512], [275, 0.23247, 0.33904, -1.7298],
    [300, 0.24010, 0.34308, -2.0637], [325, 0.24702, 0.34655, -2.4681], [350, 0.25591, 0.34951, -2.9641],
    [375, 0.26400, 0.35200, -3.5814], [400, 0.27218, 0.35407, -4.3633], [425, 0.28039, 0.35577, -5.3762],
    [450, 0.28863, 0.35714, -6.7262], [475, 0.29685, 0.35823, -8.5955], [500, 0.30505, 0.35907, -11.324],
    [525, 0.31320, 0.35968, -15.628], [550, 0.32129, 0.36011, -23.325], [575, 0.32931, 0.36038, -40.770],
    [600, 0.33724, 0.36051, -116.45],
])
TINT_SCALE = -3000.0

D65 = np.array([0.95047, 1.0, 1.08883])
D50 = np.array([0.96422, 1.0, 0.82521])
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
# linear Rec.709/sRGB (D65) → XYZ, the same matrix LibRaw's rgb_cam is built on (rawio.XYZ_RGB)
REC709_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                          [0.2126729, 0.7151522, 0.0721750],
                          [0.0193339, 0.1191920, 0.9503041]])


def xy_from_temperature(temperature: float, tint: float = 0.0) -> np.ndarray:
    """(x, y) of correlated colour temperature T (K) and tint, as the DNG SDK's ``Get_xy_coord``.

    r = 10⁶/T is located between table lines i, i+1 with weight f = (r_{i+1} − r)/(r_{i+1} − r_i); the
    black-body point (u, v) and the unit direction of the isotemperature line are interpolated with f, the point
    is moved along that direction by tint / −3000, and x = 1.5u/(u − 4v + 2), y = v/(u − 4v + 2)."""
    r = 1e6 / float(temperature)
    i = int(np.clip(np.searchsorted(ROBERTSON[:, 0], r, side="right") - 1, 0, len(ROBERTSON) - 2))
    (r0, u0, v0, t0), (r1, u1, v1, t1) = ROBERTSON[i], ROBERTSON[i + 1]
    f = (r1 - r) / (r1 - r0)
    u, v = u0 * f + u1 * (1 - f), v0 * f + v1 * (1 - f)
    d0, d1 = np.array([1.0, t0]) / np.hypot(1.0, t0), np.array([1.0, t1]) / np.hypot(1.0, t1)
    d = d0 * f + d1 * (1 - f)
    d /= np.hypot(*d)
    u, v = u + d[0] * tint / TINT_SCALE, v + d[1] * tint / TINT_SCALE
    return np.array([1.5 * u / (u - 4 * v + 2), v / (u - 4 * v + 2)])


def temperature_from_xy(xy: np.ndarray) -> tuple[float, float]:
    """(T, tint) whose ``xy_from_temperature`` is ``xy``: solved numerically (in mired and tint) from the nearest
    point of the locus, so the round trip is exact to solver precision (≤ 1e-10 in x, y)."""
    from scipy.optimize import fsolve  # 0.4 s to import: only for a temperature or tint edit

    mireds = np.linspace(1.0, 600.0, 600)
    locus = np.array([xy_from_temperature(1e6 / m) for m in mireds])
    start = mireds[int(np.argmin(((locus - np.asarray(xy)) ** 2).sum(axis=1)))]
    sol = fsolve(lambda p: xy_from_temperature(1e6 / p[0], p[1]) - xy, [start, 0.0], xtol=1e-13)
    return 1e6 / float(sol[0]), float(sol[1])


def xyz_from_xy(xy: np.ndarray) -> np.ndarray:
    """XYZ with Y = 1 of chromaticity (x, y)."""
    x, y = float(xy[0]), float(xy[1])
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def multipliers_from_xy(xyz_to_cam: np.ndarray, xy: np.ndarray) -> np.ndarray | None:
    """White-balance multipliers (R, G, B; G = 1) that make the illuminant (x, y) neutral:
    c = xyz_to_cam · XYZ(x, y),  m = c_G / c. None where the camera response is not positive."""
    cam = np.asarray(xyz_to_cam, dtype=np.float64) @ xyz_from_xy(xy)
    return cam[1] / cam if np.all(cam > 1e-9) else None


def xy_from_multipliers(xyz_to_cam: np.ndarray, wb: np.ndarray) -> np.ndarray | None:
    """The illuminant the multipliers neutralise: XYZ = xyz_to_cam⁻¹ · (1/m), projected to (x, y)."""
    try:
        xyz = np.linalg.solve(np.asarray(xyz_to_cam, dtype=np.float64), 1.0 / np.asarray(wb, dtype=np.float64))
    except np.linalg.LinAlgError:
        return None
    s = xyz.sum()
    return xyz[:2] / s if s > 1e-12 and xyz[1] / s > 1e-6 else None


def bradford(src_white: np.ndarray, dst_white: np.ndarray) -> np.ndarray:
    """Bradford chromatic adaptation XYZ(src white) → XYZ(dst white): B⁻¹ · diag(B·w_dst / B·w_src) · B."""
    return np.linalg.inv(BRADFORD) @ np.diag((BRADFORD @ dst_white) / (BRADFORD @ src_white)) @ BRADFORD


def primaries_to_xyz(xy_rgb: np.ndarray, white: np.ndarray) -> np.ndarray:
    """RGB → XYZ matrix of primaries (3 × (x, y)) scaled so that RGB (1, 1, 1) is ``white`` (XYZ)."""
    m = np.array([xyz_from_xy(p) for p in xy_rgb]).T
    return m * np.linalg.solve(m, white)


PROPHOTO_TO_XYZ_D50 = primaries_to_xyz(np.array([[0.7347, 0.2653], [0.1596, 0.8404], [0.0366, 0.0001]]), D50)
#: linear Rec.709 (D65) → linear ProPhoto RGB (ROMM, D50): XYZ, Bradford D65 → D50, ProPhoto⁻¹
REC709_TO_PROPHOTO = np.linalg.inv(PROPHOTO_TO_XYZ_D50) @ bradford(D65, D50) @ REC709_TO_XYZ


def srgb_encode(x):
    """sRGB transfer (IEC 61966-2-1): 12.92·x for x ≤ 0.0031308, else 1.055·x^(1/2.4) − 0.055 (x in [0, 1];
    numpy arrays or torch tensors)."""
    return array_module(x).where(x <= 0.0031308, 12.92 * x, 1.055 * x.clip(0.0031308, None) ** (1 / 2.4) - 0.055)


def srgb_decode(v):
    """Inverse of ``srgb_encode``: v/12.92 for v ≤ 0.04045, else ((v + 0.055)/1.055)^2.4."""
    return array_module(v).where(v <= 0.04045, v / 12.92, ((v.clip(0.04045, None) + 0.055) / 1.055) ** 2.4)


# ------------------------------------------------------------------------------------------------ ICC


def srgb_profile() -> bytes:
    """LittleCMS's built-in sRGB profile (via Pillow), for 8/16-bit sRGB output."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def linear_profile(primaries: str) -> bytes:
    """A minimal ICC v2.1 display profile with an identity tone curve: "rec709" (sRGB primaries, D65 white) or
    "prophoto" (ROMM primaries, D50 white). Colorants are the primaries' XYZ adapted to the D50 PCS (Bradford);
    wtpt is the profile's own white (ICC v2 convention)."""
    if primaries == "rec709":
        to_pcs, white, name = bradford(D65, D50) @ REC709_TO_XYZ, D65, "invisp linear Rec.709 (sRGB primaries)"
    elif primaries == "prophoto":
        to_pcs, white, name = PROPHOTO_TO_XYZ_D50, D50, "invisp linear ProPhoto RGB (ROMM primaries)"
    else:
        raise ValueError(f"unknown primaries {primaries!r}")
    identity = b"curv" + bytes(4) + struct.pack(">I", 0)
    tags = [(b"desc", _desc(name)), (b"cprt", b"text" + bytes(4) + b"No copyright, use freely\0"),
            (b"wtpt", _xyz(white)), (b"rXYZ", _xyz(to_pcs[:, 0])), (b"gXYZ", _xyz(to_pcs[:, 1])),
            (b"bXYZ", _xyz(to_pcs[:, 2])), (b"rTRC", identity), (b"gTRC", identity), (b"bTRC", identity)]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body + bytes(-len(body) % 4)
    now = _dt.datetime.now(_dt.timezone.utc)
    header = (struct.pack(">I", 128 + 4 + len(table) + len(data)) + bytes(4) + bytes([2, 0x10, 0, 0])
              + b"mntrRGB XYZ " + struct.pack(">6H", now.year, now.month, now.day, now.hour, now.minute, now.second)
              + b"acsp" + bytes(24) + struct.pack(">I", 0) + _xyz(D50)[8:] + b"invs" + bytes(44))
    return header + struct.pack(">I", len(tags)) + table + data


def _xyz(v: np.ndarray) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(float(c) * 65536)) for c in v)


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(4 + 4 + 2 + 1 + 67)
