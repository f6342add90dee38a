"""Which files are RAW files: the name endings of the formats LibRaw reads, and listing them in folders."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError

#: RAW file name endings searched for in folders (files named directly are always taken)
RAW_SUFFIXES = frozenset(
    ".dng .cr2 .cr3 .crw .nef .nrw .arw .srf .sr2 .orf .rw2 .raf .pef .ptx .kdc .dcr .dcs .mrw .3fr .erf .mef .mos "
    ".srw .iiq .rwl .raw .gpr .qtk .x3f".split())


def is_raw_name(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in RAW_SUFFIXES


def raw_files(paths: list[str | os.PathLike]) -> list[Path]:
    """RAW files named directly, or found (non-recursively, sorted by name) in the given folders."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and is_raw_name(f))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return files
