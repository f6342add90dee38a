"""The develop pipeline: a RAW mosaic → an edited, demosaiced image, run by tiles.

    mosaic ─Levels─×g₀·2^EV─clip flags─WhiteBalance(m)─[HighlightRolloff]─demosaic─reconstruct─ColorMatrix─shadows
           ─contrast─saturation─▶ linear Rec.709 (scene-referred)  ─gamma─[the look]─▶ display

An invisp JPEG of the analytic front end without an exact layer can instead give its full-colour camera image (the
render's state after the demosaic, ``camera_image``: the JPEG's pixels through the inverse look, gamma and colour
matrix), which keeps the JPEG's three channels where the recovered mosaic keeps one: the chain then starts by undoing
its white balance and roll-off per channel, and skips the demosaic.

With no edit this is the render of the file's front end (``settings.FrontEnd``: base exposure g₀, demosaic,
highlight knee k₀ and look; ``steps.front_end``), so a develop with no edits reproduces the invisp JPEG: the same
steps, the same arithmetic, the same 8-bit levels (``Gamma.forward_u8``, ``Look.render_u8``). Edits act on top of
it: 2^EV with g₀ before the white balance (the roll-off's ceiling moves with it), the edit's multipliers m, a
highlight edit h < 0 (clipped channels rebuilt from the unclipped ones, the knee k = k₀·(1 + h/2)), and the tone
edits in linear light before the gamma. Every step is per pixel except the demosaic (5×5) and the clip flags (5×5
max), so a 4-px halo makes the tiled result equal the untiled one. It all runs on numpy arrays (no torch);
``tone`` takes torch tensors too."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import rawio
from ..errors import InputError
from ..rawio import RawImage
from ..settings import DEFAULT_TILE, LINEAR_CFA, FrontEnd
from ..settings import Look as LookSettings
from ..steps import (
    DEMOSAICS,
    Array,
    Chain,
    ColorMatrix,
    Exposure,
    Gamma,
    HighlightRolloff,
    Levels,
    Look,
    MHCDemosaic,
    Step,
    WhiteBalance,
    array_module,
    cfa_index,
)
from ..tiling import run_tiled
from . import colour

LUMA = (0.2126, 0.7152, 0.0722)  # Rec.709 luminance weights of linear RGB
MID_GREY = 0.18  # the contrast pivot
SHADOW_PIVOT = 0.1  # luminance below which the shadow lift acts fully
# A site counts as clipped where g₀·n ≥ CLIP_LEVEL (n = normalised raw value): sensors saturate a few per cent below
# their nominal white level (the GoPro HERO6's green near 0.95–0.98 of it), and a clip taken for a value turns a
# white sky magenta. Flagging only ever raises a channel towards its neighbours (``reconstruct_highlights``).
CLIP_LEVEL = 0.9
CLIP_REACH = 2  # the clip flags spread over the demosaic's 5×5 support


@dataclass(frozen=True)
class Edit:
    """One develop: every field at its default is the plain render (no edit).

    exposure     EV; linear values × 2^EV
    temperature  K of the white balance (None: as shot); keeps the as-shot tint unless ``tint`` moves it
    tint         added to the white balance's tint (DNG-SDK units; + magenta, − green)
    multipliers  R, G, B white-balance multipliers instead of temperature/tint (G normalised to 1)
    highlights   h ∈ [−1, 0]: h < 0 rebuilds clipped channels from the unclipped ones and moves the highlight
                 roll-off's knee to k = k₀·(1 + h/2) (k₀: the render's, 1 without one; k < 1 compresses each
                 site's headroom up to its brightest value into (k, 1], k = 1 clips)
    shadows      s ∈ [−1, 1]: luminance gain 1 + s·p²/(Y² + p²), p = 0.1
    contrast     c ∈ [−1, 1]: Y' = 0.18·(Y/0.18)^(2^c)
    saturation   σ ∈ [−1, 1]: RGB' = Y + (1 + σ)(RGB − Y)"""

    exposure: float = 0.0
    temperature: float | None = None
    tint: float = 0.0
    multipliers: tuple[float, float, float] | None = None
    highlights: float = 0.0
    shadows: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0


