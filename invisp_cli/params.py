"""The reconstruction parameters a rendered file carries: versioned, JSON-serialisable, validated.

Schema ``invisp/1`` (all that decode needs, plus the camera's EXIF basics):

    {"schema": "invisp/1",
     "model": {"id": str, "sha256": hex64},
     "raw": {"cfa": "RGGB"|… (2×2 Bayer) | "GGRGGB/GGBGGR/…" (any period) | "linear",
             "black": [[b00, b01], [b10, b11]] (per site of the CFA tile, p×q; linear: [b_r, b_g, b_b]),
             "white": int, "bits": int,
             "visible_size": [H, W], "raw_size": [H, W], "margins": [top, left], "flip": 0..7,
             "wb": [r, g, b], "wb_source": str, "rgb_cam": 3×3, "xyz_to_cam": 3×3},
     "render": the container's settings + the front end's (``settings``: JPEG or Video, and FrontEnd), e.g.
               {"codec": "jpeg", "quality": int, "subsampling": str, "layer": N (optional),
                "demosaic": "mhc"|"bilinear", "exposure_gain": float, "highlight_knee": float in (0, 1) (optional)},
     "camera": {make, model, datetime, exposure_time, f_number, iso, focal_length, lens},
     "pixels": {"grid": G, "fingerprint": b64, "samples": b64, "scan_sha256": hex, "tables_sha256": hex} (JPEG; absent
               in files written before it: ``containers.integrity`` binds the record to the image it was written with),
     "checksum": sha256 of the canonical JSON of everything above}

The checksum makes any edit of the stored parameters detectable (it guards against corruption and
accidental edits, not against someone who recomputes it)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from .errors import MetadataError
from .rawio import RawImage
from .settings import (
    CFA_LAYOUTS,
    JPEG,
    LINEAR_CFA,
    FrontEnd,
    Video,
    cfa_demosaic,
    cfa_rows,
    dng_cfa_problem,
    output_settings,
)

SCHEMA = "invisp/1"
#: plausibility bounds of a stored image size (a 16000 × 12000 sensor is 192 MP)
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 30


@dataclass
class ReconstructionParams:
    model_id: str
    model_sha256: str
    raw: dict
    render: dict
    camera: dict = field(default_factory=dict)
    pixels: dict | None = None  # the binding to the JPEG's image (``containers.integrity.bind``)

    @classmethod
    def from_raw(cls, raw: RawImage, model_id: str, model_sha256: str, render: dict) -> ReconstructionParams:
        meta = {
            "cfa": raw.cfa,
            "black": np.asarray(raw.black, dtype=float).reshape(_black_shape(raw.cfa)).tolist(),
            "white": int(raw.white),
            "bits": int(raw.bits),
            "visible_size": list(raw.mosaic.shape[:2]),
            "raw_size": [int(v) for v in raw.raw_size],
            "margins": [int(v) for v in raw.margins],
            "flip": int(raw.flip),
            "wb": np.asarray(raw.wb, dtype=float).tolist(),
            "wb_source": raw.wb_source,
            "rgb_cam": np.asarray(raw.rgb_cam, dtype=float).tolist(),
            "xyz_to_cam": np.asarray(raw.xyz_to_cam, dtype=float).tolist(),
        }
        return cls(model_id, model_sha256, meta, dict(render), dict(raw.exif))

    def _body(self) -> dict:
        body = {"schema": SCHEMA, "model": {"id": self.model_id, "sha256": self.model_sha256},
                "raw": self.raw, "render": self.render, "camera": self.camera}
        if self.pixels is not None:
            body["pixels"] = self.pixels
        return body

    def to_json(self) -> str:
        body = self._body()
        body["checksum"] = _checksum(body)
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReconstructionParams:
        try:
            body = json.loads(text, parse_constant=_reject_constant)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MetadataError(f"invisp metadata is not valid JSON ({e.msg})") from None
        except (ValueError, RecursionError) as e:
            raise MetadataError(f"invisp metadata is not valid JSON ({e})") from None
        if not isinstance(body, dict) or not str(body.get("schema", "")).startswith("invisp/"):
            raise MetadataError("no invisp metadata schema in file")
        if body["schema"] != SCHEMA:
            raise MetadataError(f"unsupported metadata schema {body['schema']!r} (this invisp reads {SCHEMA})")
        if not isinstance(body.get("model"), dict):
            raise MetadataError("invisp metadata is missing its model record")
        checksum = body.pop("checksum", None)
        if checksum != _checksum(body):
            raise MetadataError("invisp metadata checksum mismatch: the stored parameters were modified")
        try:
            p = cls(body["model"]["id"], body["model"]["sha256"], body["raw"], body["render"],
                    body.get("camera", {}), body.get("pixels"))
        except (KeyError, TypeError) as e:
            raise MetadataError(f"invisp metadata is missing field {e}") from None
        p.validate()
        return p

    def validate(self) -> None:
        """Check the type and range of every value decode relies on; raise MetadataError otherwise.

        Numbers must be finite and plausible for a camera (a checksummed but edited record with NaN, 1e-300 or
        absurd sizes is refused here, before any work), render settings must be valid for their container."""
        try:
            problem = (_raw_problem(self.raw) or _render_problem(self.render) or _model_problem(self)
                       or _demosaic_problem(self.raw, self.render)
                       or _pixels_problem(self.pixels))
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise MetadataError(f"invisp metadata field invalid or missing: {e}") from None
        if problem:
            raise MetadataError(f"invisp metadata holds out-of-range reconstruction parameters ({problem})")

    @property
    def output(self) -> JPEG | Video:
        """The container's settings of ``render`` (validated)."""
        return output_settings(self.render)

    @property
    def front_end(self) -> FrontEnd:
        """The front end's settings of ``render`` (validated)."""
        return FrontEnd.from_json(self.render)

    def raw_template(self) -> RawImage:
        """A RawImage carrying the stored parameters and an empty mosaic of the visible size."""
        r = self.raw
        h, w = (int(v) for v in r["visible_size"])
        return RawImage(
            mosaic=np.zeros((h, w, 3) if r["cfa"] == LINEAR_CFA else (h, w), np.uint16), cfa=r["cfa"],
            black=np.asarray(r["black"], float),
            white=int(r["white"]), wb=np.asarray(r["wb"], float), wb_source=r.get("wb_source", "camera"),
            rgb_cam=np.asarray(r["rgb_cam"], float), xyz_to_cam=np.asarray(r["xyz_to_cam"], float),
            flip=int(r["flip"]), bits=int(r["bits"]), raw_size=tuple(r.get("raw_size", (h, w))),
            margins=tuple(r.get("margins", (0, 0))), exif=dict(self.camera),
        )


