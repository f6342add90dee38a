"""Synthetic Bayer RAW from sRGB photographs by "unprocessing" (Brooks et al., CVPR 2019).

The inverse of LibRaw's render order (WB gains → ``rgb_cam`` → transfer curve), followed by a sensor model:
exposure with clipping at saturation, CFA sampling, black/white scaling, heteroscedastic shot + read noise
and integer quantisation.
"""

from __future__ import annotations

import numpy as np

from invisp_cli.errors import InvispError
from invisp_cli.rawio import RawImage

# Linear sRGB (D65) → CIE XYZ, as dcraw/LibRaw use it (``xyz_rgb`` in dcraw.c).
XYZ_FROM_SRGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
CFA_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")

# Photographs shipped inside the scikit-image wheel (no download), all free of copyright restrictions.
# name: (skimage.data function, source, licence)
BUNDLED_PHOTOS = {
    "astronaut": ("astronaut", "Eileen Collins, NASA Great Images database", "public domain"),
    "chelsea": ("chelsea", "Chelsea the cat, photographer Stefan van der Walt", "CC0"),
    "coffee": ("coffee", "coffee cup, photographer Rachel Michetti (Pikolo Espresso Bar)", "CC0"),
    "rocket": ("rocket", "DSCOVR launch on Falcon 9, SpaceX Photos", "public domain"),
}