def as_shot_temperature(raw: RawImage) -> tuple[float, float]:
    """(T in K, tint) of the illuminant the file's own white balance neutralises (via its XYZ→camera matrix)."""
    xy = colour.xy_from_multipliers(raw.xyz_to_cam, raw.wb)
    if xy is None:
        raise InputError("the file's colour matrix gives no temperature for its white balance; use --wb R,G,B")
    return colour.temperature_from_xy(xy)


#: the largest ratio of a white-balance multiplier to G's (or its inverse) ``--wb R,G,B`` accepts: beyond it the
#: gains overflow the render (1e300,1,1 gave a magenta image and a numpy warning)
WB_RATIO = 1000.0


def white_balance(raw: RawImage, edit: Edit) -> np.ndarray:
    """The multipliers of an edit: as shot (no temperature, tint 0), given multipliers, or those of the
    illuminant (T, as-shot tint + tint) through ``colour.multipliers_from_xy``."""
    if edit.multipliers is not None:
        m = np.asarray(edit.multipliers, dtype=np.float64)
        if m.shape != (3,) or not np.all(np.isfinite(m) & (m > 0)):
            raise InputError("white-balance multipliers must be three positive finite numbers")
        m = m / m[1]
        if not np.all((m >= 1 / WB_RATIO) & (m <= WB_RATIO)):
            raise InputError(f"white-balance multipliers must lie within 1/{WB_RATIO:g}..{WB_RATIO:g} of G's")
        return m
    if edit.temperature is None and edit.tint == 0.0:
        return np.asarray(raw.wb, dtype=np.float64)
    shot_t, shot_tint = as_shot_temperature(raw)
    t = shot_t if edit.temperature is None else float(edit.temperature)
    m = colour.multipliers_from_xy(raw.xyz_to_cam, colour.xy_from_temperature(t, shot_tint + edit.tint))
    if m is None:
        raise InputError(f"the file's colour matrix gives no white balance for {t:.0f} K; use --wb R,G,B")
    return m


def luminance(x: Array) -> Array:
    """Y = 0.2126 R + 0.7152 G + 0.0722 B of (N, 3, H, W) linear Rec.709, as (N, 1, H, W) (numpy or torch)."""
    return LUMA[0] * x[:, 0:1] + LUMA[1] * x[:, 1:2] + LUMA[2] * x[:, 2:3]


def tone_luminance(y, edit: Edit):
    """The luminance curve of shadows then contrast (array or float, y ≥ 0):
    y₁ = y·(1 + s·p²/(y² + p²)),  y₂ = 0.18·(y₁/0.18)^(2^c). Monotone for s, c in [−1, 1]."""
    p2 = SHADOW_PIVOT**2
    y = y * (1.0 + edit.shadows * p2 / (y * y + p2))
    return MID_GREY * (y / MID_GREY) ** (2.0**edit.contrast) if edit.contrast else y


def tone(x: Array, edit: Edit) -> Array:
    """Shadows and contrast as a luminance gain Y'/Y on all three channels (hue kept; Y ≤ 0 untouched), then
    saturation about the new luminance."""
    if edit.shadows or edit.contrast:
        y = luminance(x)
        floor = y.clip(1e-12, None)
        x = x * array_module(x).where(y > 1e-12, tone_luminance(floor, edit) / floor, 1.0)
    if edit.saturation:
        y = luminance(x)
        x = y + (1.0 + edit.saturation) * (x - y)
    return x


