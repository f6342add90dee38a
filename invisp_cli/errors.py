"""Error types. Every failure a user can cause is an ``InvispError``: the CLI prints its message on one
line and exits with its ``exit_code``; nothing else is caught."""

from __future__ import annotations


class InvispError(Exception):
    """A user-facing error: one clear line, non-zero exit."""

    exit_code = 1


class InputError(InvispError):
    """The input file is missing, unreadable, truncated or corrupt."""

    exit_code = 2


class UsageError(InvispError):
    """A command-line value that cannot be used (exit 2, as Click's usage errors), said in one line."""

    exit_code = 2


class UnsupportedSensorError(InvispError):
    """The RAW is readable but not data invisp renders (Foveon, monochrome, 4-colour filters, float samples)."""

    exit_code = 3


class MetadataError(InvispError):
    """A JPEG/MP4 carries no invisp metadata, or metadata that fails validation."""

    exit_code = 4


class ModelError(InvispError):
    """Unknown model ID, missing checkpoint, or checkpoint hash mismatch."""

    exit_code = 5


class OutputError(InvispError):
    """The output exists (and --force was not given) or cannot be written."""

    exit_code = 6


class PixelsChangedError(InvispError):
    """``verify``: the JPEG's pixels changed after encode (re-saved, edited, damaged): decode still gives a RAW,
    with a warning, but it is approximate beyond what the file promised."""

    exit_code = 8


class SomeFilesFailed(InvispError):
    """A command over several files (``verify``, batch ``encode``/``decode -d``) finished, and at least one file
    failed; each failure was reported on its own line."""

    exit_code = 8
