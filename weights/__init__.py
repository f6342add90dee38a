"""The shipped checkpoints and their registry, installed as package data (``invisp_cli.weights``)."""