def _finite(value, shape: tuple[int, ...], lo: float, hi: float) -> bool:
    """``value`` is a real array of ``shape`` with every entry finite and in [lo, hi]."""
    a = np.asarray(value)
    if a.dtype.kind not in "iuf" or a.shape != shape:
        return False
    a = a.astype(np.float64)
    return bool(np.all(np.isfinite(a)) and np.all(a >= lo) and np.all(a <= hi))


def _int(value, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


def _raw_problem(r: dict) -> str:
    """Why the ``raw`` record is not a plausible sensor description ("" if it is)."""
    size, full, margins = r["visible_size"], r.get("raw_size", r["visible_size"]), r.get("margins", [0, 0])
    try:
        black_shape = _black_shape(r["cfa"])
        if dng_cfa_problem(r["cfa"]):
            return f"cfa {r['cfa']!r}"
    except (ValueError, AttributeError):
        return f"cfa {r['cfa']!r}"
    if not (_finite(size, (2,), 2, MAX_SIDE) and all(_int(v, 2, MAX_SIDE) for v in size)
            and size[0] * size[1] <= MAX_PIXELS):
        return "visible_size"
    if not (all(_int(v, 1, MAX_SIDE) for v in full) and len(full) == 2
            and all(_int(v, 0, MAX_SIDE) for v in margins) and len(margins) == 2):
        return "raw_size/margins"
    if not (_int(r["white"], 1, 65535) and _int(r["bits"], 1, 16) and r["white"] < 2 ** r["bits"]):
        return "white/bits"
    if not (_finite(r["black"], black_shape, 0, 65535) and np.all(np.asarray(r["black"], float) < r["white"])):
        return "black"
    if not _finite(r["wb"], (3,), 1e-3, 1e3):
        return "wb"
    if not (_finite(r["rgb_cam"], (3, 3), -100, 100) and abs(np.linalg.det(np.asarray(r["rgb_cam"], float))) > 1e-8):
        return "rgb_cam"
    if not _finite(r["xyz_to_cam"], (3, 3), -100, 100):
        return "xyz_to_cam"
    if not (_int(r["flip"], 0, 7) and isinstance(r.get("wb_source", ""), str)):
        return "flip/wb_source"
    return ""


def _black_shape(cfa: str) -> tuple[int, ...]:
    """The shape of a record's black levels: (2, 2) Bayer, (p, q) a period-(p, q) CFA, (3,) linear; ValueError
    for an invalid ``cfa``."""
    if cfa in CFA_LAYOUTS:
        return (2, 2)
    rows = cfa_rows(cfa)
    return (len(rows), len(rows[0])) if rows else (3,)


def _demosaic_problem(raw: dict, render: dict) -> str:
    """Why the record's demosaic cannot render its CFA ("" if it can): a Bayer file any, X-Trans & co.
    "pattern", a linear image "none"."""
    demosaic = FrontEnd.from_json(render).demosaic
    return "" if cfa_demosaic(raw["cfa"], demosaic) == demosaic else f"demosaic {demosaic!r} for cfa {raw['cfa']!r}"


def _render_problem(render: dict) -> str:
    """Why ``render`` is not a valid set of render settings for its container ("" if it is)."""
    try:
        output_settings(render)
        FrontEnd.from_json(render)
    except ValueError as e:
        return str(e)
    return ""


def _is_sha256(v: object) -> bool:
    """Whether ``v`` is a SHA-256 as the record writes it: 64 lowercase hex digits."""
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v)