def clip_flags(n: np.ndarray, cfa: str) -> np.ndarray:
    """Per colour c, the sites within ``CLIP_REACH`` px (a 5×5 box) of a clipped site of colour c:
    flag_c = max over the box of [colour(site) = c]·[n ≥ CLIP_LEVEL], of (N, 1, H, W) → (N, 3, H, W) bool
    (``LINEAR_CFA``: n is (N, 3, H, W), each channel its own sites). The box max is separable: an OR of the slices
    shifted by |s| ≤ r along rows, then along columns (outside: False)."""
    h, w = n.shape[-2:]
    if cfa == LINEAR_CFA:
        flags = n >= CLIP_LEVEL
    else:
        site = np.tile(cfa_index(cfa), ((h + 1) // 2, (w + 1) // 2))[:h, :w]
        flags = (n >= CLIP_LEVEL) & (site == np.arange(3)[:, None, None])
    src = flags.copy()
    for s in range(1, CLIP_REACH + 1):
        flags[..., s:, :] |= src[..., :-s, :]
        flags[..., :-s, :] |= src[..., s:, :]
    src = flags.copy()
    for s in range(1, CLIP_REACH + 1):
        flags[..., s:] |= src[..., :-s]
        flags[..., :-s] |= src[..., s:]
    return flags


def reconstruct_highlights(rgb: np.ndarray, clipped: np.ndarray) -> np.ndarray:
    """Clipped channels from the unclipped ones, assuming a neutral highlight: where some channels are clipped,
    each clipped channel becomes max(itself, mean of the unclipped channels); where all are, every channel becomes
    the pixel's maximum (white at the brightest level)."""
    free = ~clipped
    n_free = free.sum(axis=1, keepdims=True, dtype=rgb.dtype)
    mean_free = (rgb * free).sum(axis=1, keepdims=True) / np.maximum(n_free, 1.0)
    partial = np.where(clipped, np.maximum(rgb, mean_free), rgb)
    return np.where(n_free > 0, partial, rgb.max(axis=1, keepdims=True))


class DevelopChain(Step):
    """Mosaic in raw units (N, 1, H, W), a numpy array of any dtype → edited linear Rec.709 (N, 3, H, W) float32,
    scene-referred (not clipped); one way (no ``inverse``). ``full_colour``: the input is instead the render's
    camera image (N, 3, H, W) (``camera_image``), n = WB₀⁻¹(roll-off₀⁻¹(x)) per channel, and no demosaic.

    The front end's steps (``steps.front_end``: Levels, Exposure, WhiteBalance, HighlightRolloff, its demosaic,
    ColorMatrix) with exposure g₀·2^EV, the edit's multipliers m and, when ``rolloff``, the roll-off with knee
    k = k₀·(1 + h/2) and ceilings g₀·2^EV·m_c (the brightest each colour's sites can be); with h < 0 highlight
    reconstruction between demosaic and colour matrix (flags where g₀·n ≥ ``CLIP_LEVEL``); then ``tone``."""

    receptive_field = MHCDemosaic.receptive_field + CLIP_REACH

    def __init__(self, raw: RawImage, front: FrontEnd, edit: Edit, rolloff: bool = True, full_colour: bool = False):
        self.cfa, self.edit, self.base_gain = LINEAR_CFA if full_colour else raw.cfa, edit, float(front.exposure_gain)
        self.multipliers = white_balance(raw, edit)
        self.levels = Levels(raw.black, raw.white)
        self.exposure = Exposure(2.0**edit.exposure)
        self.wb = WhiteBalance(self.cfa, self.multipliers)
        knee = (1.0 if front.highlight_knee is None else front.highlight_knee) * (1.0 + edit.highlights / 2.0)
        ceiling = self.base_gain * self.exposure.gain * self.multipliers
        self.rolloff = HighlightRolloff(self.cfa, ceiling, knee) if rolloff and knee < 1.0 else None
        self.demosaic = None if full_colour else DEMOSAICS[front.demosaic](raw.cfa)
        self.matrix = ColorMatrix(raw.rgb_cam)
        wb0 = np.asarray(raw.wb, np.float64)  # the render's, undone on its camera image
        rolled = [] if front.highlight_knee is None else [HighlightRolloff(LINEAR_CFA, self.base_gain * wb0,
                                                                           front.highlight_knee)]
        self.undo = Chain([WhiteBalance(LINEAR_CFA, wb0), *rolled]) if full_colour else None

    def forward(self, x: np.ndarray) -> np.ndarray:
        if self.undo is None:
            n = self.levels(x.astype(np.float32, copy=False)) * self.base_gain
        else:
            n = self.undo.inverse(x.astype(np.float32, copy=False))
        s = self.wb(self.exposure(n) if self.edit.exposure else n)
        s = s if self.rolloff is None else self.rolloff(s)
        rgb = s if self.demosaic is None else self.demosaic(s)
        if self.edit.highlights and np.any(n >= CLIP_LEVEL):  # else no flag: every pixel stays as it is
            rgb = reconstruct_highlights(rgb, clip_flags(n, self.cfa))
        return tone(self.matrix(rgb), self.edit)


def display(look: LookSettings | None, u8: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Linear Rec.709 (N, 3, H, W) → display values, as the render makes them (``pipeline.render``): clamp to
    [0, 1], the BT.709 gamma g, then the look C∘T (``steps.Look``) when there is one; ``u8``: the 8-bit levels
    ⌊255·v + 0.5⌋ (uint8), else v in [0, 1]."""
    if look is not None:
        step = Look(look)
        return step.render_u8 if u8 else step.render_unit
    gamma = Gamma()
    return gamma.forward_u8 if u8 else gamma.forward_unit


OUTPUT_MODES = ("srgb8", "srgb16", "linear")


def camera_image(rgb: np.ndarray, raw: RawImage, front: FrontEnd) -> np.ndarray:
    """The render's camera image (after white balance, roll-off and demosaic; sensor orientation, (1, 3, H, W)
    float32) that gives the upright 8-bit pixels ``rgb`` (H', W', 3): M⁻¹·g⁻¹(v/255) without a look,
    M⁻¹·(C∘T∘g)⁻¹(v/255) with one (``Look.recover_linear``), M = rgb_cam — the inverse ``pipeline.recover``
    runs down to the demosaic, before it keeps one channel per site."""
    v = rawio.undo_flip(rgb, raw.flip).transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)
    linear = Gamma().inverse(v) if front.look is None else Look(front.look).recover_linear(v)
    return ColorMatrix(raw.rgb_cam).inverse(linear).astype(np.float32)


def develop(raw: RawImage, front: FrontEnd, edit: Edit, mode: str = "srgb8", primaries: str = "rec709",
            tile: int = DEFAULT_TILE, description: str = "developing", pixels: np.ndarray | None = None) -> np.ndarray:
    """Develop a RAW rendered with ``front`` (its base exposure, demosaic, highlight knee and look) by tiles, from
    its mosaic or (``pixels``) its render's camera image (``camera_image``); returns the upright image (H', W', 3):

    srgb8   uint8 display values (``display``): with no edit, the levels ``pipeline.render`` gives
    srgb16  uint16 display values, round(65535·v)
    linear  float16 scene-referred linear light (no roll-off, no look, no clip above 1; negatives clipped to 0), in
            Rec.709 or (``primaries="prophoto"``) ProPhoto RGB primaries: RGB_pp = REC709_TO_PROPHOTO · RGB."""
    if mode not in OUTPUT_MODES:
        raise ValueError(f"unknown output mode {mode!r}")
    chain = DevelopChain(raw, front, edit, rolloff=mode != "linear", full_colour=pixels is not None)
    source = raw.mosaic[None, None] if pixels is None else pixels
    h, w = source.shape[-2:]
    dtype = {"srgb8": np.uint8, "srgb16": np.uint16, "linear": np.float16}[mode]
    out = np.empty((1, h, w, 3), dtype)
    to_prophoto = ColorMatrix(colour.REC709_TO_PROPHOTO) if primaries == "prophoto" else None
    shown = display(front.look, mode == "srgb8")

    def encode(t: np.ndarray) -> np.ndarray:
        if mode == "linear":
            t = t if to_prophoto is None else to_prophoto(t)
            return t.clip(0.0, 65504.0).astype(np.float16)
        return shown(t) if mode == "srgb8" else (shown(t) * 65535.0 + 0.5).astype(dtype)  # v ∈ [0, 1]

    run_tiled(chain.forward, source, out.transpose(0, 3, 1, 2), tile=tile,
              halo=chain.receptive_field, align=2, post=encode, description=description)
    return np.ascontiguousarray(rawio.apply_flip(out[0], raw.flip))
