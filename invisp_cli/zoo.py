"""Model zoo: shipped checkpoints, their registry, camera matching and SHA-256-verified safe loading.

A registry is a ``registry.json`` beside its checkpoints (``weights/`` in the project, plus any folders in
``$INVISP_WEIGHTS``, e.g. the ``--out`` of ``invisp train``). Each entry:

    {"id": "invisp-squeeze-canon-v1", "file": "<id>-<sha256[:8]>.safetensors", "sha256": hex64,
     "arch": "squeeze", "hparams": {...}, "cameras": ["canon"] | ["*"], "training": {...}, "metrics": {...}}

Checkpoints are safetensors (no pickle); a file is loaded only if its SHA-256 matches the registry and, when
decoding, the hash stored in the JPEG. torch is imported only to build a learned architecture: the analytic
front end (``settings.ANALYTIC_ARCH``, an empty checkpoint) is verified and selected without it."""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelError
from .extras import require
from .settings import ANALYTIC_ARCH, DEFAULT_LOOK

if TYPE_CHECKING:
    import torch

    from .flows import InvertibleFlow

WEIGHTS_DIR = Path(str(importlib.resources.files("invisp_cli.weights")))  # the top-level weights/, as package data
REGISTRY = "registry.json"


@dataclass
class ModelEntry:
    id: str
    file: str
    sha256: str
    arch: str
    hparams: dict
    cameras: list[str]
    training: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    description: str = ""
    isp: dict = field(default_factory=dict)  # analytic front-end the flow was trained behind, e.g. {"demosaic": "mhc"}
    superseded_by: str = ""  # a newer model replaces it for encoding; kept so that its files still decode
    default: bool = False  # encode picks it for every camera of its registry folder unless --model names another
    folder: Path = WEIGHTS_DIR

    @property
    def path(self) -> Path:
        return self.folder / self.file

    @property
    def default_look(self) -> str:
        """The look encode, video and develop render with unless told: the camera's (``DEFAULT_LOOK``) for the
        front end alone, LibRaw's in front of a learned stage (which was trained behind LibRaw's look)."""
        return DEFAULT_LOOK if self.arch == ANALYTIC_ARCH else "libraw"

    def matches(self, make: str) -> bool:
        make = (make or "").lower()
        return any(c != "*" and c.lower() in make for c in self.cameras)

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "folder"}


