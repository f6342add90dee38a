"""Ship the analytic front end with no learned stage as a model (``invisp-frontend-v1``, architecture
``frontend``): an empty safetensors checkpoint with its SHA-256 in weights/, a registry entry flagged ``default``
(encode picks it for every camera unless ``--model`` names a learned one; docs/experiments.md).

    .venv/bin/python scripts/ship_frontend.py
"""

from __future__ import annotations

from invisp_cli.flows import build
from invisp_cli.steps import DEFAULT_DEMOSAIC, DEFAULT_KNEE
from invisp_cli.zoo import WEIGHTS_DIR, ModelEntry, read_registry, save_checkpoint, write_registry

MODEL_ID = "invisp-frontend-v1"


def main() -> None:
    file, sha = save_checkpoint(build("frontend"), WEIGHTS_DIR, MODEL_ID)
    entry = ModelEntry(
        id=MODEL_ID, file=file, sha256=sha, arch="frontend", hparams={}, cameras=["*"], default=True,
        isp={"demosaic": DEFAULT_DEMOSAIC, "highlight_knee": DEFAULT_KNEE},
        description="The analytic, metadata-driven front end alone (levels, exposure, white balance, highlight "
                    "roll-off, MHC demosaic, colour matrix, gamma) with no learned stage; the default for encoding.",
        training={"command": ".venv/bin/python scripts/ship_frontend.py", "files": [], "held_out": [],
                  "synthetic_images": 0, "kmac_per_px": 0, "note": "no parameters, nothing trained"})
    shipped = [e for e in read_registry(WEIGHTS_DIR) if e.id != MODEL_ID]
    for old in read_registry(WEIGHTS_DIR):
        if old.id == MODEL_ID and old.file != file:
            (WEIGHTS_DIR / old.file).unlink(missing_ok=True)
    write_registry(WEIGHTS_DIR, [*shipped, entry])
    print(f"shipped {MODEL_ID} ({file})")


if __name__ == "__main__":
    main()