def _model_problem(p: ReconstructionParams) -> str:
    if not (isinstance(p.model_id, str) and 0 < len(p.model_id) <= 200 and _is_sha256(p.model_sha256)):
        return "model id/sha256"
    if not isinstance(p.camera, dict):
        return "camera"
    return ""


def _pixels_problem(pixels: dict | None) -> str:
    """Why the ``pixels`` binding is not a grid size, a decodable fingerprint and a SHA-256 ("" if it is)."""
    if pixels is None:
        return ""
    if not (isinstance(pixels, dict) and _int(pixels.get("grid"), 2, 64) and _is_sha256(pixels.get("scan_sha256"))
            and isinstance(pixels.get("fingerprint"), str)):
        return "pixels"
    try:  # 3·G² float16 values: the cell means of 3 channels
        values = np.frombuffer(base64.b64decode(pixels["fingerprint"].encode("ascii"), validate=True), "<f2")
    except (ValueError, UnicodeEncodeError):
        return "pixels fingerprint"
    if values.size != 3 * pixels["grid"] ** 2 or not np.all(np.isfinite(values)):
        return "pixels fingerprint"
    if not _is_sha256(pixels.get("tables_sha256", "0" * 64)):
        return "pixels tables"
    if "samples" in pixels:  # RGB uint8 values of up to 4096 pixels
        try:
            n = len(base64.b64decode(str(pixels["samples"]).encode("ascii"), validate=True))
        except (ValueError, UnicodeEncodeError):
            return "pixels samples"
        if n % 3 or n > 3 * 4096:
            return "pixels samples"
    return ""


def _reject_constant(name: str):
    raise ValueError(f"non-finite number {name}")


def _checksum(body: dict) -> str:
    canon = json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False)
    return hashlib.sha256(canon.encode()).hexdigest()