def trained_list() -> Path:
    """The list of folders ``invisp train`` wrote models into, one per line: $XDG_DATA_HOME/invisp/models.txt
    (default ~/.local/share/invisp/models.txt). Encode, decode and ``models`` search them with no setting."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "invisp" / "models.txt"


def trained_dirs() -> list[Path]:
    """The folders of ``trained_list`` that still hold a registry (a moved or deleted one is skipped)."""
    try:
        lines = trained_list().read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [Path(p) for p in dict.fromkeys(lines) if p.strip() and (Path(p) / REGISTRY).is_file()]


def remember_trained(folder: Path) -> None:
    """Add ``folder`` (absolute) to ``trained_list``, atomically, once."""
    folder = Path(folder).resolve()
    listed = trained_list()
    known = [str(p) for p in trained_dirs()]
    if str(folder) in known:
        return
    listed.parent.mkdir(parents=True, exist_ok=True)
    tmp = listed.with_name(listed.name + f".{os.getpid()}.part")
    tmp.write_text("".join(f"{p}\n" for p in [*known, str(folder)]), "utf-8")
    os.replace(tmp, listed)


def registry_dirs() -> list[Path]:
    """``$INVISP_WEIGHTS`` folders (each must exist), then the folders ``invisp train`` wrote models into
    (``trained_dirs``, newest last), then the shipped ``weights/``."""
    extra = [Path(p) for p in os.environ.get("INVISP_WEIGHTS", "").split(os.pathsep) if p]
    for p in extra:
        if not p.is_dir():
            raise ModelError(f"INVISP_WEIGHTS names {p}, which is not a folder")
    return list(dict.fromkeys([*extra, *reversed(trained_dirs()), WEIGHTS_DIR]))


def read_registry(folder: Path) -> list[ModelEntry]:
    """The entries of ``folder/registry.json``; ModelError for anything malformed (encoding, JSON, fields)."""
    f = folder / REGISTRY
    if not f.is_file():
        return []
    try:
        entries = [ModelEntry(**e, folder=folder) for e in json.loads(f.read_bytes().decode("utf-8"))["models"]]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, RecursionError) as e:
        raise ModelError(f"{f}: malformed model registry ({type(e).__name__})") from None
    for e in entries:
        if not (isinstance(e.id, str) and isinstance(e.file, str) and isinstance(e.sha256, str)
                and isinstance(e.arch, str) and isinstance(e.hparams, dict) and isinstance(e.cameras, list)
                and Path(e.file).name == e.file):
            raise ModelError(f"{f}: malformed model registry (entry {str(e.id)[:40]!r})")
    return entries


def write_registry(folder: Path, entries: list[ModelEntry]) -> None:
    data = {"models": [e.to_json() for e in sorted(entries, key=lambda e: e.id)]}
    tmp = folder / (REGISTRY + ".part")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, folder / REGISTRY)


def list_models() -> list[ModelEntry]:
    """All registered models; earlier folders (``$INVISP_WEIGHTS``) shadow later ones with the same ID."""
    seen: dict[str, ModelEntry] = {}
    for folder in registry_dirs():
        for e in read_registry(folder):
            seen.setdefault(e.id, e)
    return list(seen.values())


def find_model(model_id: str) -> ModelEntry:
    for e in list_models():
        if e.id == model_id:
            return e
    known = ", ".join(sorted(e.id for e in list_models())) or "none"
    raise ModelError(f"unknown model ID {model_id!r} (installed: {known}; a model trained elsewhere is found with "
                     "INVISP_WEIGHTS=<the folder invisp train wrote it into>)")


def select_model(make: str, video: bool = False) -> ModelEntry:
    """The model encode uses for a camera make when ``--model`` names none.

    Registry folders are searched in the order of ``registry_dirs`` (``$INVISP_WEIGHTS``, then the folders
    ``invisp train`` wrote into, newest first — a model the user trained for this camera is its default —, then
    the shipped ``weights/``); in the
    first folder with a candidate: the entry flagged ``default`` if any (the shipped one is the analytic front end,
    ``invisp-frontend-v1``: no learned stage, image or video, measured better than it, docs/experiments.md;
    an image model serves a video too, frame by frame), else a camera-specific one matching the make, else the
    generic ('*') one, of the kind asked for (``video``: windowed architectures). Superseded models are only
    loaded to decode the files they wrote."""
    for folder in registry_dirs():
        models = [e for e in read_registry(folder) if not e.superseded_by]
        for rule in (lambda e: e.default, lambda e: e.matches(make), lambda e: "*" in e.cameras):
            for e in models:
                if rule(e) and (is_video_arch(e.arch) == video or (video and e.default)):
                    return e
    raise ModelError(f"no generic {'video ' if video else ''}model installed "
                     "(weights/registry.json has no entry for cameras '*')")


def is_video_arch(arch: str) -> bool:
    """``flows.is_video``, except that the analytic front end is known to be an image model without torch."""
    if arch == ANALYTIC_ARCH:
        return False
    from .flows import is_video

    return is_video(arch)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_model(entry: ModelEntry, expected_sha256: str | None = None) -> InvertibleFlow:
    """Build ``entry``'s architecture and load its verified checkpoint (eval mode, fp32, CPU); torch (the
    ``[learned]`` extra) is needed for it, a ModelError naming the extra without it."""
    require("torch", "learned", f"model {entry.id} (a learned {entry.arch} network)", ModelError)
    return _load(entry.path, entry.sha256, expected_sha256 or entry.sha256, entry.arch,
                 json.dumps(entry.hparams, sort_keys=True), entry.id)


def load_stage(entry: ModelEntry, expected_sha256: str | None = None) -> InvertibleFlow | None:
    """The learned stage an encode or decode runs after the analytic front end: ``load_model``'s network, or None
    for the analytic front end alone (its empty checkpoint verified all the same, and torch never loaded)."""
    if entry.arch != ANALYTIC_ARCH:
        return load_model(entry, expected_sha256)
    _verify(entry.path, entry.sha256, expected_sha256 or entry.sha256, entry.id)
    from safetensors import safe_open

    try:
        with safe_open(str(entry.path), framework="numpy") as f:
            names = list(f.keys())
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types on a damaged blob
        raise ModelError(f"model {entry.id}: checkpoint {entry.path.name} is not a readable safetensors file "
                         f"({type(e).__name__})") from None
    if names:
        raise ModelError(f"model {entry.id}: architecture {ANALYTIC_ARCH} has 0 parameters, its checkpoint "
                         f"{len(names)} tensor(s)")
    return None


def _verify(path: Path, registered: str, expected: str, model_id: str) -> None:
    """The checkpoint is the one the registry names and, when decoding, the one the file was made with."""
    if registered != expected:
        raise ModelError(f"model {model_id}: the file was made with checkpoint sha256 {expected[:12]}…, "
                         f"but the installed {model_id} is {registered[:12]}…")
    if not path.is_file():
        raise ModelError(f"model {model_id}: checkpoint {path} is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(f"model {model_id}: checkpoint {path.name} has sha256 {actual[:12]}…, "
                         f"expected {expected[:12]}… (corrupt or replaced file)")


@functools.lru_cache(maxsize=4)
def _load(path: Path, registered: str, expected: str, arch: str, hparams: str, model_id: str) -> InvertibleFlow:
    from safetensors.torch import load_file

    _verify(path, registered, expected, model_id)
    try:
        state = load_file(str(path))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types on a damaged blob
        raise ModelError(f"model {model_id}: checkpoint {path.name} is not a readable safetensors file "
                         f"({type(e).__name__})") from None
    model = _build_checked(arch, json.loads(hparams), sum(t.numel() for t in state.values()), model_id)
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, OSError) as e:
        raise ModelError(f"model {model_id}: checkpoint does not fit architecture {arch}: "
                         f"{' '.join(str(e).split())[:200]}") from None
    return model.eval()


def _build_checked(arch: str, hparams: dict, numel: int, model_id: str) -> InvertibleFlow:
    """Build ``arch`` — first without memory (meta device), refusing unknown architectures, bad hyper-parameters,
    and ones whose size does not match the checkpoint's (absurd hparams would otherwise allocate gigabytes)."""
    import torch

    from .flows import build

    try:
        with torch.device("meta"):
            size = sum(t.numel() for t in build(arch, **hparams).state_dict().values())
    except Exception as e:  # noqa: BLE001 - a constructor may raise anything on bad hyper-parameters
        raise ModelError(f"model {model_id}: cannot build architecture {arch!r} with {hparams} "
                         f"({type(e).__name__}: {str(e)[:120]})") from None
    if size != numel:
        raise ModelError(f"model {model_id}: architecture {arch} with {hparams} has {size} parameters, "
                         f"its checkpoint {numel}")
    return build(arch, **hparams)


def save_checkpoint(model: torch.nn.Module, folder: Path, model_id: str) -> tuple[str, str]:
    """Save ``model``'s weights as ``<id>-<sha[:8]>.safetensors`` in ``folder``; return (file, sha256)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{model_id}.safetensors.part"
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(tmp))
    sha = sha256_file(tmp)
    name = f"{model_id}-{sha[:8]}.safetensors"
    os.replace(tmp, folder / name)
    return name, sha


def check_model(model_id: str | None) -> None:
    """``--model ID`` of encode: a learned model needs torch (``[learned]``); checked before any file is read, so a
    batch does not fail file by file (an unknown ID is left to encode, which reports it after its input)."""
    for entry in list_models():
        if entry.id == model_id and entry.arch != ANALYTIC_ARCH:
            require("torch", "learned", f"model {entry.id} (a learned {entry.arch} network)", ModelError)
