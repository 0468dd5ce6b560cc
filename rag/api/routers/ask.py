"""`POST /ask`: the same JSON as `rag ask --json`."""

from __future__ import annotations

from fastapi import APIRouter

from rag.api import actions
from rag.api.deps import CallerDep, ServicesDep
from rag.api.schemas import AskRequest, ErrorResponse, SearchRequest, SearchResult
from rag.chain import AskResponse

router = APIRouter(tags=["answers"])


@router.post("/ask", response_model=AskResponse, responses={
    401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
    422: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}})
def ask(body: AskRequest, services: ServicesDep, caller: CallerDep) -> AskResponse:
    """Answer a question from a collection, with citations to exact spans, or say it is not in the documents."""
    return actions.ask(services, caller, body)


@router.post("/search", response_model=SearchResult, responses={
    401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}, 404: {"model": ErrorResponse},
    422: {"model": ErrorResponse}})
def search(body: SearchRequest, services: ServicesDep, caller: CallerDep) -> SearchResult:
    """The passages that best match the query (dense + BM25 retrieval, no reader), with spans and pages: what
    the LangChain and LlamaIndex retrievers of `rag.integrations` return."""
    return actions.search(services, caller, body)
