"""Every error is JSON in the OpenAI shape `{"error": {"message", "type", ...}}`, with a 4xx status for bad input.

Known failures map to their status here, once: a model that resolves nowhere
is 503 naming the setting to change; a missing index is 404; a bad question
422; a busy index, or one kept in another vector backend than configured, 409;
a vector database that cannot be reached 503, a full answer queue 429, both with `Retry-After`. Anything
unforeseen is logged with its request id and answered 500 without internals.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from generators.resolve import ModelUnavailableError
from generators.text.text_generators import GeneratorError
from index.milvus_store import MilvusUnavailableError
from index.store import BackendMismatchError, IndexLockedError, MissingIndexError
from rag.api.admission import AnswerQueueFullError
from rag.api.collections import UnknownCollectionError
from rag.components import backend_mismatch_advice

log = logging.getLogger(__name__)

# A vector database that cannot be reached is usually restarting or still starting: ask clients to come back soon.
VECTOR_DB_RETRY_SECONDS = 5


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", **extra: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.extra = {k: v for k, v in extra.items() if v is not None}


def error_response(status: int, message: str, kind: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, **extra}}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, exc.kind, headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, _validation_message(exc), "invalid_request_error")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return error_response(exc.status_code, str(exc.detail), kind, getattr(exc, "headers", None))

    @app.exception_handler(ModelUnavailableError)
    async def model_unavailable(request: Request, exc: ModelUnavailableError) -> JSONResponse:
        return error_response(503, str(exc), "model_unavailable", setting=exc.setting, model=exc.model)

    @app.exception_handler(GeneratorError)
    async def generator_failed(request: Request, exc: GeneratorError) -> JSONResponse:
        return error_response(502, str(exc), "upstream_error")

    @app.exception_handler(MissingIndexError)
    async def missing_index(request: Request, exc: MissingIndexError) -> JSONResponse:
        return error_response(404, "this collection has no documents yet: upload some with POST /documents",
                              "not_found_error")

    @app.exception_handler(UnknownCollectionError)
    async def unknown_collection(request: Request, exc: UnknownCollectionError) -> JSONResponse:
        return error_response(404, str(exc), "not_found_error")

    @app.exception_handler(IndexLockedError)
    async def locked(request: Request, exc: IndexLockedError) -> JSONResponse:
        return error_response(409, str(exc), "conflict_error")

    @app.exception_handler(AnswerQueueFullError)
    async def queue_full(request: Request, exc: AnswerQueueFullError) -> JSONResponse:
        return error_response(429, str(exc), "rate_limit_error", {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(BackendMismatchError)
    async def backend_mismatch(request: Request, exc: BackendMismatchError) -> JSONResponse:
        return error_response(409, backend_mismatch_advice(exc), "conflict_error")

    @app.exception_handler(MilvusUnavailableError)
    async def vector_database_unavailable(request: Request, exc: MilvusUnavailableError) -> JSONResponse:
        return error_response(503, str(exc), "service_unavailable", {"Retry-After": str(VECTOR_DB_RETRY_SECONDS)})

    @app.exception_handler(ValueError)
    async def bad_value(request: Request, exc: ValueError) -> JSONResponse:
        return error_response(422, str(exc), "invalid_request_error")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s (request %s)", request.method, request.url.path,
                      getattr(request.state, "request_id", "-"))
        return error_response(500, "internal error; the server log has the details", "server_error")
