"""invisp: an invertible image signal processor (InvISP) for RAW ↔ JPEG."""

__version__ = "0.1.0"
