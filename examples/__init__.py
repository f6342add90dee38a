"""The bundled example RAW file, installed as package data (``invisp_cli.examples``)."""
