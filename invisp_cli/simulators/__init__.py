"""Differentiable simulators of lossy codecs, used in training so the inverse ISP learns to undo them."""

from invisp_cli.simulators.jpeg import DiffJPEG, fourier_round, quant_tables

__all__ = ["DiffJPEG", "fourier_round", "quant_tables"]
