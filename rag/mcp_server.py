"""The service over the Model Context Protocol (the official `mcp` SDK), for agents and editors: `rag mcp` speaks
it on stdio, `rag serve` on streamable HTTP at `/mcp`. The tools are the HTTP API's actions (`rag.api.actions`)
with its request and response models, the same collections and the same API keys: over HTTP the key comes with
each request (`Authorization: Bearer` or `X-API-Key`), over stdio it is given once when the server starts.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from generators.resolve import ModelUnavailableError
from generators.text.text_generators import GeneratorError
from index.milvus_store import MilvusUnavailableError
from index.store import BackendMismatchError, IndexLockedError, MissingIndexError
from rag.api import actions
from rag.api.actions import Caller
from rag.api.admission import AnswerQueueFullError
from rag.api.collections import UnknownCollectionError
from rag.api.errors import ApiError
from rag.api.schemas import (
    AskRequest, CollectionName, DocumentPage, DocumentText, SearchRequest, SearchResult, UploadResult,
)
from rag.api.services import Services
from rag.chain import AskResponse
from rag.settings import Settings

# What a tool reports to the model as a failed call (its message), rather than as a crash of the server.
EXPECTED_ERRORS = (ApiError, MissingIndexError, UnknownCollectionError, IndexLockedError, BackendMismatchError,
                   ModelUnavailableError, GeneratorError, MilvusUnavailableError, AnswerQueueFullError, ValueError)
READY_SECONDS = 600.0  # how long a call waits for the models to load after the server started

Collection = Annotated[CollectionName, Field(description="The collection to use.")]
SourceGlobs = Annotated[list[str] | None, Field(description="Only documents whose path matches one of these globs.")]
DocIds = Annotated[list[str] | None, Field(description="Only these documents.")]


def build_mcp_server(settings: Settings, services_of: Callable[[], Services], *,
                     stdio_caller: Caller | None = None) -> MCPServer:
    """The MCP server over the services `services_of()` returns (looked up per call: the HTTP app makes its
    services in its lifespan). `stdio_caller`: who the stdio client is (its key, checked at start); HTTP callers
    bring theirs with each request."""
    server = MCPServer(
        "rag-service", title="Ask your documents",
        instructions="Search and ask the documents of this service; every answer cites exact character spans of "
                     "its sources, and says so when the documents do not hold the answer.")

    def caller(ctx: Context) -> Caller:
        headers = ctx.headers
        if headers is None:  # stdio: the key given when the server started
            return stdio_caller or Caller(None, None)
        bearer = headers.get("authorization", "")
        given = bearer[7:].strip() if bearer.lower().startswith("bearer ") else headers.get("x-api-key")
        try:
            return actions.caller_for_key(settings.api.keys, services_of().keys, given)
        except ApiError as exc:
            raise ToolError(exc.message) from None

    async def call(action, *args: Any):
        services = services_of()
        ready = await anyio.to_thread.run_sync(services.ready.wait, READY_SECONDS)
        if not ready:
            raise ToolError("the service is still loading its models; try again shortly")
        try:
            return await anyio.to_thread.run_sync(partial(action, services, *args))
        except EXPECTED_ERRORS as exc:
            raise ToolError(exc.message if isinstance(exc, ApiError) else str(exc)) from None

    @server.tool(title="Search the documents")
    async def search(ctx: Context, query: Annotated[str, Field(description="What to look for.")], top_k: int = 5,
                     collection: Collection = "default", sources: SourceGlobs = None,
                     doc_ids: DocIds = None) -> SearchResult:
        """The passages that best match the query (dense + keyword retrieval), each with its source, pages and
        the exact character span it is in its document."""
        request = _validated(SearchRequest, query=query, top_k=top_k, collection=collection, sources=sources,
                             doc_ids=doc_ids)
        return await call(actions.search, caller(ctx), request)

    @server.tool(title="Ask the documents")
    async def ask(ctx: Context, question: Annotated[str, Field(description="The question.")],
                  mode: Literal["extractive", "generative"] | None = None, top_k: int | None = None,
                  collection: Collection = "default", sources: SourceGlobs = None, doc_ids: DocIds = None,
                  ) -> AskResponse:
        """A cited answer from the documents (`abstained` true when they do not hold it). `mode`: extractive
        (exact spans, fast) or generative (a written answer citing its passages as [n])."""
        request = _validated(AskRequest, question=question, mode=mode, top_k=top_k, collection=collection,
                             sources=sources, doc_ids=doc_ids)
        return await call(actions.ask, caller(ctx), request)

    @server.tool(title="List the documents")
    async def list_documents(ctx: Context, collection: Collection = "default", offset: int = 0,
                             limit: Annotated[int, Field(ge=1, le=500)] = 50) -> DocumentPage:
        """One page of the collection's documents (id, source, kind, title, size, chunks), by source path."""
        return await call(actions.list_documents, caller(ctx), collection, offset, limit)

    @server.tool(title="Read a document")
    async def get_document(ctx: Context, doc_id: str, collection: Collection = "default",
                           start: Annotated[int | None, Field(ge=0, description="Only the span from here...")] = None,
                           end: Annotated[int | None, Field(ge=0, description="...to here (a citation's).")] = None,
                           ) -> DocumentText:
        """A document's extracted text, or the span of it a citation points at, with where its pages are."""
        return await call(actions.get_document, caller(ctx), doc_id, collection, start, end)

    @server.resource("document://{collection}/{doc_id}", mime_type="text/plain",
                     description="A document's extracted text (citation offsets index into it).")
    async def document(collection: str, doc_id: str, ctx: Context) -> str:
        return (await call(actions.get_document, caller(ctx), doc_id, collection)).text

    if settings.api.mcp_ingest:
        @server.tool(title="Add a document")
        async def ingest(ctx: Context, name: Annotated[str, Field(description="The file name, e.g. notes.md.")],
                         content: Annotated[str | None, Field(description="The file's text.")] = None,
                         content_base64: Annotated[str | None, Field(description="Or its bytes, base64.")] = None,
                         path: Annotated[str | None, Field(description="Or a file on the server's machine (stdio "
                                                                        "only).")] = None,
                         collection: Collection = "default",
                         groups: Annotated[list[str] | None, Field(description="Who may read it (default: the "
                                                                                "key's own groups).")] = None,
                         ) -> UploadResult:
            """Add a document to the collection (ingested at once; answers switch when it is committed)."""
            data = _ingest_bytes(ctx, content, content_base64, path)
            return await call(actions.upload, caller(ctx), collection, name, data, "", groups)

    return server


def _validated(model, **fields):
    """The HTTP API's request model for these arguments: the same validation and limits on both interfaces."""
    try:
        return model(**fields)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise ToolError(str(exc)) from None


def _ingest_bytes(ctx: Context, content: str | None, content_base64: str | None, path: str | None) -> bytes:
    given = [value is not None for value in (content, content_base64, path)]
    if sum(given) != 1:
        raise ToolError("give exactly one of content, content_base64 and path")
    if path is not None:
        if ctx.headers is not None:  # over HTTP a path would read the server's own files
            raise ToolError("path is only accepted over stdio; send the file as content or content_base64")
        try:
            return Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise ToolError(f"cannot read {path}: {exc.strerror or exc}") from None
    if content_base64 is not None:
        try:
            return base64.b64decode(content_base64, validate=True)
        except (binascii.Error, ValueError):
            raise ToolError("content_base64 is not valid base64") from None
    return (content or "").encode("utf-8")
