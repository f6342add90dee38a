"""File containers that carry rendered pixels plus the reconstruction parameters."""
