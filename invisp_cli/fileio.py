"""Atomic output files: write to a temporary file beside the target, then rename.

A crash or an error mid-write leaves the target untouched and no temporary file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputError


def check_output(path: str | os.PathLike, force: bool) -> Path:
    """Refuse an existing output unless ``force``; refuse a missing or unwritable directory."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputError(f"{p}: output exists (use --force to overwrite)")
    if p.is_dir():
        raise OutputError(f"{p}: output is a directory")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{parent}: output directory does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{parent}: output directory is not writable")
    return p


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; rename it onto ``path`` on success.

    On any exception the temporary file is removed and the target is left as it was."""
    target = check_output(path, force)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part" + target.suffix,
                               dir=target.parent if str(target.parent) else ".")
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; a normal output file follows the umask
    try:
        yield tmp_path
        if not force and target.exists():
            raise OutputError(f"{target}: output appeared while writing (use --force to overwrite)")
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise
