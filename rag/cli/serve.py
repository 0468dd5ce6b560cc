"""`rag serve`: the HTTP API and the chat page."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.shared import BackendOption, IndexOption, app, err, settings_with, user_errors


@app.command()
def serve(
    index: IndexOption = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default: RAG_API__HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option("--port", min=0, max=65535, help="Port (default: RAG_API__PORT, 8000).")] = None,
    backend: BackendOption = None,
    watch: Annotated[list[Path] | None, typer.Option(
        "--watch", help="A folder to keep the default collection in step with while serving (repeatable; "
        "default: RAG_INGEST__WATCH).")] = None,
) -> None:
    """Serve the HTTP API (POST /ask, OpenAI-compatible /v1/chat/completions, /documents) and the chat page."""
    import uvicorn

    from rag.api.app import create_app

    with user_errors():
        settings = settings_with({"index.backend": backend, "index.dir": index, "ingest.watch": watch or None})
    # One JSON line per request (with its request id) on stderr, whatever the CLI's log level.
    access = logging.getLogger("rag.api")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    err.print(f"serving {settings.index.dir} on http://{host or settings.api.host}:{port or settings.api.port} "
              "(chat page at /, API docs at /docs)")
    uvicorn.run(create_app(settings), host=host or settings.api.host, port=port if port is not None else settings.api.port,
                log_level="info", access_log=False)