def srgb_to_linear(y: np.ndarray) -> np.ndarray:
    """Inverse sRGB transfer (IEC 61966-2-1): y/12.92 if y ≤ 0.04045 else ((y + 0.055)/1.055)^2.4."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(y <= 0.04045, y / 12.92, ((np.maximum(y, 0.04045) + 0.055) / 1.055) ** 2.4)


def inverse_smoothstep(y: np.ndarray) -> np.ndarray:
    """Inverse of the global tone curve s(x) = 3x² − 2x³ (Brooks et al.): x = 0.5 − sin(asin(1 − 2y)/3)."""
    y = np.clip(np.asarray(y, dtype=np.float64), 0.0, 1.0)
    return 0.5 - np.sin(np.arcsin(1.0 - 2.0 * y) / 3.0)


def cam_from_srgb(xyz_to_cam: np.ndarray) -> np.ndarray:
    """rgb→cam = xyz_to_cam · XYZ_FROM_SRGB with rows normalised to sum 1 (dcraw's ``cam_xyz_coeff``)."""
    m = np.asarray(xyz_to_cam, dtype=np.float64) @ XYZ_FROM_SRGB
    return m / m.sum(axis=1, keepdims=True)


def cfa_channels(cfa: str, h: int, w: int) -> np.ndarray:
    """int (H, W): colour index (0 R, 1 G, 2 B) of each site for the 2×2 row-major ``cfa`` pattern."""
    if cfa not in CFA_PATTERNS:
        raise ValueError(f"cfa must be one of {CFA_PATTERNS}, got {cfa!r}")
    tile = np.array(["RGB".index(c) for c in cfa]).reshape(2, 2)
    return np.tile(tile, ((h + 1) // 2, (w + 1) // 2))[:h, :w]


def unprocess(
    srgb: np.ndarray,
    xyz_to_cam: np.ndarray,
    *,
    cfa: str = "RGGB",
    white: int = 16383,
    black: float | np.ndarray = 512,
    rng: np.random.Generator,
    wb: np.ndarray | None = None,
    exposure: float | None = None,
    invert_tone: bool = False,
    noise: bool = True,
    shot_range: tuple[float, float] = (1e-4, 1.2e-2),
) -> RawImage:
    """Turn an 8-bit sRGB photo (H, W, 3) into a plausible Bayer RAW.

    lin = sRGB⁻¹(y) (after s⁻¹(y) if ``invert_tone``);  cam = (rgb→cam · lin) / wb · exposure, clipped to
    [0, 1] (sensor saturation);  n = cam at each site's CFA colour;  v = b + n·(w − b) + (w − b)·ε with
    ε ~ N(0, n·σ_shot² + σ_read²);  rounded and clipped to [0, white] as uint16.
    ``rgb_cam`` = (rgb→cam)⁻¹, so LibRaw's render (×wb, ×rgb_cam, transfer) inverts this.
    Random when None: wb = (U(1.9, 2.4), 1, U(1.5, 1.9)); exposure ~ U(0.8, 1.2). Noise levels as Brooks:
    log σ_shot² ~ U(log lo, log hi) with (lo, hi) = ``shot_range`` (default Brooks' 1e-4, 1.2e-2, which spans
    low light; a base-ISO daylight photo is nearer 1e-5…1e-3), log σ_read² = 2.18·log σ_shot² + 1.20 + N(0, 0.26²).
    """
    srgb = np.asarray(srgb)
    if srgb.dtype != np.uint8 or srgb.ndim != 3 or srgb.shape[2] != 3:
        raise ValueError(f"srgb must be uint8 (H, W, 3), got {srgb.dtype} {srgb.shape}")
    h, w = srgb.shape[:2]
    y = srgb / 255.0
    lin = srgb_to_linear(inverse_smoothstep(y) if invert_tone else y)

    rgb_to_cam = cam_from_srgb(xyz_to_cam)
    if wb is None:
        wb = np.array([rng.uniform(1.9, 2.4), 1.0, rng.uniform(1.5, 1.9)])
    wb = np.asarray(wb, dtype=np.float64)
    wb = wb / wb[1]
    if exposure is None:
        exposure = rng.uniform(0.8, 1.2)
    cam = np.clip((lin @ rgb_to_cam.T) / wb * exposure, 0.0, 1.0)

    n = np.take_along_axis(cam, cfa_channels(cfa, h, w)[..., None], axis=2)[..., 0]
    black22 = np.broadcast_to(np.asarray(black, dtype=np.float64), (2, 2)).copy()
    b = np.tile(black22, ((h + 1) // 2, (w + 1) // 2))[:h, :w]
    if noise:
        log_shot = rng.uniform(np.log(shot_range[0]), np.log(shot_range[1]))
        log_read = 2.18 * log_shot + 1.20 + rng.normal(0.0, 0.26)
        n = n + rng.normal(size=n.shape) * np.sqrt(n * np.exp(log_shot) + np.exp(log_read))
    mosaic = np.clip(np.round(b + n * (white - b)), 0, white).astype(np.uint16)

    return RawImage(
        mosaic=mosaic,
        cfa=cfa,
        black=black22,
        white=int(white),
        wb=wb,
        wb_source="camera",
        rgb_cam=np.linalg.inv(rgb_to_cam),
        xyz_to_cam=np.asarray(xyz_to_cam, dtype=np.float64).copy(),
        flip=0,
        bits=int(white).bit_length(),
        raw_size=(h, w),
        margins=(0, 0),
        exif={"make": "invisp-synthetic", "model": "unprocessed sRGB"},
    )


def bundled_photos() -> list[tuple[str, np.ndarray]]:
    """(name, uint8 (H, W, 3) sRGB) for each photo in ``BUNDLED_PHOTOS``, loaded offline from scikit-image.

    Sources and licences (per the ``skimage.data`` docstrings):
    astronaut — NASA, public domain; chelsea — Stefan van der Walt, CC0; coffee — Rachel Michetti, CC0;
    rocket — SpaceX, public domain. scikit-image is not a dependency of invisp; without it this raises
    ``InvispError`` saying what to install.
    """
    try:
        import skimage.data
    except ImportError as exc:
        raise InvispError(
            "the bundled training photos come from scikit-image: pip install scikit-image"
        ) from exc
    return [(name, np.asarray(getattr(skimage.data, fn)())) for name, (fn, _, _) in BUNDLED_PHOTOS.items()]
