"""``python -m invisp_cli …`` (used by ``torchrun -m invisp_cli train …``)."""

from .cli import main

main()
