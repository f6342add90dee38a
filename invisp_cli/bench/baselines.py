"""RAW-recovery baselines that start from LibRaw's own 8-bit render, run in the bench's process.

``analytic`` (metadata-aided): LibRaw's render saved as a real JPEG (same quality/subsampling, carrying the
same invisp EXIF parameters an invisp JPEG carries, so the byte counts compare), decoded (``recovery_rgb``: the
dequantising float decode invisp's own approximate decode uses), turned back to
sensor orientation and pushed through exactly ``Chain(steps.analytic_steps(cfa, black, white, wb, rgb_cam,
gain)).inverse``: inverse BT.709 gamma (LibRaw's curve) → inverse ``rgb_cam`` → re-mosaic at the CFA
sites → inverse white balance → inverse exposure gain (``steps.libraw_maximum_gain`` of the file's mosaic,
LibRaw's automatic white-point adjustment, part of the stored parameters) → inverse levels; rounded and
clipped to [0, white] like ``pipeline.recover``.

``upi`` (Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019), no file metadata:
the same chain built from camera *priors* instead of the file's parameters: an inverse transfer curve
(default Brooks' gamma expansion x^2.2; LibRaw's render has no tone curve, so Brooks' inverse smoothstep
is not applied), the inverse of an *average* camera colour matrix, fixed average white-balance gains
(R 2.0, G 1, B 1.6; plain division, no highlight-preserving gain) and no exposure gain (1). The average
matrix is the equal-weight mean of the four XYZ→camera matrices in Brooks' ``random_ccm`` (the
expectation of its random convex combination), times linear sRGB→XYZ, rows normalised to sum 1 (as
Brooks and dcraw do), inverted to a camera→sRGB matrix. The only file data it uses are what is needed to
lay the result out as a mosaic for scoring: CFA layout, black/white levels, orientation and size. Its
JPEG is plain (no EXIF), since it needs no parameters.

``miniraw`` (optional): the PyPI ``miniraw`` 2.1 layered RAW codec (``miniraw.encode(raw, step=1.0,
with_l3=False)``: its near-lossless "hot tier", every value within half a noise step; a RAW codec, not an
sRGB JPEG, so it has one size per file and no RGB metrics). ``pip install miniraw`` installed cleanly in
seconds on this project's machine (its dependencies constriction, zstandard and msgpack are not invisp
dependencies), so the baseline is used whenever ``import miniraw`` works and skipped otherwise.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .. import rawio
from ..containers import dequant, integrity, jpeg
from ..params import ReconstructionParams
from ..rawio import XYZ_RGB
from ..steps import (
    BilinearDemosaic,
    Chain,
    ColorMatrix,
    Exposure,
    Gamma,
    Levels,
    Step,
    WhiteBalance,
    analytic_steps,
)
from ..tiling import run_tiled

#: XYZ → camera matrices of Brooks et al.'s ``random_ccm`` (four cameras), used as the UPI prior.
BROOKS_XYZ2CAMS = np.array([
    [[1.0234, -0.2969, -0.2266], [-0.5625, 1.6328, -0.0469], [-0.0703, 0.2188, 0.6406]],
    [[0.4913, -0.0541, -0.0202], [-0.6130, 1.3513, 0.2906], [-0.1564, 0.2151, 0.7183]],
    [[0.8380, -0.2630, -0.0639], [-0.2887, 1.0725, 0.2496], [-0.0627, 0.1427, 0.5438]],
    [[0.6596, -0.2079, -0.0562], [-0.4782, 1.3016, 0.1933], [-0.0970, 0.1581, 0.5181]],
])
UPI_WB = (2.0, 1.0, 1.6)
CURVES = ("2.2", "srgb", "bt709")


def average_rgb_cam() -> np.ndarray:
    """Camera RGB → linear sRGB of the average Brooks camera (see the module docstring)."""
    xyz2cam = BROOKS_XYZ2CAMS.mean(axis=0)
    rgb2cam = xyz2cam @ XYZ_RGB  # linear sRGB (D65) → XYZ, as in Brooks' code and LibRaw
    rgb2cam = rgb2cam / rgb2cam.sum(axis=1, keepdims=True)
    return np.linalg.inv(rgb2cam)


class PowerCurve(Step):
    """y = sign(x)·|x|^(1/γ), inverse x = sign(y)·|y|^γ (Brooks' gamma compression/expansion, γ = 2.2)."""

    def __init__(self, gamma: float = 2.2):
        self.gamma = float(gamma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sign(x) * x.abs() ** (1.0 / self.gamma)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sign(y) * y.abs() ** self.gamma


class SRGBCurve(Step):
    """The sRGB transfer curve (IEC 61966-2-1), odd-extended: 12.92·x below 0.0031308, else 1.055·x^(1/2.4) − 0.055."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = x.abs()
        hi = 1.055 * a.clamp_min(0.0031308) ** (1 / 2.4) - 0.055
        return torch.sign(x) * torch.where(a <= 0.0031308, 12.92 * a, hi)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        a = y.abs()
        return torch.sign(y) * torch.where(a <= 0.04045, a / 12.92, ((a.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def curve_step(name: str) -> Step:
    """The transfer-curve step for a UPI curve name: "2.2" (power), "srgb" or "bt709" (LibRaw's ``steps.Gamma``)."""
    if name == "2.2":
        return PowerCurve(2.2)
    if name == "srgb":
        return SRGBCurve()
    if name == "bt709":
        return Gamma()
    raise ValueError(f"unknown transfer curve {name!r} (known: {', '.join(CURVES)})")


@dataclass
class UPIPriors:
    """Camera priors UPI uses instead of file metadata."""

    rgb_cam: np.ndarray = field(default_factory=average_rgb_cam)
    wb: tuple[float, float, float] = UPI_WB
    curve: str = "2.2"
    gain: float = 1.0


def invert_chain(rgb_upright: np.ndarray, chain: Chain, white: int, flip: int, tile: int = 1024) -> np.ndarray:
    """Upright (H', W', 3) pixels in [0, 255] (uint8 or float) → uint16 mosaic (H, W): un-orient, /255,
    ``chain.inverse`` by tiles, round, clip to [0, white] (the same quantisation as ``pipeline.recover``)."""
    sensor = np.ascontiguousarray(rawio.undo_flip(np.asarray(rgb_upright), flip).transpose(2, 0, 1))[None]
    h, w = sensor.shape[-2:]
    out = np.empty((1, 1, h, w), np.uint16)

    def to_raw_units(t: torch.Tensor) -> np.ndarray:
        return t.round().clamp(0, white).to(torch.int32).numpy().astype(np.uint16)

    with torch.inference_mode():
        run_tiled(lambda t: chain.inverse(t.float() / 255.0), torch.from_numpy(sensor), out, tile=tile,
                  halo=chain.receptive_field, align=chain.align, post=to_raw_units)
    return out[0, 0]


def analytic_chain(raw: rawio.RawImage, gain: float = 1.0) -> Chain:
    """``Chain(analytic_steps(...))`` from the file's own parameters and exposure gain."""
    return Chain(analytic_steps(raw.cfa, raw.black, raw.white, raw.wb, raw.rgb_cam, gain))


def upi_chain(cfa: str, black: np.ndarray, white: float, priors: UPIPriors | None = None) -> Chain:
    """The analytic chain's structure with UPI's priors in place of the file's WB, colour matrix and curve."""
    p = priors or UPIPriors()
    return Chain([Levels(black, white), Exposure(p.gain), WhiteBalance(cfa, p.wb), BilinearDemosaic(cfa),
                  ColorMatrix(p.rgb_cam), curve_step(p.curve)])


def analytic_recover(rgb_upright: np.ndarray, raw: rawio.RawImage, gain: float = 1.0,
                     tile: int = 1024) -> np.ndarray:
    """Metadata-aided analytic inverse of an (upright) LibRaw render → uint16 mosaic."""
    return invert_chain(rgb_upright, analytic_chain(raw, gain), int(raw.white), raw.flip, tile)


def upi_recover(rgb_upright: np.ndarray, raw: rawio.RawImage, priors: UPIPriors | None = None,
                tile: int = 1024) -> np.ndarray:
    """UPI-style unprocessing of an (upright) render → uint16 mosaic; from ``raw`` only the CFA layout,
    levels and orientation are read."""
    return invert_chain(rgb_upright, upi_chain(raw.cfa, raw.black, raw.white, priors), int(raw.white), raw.flip,
                        tile)


def encode_plain_jpeg(rgb: np.ndarray, quality: int, subsampling: str) -> bytes:
    """A Pillow JPEG with no EXIF (same encoder settings as ``containers.jpeg.encode_jpeg``)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8), "RGB").save(
        buf, "JPEG", quality=int(quality), subsampling=jpeg.SUBSAMPLING[subsampling], optimize=True)
    return buf.getvalue()


def encode_libraw_jpeg(rgb: np.ndarray, raw: rawio.RawImage, quality: int, subsampling: str,
                       gain: float | None = None) -> bytes:
    """LibRaw's render as a JPEG; with a ``gain`` it carries the invisp EXIF block (model "libraw-analytic",
    render settings including that exposure gain), without one it is a plain JPEG."""
    if gain is None:
        return encode_plain_jpeg(rgb, quality, subsampling)
    render = {"codec": "jpeg", "quality": int(quality), "subsampling": subsampling, "exposure_gain": float(gain)}
    params = ReconstructionParams.from_raw(raw, "libraw-analytic", "0" * 64, render)
    return jpeg.encode_jpeg(np.ascontiguousarray(rgb, dtype=np.uint8), params)


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes → uint8 (H, W, 3) with Pillow."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def recovery_rgb(data: bytes, decoded: np.ndarray) -> np.ndarray:
    """What a baseline inverts, in [0, 255]: the pixels invisp's approximate decode recovers from
    (``dequant.recovery_pixels`` of the untouched file), so that the comparison is of the ISPs, not of the JPEG
    decoders; Pillow's ``decoded`` where that decode cannot read the file."""
    pixels = dequant.recovery_pixels(data, integrity.Check("intact", decoded))
    return pixels if pixels.dtype == np.uint8 else pixels * np.float32(255)


# ------------------------------------------------------------------------------------------- miniraw


def miniraw_available() -> bool:
    """Whether the optional ``miniraw`` package imports."""
    try:
        import miniraw  # noqa: F401
    except Exception:  # noqa: BLE001  (any import failure means: not available)
        return False
    return True


def miniraw_encode(raw: rawio.RawImage, step: float = 1.0) -> bytes:
    """``raw``'s mosaic as a MiniRaw file (hot tier only, ``with_l3=False``); the mosaic must be even-sized."""
    import miniraw
    from miniraw import io_raw

    m = np.ascontiguousarray(raw.mosaic, dtype=np.uint16)
    names = list(raw.cfa)
    cells = [(i // 2, i % 2) for i in range(4)]
    g = [cells[i] for i, n in enumerate(names) if n == "G"]
    offsets = [cells[names.index("R")], g[0], g[1], cells[names.index("B")]]
    black = [float(np.asarray(raw.black).reshape(2, 2)[dy, dx]) for dy, dx in offsets]
    wb_rgbg = {"R": raw.wb[0], "G": raw.wb[1], "B": raw.wb[2]}
    wb = [float(wb_rgbg[names[dy * 2 + dx]]) for dy, dx in offsets]
    mr = io_raw.RawImage(planes=io_raw.pack(m, offsets), offsets=offsets, black=black, white=int(raw.white),
                         bit_depth=int(max(int(raw.white), int(m.max()))).bit_length(), wb=wb,
                         color_matrix=np.asarray(raw.rgb_cam).tolist(), cam_xyz=np.asarray(raw.xyz_to_cam).tolist(),
                         flip=int(raw.flip), meta={})
    data, _ = miniraw.encode(mr, step=step, with_l3=False, threads=1)
    return bytes(data)


def miniraw_decode(data: bytes) -> np.ndarray:
    """MiniRaw bytes → uint16 mosaic (signal mode)."""
    import miniraw

    return np.asarray(miniraw.decode(data, mode="signal", threads=1), dtype=np.uint16)
