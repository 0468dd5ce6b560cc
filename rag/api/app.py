"""The FastAPI app factory: one `Settings`, models warmed in the lifespan, a router per resource."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from rag.api.errors import install_error_handlers
from rag.api.routers import admin, ask, chat, documents, generation, health, page, tasks
from rag.api.services import Services
from rag.mcp_server import build_mcp_server
from rag.settings import Settings

log = logging.getLogger("rag.api")
STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, *, warm_up: str = "background") -> FastAPI:
    """`warm_up`: "background" (serve /healthz at once, ready when loaded), "blocking" or "none" (tests)."""
    settings = settings or Settings()
    # The MCP tools at /mcp (streamable HTTP, one request per call) over the same services as the routes.
    mcp_server = build_mcp_server(settings, lambda: app.state.services)
    mcp_http = mcp_server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True,
                                              host=settings.api.host)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.runtime.torch_threads:
            import torch

            torch.set_num_threads(settings.runtime.torch_threads)  # process-wide: set when serving starts, not on import
        services = Services(settings)
        app.state.services = services
        if warm_up == "blocking":
            services.warm_up()
        elif warm_up == "background":
            threading.Thread(target=services.warm_up, name="warm-up", daemon=True).start()
        else:
            services.ready.set()
        services.watch()
        try:
            async with mcp_server.session_manager.run():
                yield
        finally:
            services.close()

    app = FastAPI(
        title="RAG service",
        version="0.1.0",
        summary="Cited answers from your own documents; OpenAI-compatible chat.",
        lifespan=lifespan,
    )
    install_error_handlers(app)

    @app.middleware("http")
    async def request_context(request: Request, call_next):
        """A request id on every request and response, one structured log line, and the metrics."""
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = request_id[:64]
        started = time.perf_counter()
        response = await call_next(request)
        elapsed = time.perf_counter() - started
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        services: Services | None = getattr(request.app.state, "services", None)
        if services is not None:
            services.metrics.requests.labels(path, request.method, str(response.status_code)).inc()
            services.metrics.latency.labels(path).observe(elapsed)
            if response.status_code >= 400:
                services.metrics.errors.labels(path, str(response.status_code)).inc()
        response.headers["X-Request-ID"] = request.state.request_id
        log.info(json.dumps({"request_id": request.state.request_id, "method": request.method, "path": path,
                             "status": response.status_code, "ms": round(elapsed * 1000, 1)}))
        return response

    for module in (ask, chat, documents, admin, tasks, generation, health, page):
        app.include_router(module.router)
    app.router.routes.extend(mcp_http.routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
