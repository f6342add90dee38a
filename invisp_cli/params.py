"""The reconstruction parameters a rendered file carries: versioned, JSON-serialisable, validated.

Schema ``invisp/1`` (all that decode needs, plus the camera's EXIF basics):

    {"schema": "invisp/1",
     "model": {"id": str, "sha256": hex64},
     "raw": {"cfa": "RGGB"|…, "black": [[b00, b01], [b10, b11]], "white": int, "bits": int,
             "visible_size": [H, W], "raw_size": [H, W], "margins": [top, left], "flip": 0..7,
             "wb": [r, g, b], "wb_source": str, "rgb_cam": 3×3, "xyz_to_cam": 3×3},
     "render": {"codec": "jpeg", "quality": int, "subsampling": str, "demosaic": "mhc"|"bilinear",
                "exposure_gain": float, "highlight_knee": float in (0, 1), optional},
     "camera": {make, model, datetime, exposure_time, f_number, iso, focal_length, lens},
     "checksum": sha256 of the canonical JSON of everything above}

The checksum makes any edit of the stored parameters detectable (it guards against corruption and
accidental edits, not against someone who recomputes it)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from .errors import MetadataError
from .rawio import RawImage
from .steps import CFA_LAYOUTS, DEFAULT_DEMOSAIC, DEMOSAICS

SCHEMA = "invisp/1"


@dataclass
class ReconstructionParams:
    model_id: str
    model_sha256: str
    raw: dict
    render: dict
    camera: dict = field(default_factory=dict)

    @classmethod
    def from_raw(cls, raw: RawImage, model_id: str, model_sha256: str, render: dict) -> ReconstructionParams:
        meta = {
            "cfa": raw.cfa,
            "black": np.asarray(raw.black, dtype=float).reshape(2, 2).tolist(),
            "white": int(raw.white),
            "bits": int(raw.bits),
            "visible_size": list(raw.mosaic.shape),
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
        return {"schema": SCHEMA, "model": {"id": self.model_id, "sha256": self.model_sha256},
                "raw": self.raw, "render": self.render, "camera": self.camera}

    def to_json(self) -> str:
        body = self._body()
        body["checksum"] = _checksum(body)
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ReconstructionParams:
        try:
            body = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise MetadataError(f"invisp metadata is not valid JSON ({e.msg})") from None
        if not isinstance(body, dict) or not str(body.get("schema", "")).startswith("invisp/"):
            raise MetadataError("no invisp metadata schema in file")
        if body["schema"] != SCHEMA:
            raise MetadataError(f"unsupported metadata schema {body['schema']!r} (this invisp reads {SCHEMA})")
        checksum = body.pop("checksum", None)
        if checksum != _checksum(body):
            raise MetadataError("invisp metadata checksum mismatch: the stored parameters were modified")
        try:
            p = cls(body["model"]["id"], body["model"]["sha256"], body["raw"], body["render"],
                    body.get("camera", {}))
        except (KeyError, TypeError) as e:
            raise MetadataError(f"invisp metadata is missing field {e}") from None
        p.validate()
        return p

    def validate(self) -> None:
        """Check types and ranges of everything decode relies on; raise MetadataError otherwise."""
        r = self.raw
        try:
            ok = (
                r["cfa"] in CFA_LAYOUTS
                and len(r["visible_size"]) == 2 and all(int(v) > 0 for v in r["visible_size"])
                and 0 < int(r["white"]) < 2**16 and 1 <= int(r["bits"]) <= 16
                and np.asarray(r["black"], dtype=float).shape == (2, 2)
                and np.all(np.asarray(r["black"], dtype=float) < int(r["white"]))
                and np.asarray(r["wb"], dtype=float).shape == (3,) and np.all(np.asarray(r["wb"]) > 0)
                and np.asarray(r["rgb_cam"], dtype=float).shape == (3, 3)
                and abs(np.linalg.det(np.asarray(r["rgb_cam"], dtype=float))) > 1e-8
                and np.asarray(r["xyz_to_cam"], dtype=float).shape == (3, 3)
                and int(r["flip"]) in range(8)
                and 0 < float(self.render["exposure_gain"]) < 64
                and self.render.get("demosaic", DEFAULT_DEMOSAIC) in DEMOSAICS
                and (self.render.get("highlight_knee") is None or 0 < float(self.render["highlight_knee"]) < 1)
                and isinstance(self.model_id, str) and len(self.model_sha256) == 64
            )
        except (KeyError, TypeError, ValueError) as e:
            raise MetadataError(f"invisp metadata field invalid or missing: {e}") from None
        if not ok:
            raise MetadataError("invisp metadata holds out-of-range reconstruction parameters")

    def raw_template(self) -> RawImage:
        """A RawImage carrying the stored parameters and an empty mosaic of the visible size."""
        r = self.raw
        h, w = (int(v) for v in r["visible_size"])
        return RawImage(
            mosaic=np.zeros((h, w), np.uint16), cfa=r["cfa"], black=np.asarray(r["black"], float),
            white=int(r["white"]), wb=np.asarray(r["wb"], float), wb_source=r.get("wb_source", "camera"),
            rgb_cam=np.asarray(r["rgb_cam"], float), xyz_to_cam=np.asarray(r["xyz_to_cam"], float),
            flip=int(r["flip"]), bits=int(r["bits"]), raw_size=tuple(r.get("raw_size", (h, w))),
            margins=tuple(r.get("margins", (0, 0))), exif=dict(self.camera),
        )


def _checksum(body: dict) -> str:
    canon = json.dumps(body, separators=(",", ":"), sort_keys=True, allow_nan=False)
    return hashlib.sha256(canon.encode()).hexdigest()


