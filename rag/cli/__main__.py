"""`python -m rag.cli ...`, as the `rag` script."""

from rag.cli import app


app()
