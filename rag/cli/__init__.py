"""The `rag` command line: one module per command group, each a thin layer over the library.

`shared` holds the Typer app; importing a group's module registers its commands on it (in this order in `--help`).
"""

# isort: off
from rag.cli import ingest, ask, serve, keys, eval, finetune, media, config  # noqa: F401 - each registers its commands
from rag.cli.shared import app

__all__ = ["app"]
