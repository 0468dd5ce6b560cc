"""`rag serve`: the HTTP API and the chat page."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.cli.shared import BackendOption, IndexOption, app, err, settings_with, user_errors


@app.command()
def mcp(
    index: IndexOption = None,
    backend: BackendOption = None,
    key: Annotated[str | None, typer.Option("--key", envvar="RAG_API_KEY", help="The API key this client uses "
                                            "(when RAG_API__KEYS is set): its collections are the ones it may use.")] = None,
) -> None:
    """Serve the Model Context Protocol on stdio, for desktop clients and editors (search, ask, documents)."""
    import threading

    import anyio

    from rag.api.actions import caller_for_key
    from rag.api.errors import ApiError
    from rag.api.services import Services
    from rag.mcp_server import build_mcp_server

    with user_errors():
        settings = settings_with({"index.backend": backend, "index.dir": index})
        services = Services(settings)
        try:
            caller = caller_for_key(settings.api.keys, services.keys, key)
        except ApiError as exc:
            raise ValueError(f"{exc.message} (--key or RAG_API_KEY)") from None
    # stdout carries the protocol: everything else (model loading, notes) goes to stderr through logging.
    threading.Thread(target=services.warm_up, name="warm-up", daemon=True).start()
    try:
        anyio.run(build_mcp_server(settings, lambda: services, stdio_caller=caller).run_stdio_async)
    finally:
        services.close()


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
        settings = settings_with({"index.backend": backend, "index.dir": index, "ingest.watch": watch or None,
                                  "api.host": host, "api.port": port})
    # One JSON line per request (with its request id) on stderr, whatever the CLI's log level.
    access = logging.getLogger("rag.api")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    err.print(f"serving {settings.index.dir} on http://{settings.api.host}:{settings.api.port} "
              "(chat page at /, API docs at /docs, MCP at /mcp)")
    uvicorn.run(create_app(settings), host=settings.api.host, port=settings.api.port, log_level="info",
                access_log=False)
